"""Inter-process locks with a bounded wait, for overlapping cron runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from forecast.errors import BadInputError, StoreBusyError


@contextmanager
def hold_lock(path: Path, timeout_s: float, busy_message: str) -> Iterator[None]:
    """Hold the lock file ``path``; raise StoreBusyError(busy_message) after ``timeout_s``.

    A lock that cannot be taken at all (a folder or another non-file where the
    lock file belongs, a folder above it that is a file, no permission) raises
    BadInputError (exit 3) in one line, naming the path and what to do, in
    every command alike: none of them can write until it is fixed.
    """
    from filelock import FileLock, Timeout

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
        lock.acquire(timeout=timeout_s)
    except Timeout:  # a TimeoutError, so an OSError too: first
        raise StoreBusyError(busy_message) from None
    except OSError as exc:
        raise unusable_lock(path, exc) from None
    try:
        yield
    finally:
        lock.release()


def unusable_lock(path: Path, exc: OSError) -> BadInputError:
    """The one-line error for a lock path no process can lock."""
    reason = exc.strerror or type(exc).__name__
    if path.is_dir():
        return BadInputError(f"cannot take the lock {path}: it is a folder, not a lock file; "
                             "forecast doctor --repair removes it")
    if path.exists() and not path.is_file():
        return BadInputError(f"cannot take the lock {path}: it is not a regular file; forecast doctor --repair moves it aside")
    return BadInputError(f"cannot take the lock {path} ({reason}); forecast doctor says what is wrong with the home")
