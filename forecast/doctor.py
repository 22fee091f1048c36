"""``forecast doctor``: find what the tool can no longer read, and move it aside.

Checks every stored series (``MarketStore.read``), every model folder (its
card through ``ModelRegistry.card``; ``model.keras`` present, non-empty, a zip
archive), every ``models/latest/<TICKER>`` pointer, every stored forecast and
backtest (``results.load_*``), and the leftovers of killed writes: ``*.tmp``
files, ``models/.staging-*`` folders, ``.<name>.copy`` files.

Promises: ``examine`` only reads; it writes, locks and creates nothing.
``repair`` never deletes: each problem path moves whole to ``quarantine/<UTC
stamp>/<its path relative to the home>`` (across disks: copy, then remove the
original). It waits a couple of seconds at most for each area's writer lock
(``data/.lock``, ``models/.lock``, ``.run.lock`` for the daily folder), looks
again under them, and moves only what is still broken; what lies under a lock a
writer holds stays, and is reported. A leftover whose writer (the pid in its
name) still runs is not debris. Never: imports TensorFlow or loads a model,
follows a name out of the home, or looks inside ``quarantine/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from forecast.errors import CorruptFileError, ForecastError, ModelNotFoundError, StoreBusyError
from forecast.locks import hold_lock
from forecast.registry import ModelRegistry
from forecast.results import load_backtest, load_backtest_forecasts, load_forecast_batch, load_forecast_file
from forecast.store import MarketStore, recorded_source
from forecast.tickers import parse_ticker
from forecast.workspace import Workspace

LOCK_WAIT_S = 2.0  # at most this long per lock (or $FORECAST_LOCK_TIMEOUT if shorter)
_PID = re.compile(r"[.-](\d+)(?:\.tmp)?$")  # .<name>.<pid>.tmp (atomic.py), .staging-<id>-<pid> (registry)
_PARENS = re.compile(r"\(([^()]*)\)")
_REFETCH = {"tushare": "re-fetch: forecast fetch {t}", "csv": "re-import: forecast fetch {t} --source csv --file <FILE>",
            "sample": "re-fetch: forecast fetch --source sample"}


@dataclass(frozen=True)
class Finding:
    """One problem: what it is, where it is, what makes it again, and where ``repair`` put it."""

    kind: str  # store | model | pointer | forecast | backtest | debris
    path: Path
    problem: str
    advice: str
    moved_to: Path | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {key: None if value is None else str(value) for key, value in asdict(self).items()}

    def line(self, root: Path) -> str:
        moved = f"; moved to {_rel(self.moved_to, root)}" if self.moved_to is not None else ""
        return f"{self.kind}: {_rel(self.path, root)}: {self.problem}{moved}; {self.advice}"


def healthy(findings: list[Finding]) -> bool:
    """True when nothing is left to fix: no findings, or every one was moved to quarantine."""
    return all(f.moved_to is not None for f in findings)


def examine(workspace: Workspace, outdir: Path | None = None) -> list[Finding]:
    """Every problem in the home, sorted by path. ``outdir``: the daily job's folder (default ``daily/``)."""
    parts = (_store(workspace), _registry(workspace), _global_models(workspace), _outputs(workspace),
             _forecast_batches(workspace), _cross_backtests(workspace), _debris(workspace, outdir))
    found = {f.path: f for part in parts for f in part}
    return sorted(found.values(), key=lambda f: f.path.parts)


def repair(workspace: Workspace, findings: list[Finding], outdir: Path | None = None,
           now: datetime | None = None) -> list[Finding]:
    """Move each finding still broken (looked at again under the locks) into quarantine; return them.
    One left in place has ``moved_to`` None and says why; one a writer fixed meanwhile is dropped."""
    wait = min(LOCK_WAIT_S, workspace.lock_timeout_s)
    areas = [*((d, workspace.run_lock) for d in _daily(workspace, outdir)),  # (area, its writers' lock), as a run takes them
             (workspace.data_dir, workspace.store_lock), (workspace.models_dir, workspace.registry_lock)]
    busy: set[Path] = set()
    out: list[Finding] = []
    with ExitStack() as stack:
        for area, lock in areas:
            if any(f.path.is_relative_to(area) for f in findings):
                try:
                    stack.enter_context(hold_lock(lock, wait, "busy"))
                except StoreBusyError:
                    busy.add(lock)
        fresh = {f.path for f in examine(workspace, outdir)}
        stamp = _stamp_dir(workspace, now)
        moved: dict[Path, Path] = {}
        for finding in sorted(findings, key=lambda f: f.path.parts):
            held_by = next((lk for area, lk in areas if finding.path.is_relative_to(area)), None)
            ancestor = next((p for p in moved if finding.path.is_relative_to(p)), None)
            if ancestor is not None:  # inside a folder already moved: it went along
                out.append(replace(finding, moved_to=moved[ancestor] / finding.path.relative_to(ancestor)))
            elif held_by in busy:
                out.append(replace(finding, problem=f"{finding.problem}; left in place: a writer holds {_rel(held_by, workspace.root)}"))
            elif finding.path in fresh:
                target = stamp / finding.path.relative_to(workspace.root)
                try:
                    if target.exists() or target.is_symlink():  # shutil.move would put it inside
                        raise FileExistsError(f"{target} exists")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(finding.path), str(target))
                except OSError as exc:
                    out.append(replace(finding, problem=f"{finding.problem}; left in place: cannot move it ({exc})"))
                    continue
                moved[finding.path] = target
                out.append(replace(finding, moved_to=target))
    return out


