"""Helpers to run the simulator and a collector against it, and compare what was stored with the truth.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import orjson
from pydantic import SecretStr

from cidash.config import CISystemConfig, GerritServer, Settings
from cidash.gerrit.wire import format_timestamp
from cidash.sim.runner import RunningSim
from tests.support.stored import StoredRun

RunKey = tuple[Any, ...]


def client_key(directory: Path) -> Path:
    """A fresh ed25519 client key (the simulator accepts any key by default)."""
    path = directory / "id_ed25519"
    if not path.exists():
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(path)
    return path


def sim_server(sim: RunningSim, key: Path, name: str = "sim", **overrides: Any) -> GerritServer:
    """A server config pointing at the simulator, with its host key pinned."""
    values: dict[str, Any] = {
        "ssh_key": key,
        "name": name,
        "ssh_host": "127.0.0.1",
        "ssh_port": sim.ssh_port,
        "ssh_user": "cidash",
        "host_key_fingerprint": sim.host_key_fingerprint,
        "http_url": sim.http_url,
        "http_user": sim.options.http_user,
        "http_password": SecretStr(sim.options.http_password),
        "ci_group": "Third-Party CI",
        "keepalive_s": 5,
        "watchdog_s": 30,
    }
    values.update(overrides)
    return GerritServer(**values)


def sim_settings(sim: RunningSim, database_url: str, key: Path, **server_overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        servers=[sim_server(sim, key, **server_overrides)],
        ci=[CISystemConfig(account="zuul", display_name="Zuul", reference=True)],
    )


async def fetch_truth(sim: RunningSim) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=sim.http_url, timeout=60) as client:
        response = await client.get("/__sim/truth")
        response.raise_for_status()
        return [orjson.loads(line) for line in response.content.splitlines() if line.strip()]


def truth_key(record: dict[str, Any]) -> RunKey:
    jobs = tuple((j["name"], j["url"], j["result"], j["duration_s"], j["voting"]) for j in record["jobs"])
    return (
        record["change"],
        record["patchset"],
        record["author"],
        record["posted_at"],
        record["message_id"],
        record["result"],
        record["pipeline"],
        record["vote"],
        jobs,
    )


def stored_key(run: StoredRun) -> RunKey:
    jobs = tuple((j.name, j.url, j.result, j.duration_s, j.voting) for j in run.jobs)
    return (
        run.change_number,
        run.patchset_number,
        run.author,
        format_timestamp(run.posted_at),
        run.message_id,
        run.result,
        run.pipeline,
        run.vote,
        jobs,
    )


def compare(truth: list[dict[str, Any]], stored: list[StoredRun]) -> tuple[Counter[RunKey], Counter[RunKey]]:
    """(missing from the store, extra in the store) as multisets; both empty means exact equality."""
    want = Counter(truth_key(record) for record in truth)
    have = Counter(stored_key(run) for run in stored)
    return want - have, have - want
