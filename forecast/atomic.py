"""Crash-safe file writes: write a temporary sibling, fsync, then rename over.

A kill at any point leaves either the old file or the new one, never a mix:
``os.replace`` is atomic on POSIX within one filesystem. ``AtomicBatch``
keeps that promise per file for a whole batch while paying the folder's fsync
once per batch instead of once per file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
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


class AtomicBatch:
    """Files replaced together, each old or new after a kill, never torn; use as ``with AtomicBatch() as batch:``.

    ``add`` hands a file to a thread at once, which writes its temporary
    sibling and fsyncs it, so the caller goes on building the next file while
    the disk works. Leaving the block renames every sibling over its path, in
    the order added, then fsyncs each folder once. Why this keeps
    ``atomic_open``'s promise: a rename only ever points a name at a file whose
    bytes are already on disk (its fsync came first), so a kill, or a power
    cut, between any two renames leaves every name on a whole file, old or new;
    the folder fsync then makes the renames themselves durable, once for the
    batch instead of once per file. An exception, in the block or in a write,
    renames nothing and removes the siblings. A path may be added once per
    batch; its folder must exist.
    """

    def __init__(self, threads: int = SYNC_THREADS):
        self._pool = ThreadPoolExecutor(max_workers=threads)
        self._staged: list[tuple[Future, Path]] = []
        self._paths: set[Path] = set()

    def __enter__(self) -> AtomicBatch:
        return self

    def add(self, path: Path, fill: Callable[[BinaryIO], None]) -> None:
        path = Path(path)
        if path in self._paths:
            raise ValueError(f"{path} is already in this batch")  # two writers of one temporary sibling would tear it
        self._paths.add(path)
        self._staged.append((self._pool.submit(_stage, path, fill), path))

    def __exit__(self, kind, value, traceback) -> None:
        self._pool.shutdown(wait=True)
        errors = [f.exception() for f, _ in self._staged if f.exception() is not None]
        written = [(f.result(), path) for f, path in self._staged if f.exception() is None]
        try:
            if kind is None and not errors:
                for tmp, path in written:
                    os.replace(tmp, path)
        finally:
            for tmp, _ in written:
                tmp.unlink(missing_ok=True)
        if kind is None and errors:
            raise errors[0]
        if kind is None:
            for folder in dict.fromkeys(path.parent for _, path in written):
                _fsync_dir(folder)


def publish_folder(staging: Path, target: Path, fill: Callable[[Path], None], lock: AbstractContextManager,
                   pointer: Path, pointer_text: str) -> None:
    """Fill ``staging``, then, holding ``lock``, rename it onto ``target`` and write ``pointer``; a failure leaves neither.

    A model's folder and its ``latest`` pointer: readers see the old model or
    the whole new one, never a folder still being written. ``fill`` must make
    its files durable (atomic writes fsync) before the rename publishes them.
    """
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        fill(staging)
        with lock:
            os.replace(staging, target)
            atomic_write_text(pointer, pointer_text)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