def _store(workspace: Workspace) -> Iterator[Finding]:
    store = MarketStore(workspace)
    for ticker in store.tickers():
        path = workspace.bars_dir / f"{ticker}.parquet"
        try:
            store.read(ticker)
        except ForecastError as exc:
            yield Finding("store", path, _why(exc), _refetch(path, ticker))


def _refetch(path: Path, ticker: str) -> str:
    """The command that makes the series again, from its source if the file still names it."""
    try:
        source: str | None = recorded_source(path)
    except Exception:  # the file is damaged: its provenance may be too
        source = None
    return _REFETCH.get(source or "", "re-fetch or re-import {t}").format(t=ticker)


def _registry(workspace: Workspace) -> Iterator[Finding]:
    registry = ModelRegistry(workspace)
    pointers = {p.name: _read_pointer(p) for p in _entries(workspace.latest_dir)}
    pointed_by = {text: name for name, text in pointers.items() if text and _ticker(name)}
    good: dict[str, str] = {}  # model id -> its ticker
    broken: set[str] = set()
    for folder in _entries(workspace.models_dir):
        if folder in (workspace.latest_dir, workspace.global_models_dir) or not folder.is_dir():
            continue
        problem, ticker = _model_problem(workspace, registry, folder.name)
        if problem is None and ticker is not None:
            good[folder.name] = ticker
            continue
        broken.add(folder.name)
        ticker = ticker or _card_ticker(workspace, folder.name) or pointed_by.get(folder.name)
        advice = f"retrain: forecast train {ticker}" if ticker else "retrain the ticker it served: forecast train <TICKER>"
        yield Finding("model", folder, problem or "unreadable", advice)
    for name, text in pointers.items():
        problem = _pointer_problem(workspace, workspace.latest_dir / name, text, good, broken)
        if problem is not None:
            advice = ("nothing to redo: it serves no ticker" if not _ticker(name)
                      else f"predict falls back to the newest other {name} model; or retrain: forecast train {name}"
                      if name in good.values() else f"retrain: forecast train {name}")
            yield Finding("pointer", workspace.latest_dir / name, problem, advice)


def _global_models(workspace: Workspace) -> Iterator[Finding]:
    """Universe models under models/global/: a card that loads and a Keras archive beside it."""
    from forecast.global_card import GlobalRegistry

    registry = GlobalRegistry(workspace)
    for folder in _entries(workspace.global_models_dir):
        if not folder.is_dir():
            continue
        try:
            card = registry.card(folder.name)
        except ForecastError as exc:
            yield Finding("model", folder, str(exc).split("; ")[0], "retrain: forecast train --universe NAME --preset global")
            continue
        model = registry.model_file(card.id)
        problem = ("model.keras is missing" if not model.is_file() else "model.keras is empty" if model.stat().st_size == 0
                   else None if zipfile.is_zipfile(model) else "model.keras is not a Keras archive (not a zip file)")
        problem = problem or _unloadable_network(model)
        if problem:
            yield Finding("model", folder, problem, f"retrain: forecast train --universe {card.universe} --preset global")


def _unloadable_network(model: Path) -> str | None:
    """Why ``predict`` could not load the global network (a cut weights file inside a whole zip), or None.

    Loads it as ``predict`` does, in numpy: no TensorFlow, a few milliseconds.
    """
    from forecast.global_numpy import NumpyGlobalNet

    try:
        NumpyGlobalNet.from_keras_file(model)
    except Exception as exc:  # anything that stops predict from loading it
        return f"model.keras cannot be loaded ({type(exc).__name__})"
    return None


def _model_problem(workspace: Workspace, registry: ModelRegistry, model_id: str) -> tuple[str | None, str | None]:
    """(the problem or None, the ticker if the card names one)."""
    try:
        card = registry.card(model_id)
    except ForecastError as exc:
        return ("metadata.json is missing" if isinstance(exc, ModelNotFoundError)
                else str(exc).split("; ")[0].removeprefix(f"model {model_id}: ")), None
    model = workspace.model_file(model_id)
    problem = ("model.keras is missing" if not model.is_file() else "model.keras is empty" if model.stat().st_size == 0
               else None if zipfile.is_zipfile(model) else "model.keras is not a Keras archive (not a zip file)")
    return problem, card.ticker


