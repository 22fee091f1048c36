"""Crash-safe file writes: write a temporary sibling, fsync, then rename over.

A kill at any point leaves either the old file or the new one, never a mix:
``os.replace`` is atomic on POSIX within one filesystem. ``AtomicBatch``
keeps that promise per file for a whole batch while paying the folder's fsync
once per batch instead of once per file.

A path the user names (every command's ``--out``) is no file of ours to
replace: ``write_user_output`` is the one place that decides how it is
written. ``-`` is stdout; a symlink is followed and never replaced; a regular
file (or a new name) gets the atomic rename above, keeping its permissions;
a FIFO, a character device or an open descriptor (``/dev/stdout``) is written
in place; a directory, a block device or a socket is refused.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Self

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
        _replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _replace(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` over ``path``; a folder where the file belongs is one line (exit 3), not a traceback."""
    try:
        os.replace(tmp, path)
    except (IsADirectoryError, NotADirectoryError):
        from forecast.errors import CorruptFileError

        raise CorruptFileError(f"cannot write {path}: a folder is in its way; move it aside "
                               "(forecast doctor --repair quarantines it)") from None


def _stage(path: Path, fill: Callable[[BinaryIO], object]) -> Path:
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

    def __enter__(self) -> Self:
        return self

    def add(self, path: Path, fill: Callable[[BinaryIO], None]) -> None:
        path = Path(path)
        if path in self._paths:
            raise ValueError(f"{path} is already in this batch")  # two writers of one temporary sibling would tear it
        self._paths.add(path)
        self._staged.append((self._pool.submit(_stage, path, fill), path))

    def __exit__(self, kind, value, traceback) -> None:
        self._pool.shutdown(wait=True)
        errors = [error for f, _ in self._staged if (error := f.exception()) is not None]
        written = [(f.result(), path) for f, path in self._staged if f.exception() is None]
        try:
            if kind is None and not errors:
                for tmp, path in written:
                    _replace(tmp, path)
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


STDOUT = "-"  # --out -: the file goes to stdout
_DESCRIPTOR_DIRS = ("/proc/", "/dev/fd/")  # a link through these names another process's (or our own) open file


def is_stdout(path: Path | str | None) -> bool:
    """Whether ``path`` is ``-``, the name of stdout."""
    return path is not None and str(path) == STDOUT


def writes_in_place(path: Path | str) -> bool:
    """Whether ``write_user_output`` writes ``path`` in place (stdout, a FIFO, a character device, an open descriptor).

    False for a regular file, a new name, or a symlink to either: those are
    replaced atomically, so a reader never sees half a file.
    """
    if is_stdout(path):
        return True
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except OSError:
        return False  # a new name (or a dangling link): created, atomically
    return not stat.S_ISREG(mode) or _through_descriptor(Path(path))


def write_user_output(path: Path | str, data: bytes) -> None:
    """Write ``data`` to a path the user named (``--out``), as this module's docstring says; never replace a link or a device.

    A failed write (a full disk, ``/dev/full``, a closed pipe) or a target
    that takes no file is a BadInputError (exit 3) naming the path.
    """
    from forecast.errors import BadInputError

    shown = "stdout" if is_stdout(path) else str(path)
    try:
        if is_stdout(path):
            _write_stdout(data)
            return
        path = Path(path)
        try:
            st = os.stat(path)  # follows symlinks
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise BadInputError(f"cannot write {shown}: it is a directory; --out takes a file")
        if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            what = "a block device" if stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a file"
            raise BadInputError(f"cannot write {shown}: it is {what}; --out takes a file, a FIFO or a character device")
        if st is not None and (not stat.S_ISREG(st.st_mode) or _through_descriptor(path)):
            # in place: truncating a device or a FIFO means nothing; an open regular file is appended to, as a shell's >> would
            flags = os.O_WRONLY | (os.O_APPEND if stat.S_ISREG(st.st_mode) else 0)
            fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            return
        target = Path(os.path.realpath(path))  # a symlink's target is replaced, never the link itself
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _stage(target, lambda handle: handle.write(data))
        try:
            if st is not None:
                os.chmod(tmp, stat.S_IMODE(st.st_mode))  # the file keeps its permissions
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(target.parent)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise BadInputError(f"cannot write {shown}: {reason}") from exc


def _write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    binary = getattr(sys.stdout, "buffer", None)
    if binary is None:  # a text-only stream stands in for stdout (an embedding program)
        sys.stdout.write(data.decode("utf-8"))
    else:
        binary.write(data)
        binary.flush()
    sys.stdout.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _through_descriptor(path: Path) -> bool:
    """Whether ``path``, followed link by link, passes through /proc or /dev/fd: an open file, such as ``/dev/stdout``."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own bound on a chain of links
        folder, name = os.path.split(current)
        current = os.path.join(os.path.realpath(folder), name)
        if current.startswith(_DESCRIPTOR_DIRS):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    return False
