"""Gerrit's change-message text: the ``Patch Set N: Verified+1`` line it puts before a review's
comment, and the votes that line names."""

from __future__ import annotations

import re

_VOTE_TOKEN_RE = re.compile(r"-(?P<removed>[A-Za-z][\w-]*)|(?P<label>[A-Za-z][\w-]*?)(?P<value>[+-]\d+)")


def strip_patchset_header(message: str) -> tuple[str, str | None]:
    """Split ``"Patch Set 3: Verified+1\\n\\n<body>"`` into ``(body, "Patch Set 3: Verified+1")``.

    The header is the whole first line; without one (legacy/simulator mode, Gerrit 2.4) the
    result is ``(message, None)``.
    """
    if not message.startswith("Patch Set "):
        return message, None
    colon = message.find(":", 10)
    if colon < 0 or not message[10:colon].isdigit() or not message[10:colon].isascii():
        return message, None
    newline = message.find("\n", colon)
    if newline < 0:
        return "", message
    return message[newline + 1 :].lstrip("\n"), message[:newline]


def split_header_votes(header: str) -> dict[str, int]:
    """Votes in a header: "Patch Set 3: Verified+1 Code-Review-2 -Workflow" ->
    {"Verified": 1, "Code-Review": -2, "Workflow": 0}. Tokens that are not votes are ignored."""
    if header.startswith("Patch Set "):
        header = header.partition(":")[2]
    votes: dict[str, int] = {}
    for token in header.split():
        match = _VOTE_TOKEN_RE.fullmatch(token)
        if match is None:
            continue
        removed = match.group("removed")
        if removed is not None:
            votes[removed] = 0
        else:
            votes[match.group("label")] = int(match.group("value"))
    return votes
