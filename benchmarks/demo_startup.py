"""How long a newcomer waits for `cidash demo` (installed): to the printed URL, and to live data.

Starts `cidash demo --port 0` in a subprocess (a simulated week of history by default) and times:

* the dashboard URL being printed (the week of history is backfilled and the API serves it);
* the overview having data (`GET /api/v1/systems` lists CI systems with runs);
* the first live `run` message reaching a websocket subscriber (the dashboard is live).

Target (issue 5): a live dashboard within 20 s once installed.

Usage: .venv/bin/python benchmarks/demo_startup.py [--runs 3] [--history 7d]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import sys
import time
import urllib.request
from dataclasses import dataclass

import websockets

LAUNCH = "from cidash.cli import main; main()"
DEMO_LINE = re.compile(r"dashboard at (http://127\.0\.0\.1:\d+/) \((\d+) CI runs imported")
TARGET_S = 20.0


@dataclass
class Startup:
    url_s: float
    overview_s: float
    live_s: float
    runs_imported: int


async def _first_live_run(ws_url: str) -> None:
    async with websockets.connect(ws_url, compression=None) as socket:
        await socket.send(json.dumps({"type": "subscribe", "kinds": ["run"]}))
        async for raw in socket:
            if json.loads(raw).get("type") == "run":
                return


def _wait_for_overview_data(url: str) -> None:
    """Poll `GET /api/v1/systems` until some CI system has runs (what the overview shows)."""
    while True:
        with urllib.request.urlopen(f"{url}api/v1/systems", timeout=10) as response:
            systems = json.load(response)
        if any(system["health"]["runs"] for system in systems):
            return
        time.sleep(0.1)


async def one_startup(history: str) -> Startup:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LAUNCH,
        "demo",
        "--port",
        "0",
        "--history",
        history,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        output: list[str] = []
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 180)).decode()
            if not line:
                raise RuntimeError("cidash demo exited before printing its URL:\n" + "".join(output))
            output.append(line)
            found = DEMO_LINE.search(line)
            if found:
                break
        url_s = time.perf_counter() - started
        url = found.group(1)
        await asyncio.to_thread(_wait_for_overview_data, url)
        overview_s = time.perf_counter() - started
        await asyncio.wait_for(_first_live_run(url.replace("http://", "ws://") + "api/v1/ws"), 60)
        live_s = time.perf_counter() - started
        return Startup(url_s, overview_s, live_s, int(found.group(2)))
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="how many demo start-ups to time")
    parser.add_argument("--history", default="7d", help="simulated history to backfill (the demo's default: 7d)")
    args = parser.parse_args()
    results = [await one_startup(args.history) for _ in range(args.runs)]
    print(f"cidash demo start-up, history {args.history}, {args.runs} runs (seconds from launch)")
    print(f"{'run':>4} {'URL printed':>12} {'overview data':>14} {'first live run':>15} {'runs imported':>14}")
    for number, result in enumerate(results, 1):
        print(
            f"{number:>4} {result.url_s:>12.1f} {result.overview_s:>14.1f} {result.live_s:>15.1f} "
            f"{result.runs_imported:>14,}"
        )
    median_live = statistics.median(result.live_s for result in results)
    verdict = "met" if median_live <= TARGET_S else "NOT met"
    print(f"median to a live dashboard: {median_live:.1f} s (target <= {TARGET_S:.0f} s: {verdict})")


if __name__ == "__main__":
    asyncio.run(main())
