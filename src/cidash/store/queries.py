"""Read queries behind ``/api/v1``: rows in, :mod:`cidash.domain.views` models out.

Every function takes an open :class:`AsyncConnection` (the API opens one per request) and runs a
bounded number of statements whatever the size of the history:

* CI systems: :func:`system_rows`, :func:`find_system` (their health is :mod:`cidash.health`'s);
* runs: :func:`runs_page` (keyset pagination on ``(posted_at, id)`` descending, served by the
  ``(ci_system_id, posted_at)``, ``(project, posted_at, id, ...)`` or ``(posted_at, id, ...)``
  index), :func:`run_by_id`;
* per system: :func:`series` (rollups), :func:`job_breakdown`;
* patch sets: :func:`grid` (recent patch sets of a project x CI systems, the cells of a patch set
  packed into one row), :func:`change_view`;
* :func:`project_names`, and the two writes the API offers: :func:`patch_system`, :func:`reparse`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cidash.config import CISystemConfig
from cidash.domain.comments import AccountRef, ObservedComment, ObservedPatchSet, Source
from cidash.parsing import CommentParser
from cidash.store.reads.systems import SystemRow

# -- stored comments as the parser reads them ------------------------------------------------


def stored_observed(system: SystemRow, row: Any) -> ObservedComment:
    """A stored comment (a ``ci_runs`` or ``ci_comments`` row) as the parser sees one: the CI's
    account, the stored text, and the stored Verified vote as the stream's approval (a stream
    copy's text may lack the ``Patch Set N: Verified+1`` header that carries it)."""
    if system.username or system.email or system.account_name:
        author = AccountRef(username=system.username, name=system.account_name, email=system.email)
    else:
        author = AccountRef(username=system.name)
    vote = row.vote
    return ObservedComment(
        server=system.server,
        project=row.project,
        branch=row.branch,
        change_number=row.change_number,
        change_id=None,
        patchset=ObservedPatchSet(number=row.patchset_number),
        author=author,
        posted_at=row.posted_at,
        message=row.raw_comment,
        source=Source(row.source),
        message_id=getattr(row, "message_id", None),
        approvals={"Verified": vote} if vote is not None else {},
        changed_labels=frozenset({"Verified"}) if vote is not None else frozenset(),
    )


def stored_parser(configs: Sequence[CISystemConfig], systems: Sequence[SystemRow]) -> CommentParser:
    """The parser for stored comments: every stored CI system counts as a CI (as if it were in
    its server's CI group), so only the text (and the stored vote) decides."""
    parser = CommentParser(configs, auto_detect=True)
    by_server: dict[str, list[str]] = {}
    for system in systems:
        by_server.setdefault(system.server, []).append(system.name)
    for server, names in by_server.items():
        parser.set_group_members(server, names)
    return parser
