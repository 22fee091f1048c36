"""Executors: map one job function over many tickers, each isolated from the others' failures.

A job is a plain function of one item (a ticker) whose inputs come from its
arguments and the workspace, never from state left by an earlier item. An
executor runs it for every item and returns one Outcome per item, in order:
the value, or the error as a one-line message with its exit code. Any
exception is caught per item, so one bad ticker never stops the others;
Ctrl-C still stops everything.

Only the serial executor exists today. A Ray executor (the distributed issue)
implements the same ``map`` and imports ray inside itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from forecast.errors import ExitCode, ForecastError
from forecast.progress import ProgressReporter
from forecast.redact import redact

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one job did for one item: ``value`` when it worked, else ``error`` and ``exit_code``."""

    item: str
    value: T | None = None
    error: str | None = None
    exit_code: int = int(ExitCode.OK)

    @property
    def ok(self) -> bool:
        return self.error is None


def run_job(job: Callable[[str], T], item: str) -> Outcome[T]:
    """Run ``job(item)`` and return its Outcome; no exception but KeyboardInterrupt escapes."""
    try:
        return Outcome(item, value=job(item))
    except ForecastError as exc:
        return Outcome(item, error=redact(str(exc)), exit_code=int(exc.exit_code))
    except Exception as exc:  # a bug or an unforeseen input: this item fails, the others go on
        log.debug("%s: unexpected error", item, exc_info=True)
        return Outcome(item, error=redact(f"internal error: {type(exc).__name__}: {exc}"), exit_code=int(ExitCode.INTERNAL))


class Executor(Protocol):
    def map(self, job: Callable[[str], T], items: Sequence[str],
            on_done: Callable[[Outcome[T]], None] | None = None) -> list[Outcome[T]]: ...


class SerialExecutor:
    """Runs the jobs one after another in this process (one TensorFlow process already fills 2 cores).

    ``fail_fast`` stops at the first failure; the items not run are left out of the result.
    """

    def __init__(self, fail_fast: bool = False):
        self.fail_fast = fail_fast

    def map(self, job: Callable[[str], T], items: Sequence[str],
            on_done: Callable[[Outcome[T]], None] | None = None) -> list[Outcome[T]]:
        outcomes = []
        for item in items:
            outcome = run_job(job, item)
            if on_done is not None:
                on_done(outcome)
            outcomes.append(outcome)
            if self.fail_fast and not outcome.ok:
                break
        return outcomes


def advancing(progress: ProgressReporter, on_done: Callable[[Outcome[T]], None] | None = None
              ) -> Callable[[Outcome[T]], None]:
    """Return an ``on_done`` that calls ``on_done``, then moves ``progress`` one item on.

    A failed item counts without a progress line of its own: ``on_done``
    reports it on its error line.
    """
    def done(outcome: Outcome[T]) -> None:
        if on_done is not None:
            on_done(outcome)
        progress.advance(outcome.item, failed=not outcome.ok)

    return done


def first_failure_code(outcomes: Sequence[Outcome]) -> int:
    """Return the exit code of the first failed outcome, or 0 when all worked."""
    return next((o.exit_code for o in outcomes if not o.ok), int(ExitCode.OK))


def exit_code_for(outcomes: Sequence[Outcome]) -> int:
    """The exit code of a command over several items, the same as ``run``'s.

    0 when every item worked; one item: that failure's own code; several:
    8 (PARTIAL) when some worked, 9 (ALL_FAILED) when none did.
    """
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return int(ExitCode.OK)
    if len(outcomes) == 1:
        return failed[0].exit_code
    return int(ExitCode.PARTIAL if len(failed) < len(outcomes) else ExitCode.ALL_FAILED)
