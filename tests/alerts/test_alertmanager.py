"""Incidents pushed to a REAL Prometheus Alertmanager (Debian's prometheus-alertmanager, started on
loopback by the test, clustering off) whose receiver is a webhook server of the test's own: each
incident's firing and resolved notifications arrive, grouped as the route groups them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from cidash.alerts.alertmanager import AlertmanagerPusher
from cidash.alerts.engine import AlertEngine
from cidash.config import AlertmanagerConfig
from cidash.store import Store, alerts_store
from cidash.store import feed as feed_module
from tests.support.alerts_world import NOVA, World, reference_config, rule
from tests.support.loopback_http import Request, answer, loopback_server
from tests.support.soak_mariadb import free_port
from tests.support.store_fixtures import ZUUL

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
CINDER = "openstack/cinder"


@dataclass
class Hook:
    url: str
    notifications: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for_group(self, status: str, projects: list[str], limit_s: float = 30) -> dict[str, Any]:
        """The first notification of `status` that holds an alert of every project: on a busy machine the
        group's first notification can go out (group_wait) before the second alert is in, and the next
        one (group_interval) then carries both."""

        def complete(notification: dict[str, Any]) -> bool:
            alerts = notification["alerts"]  # an empty label (a CI-wide scope) is not sent on
            found = sorted(a["labels"].get("project", "") for a in alerts if a["status"] == status)
            return bool(notification["status"] == status and found == projects)

        return await self.wait_for(complete, limit_s)

    async def wait_for(self, wanted: Callable[[dict[str, Any]], bool], limit_s: float = 30) -> dict[str, Any]:
        """The first notification that is `wanted`."""
        async with asyncio.timeout(limit_s):
            while True:
                for notification in self.notifications:
                    if wanted(notification):
                        return notification
                self.arrived.clear()
                await self.arrived.wait()


@pytest_asyncio.fixture
async def hook() -> AsyncIterator[Hook]:
    """The Alertmanager's receiver: records every notification it POSTs."""
    state = Hook("")

    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        state.notifications.append(json.loads(request.body))
        state.arrived.set()
        await answer(writer)

    async with loopback_server(handle) as server:
        state.url = f"{server.url}/hook"
        yield state


