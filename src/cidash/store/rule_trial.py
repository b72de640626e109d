"""The rule tester's reads (``POST /api/v1/explain``): a CI's latest stored comments (and a
pasted text) read with the rules in effect, beside how they would read with a candidate rule
added. Nothing is written; the reading itself is :class:`cidash.parsing.explain.RuleTrial`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import CISystemConfig
from cidash.domain.comments import AccountRef
from cidash.domain.views import ExplainedComment, ExplainIn, ExplainOut
from cidash.parsing.bounded import TRIAL_DEADLINE_S, read_all_within
from cidash.parsing.explain import RuleTrial, ci_toml, pasted_comment, with_rule
from cidash.store.reads.comments import latest_comments, stored_observed, stored_parser
from cidash.store.reads.systems import SystemRow, system_rows


async def try_rule(
    conn: AsyncConnection,
    configs: Sequence[CISystemConfig],
    system: SystemRow,
    request: ExplainIn,
    deadline_s: float = TRIAL_DEADLINE_S,
) -> ExplainOut:
    """How `system`'s latest stored comments (and `request.text`) read with the configuration now,
    beside how they would read with `request.rule` added. Raises ConfigError for a bad rule, and
    RuleTooSlowError (a ConfigError) when the reading takes over `deadline_s`."""
    systems = await system_rows(conn)
    candidate_configs = with_rule(configs, system.name, system.server, request.rule) if request.rule else None
    trial = RuleTrial(
        stored_parser(configs, systems),
        stored_parser(candidate_configs, systems) if candidate_configs is not None else None,
    )
    stored = await latest_comments(conn, system.id, limit=request.limit) if request.limit else []
    pasted = pasted_comment(system.server, _author(system), request.text) if request.text is not None else None
    trial_reading = await read_all_within(trial, [stored_observed(system, row) for row in stored], pasted, deadline_s)
    comments = [
        ExplainedComment(
            id=row.id,
            stored_as=row.stored_as,
            change=row.change_number,
            patchset=row.patchset_number,
            posted_at=row.posted_at,
            text=row.raw_comment,
            now=now,
            candidate=candidate,
            changed=changed,
        )
        for row, (now, candidate, changed) in zip(stored, trial_reading.comments, strict=True)
    ]
    entry = None
    if candidate_configs is not None:
        entry = next(c for c in candidate_configs if c.account == system.name and c.server in (None, system.server))
    return ExplainOut(
        ci=system.name,
        server=system.server,
        text=trial_reading.text,
        comments=comments,
        now=trial_reading.now,
        candidate=trial_reading.candidate,
        changed=sum(comment.changed for comment in comments),
        toml=ci_toml(entry) if entry is not None else None,
    )


def _author(system: SystemRow) -> AccountRef:
    return AccountRef(username=system.username or system.name, name=system.account_name, email=system.email)
