"""Differential fidelity: capture what a Gerrit says (stream-events lines, REST answers) and compare
the STRUCTURE of two captures: key sets and order, value types, omitted fields, escaping, timestamp
formats, headers and error status codes. Values themselves (names, numbers, texts) may differ.

Captures of the real Gerrit live in tests/data/real-gerrit-3.10/ (written by
tests/realgerrit/test_real_gerrit.py with CIDASH_WRITE_REAL_GERRIT_CAPTURES=1); the simulator is captured
live by tests/sim/test_sim_fidelity.py and must match them.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from tests.support.paths import DATA

CAPTURE_DIR = DATA / "real-gerrit-3.10"
GSON_ESCAPED = "'<>&="  # Gson writes these as \u0027 ... inside strings: never raw on the wire
_REST_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_INT_TEXT = re.compile(r"^-?\d+$")
_ACCOUNT_ID = re.compile(r"^\d+$")  # attention_set and friends are keyed by account id
# Headers whose presence and value shape matter to a client (the rest is Jetty's business).
COMPARED_HEADERS = ("content-type", "content-disposition", "x-content-type-options", "www-authenticate")


@dataclass(frozen=True)
class RestRequest:
    name: str
    path: str  # after /a/; {change} and {project} are filled in
    params: tuple[tuple[str, str], ...] = ()
    good_password: bool = True


BACKFILL_OPTIONS = (("o", "MESSAGES"), ("o", "DETAILED_ACCOUNTS"), ("o", "ALL_REVISIONS"))
REST_REQUESTS = (
    RestRequest("query_backfill", "changes/", (("q", "status:open"), ("n", "2"), ("S", "0"), *BACKFILL_OPTIONS)),
    RestRequest(
        "query_closed", "changes/", (("q", "status:merged OR status:abandoned"), ("n", "3"), *BACKFILL_OPTIONS)
    ),
    RestRequest("change_plain", "changes/{change}"),
    RestRequest("change_messages", "changes/{change}/messages"),
    RestRequest("group_members", "groups/Third-Party%20CI/members/"),
    RestRequest("account_self", "accounts/self"),
    RestRequest("server_version", "config/server/version"),
    RestRequest("error_not_found", "changes/99999999"),
    RestRequest("error_bad_query", "changes/", (("q", "foo:bar"),)),
    RestRequest("error_bad_option", "changes/", (("o", "NO_SUCH_OPTION"),)),
    RestRequest("error_unauthorized", "changes/", good_password=False),
)


async def capture_rest(url: str, user: str, password: str, change: int, project: str) -> dict[str, Any]:
    """Every request of REST_REQUESTS: status, the compared headers, the body as text."""
    found: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for request in REST_REQUESTS:
            path = request.path.format(change=change, project=quote(project, safe=""))
            params = [(key, value.format(project=project)) for key, value in request.params]
            auth = (user, password if request.good_password else password + "-wrong")
            response = await client.get(f"/a/{path}", params=params, auth=auth)
            headers = {name: response.headers[name] for name in COMPARED_HEADERS if name in response.headers}
            found[request.name] = {"status": response.status_code, "headers": headers, "body": response.text}
    return found


def rest_json(body: str) -> Any:
    """A REST body without the XSSI line, decoded keeping key order."""
    assert body.startswith(")]}'\n"), f"no XSSI prefix: {body[:40]!r}"
    return json.loads(body[5:])


@dataclass
class Shape:
    """Per path ($.a[].b, revisions' sha keys as *): value kinds seen, and key orders of objects."""

    kinds: dict[str, set[str]] = field(default_factory=dict)
    orders: dict[str, list[list[str]]] = field(default_factory=dict)

    def add(self, value: Any, path: str = "$") -> None:
        self.kinds.setdefault(path, set()).add(_kind(value))
        if isinstance(value, dict):
            keys = [_path_key(key) for key in value]
            if keys not in self.orders.setdefault(path, []):
                self.orders[path].append(keys)
            for key, item in value.items():
                self.add(item, f"{path}.{_path_key(key)}")
        elif isinstance(value, list):
            for item in value:
                self.add(item, f"{path}[]")


def _path_key(key: str) -> str:
    return "*" if _SHA.match(key) else "<id>" if _ACCOUNT_ID.match(key) else key


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        if _REST_TIME.match(value):
            return "timestamp"
        if _SHA.match(value):
            return "sha"
        if _INT_TEXT.match(value):
            return "int-text"
        return "str"
    if value is None:
        return "null"
    return "object" if isinstance(value, dict) else "list"


def shape_of(values: Iterable[Any]) -> Shape:
    shape = Shape()
    for value in values:
        shape.add(value)
    return shape


def _key_order(orders: list[list[str]]) -> list[str]:
    """One order of every key seen, merging the observed orders (first seen first)."""
    merged: list[str] = []
    for order in orders:
        for index, key in enumerate(order):
            if key not in merged:
                before = [k for k in order[:index] if k in merged]
                position = merged.index(before[-1]) + 1 if before else 0
                merged.insert(position, key)
    return merged


def compare_shapes(what: str, real: Shape, sim: Shape, *, sim_may_lack: Iterable[str] = ()) -> list[str]:
    """Differences, in words. Paths the real one never showed are not judged (the sim may be richer
    in data: more labels, more changes); `sim_may_lack` lists paths whose absence is expected."""
    problems: list[str] = []
    lacking = set(sim_may_lack)
    for path, kinds in real.kinds.items():
        if path not in sim.kinds:
            if path not in lacking and not any(path.startswith(p + ".") or path.startswith(p + "[]") for p in lacking):
                problems.append(f"{what}: {path} is missing in the simulator (real: {sorted(kinds)})")
            continue
        if sim.kinds[path] - kinds and "null" not in kinds:
            problems.append(f"{what}: {path} kinds real {sorted(kinds)}, simulator {sorted(sim.kinds[path])}")
    for path, real_orders in real.orders.items():
        sim_orders = sim.orders.get(path)
        if not sim_orders:
            continue
        real_keys, sim_keys = _key_order(real_orders), _key_order(sim_orders)
        extra = [key for key in sim_keys if key not in real_keys]
        if extra:
            problems.append(f"{what}: {path} has keys the real Gerrit never sent: {extra}")
        common_real = [key for key in real_keys if key in sim_keys]
        common_sim = [key for key in sim_keys if key in real_keys]
        if common_real != common_sim:
            problems.append(f"{what}: {path} key order real {common_real}, simulator {common_sim}")
    return problems


def raw_escaping_problems(what: str, lines: Iterable[str]) -> list[str]:
    """Gson's HTML escaping: the characters of GSON_ESCAPED never appear raw in a JSON line."""
    problems = []
    for line in lines:
        line = line.removeprefix(")]}'\n")
        raw = sorted({char for char in GSON_ESCAPED if char in line})
        if raw:
            problems.append(f"{what}: raw {raw} in {line[:120]!r}")
            break
    return problems


def load_capture() -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """(meta, stream lines, REST captures) committed under CAPTURE_DIR."""
    meta = json.loads((CAPTURE_DIR / "meta.json").read_text())
    lines = (CAPTURE_DIR / "stream-events.jsonl").read_text(encoding="utf-8").splitlines()
    rest = json.loads((CAPTURE_DIR / "rest.json").read_text(encoding="utf-8"))
    return meta, lines, rest


def events_by_type(lines: Iterable[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for line in lines:
        event = json.loads(line)
        found.setdefault(event["type"], []).append(event)
    return found


def rest_pools(rest: dict[str, Any]) -> dict[str, list[Any]]:
    """The REST answers' objects by kind (ChangeInfo, ChangeMessageInfo, AccountInfo), pooled over
    requests: which optional fields appear depends on the data (merged or open, who voted)."""
    changes = [*rest_json(rest["query_backfill"]["body"]), *rest_json(rest["query_closed"]["body"])]
    changes.append(rest_json(rest["change_plain"]["body"]))
    messages = [m for change in changes for m in change.get("messages", [])]
    messages += rest_json(rest["change_messages"]["body"])
    accounts = [*rest_json(rest["group_members"]["body"]), rest_json(rest["account_self"]["body"])]
    return {"ChangeInfo": changes, "ChangeMessageInfo": messages, "AccountInfo": accounts}