@pytest.fixture
def alertmanager(hook: Hook, tmp_path: Path) -> Iterator[str]:
    assert ALERTMANAGER.exists(), "prometheus-alertmanager is missing: run scripts/ensure-services"
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: test\n"
        "  group_by: [ci, rule]\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: test\n"
        "    webhook_configs:\n"
        f"      - url: {hook.url}\n"
        "        send_resolved: true\n"
    )
    process = subprocess.Popen(
        [
            str(ALERTMANAGER),
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: nothing but loopback
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "alertmanager.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            time.sleep(0.05)
        else:
            raise AssertionError("Alertmanager did not become ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_incidents_fire_and_resolve_in_alertmanager(store: Store, alertmanager: str, hook: Hook) -> None:
    store.after_insert = feed_module.append_run_messages
    now = [datetime.now(UTC)]  # Alertmanager judges startsAt/endsAt by the real clock
    per_project = rule("blame", "failure", per_project=True, for_s=0, clear_s=0, severity="critical")
    engine = AlertEngine(store, [per_project], clock=lambda: now[0])
    world = World(store, engine, now, t=now[0] - timedelta(minutes=10))  # a post is a minute later each
    await store.sync_ci_configs([reference_config("zuul")], ["review"])  # type: ignore[list-item]
    pusher = AlertmanagerPusher(
        store, AlertmanagerConfig(url=alertmanager, resend_s=1, dashboard_url="http://dash.example")
    )
    engine.edge_listeners.append(pusher.on_edges)
    try:
        for change, project in ((1, NOVA), (2, CINDER)):
            await world.post("SUCCESS", author=ZUUL, ci="zuul", change=change, project=project)
            await world.post("FAILURE", change=change, project=project)
        assert await pusher.push() == 2
        firing = await hook.wait_for_group("firing", [CINDER, NOVA])
        assert firing["groupLabels"] == {"ci": "acme-ci", "rule": "blame"}
        notified_firing = len(hook.notifications)
        first = firing["alerts"][0]
        assert {k: first["labels"][k] for k in ("ci", "server", "rule", "severity", "alertname")} == {
            "ci": "acme-ci",
            "server": "review",
            "rule": "blame",
            "severity": "critical",
            "alertname": "blame",
        }
        assert first["generatorURL"].startswith("http://dash.example/#/incidents/")
        assert "acme-ci: failing since" in first["annotations"]["summary"]
        assert await pusher.push() == 2  # still firing: re-sent (within the resolve timeout)
        # both clear: one resolved notification for the group
        for change, project in ((3, NOVA), (4, CINDER)):
            await world.post("SUCCESS", change=change, project=project)
        async with store.engine.connect() as conn:
            states = [i.state for i in await alerts_store.list_incidents(conn)]
        assert states == ["resolved", "resolved"]
        assert await pusher.push() == 2
        resolved = await hook.wait_for_group("resolved", [CINDER, NOVA])
        assert len(resolved["alerts"]) == 2 and resolved["groupLabels"] == firing["groupLabels"]
        # a re-send of a firing alert notified no one again: after the firing ones, only resolutions
        assert all(n["status"] == "resolved" for n in hook.notifications[notified_firing:])
    finally:
        await pusher.close()
        await engine.close()


async def test_an_escalation_ends_the_old_label_set_after_a_restart(
    store: Store, alertmanager: str, hook: Hook
) -> None:
    """warning -> critical changes the labels: the warning alert must end, also when the replica
    that pushed it is gone and a new one (nothing in memory) pushes the escalated incident."""
    store.after_insert = feed_module.append_run_messages
    ahead = [timedelta(0)]  # the engine's clock runs ahead to escalate; Alertmanager's stays real
    escalating = rule("blame", "failure", for_s=0, clear_s=0, severity="warning", escalate_after_s=3600)
    engine = AlertEngine(store, [escalating], clock=lambda: datetime.now(UTC) + ahead[0])
    world = World(store, engine, [datetime.now(UTC)])
    await store.sync_ci_configs([reference_config("zuul")], ["review"])  # type: ignore[list-item]
    # endsAt a few minutes ahead: the pushes here are by hand, and the firing one must outlast the test
    config = AlertmanagerConfig(url=alertmanager, resend_s=60, dashboard_url="http://dash.example")
    first = AlertmanagerPusher(store, config)
    try:
        posted = datetime.now(UTC) - timedelta(seconds=30)
        await world.post("SUCCESS", author=ZUUL, ci="zuul", change=1, at=posted)
        await world.post("FAILURE", change=1, at=posted + timedelta(seconds=1))
        assert await first.push() == 1
        firing = await hook.wait_for_group("firing", [""])
        assert [a["labels"]["severity"] for a in firing["alerts"]] == ["warning"]
    finally:
        await first.close()  # the replica goes away
    ahead[0] = timedelta(hours=2)
    await engine.tick()
    async with store.engine.connect() as conn:
        (incident,) = await alerts_store.list_incidents(conn)
    assert incident.state == "firing" and incident.severity == "critical"
    second = AlertmanagerPusher(store, config)  # a new replica: it never pushed the warning
    try:
        assert await second.push() == 2  # the warning label set ended, the critical one firing
        ended = await hook.wait_for(lambda n: any(a["status"] == "resolved" for a in n["alerts"]))
        assert sorted((a["labels"]["severity"], a["status"]) for a in ended["alerts"]) == [
            ("critical", "firing"),
            ("warning", "resolved"),
        ]
        async with httpx.AsyncClient() as client:
            active = (await client.get(f"{alertmanager}/api/v2/alerts", params={"active": "true"})).json()
        assert [(a["labels"]["severity"], a["status"]["state"]) for a in active] == [("critical", "active")]
    finally:
        await second.close()
        await engine.close()
