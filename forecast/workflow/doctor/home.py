"""The home itself, the folders of its layout, its lock paths, its linked folders and the leftovers of killed writes."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from forecast.workflow.doctor.findings import FOLDER, HOME, LOCK, Finding
from forecast.workspace import Workspace

_PID = re.compile(r"[.-](\d+)(?:\.tmp)?$")  # .<name>.<pid>.tmp (atomic.py), .staging-<id>-<pid> (registry)


def linked_folders(workspace: Workspace) -> list[tuple[Path, Path]]:
    """The home's folders that are links, and the folder each leads to (sorted); none if the home is no folder."""
    if not workspace.root.is_dir():
        return []
    return workspace.linked_folders()


def _home(workspace: Workspace) -> Iterator[Finding]:
    """The home itself: it must be a folder this user can read and write. Only reported: a person must fix it."""
    root = workspace.root
    advice = "point FORECAST_HOME (or --home) at the workspace folder"
    if not root.exists():
        yield Finding(HOME, root, "it is a link to a folder that does not exist" if root.is_symlink() else "it does not exist",
                      f"{advice}, or create it: mkdir -p {root}")
    elif not root.is_dir():
        yield Finding(HOME, root, "not a folder (a file)", advice)
    elif not os.access(root, os.R_OK | os.X_OK):
        yield Finding(HOME, root, "not readable by this user", f"{advice}, or fix its permissions")
    elif not os.access(root, os.W_OK):
        yield Finding(HOME, root, "not writable by this user: fetch, train, predict and run cannot write",
                      f"{advice}, or fix its permissions (chmod u+w {root})")


def _folders(workspace: Workspace, outdir: Path | None) -> Iterator[Finding]:
    """The folders of the home's layout: where one exists, it must be a folder (a file there breaks every writer)."""
    folders = [workspace.data_dir, workspace.bars_dir, workspace.universe_dir, workspace.calendar_dir, workspace.backfill_dir,
               workspace.models_dir, workspace.latest_dir, workspace.pinned_dir, workspace.global_models_dir,
               workspace.global_latest_dir, workspace.forecasts_dir, workspace.backtests_dir, workspace.charts_dir,
               workspace.quarantine_dir, *_daily(workspace, outdir)]
    for folder in folders:
        if not os.path.lexists(folder) or folder.is_dir():
            continue
        if os.path.islink(folder):
            yield Finding(FOLDER, folder, f"a link to {os.readlink(folder)}, which is not a folder (a disk not mounted?)",
                          "mount or make that folder again, or remove the link")
        else:
            yield Finding(FOLDER, folder, "a file where a folder belongs: nothing can be written under it",
                          "nothing to redo once it is moved aside")


def _locks(workspace: Workspace) -> Iterator[Finding]:
    """Every lock path that exists and is no lock file: no writer can take it (fetch, train, run fail)."""
    batches = workspace.forecasts_dir.glob("@*/.lock") if workspace.forecasts_dir.is_dir() else []
    for lock in (workspace.store_lock, workspace.registry_lock, workspace.run_lock, workspace.backfill_lock, *batches):
        if not os.path.lexists(lock) or lock.is_file():  # a link to a lock file still locks
            continue
        what = ("a folder where the lock file belongs" if lock.is_dir() and not lock.is_symlink()
                else "a link that leads to no file" if lock.is_symlink() else "not a regular file")
        yield Finding(LOCK, lock, f"{what}: every command that writes here fails",
                      "forecast doctor --repair removes it (an empty folder) or moves it aside")


def _debris(workspace: Workspace, outdir: Path | None) -> Iterator[Finding]:
    """Leftovers of killed writes, unless the process that made them still runs."""
    areas = [workspace.data_dir, workspace.models_dir, workspace.forecasts_dir, workspace.backtests_dir,
             workspace.charts_dir, *_daily(workspace, outdir)]
    for area in areas:
        for top, dirs, files in os.walk(area):  # links below the area are not followed
            here = Path(top)
            staging = [d for d in dirs if here == workspace.models_dir and d.startswith(".staging-")]
            dirs[:] = [d for d in dirs if d not in staging and here / d != workspace.quarantine_dir]
            for name in staging + files:
                what = ("half-built model folder left by a killed train" if name in staging
                        else "temporary file left by a killed write" if name.endswith(".tmp")
                        else "half-copied file left by a killed run" if name.startswith(".") and name.endswith(".copy") else "")
                if what and not _alive(name):
                    yield Finding("debris", here / name, what, "nothing to redo")


def _daily(workspace: Workspace, outdir: Path | None) -> list[Path]:
    """The daily job's folder, if it lies inside the home (quarantine keeps paths relative to it)."""
    folder = outdir if outdir is not None else workspace.outdir(None)
    return [folder] if folder.is_relative_to(workspace.root) else []


def _alive(name: str) -> bool:
    """Whether the process whose pid ends ``name`` still runs (then its file is a write in flight)."""
    match = _PID.search(name)
    if match is None or os.name == "nt" or int(match[1]) <= 0:  # no pid to ask about, or no signal 0 to ask with
        return False
    try:
        os.kill(int(match[1]), 0)
    except PermissionError:
        return True  # it exists, under another user
    except (OSError, OverflowError):
        return False
    return True
