"""Stopping an asyncio task within a bounded time, whatever it does: the one helper every step
that owns a background task (collector, live, api, service) uses to end it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

STOP_TASK_S = 5.0


async def cancel_and_wait(task: asyncio.Task[Any] | None, timeout_s: float = STOP_TASK_S) -> None:
    """Cancel `task` and wait at most `timeout_s` for it to end, logging (not raising) how it ended.

    Unlike ``with suppress(CancelledError, Exception): await task`` this never swallows the
    cancellation of the *caller*: a caller that is itself being cancelled (a shutdown deadline,
    a second signal) stops waiting at once instead of hanging on a task that will not end.
    """
    if task is None or task.done() or task is asyncio.current_task():
        return
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=timeout_s)
    if not done:
        log.warning("task %s did not stop within %.0f s of being cancelled; leaving it", task.get_name(), timeout_s)
    elif not task.cancelled() and task.exception() is not None:
        error = task.exception()
        log.warning("task %s ended with %s: %s", task.get_name(), type(error).__name__, error)
