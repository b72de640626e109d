"""`cidash backfill` against a hostile Gerrit on loopback: a 300 MiB body, a 1 MiB gzip answer that
expands to 1 GiB, and a body trickled one byte every 2 s. Prints, per case, the exit status, the
time to exit, the backfill process's peak RSS and its error line.

    .venv/bin/python benchmarks/hostile_gerrit.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.loopback_http import (
    Request,
    answer,
    endless_body,
    gzip_bomb,
    loopback_server,
    trickled_gerrit_answer,
)


async def bomb(request: Request, writer: asyncio.StreamWriter) -> None:
    await answer(writer, 200, gzip_bomb(1024), Content_Encoding="gzip")


async def backfill(url: str, workdir: Path) -> tuple[int, float, float, str]:
    config = workdir / "cidash.toml"
    config.write_text(
        f'database_url = "sqlite+aiosqlite:///{workdir / "cidash.db"}"\n'
        f'[[servers]]\nname = "hostile"\nhttp_url = "{url}"\nstream = false\nrest_attempts = 1\n'
        "rest_deadline_s = 10\n"
    )
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cidash.cli import main; main()", "--config", str(config), "--log-level", "error",
        "backfill", "--since", "1d",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    peak = 0.0
    waiting = asyncio.ensure_future(process.communicate())
    while not waiting.done():
        try:  # VmHWM only grows: its last reading before the exit is the peak
            peak = max(peak, peak_rss_mib(process.pid))
        except (OSError, RuntimeError):
            pass
        await asyncio.wait([waiting], timeout=0.05)
    _, stderr = waiting.result()
    elapsed = time.monotonic() - started
    return process.returncode or 0, elapsed, peak, stderr.decode().strip().splitlines()[-1] if stderr else ""


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


async def main() -> None:
    cases = [
        ("300 MiB body", endless_body),
        ("gzip bomb, 1 MiB -> 1 GiB", bomb),
        ("1 byte every 2 s", trickled_gerrit_answer(2.0)),
    ]
    for name, handler in cases:
        with tempfile.TemporaryDirectory() as tmp:
            async with loopback_server(handler) as server:  # type: ignore[arg-type]
                status, elapsed, peak, error = await backfill(server.url, Path(tmp))
        print(f"{name}: exit {status} after {elapsed:.1f} s, peak RSS {peak:.0f} MiB; {error}")
        sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main())
