"""A real Gerrit (the version pinned in scripts/ensure-gerrit) for the whole test session.

``real_gerrit`` starts it once: a throwaway site on loopback with free ports, the CI community of
cidash.realgerrit.community on it, removed at the end even when a test fails. If Java or the jars
cannot be had, the tests using it FAIL with what is missing (they never skip).

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from pydantic import SecretStr

from cidash.config import CISystemConfig, GerritServer, Settings
from cidash.realgerrit.community import CI_GROUP, REFERENCE, Community, build_community, create_projects
from cidash.realgerrit.poster import PostedRun
from cidash.realgerrit.site import ADMIN_USER, GerritSite, GerritSiteError, create_site
from tests.support.stored import StoredRun

GERRIT_TIME_RESOLUTION = timedelta(seconds=1)  # NoteDb stores change messages in whole seconds
_projects = itertools.count(1)


@dataclass
class RealGerrit:
    site: GerritSite
    community: Community
    known_hosts: Path

    async def new_projects(self, label: str) -> tuple[str, ...]:
        """Fresh projects for one test, so tests sharing the server do not see each other's runs."""
        number = next(_projects)
        names = tuple(f"{label}{number}/{base}" for base in ("nova", "neutron", "cinder"))
        await create_projects(self.site.url, names)
        return names

    def server(self, projects: tuple[str, ...], **overrides: Any) -> GerritServer:
        watcher = self.community.watcher
        values: dict[str, Any] = {
            "name": "real",
            "ssh_host": "127.0.0.1",
            "ssh_port": self.site.ssh_port,
            "ssh_user": watcher.username,
            "ssh_key": watcher.key_path,
            "known_hosts": self.known_hosts,
            "http_url": self.site.url,
            "http_user": watcher.username,
            "http_password": SecretStr(watcher.password),
            "ci_group": CI_GROUP,
            "projects": list(projects),
            "keepalive_s": 5,
            "backfill_interval_s": 3600,
            "backfill_overlap_s": 30,
        }
        values.update(overrides)
        return GerritServer(**values)

    def settings(self, database_url: str, projects: tuple[str, ...], **overrides: Any) -> Settings:
        return Settings(
            database_url=database_url,
            servers=[self.server(projects, **overrides)],
            ci=[CISystemConfig(account=REFERENCE.username, display_name=REFERENCE.name, reference=True)],
        )

    async def admin_ssh(self, command: str) -> str:
        """Run a `gerrit ...` SSH command as the admin; its stdout."""
        assert self.community.admin_key is not None
        async with asyncssh.connect(
            "127.0.0.1",
            self.site.ssh_port,
            username=ADMIN_USER,
            client_keys=[str(self.community.admin_key)],
            known_hosts=str(self.known_hosts),
        ) as connection:
            result = await connection.run(command, check=True)
            return str(result.stdout)


@pytest.fixture(scope="session")
def real_gerrit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealGerrit]:
    directory = tmp_path_factory.mktemp("real-gerrit")
    site: GerritSite | None = None
    try:
        site = create_site(directory / "site")
        site.start()
        community = asyncio.run(build_community(site.url, directory / "keys"))
        yield RealGerrit(site, community, site.write_known_hosts(directory / "known_hosts"))
    except GerritSiteError as exc:
        pytest.fail(f"a real Gerrit is needed for this test and could not be started: {exc}", pytrace=False)
    finally:
        if site is not None:
            site.remove()


RunKey = tuple[Any, ...]


def stored_key(run: StoredRun) -> RunKey:
    jobs = tuple((j.name, j.url, j.result, j.duration_s, j.voting) for j in run.jobs)
    return (run.change_number, run.patchset_number, run.author, run.result, run.pipeline, run.vote, jobs)


def truth_key(run: PostedRun) -> RunKey:
    jobs = tuple((j.name, j.url, j.result, j.duration_s, j.voting) for j in run.jobs)
    return (run.change, run.patchset, run.author, run.result, run.pipeline, run.vote, jobs)


def compare_with_truth(truth: list[PostedRun], stored: list[StoredRun]) -> list[str]:
    """Every difference between the posted truth and the stored runs (empty: exactly equal)."""
    problems: list[str] = []
    wanted = {truth_key(run): run for run in truth}
    assert len(wanted) == len(truth), "the scenario posted two identical reports"
    seen: set[RunKey] = set()
    for run in stored:
        key = stored_key(run)
        posted = wanted.get(key)
        if posted is None:
            problems.append(f"stored but never posted: {key}")
        elif key in seen:
            problems.append(f"stored twice: {key}")
        elif (
            not posted.posted_after - GERRIT_TIME_RESOLUTION
            <= run.posted_at
            <= posted.posted_before + GERRIT_TIME_RESOLUTION
        ):
            problems.append(f"time {run.posted_at} outside [{posted.posted_after}, {posted.posted_before}]: {key}")
        seen.add(key)
    problems.extend(f"posted but not stored: {key}" for key in wanted if key not in seen)
    return problems
