"""Waiting on a condition instead of sleeping a fixed time: the tests' one poll-until.

Each returns what the probe found (its first truthy answer) and fails naming `what` once `limit_s`
has passed. `until` polls a plain callable inside a running event loop, `until_awaited` an async
one (a store query, an HTTP request), `until_blocking` a plain callable from synchronous code
(the browser tests, a subprocess's output).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _timed_out(limit_s: float, what: str) -> AssertionError:
    return AssertionError(f"timed out after {limit_s} s waiting for {what}")


async def until(probe: Callable[[], T], limit_s: float, what: str, step_s: float = 0.02) -> T:
    deadline = time.monotonic() + limit_s
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise _timed_out(limit_s, what)
        await asyncio.sleep(step_s)
    return found


async def until_awaited(probe: Callable[[], Awaitable[T]], limit_s: float, what: str, step_s: float = 0.05) -> T:
    deadline = time.monotonic() + limit_s
    while not (found := await probe()):
        if time.monotonic() > deadline:
            raise _timed_out(limit_s, what)
        await asyncio.sleep(step_s)
    return found


def until_blocking(probe: Callable[[], T], limit_s: float, what: str, step_s: float = 0.05) -> T:
    deadline = time.monotonic() + limit_s
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise _timed_out(limit_s, what)
        time.sleep(step_s)
    return found
