"""The simulated Gerrit's state: changes with their patch sets, votes and messages, and the
truth of every CI result comment (what the tests compare cidash's reading with).

Plain slotted classes rather than dataclasses: the world makes millions of them in a long history.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cidash.gerrit.events import NULL_REV
from cidash.gerrit.wire import format_timestamp
from cidash.sim.ci_texts import Job
from cidash.sim.personas import Account

LABELS = ("Verified", "Code-Review", "Workflow")


def random_hex(rng: random.Random, bits: int = 160) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


@lru_cache(maxsize=1 << 16)
def rest_time(seconds: int) -> str:
    """REST timestamp (`YYYY-MM-DD HH:MM:SS.000000000`, UTC) of epoch seconds."""
    return format_timestamp(datetime.fromtimestamp(seconds, UTC))


class Message:
    """A change message (ChangeMessageInfo)."""

    __slots__ = ("author", "date", "id", "patchset", "tag", "text")

    def __init__(self, id: str, tag: str | None, author: Account, date: int, text: str, patchset: int) -> None:
        self.id = id
        self.tag = tag
        self.author = author
        self.date = date
        self.text = text
        self.patchset = patchset


class Run:
    """One CI run on one patch set (superseded when the CI is triggered again)."""

    __slots__ = ("build_no", "pipeline")

    def __init__(self, pipeline: str, build_no: int) -> None:
        self.pipeline = pipeline
        self.build_no = build_no


class PatchSet:
    __slots__ = (
        "approved",
        "attr",
        "code_ok",
        "created",
        "deletions",
        "insertions",
        "kind",
        "number",
        "parent",
        "rechecks",
        "revision",
        "runs",
        "uploader",
        "votes",
        "zuul_check",
    )

    def __init__(
        self,
        number: int,
        revision: str,
        parent: str,
        created: int,
        uploader: Account,
        kind: str,
        insertions: int,
        deletions: int,
        code_ok: bool,
    ) -> None:
        self.number = number
        self.revision = revision
        self.parent = parent
        self.created = created
        self.uploader = uploader
        self.kind = kind
        self.insertions = insertions
        self.deletions = deletions
        self.code_ok = code_ok
        self.votes: dict[int, dict[str, tuple[int, int]]] = {}  # account id -> label -> (value, granted)
        self.runs: dict[int, Run] = {}  # CI index -> the run it will report
        self.rechecks = 0
        self.approved = False
        self.zuul_check: str | None = None  # the reference's last check result
        self.attr: dict[str, Any] | None = None

    def vote(self, account_id: int, label: str) -> int:
        votes = self.votes.get(account_id)
        if votes is None:
            return 0
        value = votes.get(label)
        return value[0] if value else 0


class Change:
    __slots__ = (
        "attr",
        "branch",
        "change_id",
        "commenters",
        "commit_message",
        "created",
        "fate",
        "inline_comments",
        "messages",
        "meta_rev",
        "number",
        "owner",
        "patchsets",
        "project",
        "remaining",
        "status",
        "subject",
        "submitted",
        "updated",
    )

    def __init__(
        self, number: int, project: str, branch: str, change_id: str, subject: str, owner: Account, created: int
    ) -> None:
        self.number = number
        self.project = project
        self.branch = branch
        self.change_id = change_id
        self.subject = subject
        self.owner = owner
        self.created = created
        self.updated = created
        self.status = "NEW"
        self.commit_message = ""
        self.patchsets: list[PatchSet] = []
        self.messages: list[Message] = []
        self.commenters: set[int] = set()
        self.meta_rev = NULL_REV
        self.inline_comments = 0
        self.fate = "open"
        self.remaining = 0  # patch sets still to upload
        self.submitted: int | None = None
        self.attr: dict[str, Any] | None = None

    @property
    def current(self) -> PatchSet:
        return self.patchsets[-1]

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"


class Truth:
    """What a CI result comment really said (one record per result comment)."""

    __slots__ = ("author", "change", "jobs", "message_id", "patchset", "pipeline", "posted_at", "result", "vote")

    def __init__(
        self,
        change: int,
        patchset: int,
        author: str,
        posted_at: int,
        message_id: str,
        result: str,
        pipeline: str | None,
        vote: int | None,
        jobs: list[Job],
    ) -> None:
        self.change = change
        self.patchset = patchset
        self.author = author
        self.posted_at = posted_at
        self.message_id = message_id
        self.result = result
        self.pipeline = pipeline
        self.vote = vote
        self.jobs = jobs

    def as_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "patchset": self.patchset,
            "author": self.author,
            "posted_at": rest_time(self.posted_at),
            "message_id": self.message_id,
            "result": self.result,
            "pipeline": self.pipeline,
            "vote": self.vote,
            "jobs": [
                {"name": j.name, "url": j.url, "result": j.result, "duration_s": j.duration_s, "voting": j.voting}
                for j in self.jobs
            ],
        }
