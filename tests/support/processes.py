"""Ending the child processes the soak starts (MariaDB, cidash replicas)."""

from __future__ import annotations

import signal
import subprocess


def end_process(process: subprocess.Popen[bytes] | None, sig: signal.Signals, timeout_s: float) -> None:
    """Send `sig` to a running process and wait for it; SIGKILL it if it is not gone in `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
