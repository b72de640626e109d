"""`cidash demo`: the simulator and cidash together on loopback, with a simulated week of history.

Everything lives in a temporary directory (SQLite store, SSH keys) that is removed on exit, so
every demo starts fresh: first a backfill of the week, then live streaming.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncssh
from pydantic import SecretStr

from cidash.config import ApiConfig, CISystemConfig, GerritServer, Settings
from cidash.service.runtime import Runtime
from cidash.sim.runner import RunningSim, SimOptions

DEMO_SERVER = "sim"
BACKFILL_WAIT_S = 120.0


def demo_settings(sim: RunningSim, directory: Path, *, port: int, history: timedelta) -> Settings:
    key = directory / "id_ed25519"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(key)
    return Settings(
        database_url=f"sqlite+aiosqlite:///{directory / 'demo.db'}",
        servers=[
            GerritServer(
                name=DEMO_SERVER,
                ssh_host=sim.options.host,
                ssh_port=sim.ssh_port,
                ssh_user="cidash",
                ssh_key=key,
                host_key_fingerprint=sim.host_key_fingerprint,
                http_url=sim.http_url,
                http_user=sim.options.http_user,
                http_password=SecretStr(sim.options.http_password),
                ci_group="Third-Party CI",
                backfill_initial_s=history.total_seconds() + 3600,
            )
        ],
        ci=[CISystemConfig(account="zuul", display_name="OpenDev Zuul", reference=True)],
        # acks and silences from the dashboard: the token is printed with the dashboard's address
        api=ApiConfig(host="127.0.0.1", port=port, write_token=SecretStr(secrets.token_urlsafe(12))),
    )


async def run_demo(
    *,
    port: int,
    seed: int,
    rate: float,
    history: timedelta,
    until: Callable[[], Awaitable[None]],
    announce: Callable[[str], None],
) -> None:
    with tempfile.TemporaryDirectory(prefix="cidash-demo-") as tmp:
        options = SimOptions(seed=seed, rate=rate, history=history)
        async with RunningSim(options) as sim:
            settings = demo_settings(sim, Path(tmp), port=port, history=history)
            async with Runtime(settings, serve_api=True) as runtime:
                try:
                    await asyncio.wait_for(runtime.collectors[0].backfilled.wait(), timeout=BACKFILL_WAIT_S)
                except TimeoutError:
                    announce(f"cidash demo: the history backfill is slow: {runtime.collectors[0].health.last_error}")
                announce(
                    f"cidash demo: dashboard at http://127.0.0.1:{runtime.api_port}/ "
                    f"({await runtime.store.run_count()} CI runs imported; live traffic from the simulated "
                    f"Gerrit at {sim.http_url}, ssh port {sim.ssh_port}). Ctrl-C stops."
                )
                token = settings.api.write_token
                if token is not None:
                    announce(f"cidash demo: write token (acks, silences): {token.get_secret_value()}")
                await until()
