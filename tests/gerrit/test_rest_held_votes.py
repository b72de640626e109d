"""A REST copy of a CI report knows the vote its author holds, as the stream copy does.

Real Gerrit (3.10, seen in tests/realgerrit/test_real_gerrit.py) writes only CHANGED votes in the
`Patch Set N:` header, and `Removed Verified-1 by <GERRIT_ACCOUNT_n>` when someone deletes one.
"""

from __future__ import annotations

from typing import Any

from cidash.gerrit.normalize import comments_from_change
from cidash.parsing import CommentParser

CI = {"_account_id": 1000005, "name": "Cisco ML2 CI", "username": "cisco-ml2-ci"}
ADMIN = {"_account_id": 1000000, "name": "Administrator", "username": "admin"}
FAILED = "Build failed.\n\n- cisco-ml2-tempest https://logs.example.org/1/t : FAILURE in 5m 01s"


def _message(number: int, author: dict[str, Any], text: str, patchset: int = 1) -> dict[str, Any]:
    return {
        "id": f"m{number}",
        "author": author,
        "date": f"2026-01-01 10:00:{number:02d}.000000000",
        "message": text,
        "_revision_number": patchset,
    }


def _votes(messages: list[dict[str, Any]]) -> list[int | None]:
    change = {"_number": 1, "project": "p", "branch": "master", "messages": messages}
    parser = CommentParser()
    parser.set_group_members("s", ["cisco-ml2-ci"])
    return [parser.parse(c).vote for c in comments_from_change(change, "s") if c.author.username == "cisco-ml2-ci"]


def test_repeat_failure_keeps_the_held_vote() -> None:
    assert _votes(
        [
            _message(1, CI, f"Patch Set 1: Verified-1\n\n{FAILED}"),
            _message(2, CI, f"Patch Set 1:\n\n{FAILED} again"),  # header without the unchanged vote
        ]
    ) == [-1, -1]


def test_removed_vote_is_no_longer_held_and_patch_sets_do_not_share_votes() -> None:
    assert _votes(
        [
            _message(1, CI, f"Patch Set 1: Verified-1\n\n{FAILED}"),
            _message(2, ADMIN, "Removed Verified-1 by <GERRIT_ACCOUNT_1000005>\n"),
            _message(3, CI, f"Patch Set 1:\n\n{FAILED} again"),
            _message(4, CI, f"Patch Set 2:\n\n{FAILED} on 2", patchset=2),
            _message(5, CI, f"Patch Set 2: -Verified\n\n{FAILED} once more", patchset=2),
        ]
    ) == [-1, None, None, 0]