def _card_ticker(workspace: Workspace, model_id: str) -> str | None:
    """The ticker an invalid card still names, if it is a real one."""
    try:
        raw = json.loads(workspace.model_card_file(model_id).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError, ForecastError):
        return None
    value = raw.get("ticker") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and _ticker(value) else None


def _read_pointer(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() if path.is_file() else None
    except (UnicodeDecodeError, OSError):
        return None


def _pointer_problem(workspace: Workspace, path: Path, text: str | None, good: dict[str, str], broken: set[str]) -> str | None:
    try:
        if not _ticker(workspace.latest_pointer(path.name).name):
            return "its name is not a ticker"
    except ForecastError:
        return "it leads out of models/latest/"
    if text is None or not text.isprintable():
        return "unreadable (binary content)" if path.is_file() else "not a pointer file"
    if not text:
        return "empty"
    if text in broken:
        return f"points at a broken model ({text[:80]})"
    if text not in good:
        return f"points at a model that does not exist ({text[:80]})"
    if good[text] != path.name:
        return f"points at a model of {good[text]} ({text[:80]})"
    return None


def _outputs(workspace: Workspace) -> Iterator[Finding]:
    checks = (("forecast", workspace.forecast_file, _own_forecast, "forecast predict"),
              ("backtest", workspace.backtest_json, load_backtest, "forecast backtest"),
              ("backtest", workspace.backtest_csv, load_backtest_forecasts, "forecast backtest"))
    for kind, path_of, load, command in checks:
        for folder in _entries(path_of("_").parent.parent):  # forecasts/, backtests/: one folder per ticker
            if not folder.is_dir() or folder.name.startswith("@"):  # @<universe>: a cross-sectional backtest (below)
                continue
            try:
                path = folder  # until the workspace agrees the folder stays inside the home
                path = path_of(folder.name)
                load(workspace, folder.name)
            except ForecastError as exc:
                yield Finding(kind, path, _why(exc), f"make it again: {command} {folder.name}")


def _own_forecast(workspace: Workspace, ticker: str) -> None:
    """Check the ticker's own forecast file, if any (a damaged batch is its own finding, not one per ticker)."""
    path = workspace.forecast_file(ticker)
    if path.is_file():
        load_forecast_file(path)


def _forecast_batches(workspace: Workspace) -> Iterator[Finding]:
    """forecasts/@<universe>/latest.json: a global model's forecasts of many tickers."""
    for path in workspace.forecast_batch_files():
        try:
            load_forecast_batch(path)
        except ForecastError as exc:
            yield Finding("forecast", path, _why(exc),
                          f"make it again: forecast predict --universe {path.parent.name[1:]} --model global")


def _cross_backtests(workspace: Workspace) -> Iterator[Finding]:
    """backtests/@<universe>/latest.json: the scores of a cross-sectional backtest."""
    from forecast.cross_section import CrossSectionReport

    for folder in _entries(workspace.backtests_dir):
        if not folder.is_dir() or not folder.name.startswith("@"):
            continue
        universe = folder.name[1:]
        path = workspace.cross_backtest_json(universe)
        try:
            CrossSectionReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
            yield Finding("backtest", path, f"unreadable ({type(exc).__name__})",
                          f"make it again: forecast backtest --universe {universe} --models ...")


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


def _entries(folder: Path) -> list[Path]:
    """The folder's entries, dot-names (locks, leftovers) aside; none if it does not exist."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def _ticker(name: str) -> bool:
    """Whether ``name`` is a ticker in normal form (what the store and the registry use as names)."""
    try:
        return str(parse_ticker(name)) == name
    except ForecastError:
        return False


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


def _why(exc: ForecastError) -> str:
    """``unreadable (ArrowInvalid)`` from a CorruptFileError's message; other errors as they read."""
    head, corrupt = str(exc).split("; ")[0], isinstance(exc, CorruptFileError)
    reasons = _PARENS.findall(head) if corrupt else []  # the last one: the home's path may hold parentheses too
    return (f"unreadable ({reasons[-1]})" if reasons else "unreadable") if corrupt else head


def _stamp_dir(workspace: Workspace, now: datetime | None) -> Path:
    """``quarantine/<UTC stamp>``, with ``-2``, ``-3``... after it if a repair in the same second made one."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    candidate, n = workspace.quarantine_dir / stamp, 1
    while candidate.exists():
        n += 1
        candidate = workspace.quarantine_dir / f"{stamp}-{n}"
    return candidate


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
