"""The simulated Gerrit's SSH `gerrit query` command: its options and json.txt's change attributes.

The search language itself is `cidash.sim.query` (shared with REST `/changes/`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cidash.gerrit.events import change_ref
from cidash.gerrit.wire import gson_dumps
from cidash.sim.query import MAX_LIMIT, QueryError, parse_query
from cidash.sim.state import Change, PatchSet
from cidash.sim.world import World

_IGNORED_FLAGS = frozenset(
    {
        "--files",
        "--dependencies",
        "--submit-records",
        "--all-reviewers",
        "--no-limit",
        "--allow-incomplete-results",
    }
)


def _approval_attrs(world: World, ps: PatchSet) -> list[dict[str, Any]]:
    found: list[tuple[int, dict[str, Any]]] = []
    legacy_types = {"Verified": "VRIF", "Code-Review": "CRVW", "Workflow": "APRV"}
    for account_id, votes in ps.votes.items():
        by = world.accounts[account_id].attr
        for label, (value, granted) in votes.items():
            found.append(
                (
                    granted,
                    {
                        "type": legacy_types.get(label, label) if world.legacy_2x else label,
                        "description": label,
                        "value": str(value),
                        "grantedOn": granted,
                        "by": by,
                    },
                )
            )
    found.sort(key=lambda item: item[0])
    return [attr for _, attr in found]


def _query_patchset(world: World, change: Change, ps: PatchSet, approvals: bool) -> dict[str, Any]:
    legacy = world.legacy_2x
    attr: dict[str, Any] = {
        "number": str(ps.number) if legacy else ps.number,
        "revision": ps.revision,
        "parents": [ps.parent],
        "ref": change_ref(change.number, ps.number),
        "uploader": ps.uploader.attr,
        "createdOn": ps.created,
        "author": change.owner.attr,
    }
    if legacy:
        attr["isDraft"] = False
    attr["kind"] = ps.kind
    if approvals:
        found = _approval_attrs(world, ps)
        if found:
            attr["approvals"] = found
    attr["sizeInsertions"] = ps.insertions
    attr["sizeDeletions"] = -ps.deletions if legacy else ps.deletions
    return attr


def query_change_attr(
    world: World,
    change: Change,
    *,
    commit_message: bool,
    comments: bool,
    current_patch_set: bool,
    patch_sets: bool,
    all_approvals: bool,
) -> dict[str, Any]:
    """json.txt's `change` as `gerrit query` prints it."""
    attr: dict[str, Any] = {
        "project": change.project,
        "branch": change.branch,
        "id": change.change_id,
        "number": str(change.number) if world.legacy_2x else change.number,
        "subject": change.subject,
        "owner": change.owner.attr,
        "url": world.change_url(change),
    }
    if commit_message:
        attr["commitMessage"] = change.commit_message
    attr["createdOn"] = change.created
    attr["lastUpdated"] = change.updated
    attr["open"] = change.is_open
    attr["status"] = change.status
    if comments:
        attr["comments"] = [
            {"timestamp": message.date, "reviewer": message.author.attr, "message": message.text}
            for message in change.messages
        ]
    if current_patch_set:
        attr["currentPatchSet"] = _query_patchset(world, change, change.current, True)
    if patch_sets:
        attr["patchSets"] = [_query_patchset(world, change, ps, all_approvals) for ps in change.patchsets]
    return attr


_OUTPUT_FLAGS = frozenset(
    {"--current-patch-set", "--patch-sets", "--all-approvals", "--comments", "--commit-message", "-c"}
)


class _Fatal(Exception):
    """What `gerrit query` says on stderr (as `fatal: ...`) before it exits 1."""


@dataclass
class _QueryArgs:
    words: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    output_format: str | None = None
    start: int = 0


def _parse_args(args: list[str]) -> _QueryArgs:
    """Gerrit's (args4j) reading of the command line; the query words in order."""
    if args[:2] == ["gerrit", "query"]:
        args = args[2:]
    elif args[:1] == ["query"]:
        args = args[1:]
    parsed = _QueryArgs()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            parsed.words.extend(args[i + 1 :])
            break
        name, has_value, inline = arg.partition("=")
        if name in ("--format", "--start", "-S"):
            if has_value:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                raise _Fatal(f'Option "{name}" takes an operand')
            if name == "--format":
                parsed.output_format = value.upper()
            else:
                parsed.start = _start(name, value)
        elif arg in _OUTPUT_FLAGS:
            parsed.flags.add(arg)
        elif arg in _IGNORED_FLAGS:
            pass
        elif arg.startswith("-") and len(arg) > 1 and ":" not in arg:
            raise _Fatal(f'"{arg}" is not a valid option')
        else:
            parsed.words.append(arg)
        i += 1
    if parsed.output_format != "JSON":
        raise _Fatal("only --format=JSON is supported by the simulated Gerrit")
    if not parsed.words:
        raise _Fatal('Argument "QUERY" is required')
    return parsed


def _start(name: str, value: str) -> int:
    try:
        start = int(value)
    except ValueError:
        raise _Fatal(f'"{value}" is not a valid value for "{name}"') from None
    if start < 0:
        raise _Fatal("start must be >= 0")
    return start


def gerrit_query_lines(world: World, args: list[str]) -> tuple[list[bytes], int]:
    """Run `gerrit query ARGS` (args after `query`); returns (output lines, exit status).

    Exit 0: one JSON change per line then the stats line. Exit 1: a single `fatal: ...` line
    (for stderr).
    """
    began = time.perf_counter()
    try:
        parsed = _parse_args(args)
        query = parse_query(" ".join(_requote(word) for word in parsed.words), world)
    except (_Fatal, QueryError) as exc:
        return [f"fatal: {exc}\n".encode()], 1
    flags, start = parsed.flags, parsed.start
    found = query.filter(world.changes.values())
    size = min(query.limit or MAX_LIMIT, MAX_LIMIT)
    page = found[start : start + size]
    lines = [
        _json_line(
            query_change_attr(
                world,
                change,
                commit_message="--commit-message" in flags or "-c" in flags,
                comments="--comments" in flags,
                current_patch_set="--current-patch-set" in flags,
                patch_sets="--patch-sets" in flags or "--all-approvals" in flags,
                all_approvals="--all-approvals" in flags,
            )
        )
        for change in page
    ]
    stats = {
        "type": "stats",
        "rowCount": len(page),
        "runTimeMilliseconds": int((time.perf_counter() - began) * 1000),
        "moreChanges": len(found) > start + size,
    }
    lines.append(_json_line(stats))
    return lines, 0


def _json_line(value: dict[str, Any]) -> bytes:
    return (gson_dumps(value) + "\n").encode("utf-8")


def _requote(word: str) -> str:
    """Re-quote `op:value with spaces` that the shell split/unquoted (e.g. after:"2024-01-01 10:00:00")."""
    op, sep, value = word.partition(":")
    if sep and any(ch.isspace() for ch in value) and value[:1] not in ('"', "'", "{"):
        return f'{op}:"{value}"'
    return word
