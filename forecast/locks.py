"""Inter-process locks with a bounded wait, for overlapping cron runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from forecast.errors import StoreBusyError


@contextmanager
def hold_lock(path: Path, timeout_s: float, busy_message: str) -> Iterator[None]:
    """Hold the lock file ``path``; raise StoreBusyError(busy_message) after ``timeout_s``."""
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout:
        raise StoreBusyError(busy_message) from None
    try:
        yield
    finally:
        lock.release()
