"""Acting in a real Gerrit as its accounts, and recording every CI report posted (the truth).

Each action is one REST call (or two, for a new patch set through a change edit) as the account
that would do it in a real community. A CI report's truth is what the CI meant to say: its
overall result, pipeline, vote and job lines, plus the clock window the POST happened in (Gerrit
stores change messages with whole-second resolution).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cidash.realgerrit.community import Community, Person
from cidash.realgerrit.site import ADMIN_USER
from cidash.realgerrit.writer import GerritWriter, ident
from cidash.sim.ci_texts import MERGE_FAILED_BODY, Job, one_job_report, overall_result, recheck_footer, result_body
from cidash.sim.personas import ONE_JOB_STYLES, Style


@dataclass(frozen=True, slots=True)
class ChangeRef:
    number: int
    project: str
    change_id: str

    @property
    def path(self) -> str:
        return f"changes/{ident(self.project)}~{self.number}"


@dataclass(frozen=True, slots=True)
class PostedRun:
    """One CI report as posted: what cidash must end up storing as one run."""

    change: int
    patchset: int
    author: str
    result: str
    pipeline: str | None
    vote: int | None
    jobs: tuple[Job, ...]
    posted_after: datetime  # just before the POST ...
    posted_before: datetime  # ... and just after it returned

    def key(self) -> tuple[Any, ...]:
        return (self.change, self.patchset, self.author, self.result, self.pipeline, self.vote, self.jobs)


@dataclass
class Poster:
    """Posts as the community's accounts; `truth` lists every CI report, `actions` counts the rest."""

    community: Community
    truth: list[PostedRun] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)
    _writers: dict[str, GerritWriter] = field(default_factory=dict)

    def writer(self, username: str) -> GerritWriter:
        found = self._writers.get(username)
        if found is None:
            found = self._writers[username] = self.community.writer(username)
        return found

    async def aclose(self) -> None:
        await asyncio.gather(*(writer.aclose() for writer in self._writers.values()))
        self._writers.clear()

    def _count(self, what: str) -> None:
        self.actions[what] = self.actions.get(what, 0) + 1

    async def create_change(self, owner: str, project: str, subject: str, branch: str = "master") -> ChangeRef:
        info = await self.writer(owner).post("changes/", {"project": project, "branch": branch, "subject": subject})
        self._count("change")
        return ChangeRef(int(info["_number"]), project, str(info["change_id"]))

    async def new_patchset(self, owner: str, change: ChangeRef, path: str, content: str) -> None:
        """Edit a file in a change edit and publish it: patch set N+1 (patchset-created)."""
        writer = self.writer(owner)
        await writer.put(f"{change.path}/edit/{ident(path)}", raw=content.encode())
        await writer.post(f"{change.path}/edit:publish", {"notify": "NONE"})
        self._count("patchset")

    async def review(
        self,
        username: str,
        change: ChangeRef,
        patchset: int,
        message: str,
        labels: dict[str, int] | None = None,
        tag: str | None = None,
    ) -> tuple[datetime, datetime]:
        body: dict[str, Any] = {"message": message, "notify": "NONE"}
        if labels:
            body["labels"] = labels
        if tag:
            body["tag"] = tag
        before = datetime.now(UTC)
        await self.writer(username).post(f"{change.path}/revisions/{patchset}/review", body)
        after = datetime.now(UTC)
        self._count("review")
        return before, after

    async def ci_start(self, ci: Person, change: ChangeRef, patchset: int, pipeline: str = "check") -> None:
        """Zuul's start marker (no vote change), or Jenkins's `Build Started <url>`."""
        if ci.style is Style.JENKINS:
            text = f"Build Started https://jenkins.{ci.username}.example.org/job/{ci.username}-check/1/"
            await self.review(ci.username, change, patchset, text)
        else:
            await self.review(ci.username, change, patchset, f"Starting {pipeline} jobs.", tag=_zuul_tag(ci, pipeline))
        self._count("start")

    async def ci_report(
        self,
        ci: Person,
        change: ChangeRef,
        patchset: int,
        jobs: Sequence[Job],
        *,
        pipeline: str = "check",
        pipeline_header: bool = False,
        merge_failed: bool = False,
        vote: bool | None = None,
    ) -> PostedRun:
        """Post a result in `ci`'s style (with a Verified vote when it votes) and record the truth."""
        style = ci.style or Style.ZUUL3
        if merge_failed:
            result, body, jobs = "MERGE_CONFLICT", MERGE_FAILED_BODY, ()
        else:
            result = overall_result(jobs)
            if style in ONE_JOB_STYLES:  # one log URL stands for the run
                url = f"https://ci.{ci.username}.example.org/job/{ci.username}-{pipeline}/{len(self.truth) + 1}/"
                result, job = one_job_report(style, jobs, result, url)
                jobs = [job]
            footer = ""
            if style in (Style.BULLETS, Style.VOTEONLY):
                footer = recheck_footer(ci.username.removesuffix("-ci"), ci.email)
            body = result_body(style, jobs, result, pipeline if pipeline_header else None, footer)
        votes = ci.voting if vote is None else vote
        value: int | None = None
        labels: dict[str, int] | None = None
        if votes:
            value = (2 if result == "SUCCESS" else -2) if pipeline == "gate" else (1 if result == "SUCCESS" else -1)
            labels = {"Verified": value}
        before, after = await self.review(ci.username, change, patchset, body, labels, _zuul_tag(ci, pipeline))
        truth_pipeline = pipeline if style is Style.ZUUL3 else None
        run = PostedRun(change.number, patchset, ci.username, result, truth_pipeline, value, tuple(jobs), before, after)
        self.truth.append(run)
        return run

    async def remove_vote(self, change: ChangeRef, account: str, label: str = "Verified") -> None:
        """An admin deletes a CI's vote (vote-deleted; Gerrit writes a `Removed ...` message)."""
        await self.writer(ADMIN_USER).post(
            f"{change.path}/reviewers/{ident(account)}/votes/{label}/delete", {"notify": "NONE"}
        )
        self._count("vote_removed")

    async def abandon(self, username: str, change: ChangeRef, message: str) -> None:
        await self.writer(username).post(f"{change.path}/abandon", {"message": message, "notify": "NONE"})
        self._count("abandon")

    async def approve_and_submit(self, change: ChangeRef, patchset: int) -> None:
        admin = self.writer(ADMIN_USER)
        await admin.post(f"{change.path}/revisions/{patchset}/review", {"labels": {"Code-Review": 2}, "notify": "NONE"})
        await admin.post(f"{change.path}/submit", {})
        self._count("merge")

    async def change_info(self, change: ChangeRef, *options: str) -> Any:
        return await self.writer(ADMIN_USER).get(change.path, [("o", option) for option in options])


def _zuul_tag(ci: Person, pipeline: str) -> str | None:
    """Zuul tags its messages `autogenerated:zuul:<pipeline>`; Jenkins-era CIs set no tag."""
    return f"autogenerated:zuul:{pipeline}" if ci.style is Style.ZUUL3 else None
