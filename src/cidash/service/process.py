"""How a cidash process runs: on uvloop's event loop where it is installed, once a service is up
with its start-up heap frozen, and how it stops: within a bounded time, whatever its peers do.

The frozen heap is what matters for the live feed's latency (benchmarks/ws_latency.py): without
it, full garbage collections paused the loop for 90-170 ms every few seconds. uvloop runs the loop
itself in C; on the same benchmark it saved little, as most of the work is in Python.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

FORCED_EXIT_CODE = 70  # EX_SOFTWARE: the graceful stop did not finish in time


def exit_hard_after(seconds: float, why: str) -> threading.Timer:
    """Arm a backstop: unless cancelled, end the process `seconds` from now whatever the event loop
    is doing (a thread, so a loop stuck in a task that ignores cancellation cannot block it)."""

    def fire() -> None:
        print(f"cidash: {why}: still running {seconds:.0f} s later; exiting now", file=sys.stderr, flush=True)
        os._exit(FORCED_EXIT_CODE)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (it comes with uvicorn[standard]), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # e.g. on Windows
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the loop of :func:`event_loop_factory`."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(coro)


def freeze_startup_heap() -> None:
    """Exempt what start-up made (modules, settings, the app, the store) from garbage collection.

    A long-running service calls it once it is up. Without it, each full collection scans the
    heap of every imported library and pauses the event loop for 90-170 ms (seen in
    benchmarks/ws_latency.py as a latency spike every few seconds); after it, a full collection
    scans only what was made since.
    """
    gc.collect()
    gc.freeze()
