"""`make demo-gerrit`: a real Gerrit on loopback, the simulator's world posted into it, cidash watching.

Everything lives in a temporary directory (the Gerrit site, SSH keys, the SQLite store) removed
on exit. Needs Java 17 and Maven the first time (scripts/ensure-gerrit fetches Gerrit's jars).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
import time
from pathlib import Path

from cidash.config import ApiConfig
from cidash.realgerrit.community import CI_GROUP, REFERENCE, build_community
from cidash.realgerrit.drive import DriveStats, drive
from cidash.realgerrit.site import GerritSiteError, create_site
from cidash.service.runtime import Runtime


async def _demo(directory: Path, port: int, rate: float, began: float) -> None:
    from pydantic import SecretStr

    from cidash.config import CISystemConfig, GerritServer, Settings

    site = await asyncio.to_thread(create_site, directory / "site")
    try:
        await asyncio.to_thread(site.start)
        print(f"demo-gerrit: Gerrit {site.version} up at {site.url} after {time.monotonic() - began:.0f} s", flush=True)
        community = await build_community(site.url, directory / "keys")
        watcher = community.watcher
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{directory / 'demo.db'}",
            servers=[
                GerritServer(
                    name="gerrit",
                    ssh_port=site.ssh_port,
                    ssh_user=watcher.username,
                    ssh_key=watcher.key_path,
                    known_hosts=site.write_known_hosts(directory / "known_hosts"),
                    http_url=site.url,
                    http_user=watcher.username,
                    http_password=SecretStr(watcher.password),
                    ci_group=CI_GROUP,
                    backfill_interval_s=60,
                )
            ],
            ci=[CISystemConfig(account=REFERENCE.username, display_name="OpenDev Zuul", reference=True)],
            api=ApiConfig(host="127.0.0.1", port=port),
        )
        async with Runtime(settings, serve_api=True) as runtime:
            elapsed = time.monotonic() - began
            print(
                f"demo-gerrit: dashboard at http://127.0.0.1:{runtime.api_port}/ after {elapsed:.0f} s; the"
                f" simulated world posts into the real Gerrit at {rate:g} events/s. Ctrl-C stops.",
                flush=True,
            )
            stopped = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stopped.set)

            reported = [0]

            def progress(stats: DriveStats) -> None:
                if stats.events // 200 > reported[0]:
                    reported[0] = stats.events // 200
                    print(f"demo-gerrit: {stats.events} world events, posted {stats.posted}, {stats.failed} failed")

            driving = asyncio.create_task(drive(site.url, rate=rate, on_progress=progress))
            await asyncio.wait([driving, asyncio.create_task(stopped.wait())], return_when=asyncio.FIRST_COMPLETED)
            driving.cancel()
    finally:
        await asyncio.to_thread(site.remove)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    port = int(args[0]) if args else 8080
    rate = float(args[1]) if len(args) > 1 else 2.0
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cidash-demo-gerrit-") as tmp:
        try:
            asyncio.run(_demo(Path(tmp), port, rate, began))
        except GerritSiteError as exc:
            print(f"demo-gerrit: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
