"""Log handlers for the CLI: stderr always, a file with ``run --log-file``; both redact secrets.

Progress lines (the ``forecast.progress`` logger, forecast/progress.py) reach
stderr without ``-v``: a command that does not want them passes a silent
reporter (``--quiet``, ``--json``) instead of logging less.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from forecast.progress import PROGRESS_LOGGER
from forecast.redact import RedactingFilter

LOGGER = "forecast"


def _prepared(handler: logging.Handler) -> logging.Handler:
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(RedactingFilter())
    return handler


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each record: a Rich progress display redirects it to print above its bars."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _stderr_filter(verbose: bool):
    def keep(record: logging.LogRecord) -> bool:
        return verbose or record.levelno >= logging.WARNING or record.name.startswith(PROGRESS_LOGGER)
    return keep


def setup_logging(verbose: bool) -> None:
    """Send the library's logs to stderr: INFO and up with -v, else warnings and progress lines only."""
    handler = _prepared(_CurrentStderr(sys.stderr))
    handler.setLevel(logging.INFO)  # a --log-file handler may want more
    handler.addFilter(_stderr_filter(verbose))
    root = logging.getLogger(LOGGER)
    for old in root.handlers:
        if isinstance(old, logging.FileHandler):  # a previous in-process run's --log-file
            old.close()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def add_log_file(path: Path) -> None:
    """Also append every INFO-and-up record to ``path``; an unwritable path raises OSError."""
    logging.getLogger(LOGGER).addHandler(_prepared(logging.FileHandler(path)))
