"""What the daily job wrote: a manifest per daily folder, so that it removes its own files and nothing else.

Each daily folder (``<outdir>/<date>/``, ``<outdir>/latest/``) holds
``.forecast-manifest.json``: the home that wrote it, and each file's name, size
and modification time. A file is removed only when the manifest names it and
it is still the regular file the job wrote; a file a person put there, or
changed since, stays. A manifest that is missing, unreadable or another home's
names nothing. The copy into ``latest/`` never follows a link found there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from pathlib import Path

from forecast.atomic import atomic_write_text
from forecast.errors import BadInputError
from forecast.jsonio import dumps
from forecast.workspace import Workspace

log = logging.getLogger("forecast.workflow.pipeline")  # the run's own log: these lines are part of its story


def copy_no_follow(source: Path, target: Path) -> None:
    """Copy ``source``'s bytes to ``target``; a link found at ``target`` (the job makes none) is refused, not written through."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        if os.path.islink(target):
            raise BadInputError(f"{target} is a link, which forecast never makes; move it away and run again") from None
        raise exc
    with os.fdopen(fd, "wb") as out, open(source, "rb") as data:
        shutil.copyfileobj(data, out)


def stamp(path: Path) -> dict | None:
    """What identifies a file the job wrote: its size and modification time; None if ``path`` is not a regular file.

    A link is never a regular file here (``lstat``): the job writes none, so it removes none.
    """
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns} if stat.S_ISREG(info.st_mode) else None


def unchanged(path: Path, recorded: dict) -> bool:
    """Whether ``path`` is still the regular file the manifest recorded (same size and modification time)."""
    current = stamp(path)
    return current is not None and current == {"size": recorded.get("size"), "mtime_ns": recorded.get("mtime_ns")}


def stamps(folder: Path, names) -> dict[str, dict]:
    return {name: found for name in names if (found := stamp(folder / name)) is not None}


def read(workspace: Workspace, folder: Path) -> dict[str, dict]:
    """The files this home's job wrote in ``folder`` last time ({name: stamp}); empty when none can be trusted.

    Missing, unreadable, or written by another home (two homes publishing into
    one linked folder): then the job knows of no file it wrote, and removes none.
    """
    path = Workspace.manifest_file(folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        log.warning("run: %s cannot be read (%s); no file found in %s is removed", path, type(exc).__name__, folder)
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        log.warning("run: %s is not a manifest of this version; no file found in %s is removed", path, folder)
        return {}
    if data.get("home") != str(workspace.root):
        log.info("run: %s was written by the home %s; no file found in %s is removed", path, data.get("home"), folder)
        return {}
    return {str(name): recorded for name, recorded in files.items() if isinstance(recorded, dict)}


def write(workspace: Workspace, folder: Path, files: dict[str, dict]) -> None:
    atomic_write_text(Workspace.manifest_file(folder), dumps({"written_by": "forecast run", "home": str(workspace.root),
                                                              "files": dict(sorted(files.items()))}))


def remove_written(workspace: Workspace, folder: Path, names: list[str], written: dict[str, dict]) -> None:
    """Remove each of ``names`` from ``folder`` that the job wrote there (``written``, the manifest) and nobody changed since.

    A name the manifest does not list, one that would leave the folder, a link,
    a folder, or a file whose size or time differs from the manifest's: kept.
    """
    for name in names:
        if name not in written:
            continue
        try:
            path = workspace.inside(folder, name, what="file named in the manifest")
        except BadInputError as exc:
            log.warning("run: %s; nothing removed", exc)
            continue
        if stamp(path) is None:  # gone already, or now a link or a folder: not what the job wrote
            continue
        if not unchanged(path, written[name]):
            log.info("run: %s changed since forecast wrote it; left in place", path)
            continue
        path.unlink()
