"""A Gerrit that cannot be reached: `serve` keeps retrying with one log line per failure (no
traceback, the host named), shuts down cleanly, and `backfill` ends with one clear error line."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.wait import until_blocking

pytestmark = pytest.mark.timeout(120)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nobody listens once the socket is closed


def _config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "cidash.toml"
    config.write_text(
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "cidash.db"}"\n'
        "[api]\nport = 0\n"
        "[[servers]]\n"
        f'name = "gone"\nssh_port = {port}\nhttp_url = "http://127.0.0.1:{port}"\n'
        'host_key_fingerprint = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"\n'
        "rest_attempts = 2\n"
    )
    return config


def _cidash(*args: str) -> list[str]:
    return [sys.executable, "-c", "from cidash.cli import main; main()", *args]


def _stream_failures(log: str) -> list[str]:
    return [line for line in log.splitlines() if "stream-events from" in line and "failed" in line]


def test_serve_keeps_retrying_with_one_line_per_failure(tmp_path: Path) -> None:
    port = _closed_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            _cidash("--config", str(_config(tmp_path, port)), "serve"),
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
    try:

        def failed_as_expected() -> bool:
            assert process.poll() is None, "serve must keep running while Gerrit is down"
            seen = log_path.read_text()
            return len(_stream_failures(seen)) >= 2 and "Gerrit REST" in seen

        # a few stream reconnects and a failed backfill, however busy the machine
        until_blocking(failed_as_expected, 60, "two stream failures and a REST failure in the log", 0.2)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = log_path.read_text()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    stream_failures = _stream_failures(stderr)
    assert len(stream_failures) >= 2, stderr
    assert all(f"stream-events from 127.0.0.1:{port} failed" in line for line in stream_failures)
    rest_failures = [line for line in stderr.splitlines() if "Gerrit REST" in line]
    assert rest_failures and all(f"http://127.0.0.1:{port}/changes/" in line for line in rest_failures)
    assert all(line.startswith(("20", "cidash: ")) for line in stderr.splitlines()), "every line is a log line"


def test_backfill_fails_with_one_clear_line(tmp_path: Path) -> None:
    port = _closed_port()
    result = subprocess.run(
        _cidash("--config", str(_config(tmp_path, port)), "--log-level", "error", "backfill", "--since", "1d"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"cidash: error: Gerrit REST http://127.0.0.1:{port}/changes/ failed 2 times, "
        "last: ConnectError: All connection attempts failed\n"
    )
