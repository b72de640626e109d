"""Schemathesis against the API's own OpenAPI schema, in process (ASGI), on both engines: for
every operation, generated valid and invalid requests never get a 5xx, an undocumented status
or content type, or a body that does not match the documented schema.

A fixed number of examples per operation, derandomized, so the run is reproducible and short.
Requests carry the write token, so the write operations run their handlers too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.pool import NullPool

from cidash.api import create_app
from cidash.api.state import state_of
from cidash.store import Store
from cidash.store.engine import create_engine
from tests.support.api import WRITE, load_history, settings_for

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
HEADERS = {"Authorization": f"Bearer {WRITE}"}


def _checker(operation: Any, mode: GenerationMode, examples: int, failures: list[str], calls: list[int]) -> Any:
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        calls.append(1)
        response = case.call(headers=HEADERS)
        try:
            case.validate_response(response, checks=CHECKS, headers=HEADERS)
        except Exception as exc:  # schemathesis raises failure groups: collect them all, report once
            failures.append(f"{operation.label} [{mode.value}] {case.path_parameters} {case.query}: {exc}")

    return check


# The live feed's server-sent events: an endless stream (here, with no bus, a 503); tests/api/test_live.py
# holds it to its protocol.
LIVE_STREAMS = frozenset({"/api/v1/events"})


def _exercise(app: Any) -> tuple[int, list[str]]:
    """Run every operation's examples; returns (requests made, failures as text)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    calls: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in LIVE_STREAMS:
            continue
        for mode, examples in EXAMPLES.items():
            try:
                _checker(operation, mode, examples, failures, calls)()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # no parameter to get wrong
    return len(calls), failures


async def test_no_5xx_and_responses_match_the_schema(store: Store, tmp_path: Path) -> None:
    await load_history(store, hours=3)
    # the app runs in schemathesis' own event loop: a pool-less engine opens its connections there
    isolated = Store(create_engine(str(store.engine.url.render_as_string(hide_password=False)), poolclass=NullPool))
    try:
        app = create_app(settings_for(store, write_token=SecretStr(WRITE)), isolated, frontend_dir=tmp_path)
        state_of(app).health_cache.stale_s = 0.0  # no background refresh in a loop the test does not own
        calls, failures = await asyncio.to_thread(_exercise, app)
    finally:
        await isolated.close()
    assert not failures, "\n".join(failures[:10])
    assert calls > 15 * 20  # every operation got its examples
