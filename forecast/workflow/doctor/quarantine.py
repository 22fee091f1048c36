"""``repair``: move what is still broken (looked at again under the writers' locks) into ``quarantine/<UTC stamp>/``."""

from __future__ import annotations

import os
import shutil
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from forecast.atomic import atomic_write_text
from forecast.choices import UNIVERSE_MODEL
from forecast.errors import StoreBusyError
from forecast.locks import hold_lock
from forecast.models.registry import ModelRegistry
from forecast.workflow.doctor.checkup import examine
from forecast.workflow.doctor.findings import FOLDER, HOME, LOCK, Finding, _rel
from forecast.workflow.doctor.home import _daily, _locks
from forecast.workflow.doctor.models import _model_problem
from forecast.workflow.doctor.universe_models import _global_problem
from forecast.workspace import Workspace

if TYPE_CHECKING:
    from forecast.models.card import ModelCard
    from forecast.models.pooled.card import GlobalCard

LOCK_WAIT_S = 2.0  # at most this long per lock (or $FORECAST_LOCK_TIMEOUT if shorter)


def repair(workspace: Workspace, findings: list[Finding], outdir: Path | None = None,
           now: datetime | None = None) -> list[Finding]:
    """Move each finding still broken (looked at again under the locks) into quarantine; return them.
    One left in place has ``moved_to`` None and says why; one a writer fixed meanwhile is dropped.

    The home's own problems are left as they are (a person must fix them, and
    nothing else is repaired meanwhile). Lock paths come first, without a lock
    (no process can hold a lock that is a folder); each moved pointer is then
    written again at the newest valid model, if any.
    """
    if any(f.kind == HOME for f in findings):
        return [replace(f, problem=f"{f.problem}; left in place: the home must be fixed first")
                if f.kind != HOME else f for f in findings]
    stamp = _stamp_dir(workspace, now)
    out: list[Finding] = []
    locks = [f for f in findings if f.kind == LOCK]
    if locks:
        fresh = {f.path for f in _locks(workspace)}
        out += [_repair_lock(workspace, f, stamp) for f in locks if f.path in fresh]
    findings = [f for f in findings if f.kind != LOCK]
    wait = min(LOCK_WAIT_S, workspace.lock_timeout_s)
    areas = [*((d, workspace.run_lock) for d in _daily(workspace, outdir)),  # (area, its writers' lock), as a run takes them
             (workspace.data_dir, workspace.store_lock), (workspace.models_dir, workspace.registry_lock)]
    busy: set[Path] = set()
    with ExitStack() as stack:
        for area, lock in areas:
            if any(f.path.is_relative_to(area) for f in findings):
                try:
                    stack.enter_context(hold_lock(lock, wait, "busy"))
                except StoreBusyError:
                    busy.add(lock)
        fresh = {f.path for f in examine(workspace, outdir)}
        moved: dict[Path, Path] = {}
        for finding in sorted(findings, key=lambda f: f.path.parts):
            held_by = next((lk for area, lk in areas if finding.path.is_relative_to(area)), None)
            ancestor = next((p for p in moved if finding.path.is_relative_to(p)), None)
            if ancestor is not None:  # inside a folder already moved: it went along
                out.append(replace(finding, moved_to=moved[ancestor] / finding.path.relative_to(ancestor)))
            elif held_by in busy:
                out.append(replace(finding, problem=f"{finding.problem}; left in place: a writer holds {_rel(held_by, workspace.root)}"))
            elif finding.kind == FOLDER and os.path.islink(finding.path):
                out.append(replace(finding, problem=f"{finding.problem}; left in place: the folder it leads to must come back"))
            elif finding.path in fresh:
                target = stamp / finding.path.relative_to(workspace.root)
                try:
                    _move(finding.path, target)
                except OSError as exc:
                    out.append(replace(finding, problem=f"{finding.problem}; left in place: cannot move it ({exc})"))
                    continue
                moved[finding.path] = target
                out.append(replace(finding, moved_to=target))
        pointers = [f for f in out if f.kind == "pointer" and f.moved_to is not None]
        newest = _models_by_name(workspace) if pointers else {}  # read once: a home holds thousands of models
        out = [_repoint(workspace, f, newest) if f in pointers else f for f in out]
    return sorted(out, key=lambda f: f.path.parts)


def _move(path: Path, target: Path) -> None:
    if target.exists() or target.is_symlink():  # shutil.move would put it inside
        raise FileExistsError(f"{target} exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(target))


def _repair_lock(workspace: Workspace, finding: Finding, stamp: Path) -> Finding:
    """An empty folder where a lock file belongs is removed (the next writer makes the file); anything else is moved aside."""
    path = finding.path
    try:
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
            return replace(finding, moved_to=path, advice="the next writer makes the lock file")
        target = stamp / path.relative_to(workspace.root)
        _move(path, target)
    except OSError as exc:
        return replace(finding, problem=f"{finding.problem}; left in place: cannot move it ({exc})")
    return replace(finding, moved_to=target, advice="the next writer makes the lock file")


def _repoint(workspace: Workspace, finding: Finding, newest: dict[tuple[str, str], list[ModelCard | GlobalCard]]) -> Finding:
    """Write a moved pointer again, at the newest valid model of its ticker (or universe); leave it gone if none.

    ``newest``: ``_models_by_name``.
    """
    global_pointer = finding.path.parent == workspace.global_latest_dir
    candidates = newest.get((UNIVERSE_MODEL if global_pointer else "ticker", finding.path.name), [])
    model_id = next((c.id for c in candidates if _still_valid(workspace, c)), None)
    if model_id is None:
        return finding
    try:
        atomic_write_text(finding.path, model_id + "\n")
    except OSError as exc:
        return replace(finding, advice=f"{finding.advice}; could not point it at {model_id} ({exc})")
    return replace(finding, advice=f"pointed again at the newest valid model, {model_id}")


def _models_by_name(workspace: Workspace) -> dict[tuple[str, str], list[ModelCard | GlobalCard]]:
    """{("ticker", T) or (UNIVERSE_MODEL, U): the readable cards of its models, newest first}."""
    from forecast.models.pooled.card import GlobalRegistry

    found: dict[tuple[str, str], list[ModelCard | GlobalCard]] = {}
    for card in ModelRegistry(workspace).cards():
        found.setdefault(("ticker", card.ticker), []).append(card)
    for global_card in GlobalRegistry(workspace).cards():
        found.setdefault((UNIVERSE_MODEL, global_card.universe), []).append(global_card)
    for cards in found.values():
        cards.sort(key=lambda c: c.created_at, reverse=True)
    return found


def _still_valid(workspace: Workspace, card: ModelCard | GlobalCard) -> bool:
    from forecast.models.pooled.card import GlobalCard, GlobalRegistry

    if isinstance(card, GlobalCard):
        return _global_problem(workspace, GlobalRegistry(workspace), card) is None
    return _model_problem(workspace, ModelRegistry(workspace), card.id)[0] is None


def _stamp_dir(workspace: Workspace, now: datetime | None) -> Path:
    """``quarantine/<UTC stamp>``, with ``-2``, ``-3``... after it if a repair in the same second made one."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    candidate, n = workspace.quarantine_dir / stamp, 1
    while candidate.exists():
        n += 1
        candidate = workspace.quarantine_dir / f"{stamp}-{n}"
    return candidate
