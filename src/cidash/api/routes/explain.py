"""``POST /explain``: the rule tester. How a CI's latest stored comments (and a pasted comment
text) read with the rules in effect, beside how they would read with a candidate rule, and the
``[[ci]]`` TOML that rule takes. A write-token route: its patterns run against stored text."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.api.auth import require_write
from cidash.api.deps import NOT_FOUND, connection, settings_of, system_or_404
from cidash.domain.views import ExplainIn, ExplainOut
from cidash.errors import ConfigError
from cidash.store import try_rule

router = APIRouter(tags=["explain"])


@router.post("/explain", response_model=ExplainOut, responses=NOT_FOUND, dependencies=[Depends(require_write)])
async def explain(
    request: Request, conn: Annotated[AsyncConnection, Depends(connection)], body: ExplainIn
) -> ExplainOut:
    """Read `text` and the CI's `limit` latest stored comments now and with `rule` (nothing is stored)."""
    system = await system_or_404(conn, body.ci, body.server)
    try:
        return await try_rule(conn, settings_of(request).ci, system, body)
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None
