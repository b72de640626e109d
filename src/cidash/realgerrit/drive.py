"""`cidash drive --gerrit URL`: the simulator's world posted into a real Gerrit, as its accounts.

The world (cidash.sim.world: its projects, humans, reference Zuul and ~40 third-party CIs with
their personas and comment styles) runs at a chosen rate; every event it produces becomes the
REST call that makes a real Gerrit produce the same event: a new change, a patch set through a
change edit, a review with its Verified vote, a merge or an abandon. Accounts, groups, the
Verified label and projects are created on first use (idempotently), so any Gerrit whose admin
can log in with an HTTP password will do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cidash.gerrit.events import StreamEvent
from cidash.gerrit.messages import split_header_votes, strip_patchset_header
from cidash.realgerrit.community import (
    CI_GROUP,
    REFERENCE_GROUP,
    Account,
    Community,
    Person,
    password_of,
)
from cidash.realgerrit.poster import ChangeRef, Poster
from cidash.realgerrit.site import ADMIN_PASSWORD, ADMIN_USER
from cidash.realgerrit.writer import GerritWriteError, GerritWriter, ident
from cidash.sim.personas import PROJECTS
from cidash.sim.world import World

log = logging.getLogger(__name__)
VOTED_LABELS = {"Verified": (-2, 2), "Code-Review": (-1, 1)}  # what the world's accounts may vote here


@dataclass
class DriveStats:
    events: int = 0
    posted: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    last_error: str | None = None


class WorldDriver:
    """Translates the world's events into REST calls on `url`."""

    def __init__(self, url: str, world: World, *, admin_user: str = ADMIN_USER, admin_password: str = ADMIN_PASSWORD):
        self.url = url
        self.world = world
        self.admin = GerritWriter(url, admin_user, admin_password)
        self.community = Community(url=url, projects=tuple(project.name for project in PROJECTS))
        self.poster = Poster(self.community)
        self.poster._writers[ADMIN_USER] = self.admin
        self.stats = DriveStats()
        self._changes: dict[int, ChangeRef] = {}  # world change number -> the real one
        self._accounts = {a.username: a for a in [*world.accounts.values(), *(ci.account for ci in world.cis)]}
        self._group_uuid: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.poster.aclose()

    async def prepare(self) -> None:
        """Groups, the Verified label and who may vote it, and the world's projects."""
        for group in (CI_GROUP, REFERENCE_GROUP):
            info = await self.admin.put(f"groups/{ident(group)}", {"visible_to_all": True}, ok=(409,))
            if info is None:
                info = await self.admin.get(f"groups/{ident(group)}")
            self._group_uuid[group] = str(info["id"])
        values = {"-2": "Fails", "-1": "Doesn't seem to work", " 0": "No score", "+1": "Works for me", "+2": "Verified"}
        await self.admin.put(
            "projects/All-Projects/labels/Verified",
            {"commit_message": "Add Verified", "values": values, "function": "NoBlock"},
            ok=(409,),
        )
        rules = {
            self._group_uuid[CI_GROUP]: {"action": "ALLOW", "min": -1, "max": 1},
            self._group_uuid[REFERENCE_GROUP]: {"action": "ALLOW", "min": -2, "max": 2},
        }
        await self.admin.post(
            "projects/All-Projects/access",
            {"add": {"refs/heads/*": {"permissions": {"label-Verified": {"label": "Verified", "rules": rules}}}}},
        )
        for project in self.community.projects:
            await self.admin.put(f"projects/{ident(project)}", {"create_empty_commit": True}, ok=(409,))

    async def _account(self, username: str) -> str:
        if username in self.community.accounts or username == ADMIN_USER:
            return username
        found = self._accounts.get(username)
        if found is None:
            raise KeyError(f"the world has no account {username!r}")
        body: dict[str, Any] = {"name": found.name, "http_password": password_of(username)}
        if found.email:
            body["email"] = found.email
        try:
            info = await self.admin.put(f"accounts/{ident(username)}", body, ok=(409,))
        except GerritWriteError as exc:
            if exc.status != 422 or "email" not in str(exc):
                raise
            # Gerrit wants each e-mail once; the world lets one operator run several CIs
            info = await self.admin.put(f"accounts/{ident(username)}", {**body, "email": None}, ok=(409,))
        if info is None:  # it exists (an earlier drive): make sure we know its password
            await self.admin.put(f"accounts/{ident(username)}/password.http", {"http_password": password_of(username)})
        ci = self.world.ci_by_username.get(username)
        if ci is not None:
            group = REFERENCE_GROUP if ci.reference else CI_GROUP
            await self.admin.post(f"groups/{ident(group)}/members.add", {"members": [username]})
        person = Person(username, found.name, found.email)
        self.community.accounts[username] = Account(person, 0, password_of(username))
        return username

    async def publish(self, events: Sequence[StreamEvent]) -> None:
        """World.run's publish callback: each event as REST calls (a failure is counted, not fatal)."""
        for event in events:
            self.stats.events += 1
            try:
                kind = await self._post(event)
            except (GerritWriteError, KeyError) as exc:
                self.stats.failed += 1
                self.stats.last_error = str(exc)
                log.warning("drive: %s not posted: %s", event.type, exc)
                continue
            if kind:
                self.stats.posted[kind] = self.stats.posted.get(kind, 0) + 1

    async def _post(self, event: StreamEvent) -> str | None:
        raw = event.raw
        number, patchset = event.change_number, event.patchset_number
        if number is None or event.type == "ref-updated":
            return None
        change = self._changes.get(number)
        if event.type == "patchset-created":
            uploader = await self._account(str(raw["uploader"]["username"]))
            if patchset == 1 or change is None:
                subject = str(event.change.get("subject") or f"change {number}")
                project = str(event.project)
                self._changes[number] = await self.poster.create_change(uploader, project, subject)
                return "change"
            owner = await self._account(str(event.change["owner"]["username"]))
            await self.poster.new_patchset(owner, change, f"sim/change-{number}.txt", f"patch set {patchset}\n")
            return "patchset"
        if change is None:
            return None  # a change from before this drive started
        if event.type == "comment-added":
            author = await self._account(str(raw["author"]["username"]))
            header_body = str(raw.get("comment") or "")
            body, header = strip_patchset_header(header_body)
            labels = _labels(split_header_votes(header) if header else {})
            tag = self._tag(author, body)
            await self.poster.review(author, change, patchset or 1, body or "(no text)", labels or None, tag)
            return "review"
        if event.type == "change-merged":
            await self.poster.approve_and_submit(change, patchset or 1)
            return "merge"
        if event.type == "change-abandoned":
            abandoner = await self._account(str(raw["abandoner"]["username"]))
            await self.poster.abandon(abandoner, change, str(raw.get("reason") or "Abandoned"))
            return "abandon"
        return None

    def _tag(self, author: str, body: str) -> str | None:
        ci = self.world.ci_by_username.get(author)
        if ci is None:
            return None
        if ci.reference:
            return "autogenerated:zuul:gate" if "(gate pipeline)" in body.split("\n", 1)[0] else ci.tag
        return ci.tag


def _labels(votes: dict[str, int]) -> dict[str, int]:
    """The votes a real Gerrit lets these accounts cast (no Workflow label; humans up to +-1)."""
    found = {}
    for label, value in votes.items():
        bounds = VOTED_LABELS.get(label)
        if bounds is not None:
            found[label] = max(bounds[0], min(bounds[1], value))
    return found


async def drive(
    url: str,
    *,
    seed: int = 1,
    rate: float | None = 2.0,
    events: int | None = None,
    duration: float | None = None,
    admin_user: str = ADMIN_USER,
    admin_password: str = ADMIN_PASSWORD,
    on_progress: Callable[[DriveStats], None] | None = None,
) -> DriveStats:
    """Run the world against `url` until `events` or `duration`; returns what was posted."""
    world = World(seed)
    driver = WorldDriver(url, world, admin_user=admin_user, admin_password=admin_password)
    try:
        await driver.prepare()

        async def publish(batch: list[StreamEvent]) -> None:
            await driver.publish(batch)
            if on_progress is not None:
                on_progress(driver.stats)

        await world.run(publish, rate=rate, events=events, duration=duration)
    finally:
        await driver.aclose()
    return driver.stats
