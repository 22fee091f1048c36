"""Log handlers for the CLI: stderr always, a file with ``run --log-file``; both redact secrets."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from forecast.redact import RedactingFilter

LOGGER = "forecast"


def _prepared(handler: logging.Handler) -> logging.Handler:
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(RedactingFilter())
    return handler


def setup_logging(verbose: bool) -> None:
    """Send the library's logs to stderr: INFO and up with -v, else warnings only."""
    handler = _prepared(logging.StreamHandler(sys.stderr))
    handler.setLevel(logging.INFO if verbose else logging.WARNING)  # a --log-file handler may want more
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
