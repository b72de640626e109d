"""uvicorn as a task inside our own event loop (the simulator, `cidash serve`, `cidash demo`):
cross-cutting, so the simulator serves its REST API without importing the service."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the command that runs it owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
