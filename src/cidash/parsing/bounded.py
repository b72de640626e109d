"""The rule tester's reading, with a deadline.

A candidate rule is an operator's regex, and Python's ``re`` cannot be interrupted: a pattern
that backtracks catastrophically (``(a+)+$`` on a long line) would hold the API's event loop, and
every websocket with it, for as long as it runs. So the trial reads in a child process (forked
from a forkserver that has the parser imported) that is killed when the deadline passes; the
request then fails with :class:`RuleTooSlowError` and nothing else waited on it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

from cidash.domain.comments import ObservedComment
from cidash.domain.views import ExplainedText, ReadCounts, Verdict
from cidash.errors import ConfigError
from cidash.parsing.explain import RuleTrial

# Reading the latest 200 comments of a CI twice takes milliseconds; a rule needing seconds is broken.
TRIAL_DEADLINE_S = 3.0


class RuleTooSlowError(ConfigError):
    """A candidate rule did not finish reading the comments within the deadline."""


@dataclass(frozen=True, slots=True)
class TrialReading:
    """Each comment's (reading now, reading with the candidate, whether they differ), the pasted
    text's reading, and the counts of both readings."""

    comments: list[tuple[Verdict, Verdict | None, bool]]
    text: ExplainedText | None
    now: ReadCounts
    candidate: ReadCounts | None


def read_all(trial: RuleTrial, comments: Sequence[ObservedComment], text: ObservedComment | None) -> TrialReading:
    """The trial's whole reading, in this process."""
    read = [trial.read(comment) for comment in comments]
    pasted = trial.read_text(text) if text is not None else None
    now, candidate = trial.counts()
    return TrialReading(comments=read, text=pasted, now=now, candidate=candidate)


async def read_all_within(
    trial: RuleTrial,
    comments: Sequence[ObservedComment],
    text: ObservedComment | None,
    deadline_s: float = TRIAL_DEADLINE_S,
) -> TrialReading:
    """:func:`read_all` in a child process, killed after `deadline_s` (RuleTooSlowError)."""
    return await asyncio.to_thread(_read_in_child, trial, list(comments), text, deadline_s)


def _read_in_child(
    trial: RuleTrial, comments: list[ObservedComment], text: ObservedComment | None, deadline_s: float
) -> TrialReading:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sending, trial, comments, text), daemon=True)
    child.start()
    sending.close()
    try:
        if not receiving.poll(deadline_s):
            raise RuleTooSlowError(
                f"the rule did not finish reading {len(comments)} comments within {deadline_s:g} s"
                " (a pattern that backtracks catastrophically, such as nested repeats, never does)"
            )
        outcome: TrialReading | str = receiving.recv()
    except EOFError:
        outcome = f"the reading process ended without an answer (exit code {child.exitcode})"
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiving.close()
    if isinstance(outcome, str):
        raise RuntimeError(outcome)
    return outcome


def _child(
    sending: Connection, trial: RuleTrial, comments: list[ObservedComment], text: ObservedComment | None
) -> None:
    try:
        sending.send(read_all(trial, comments, text))
    except Exception as exc:  # the parent raises it; a traceback here would be lost with the process
        sending.send(f"reading failed: {type(exc).__name__}: {exc}")
    finally:
        sending.close()
