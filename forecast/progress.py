"""Progress of long work: tickers done out of the total, backtest refits, training epochs.

The library reports through the small ``ProgressReporter`` protocol
(``start(total, label)``, ``advance(detail)``, ``close()``) and never decides
how it looks. The CLI picks one implementation per command with
``progress_mode`` and ``make_progress`` and passes it (or its mode) down:

- ``BarProgress``: Rich bars on stderr, for a terminal. Bars opened while
  another is open share its display, one line each (a ticker's epochs under
  the tickers bar), and a nested bar goes away when its work is done.
- ``LineProgress``: one timestamped line per step through the
  ``forecast.progress`` logger, for cron, pipes and CI, where a bar would be
  a mess of carriage returns. The CLI's stderr handler lets these through
  without ``-v``; ``run --log-file`` records them too.
- ``SilentProgress``: nothing (``--quiet``, ``--json``).

Standard library only at import time: Rich is imported when a bar starts.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Protocol, runtime_checkable

from forecast.choices import Progress

PROGRESS_LOGGER = "forecast.progress"
log = logging.getLogger(PROGRESS_LOGGER)


@runtime_checkable
class ProgressReporter(Protocol):
    """What long work calls: ``start`` once per run of steps, ``advance`` after each step, ``close`` at the end.

    A reporter may be started again after ``close`` (the epochs of each fit).
    ``advance(failed=True)`` counts a step whose failure the caller reports on
    its own error line, so it prints no progress line of its own.
    """

    def start(self, total: int, label: str) -> None: ...

    def advance(self, detail: str = "", *, failed: bool = False) -> None: ...

    def close(self) -> None: ...


def say(reporter: ProgressReporter | None, detail: str) -> None:
    """Tell ``reporter`` what the current step is doing, before it is done (a reporter without ``note`` hears nothing).

    Long steps (a network's first fit, pooling a universe) would otherwise leave
    the screen silent for a minute or more: the note says what is happening.
    """
    note = getattr(reporter, "note", None)
    if note is not None:
        note(detail)


class SilentProgress:
    """Reports nothing."""

    def start(self, total: int, label: str) -> None:
        pass

    def advance(self, detail: str = "", *, failed: bool = False) -> None:
        pass

    def close(self) -> None:
        pass

    def note(self, detail: str) -> None:
        pass


class LineProgress:
    """One INFO line per step on the ``forecast.progress`` logger: ``backtest 600519.SH 3/6: drift fold 1/3 (2s)``."""

    def __init__(self, logger: logging.Logger = log):
        self.logger = logger
        self.total, self.label, self.done, self.started = 0, "", 0, time.perf_counter()

    def start(self, total: int, label: str) -> None:
        self.total, self.label, self.done, self.started = total, label, 0, time.perf_counter()

    def advance(self, detail: str = "", *, failed: bool = False) -> None:
        self.done += 1
        if failed:  # the caller's own error line reports this step
            return
        self.logger.info("%s %d/%d%s (%.0fs)", self.label, self.done, self.total, f": {detail}" if detail else "",
                         time.perf_counter() - self.started)

    def note(self, detail: str) -> None:
        """``backtest 600519.SH 0/6: default fold 1/3: fitting on 2,400 bars (3s)``: what the next step is doing."""
        self.logger.info("%s %d/%d: %s (%.0fs)", self.label, self.done, self.total, detail, time.perf_counter() - self.started)

    def close(self) -> None:
        pass


class BarProgress:
    """A Rich progress bar on stderr; every bar open at the same time shares one live display."""

    _display: Any = None  # the rich.progress.Progress showing every open bar
    _open = 0

    def __init__(self, console: Any = None):
        self.console = console  # a rich Console; default: stderr
        self._task: Any = None

    def start(self, total: int, label: str) -> None:
        self.close()
        display = BarProgress._display or self._new_display()
        self._task = display.add_task(label, total=total, detail="")
        BarProgress._open += 1

    def advance(self, detail: str = "", *, failed: bool = False) -> None:
        if self._task is not None and BarProgress._display is not None:
            BarProgress._display.update(self._task, advance=1, detail=("failed: " if failed else "") + detail)

    def note(self, detail: str) -> None:
        if self._task is not None and BarProgress._display is not None:
            BarProgress._display.update(self._task, detail=detail)

    def close(self) -> None:
        if self._task is None or BarProgress._display is None:
            self._task = None
            return
        BarProgress._open -= 1
        if BarProgress._open <= 0:  # the last bar: leave its final state on the screen
            BarProgress._display.stop()
            BarProgress._display, BarProgress._open = None, 0
        else:  # a nested bar (a ticker's epochs) goes when its work is done
            BarProgress._display.remove_task(self._task)
        self._task = None

    def _new_display(self) -> Any:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        display = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           TextColumn("{task.fields[detail]}", markup=False),
                           console=self.console or Console(stderr=True))
        display.start()
        BarProgress._display = display
        return display


def progress_mode(quiet: bool = False, as_json: bool = False) -> str:
    """Return how a command shows progress: ``none`` when asked to be quiet (or printing JSON), a bar on a terminal, else lines."""
    if quiet or as_json:
        return str(Progress.NONE)
    return str(Progress.TTY if sys.stderr.isatty() else Progress.LINES)


def make_progress(mode: str | ProgressReporter | None) -> ProgressReporter:
    """Return the reporter for a mode (``tty``, ``lines``, ``none``); a reporter is returned as it is."""
    if mode is None:
        return SilentProgress()
    if not isinstance(mode, str):
        return mode
    chosen = Progress.parse(mode, "progress mode")
    if chosen is Progress.TTY:
        return BarProgress()
    if chosen is Progress.LINES:
        return LineProgress()
    return SilentProgress()
