"""Crash-safe file writes: write a temporary sibling, fsync, then rename over.

A kill at any point leaves either the old file or the new one, never a mix:
``os.replace`` is atomic on POSIX within one filesystem. ``atomic_write_many``
keeps that promise per file for a whole batch while paying the folder's fsync
once per batch instead of once per file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

SYNC_THREADS = 4  # fsync waits on the disk, not the CPU: a few at once let the journal commit them together


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file handle whose content replaces ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _stage(path: Path, fill: Callable[[BinaryIO], None]) -> Path:
    """Write ``fill``'s bytes to ``path``'s temporary sibling and fsync it; return the sibling."""
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_many(writes: Sequence[tuple[Path, Callable[[BinaryIO], None]]], threads: int = SYNC_THREADS) -> None:
    """Replace each ``path`` with what its ``fill(handle)`` writes; each file is old or new after a kill, never torn.

    Three steps: (1) every temporary sibling is written and fsynced, on a few
    threads; (2) each is renamed over its path; (3) each folder is fsynced once.
    Why this keeps ``atomic_open``'s promise: a rename only ever points a name
    at a file whose bytes are already on disk (its fsync came before it), so a
    kill, or a power cut, between any two renames leaves every name on a whole
    file, old or new; the folder fsync then makes the renames themselves
    durable, once for the batch instead of once per file. Step 1 failing
    renames nothing. Paths must be distinct; their folders must exist.
    """
    paths = [Path(p) for p, _ in writes]
    staged: list[Path] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(writes)))) as pool:
            futures = [pool.submit(_stage, path, fill) for path, (_, fill) in zip(paths, writes)]
        errors = [f.exception() for f in futures if f.exception() is not None]
        staged = [f.result() for f in futures if f.exception() is None]
        if errors:
            raise errors[0]
        for tmp, path in zip(staged, paths):
            os.replace(tmp, path)
    finally:
        for tmp in staged:
            if tmp.exists():
                tmp.unlink()
    for folder in dict.fromkeys(p.parent for p in paths):
        _fsync_dir(folder)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
