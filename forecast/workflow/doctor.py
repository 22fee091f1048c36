"""``forecast doctor``: find what the tool can no longer read, and move it aside.

First the home itself: missing, not a folder, not readable or not writable
(then nothing else is looked at, or repaired, until it is fixed). Then every
folder of the home's layout that is something else (a file, a link to
nothing); every lock path (``data/.lock``, ``models/.lock``, ``.run.lock``,
``data/backfill/.lock``, ``forecasts/@*/.lock``) that is no lock file; every
stored series (``MarketStore.read``); every model folder: its card through
``ModelRegistry.card`` and its ``model.keras`` read as the loaders would
without TensorFlow (a zip whose every member passes its CRC check, a
``config.json`` with only the layer classes the product's networks use, a
``model.weights.h5`` h5py can read; then the network loaded in numpy as
``predict`` and ``rank`` load it, a global one's weights' shapes checked against its card, and run once);
every pointer (``models/latest/<TICKER>``, ``models/global/.latest/<UNIVERSE>``)
and every pin (``models/.pinned/<TICKER>``); every stored forecast and backtest
(``results.load_*``), and the leftovers of killed writes: ``*.tmp`` files,
``models/.staging-*`` folders, ``.<name>.copy`` files. ``linked_folders``
names the folders of the home that are links, and where they lead: not a
problem, but worth knowing when a disk is missing.

Promises: ``examine`` only reads; it writes, locks and creates nothing.
``repair`` deletes no data: each problem path moves whole to ``quarantine/<UTC
stamp>/<its path relative to the home>`` (across disks: copy, then remove the
original); the one thing removed is an empty folder where a lock file belongs.
A pointer moved aside is written again, at the newest valid model of its ticker
or universe, if there is one. It waits a couple of seconds at most for each
area's writer lock (``data/.lock``, ``models/.lock``, ``.run.lock`` for the
daily folder), looks again under them, and moves only what is still broken;
what lies under a lock a writer holds stays, and is reported. A leftover whose
writer (the pid in its name) still runs is not debris. Problems of the home
itself and links to a missing folder are only reported: they need a person.
Never: imports TensorFlow (every network loads in numpy, as ``predict`` loads it), follows a name out of
the home, or looks inside ``quarantine/``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecast.atomic import atomic_write_text
from forecast.choices import UNIVERSE_MODEL
from forecast.data.store import MarketStore, recorded_source
from forecast.data.tickers import parse_ticker
from forecast.errors import CorruptFileError, ExitCode, ForecastError, ModelNotFoundError, StoreBusyError
from forecast.locks import hold_lock
from forecast.models.registry import ModelRegistry
from forecast.models.results import load_backtest, load_backtest_forecasts, load_forecast_batch, load_forecast_file
from forecast.workspace import Workspace, safe_name

if TYPE_CHECKING:
    from forecast.models.card import ModelCard
    from forecast.models.pooled.card import GlobalCard, GlobalRegistry

LOCK_WAIT_S = 2.0  # at most this long per lock (or $FORECAST_LOCK_TIMEOUT if shorter)
_PID = re.compile(r"[.-](\d+)(?:\.tmp)?$")  # .<name>.<pid>.tmp (atomic.py), .staging-<id>-<pid> (registry)
_PARENS = re.compile(r"\(([^()]*)\)")
_REFETCH = {"tushare": "re-fetch: forecast fetch {t}", "csv": "re-import: forecast fetch {t} --source csv --file <FILE>",
            "sample": "re-fetch: forecast fetch --source sample"}
# The layer classes the product's networks are made of; a model.keras with any other is not one the product made.
# network.build_network (per ticker) and global_network.build_global_network; tests/test_doctor_states.py checks
# that what they build passes.
TICKER_LAYERS = frozenset({"InputLayer", "GRU", "LSTM", "SimpleRNN", "Bidirectional", "Dropout", "Dense"})
GLOBAL_LAYERS = frozenset({"InputLayer", "GRU", "LSTM", "Concatenate", "Dropout", "Dense", "Reshape",
                           "Flatten", "Add"})  # the last two: the nested ridge (models/pooled/network.py)
_WRAPPED = ("layer", "backward_layer")  # Bidirectional's own layers, in its config
_MODEL_CLASSES = frozenset({"Functional"})  # keras.Model(inputs, outputs)
_CODE_CLASSES = frozenset({"Lambda", "__lambda__", "function"})  # Python code in the file: Keras' safe mode refuses it
HOME, FOLDER, LOCK, PIN = "home", "folder", "lock", "pin"  # kinds of finding (Finding.kind lists them all)


@dataclass(frozen=True)
class Finding:
    """One problem: what it is, where it is, what makes it again, and where ``repair`` put it."""

    kind: str  # home | folder | lock | store | model | pointer | pin | forecast | backtest | debris
    path: Path
    problem: str
    advice: str
    moved_to: Path | None = None  # where repair put it; ``path`` itself when repair removed it (an empty lock folder)

    def to_dict(self) -> dict[str, str | None]:
        return {key: None if value is None else str(value) for key, value in asdict(self).items()}

    def line(self, root: Path) -> str:
        moved = ("" if self.moved_to is None else "; removed" if self.moved_to == self.path
                 else f"; moved to {_rel(self.moved_to, root)}")
        where = str(self.path) if self.kind == HOME else _rel(self.path, root)
        return f"{self.kind}: {where}: {self.problem}{moved}; {self.advice}"


def healthy(findings: list[Finding]) -> bool:
    """True when nothing is left to fix: no findings, or every one was moved to quarantine (or removed)."""
    return all(f.moved_to is not None for f in findings)


def exit_code(findings: list[Finding]) -> ExitCode:
    """0 when healthy; 4 when the home does not exist (nothing to check: README's "no such file"); else 3."""
    if healthy(findings):
        return ExitCode.OK
    if any(f.kind == HOME and "does not exist" in f.problem for f in findings):
        return ExitCode.NOT_FOUND
    return ExitCode.BAD_INPUT


def examine(workspace: Workspace, outdir: Path | None = None) -> list[Finding]:
    """Every problem in the home: the home's own first, then the rest sorted by path.

    ``outdir``: the daily job's folder (default ``daily/``). A home that is
    missing, not a folder or not readable has nothing else to look at.
    """
    home = list(_home(workspace))
    if any(f.kind == HOME and not f.problem.startswith("not writable") for f in home):
        return home
    parts = (_folders(workspace, outdir), _locks(workspace), _store(workspace), _registry(workspace),
             _global_models(workspace), _outputs(workspace), _forecast_batches(workspace), _cross_backtests(workspace),
             _debris(workspace, outdir))
    found = {f.path: f for part in parts for f in part}
    return home + sorted(found.values(), key=lambda f: f.path.parts)


def linked_folders(workspace: Workspace) -> list[tuple[Path, Path]]:
    """The home's folders that are links, and the folder each leads to (sorted); none if the home is no folder."""
    if not workspace.root.is_dir():
        return []
    return workspace.linked_folders()


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
    """{("ticker", T) or ("global", U): the readable cards of its models, newest first}."""
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
        problem = _pointer_problem(workspace.latest_dir / name, text, good, broken, workspace.latest_pointer, workspace.model_dir)
        if problem is not None:
            advice = ("nothing to redo: it serves no ticker" if not _ticker(name)
                      else f"predict falls back to the newest other {name} model; or retrain: forecast train {name}"
                      if name in good.values() else f"retrain: forecast train {name}")
            yield Finding("pointer", workspace.latest_dir / name, problem, advice)
    for pin in _entries(workspace.pinned_dir):
        problem = _pointer_problem(pin, _read_pointer(pin), good, broken, workspace.pin_file, workspace.model_dir)
        if problem is not None:
            advice = ("nothing to redo: it pins no ticker" if not _ticker(pin.name)
                      else f"once it is moved aside predict and run use the latest {pin.name} model; "
                           f"pin one again with: forecast models use MODEL_ID")
            yield Finding(PIN, pin, problem, advice)


def _global_models(workspace: Workspace) -> Iterator[Finding]:
    """Universe models under models/global/ (a card that loads, a network ``rank`` can run) and their pointers."""
    from forecast.models.pooled.card import GlobalRegistry

    registry = GlobalRegistry(workspace)
    good: dict[str, str] = {}  # model id -> its universe
    broken: set[str] = set()
    for folder in _entries(workspace.global_models_dir):
        if not folder.is_dir():
            continue
        try:
            card = registry.card(folder.name)
        except ForecastError as exc:
            broken.add(folder.name)
            yield Finding("model", folder, str(exc).split("; ")[0], "retrain: forecast train --universe NAME --preset global")
            continue
        problem = _global_problem(workspace, registry, card)
        if problem:
            broken.add(folder.name)
            yield Finding("model", folder, problem, f"retrain: forecast train --universe {card.universe} --preset global")
        else:
            good[card.id] = card.universe
    for pointer in _entries(workspace.global_latest_dir):
        problem = _pointer_problem(pointer, _read_pointer(pointer), good, broken, workspace.global_latest_pointer,
                                   workspace.global_model_dir, what="universe")
        if problem is not None:
            advice = (f"rank and predict fall back to the newest other {pointer.name} model" if pointer.name in good.values()
                      else f"retrain: forecast train --universe {pointer.name} --preset global")
            yield Finding("pointer", pointer, problem, advice)


def _global_problem(workspace: Workspace, registry: GlobalRegistry, card: GlobalCard) -> str | None:
    """Why ``rank`` could not use the global model of ``card``, or None."""
    model = registry.model_file(card.id)
    return _archive_problem(model, GLOBAL_LAYERS, card) or _unloadable_network(model, card)


def _unloadable_network(model: Path, card: GlobalCard) -> str | None:
    """Why ``rank`` and ``predict`` could not run the global network, or None.

    Loads it as they do, in numpy (no TensorFlow, a few milliseconds), and
    runs it once on zeros of the shapes the card's inputs need (``_archive_problem``
    has checked, and named, each weight's shape before).
    """
    import numpy as np

    from forecast.models.pooled.data import SEQUENCE_FEATURES, STATIC_FEATURES
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

    try:
        network = NumpyGlobalNet.from_keras_file(model)
        out = network.predict(np.zeros((1, card.lookback, len(SEQUENCE_FEATURES)), np.float32),
                              np.zeros((1, len(STATIC_FEATURES)), np.float32))
    except Exception as exc:  # anything that stops rank and predict from loading or running it
        return f"model.keras cannot be loaded as rank loads it ({_reason(exc)})"
    if out.shape[-1] != card.horizon:
        return f"model.keras forecasts {out.shape[-1]} days; its card says {card.horizon}"
    return None


def _global_shapes(config: Any, h5: Any, card: GlobalCard) -> str | None:
    """The first input or layer whose weights are not the shapes the card's network needs, named; None if all fit.

    Reads the shapes the datasets declare, never their data. A layout this
    does not know (no 'window', no 'gru_0'...) is left to the loader to name.
    """
    from forecast.models.pooled.data import SEQUENCE_FEATURES, STATIC_FEATURES

    n_sequence, n_static, horizon = len(SEQUENCE_FEATURES), len(STATIC_FEATURES), card.horizon
    try:
        layers = {layer["config"]["name"]: layer for layer in _layers(config)}
        declared = {}
        for group in h5["layers"].values():  # as global_numpy reads them: a recurrent layer's variables live under "cell"
            holder = group["cell"]["vars"] if "cell" in group else group["vars"]
            declared[str(group["vars"].attrs["name"])] = [tuple(holder[str(i)].shape) for i in range(len(holder))]
        for name, shape in (("window", [None, card.lookback, n_sequence]), ("static", [None, n_static])):
            if layers[name]["config"].get("batch_shape") != shape:
                return f"input {name!r} has shape {layers[name]['config'].get('batch_shape')}; the card's network needs {shape}"
        arch = next(layer["class_name"] for layer in layers.values() if layer["class_name"] in ("GRU", "LSTM"))
        gates, m = (3 if arch == "GRU" else 4), 0
        while f"{arch.lower()}_{m}" in layers:
            rnn = f"{arch.lower()}_{m}"
            units, hidden = layers[rnn]["config"]["units"], layers[f"hidden_{m}"]["config"]["units"]
            width = gates * units
            wanted = {rnn: [(n_sequence, width), (units, width), (2, width) if arch == "GRU" else (width,)],
                      f"hidden_{m}": [(units + n_static, hidden), (hidden,)], f"head_{m}": [(hidden, horizon), (horizon,)]}
            for name, shapes in wanted.items():
                if declared.get(name) != shapes:
                    return (f"layer {name!r} has weights of shapes {declared.get(name)}; the card's network "
                            f"({n_sequence} sequence and {n_static} static inputs, horizon {horizon}) needs {shapes}")
            m += 1
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration):
        return None
    return None


def _archive_problem(model: Path, allowed: frozenset[str], card: GlobalCard | None = None) -> str | None:
    """Why ``model.keras`` is not a Keras archive the product made, read without TensorFlow; None if it is.

    In this order, so that nothing is inflated or read before its size is
    known: present and not empty; a zip whose members declare no more than
    the card's network can take (a zip bomb); every member passes its CRC check; a
    ``config.json`` whose layers are all of the classes in ``allowed`` and that
    holds no Python code (a Lambda: Keras' safe mode refuses it) and no class
    from outside Keras; then, if it holds ``model.weights.h5``,
    ``model_archive.check_model_file`` (the archive, config.json and every
    weight's declared shape against the card), for a global model each
    layer's shapes named, and every array h5py reads. ``card``: a global model's.
    """
    import h5py

    if not model.is_file():
        return "model.keras is missing"
    if model.stat().st_size == 0:
        return "model.keras is empty"
    if not zipfile.is_zipfile(model):
        return "model.keras is not a Keras archive (not a zip file)"
    try:
        with zipfile.ZipFile(model) as archive:
            declared, bound = sum(info.file_size for info in archive.infolist()), _size_bound(model)
            if declared > bound:
                return (f"model.keras declares {declared:,} bytes uncompressed, more than the {bound:,} its network "
                        "can take (a zip bomb?)")
            damaged = archive.testzip()
            if damaged is not None:
                return f"model.keras is damaged: {damaged} fails its CRC check (BadZipFile)"
            names = set(archive.namelist())
            if "config.json" not in names:
                return "model.keras has no config.json"
            config = json.loads(archive.read("config.json"))
            problem = _foreign_classes(config, allowed)
            if problem:
                return problem
            if "model.weights.h5" not in names:
                return "model.keras has no model.weights.h5" if _layers(config) else None
            weights = archive.read("model.weights.h5")  # no larger than the bound above
    except Exception as exc:  # zipfile, zlib, json: the loaders would fail too
        return f"model.keras cannot be read ({_reason(exc)})"
    try:
        if card is not None:  # the declared shapes only, named by layer, before model_archive compares them unnamed
            with h5py.File(io.BytesIO(weights), "r") as h5:
                problem = _global_shapes(config, h5, card)
            if problem:
                return problem
        _check_model_file(model)
    except Exception as exc:  # model_archive's CorruptFileError, or h5py's error for a file that is not HDF5
        return f"model.keras cannot be loaded ({_reason(exc)})"
    try:  # every array, now that model_archive has bounded what they declare
        with h5py.File(io.BytesIO(weights), "r") as h5:
            h5.visititems(_read_dataset)
    except Exception as exc:
        return f"model.weights.h5 in model.keras cannot be read ({_reason(exc)})"
    return None


def _size_bound(model: Path) -> int:
    """The most bytes the archive's members may declare: what its card's network can take (model_archive's measure)."""
    from forecast.models.archive import CARDLESS_MAX_BYTES, card_beside, network_of_card

    try:
        card = card_beside(model)
        return network_of_card(card).max_bytes() if card is not None else CARDLESS_MAX_BYTES
    except ForecastError:  # a card that says nothing of its network: the card's own finding says why
        return CARDLESS_MAX_BYTES


def _check_model_file(model: Path) -> None:
    """``model_archive.check_model_file``: what both loaders check before they read a model (CorruptFileError)."""
    from forecast.models.archive import check_model_file

    check_model_file(model)


def _read_dataset(_name: str, item: Any) -> None:
    import h5py

    if isinstance(item, h5py.Dataset):
        item[()]


def _foreign_classes(config: Any, allowed: frozenset[str]) -> str | None:
    """Layer classes (and code) in a Keras ``config.json`` that the product's networks never have, named; or None."""
    if not isinstance(config, dict):
        return "config.json is not a Keras model's configuration"
    foreign: list[str] = []
    if "class_name" in config and config["class_name"] not in _MODEL_CLASSES:
        foreign.append(str(config["class_name"]))
    layers = list(_layers(config))
    while layers:
        layer = layers.pop()
        if layer.get("class_name") not in allowed:
            foreign.append(str(layer.get("class_name")))
        inner = layer.get("config")
        if isinstance(inner, dict):
            layers += [inner[key] for key in _WRAPPED if isinstance(inner.get(key), dict)]
    for item in _objects(config.get("config")):  # the architecture; compile_config is never loaded (compile=False)
        name, module = item.get("class_name"), item.get("module")
        custom = isinstance(item.get("registered_name"), str) and ">" in item["registered_name"]
        outside = isinstance(module, str) and module.split(".")[0] != "keras"
        if name in _CODE_CLASSES or custom or outside:
            foreign.append(f"{name} from {module}" if outside else str(name))
    if not foreign:
        return None
    names = ", ".join(dict.fromkeys(foreign))
    code = " (Python code: Keras' safe mode refuses it)" if any(n.split(" ")[0] in _CODE_CLASSES for n in foreign) else ""
    return f"config.json has layers the product's networks never have: {names[:160]}{code}"


def _layers(config: Any) -> list[dict]:
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    return [layer for layer in layers if isinstance(layer, dict)] if isinstance(layers, list) else []


def _objects(value: Any) -> Iterator[dict]:
    """Every JSON object holding a ``class_name`` under ``value``, depth first."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _model_problem(workspace: Workspace, registry: ModelRegistry, model_id: str) -> tuple[str | None, str | None]:
    """(the problem or None, the ticker if the card names one)."""
    try:
        card = registry.card(model_id)
    except ForecastError as exc:
        return ("metadata.json is missing" if isinstance(exc, ModelNotFoundError)
                else str(exc).split("; ")[0].removeprefix(f"model {model_id}: ")), None
    model = workspace.model_file(model_id)
    return _archive_problem(model, TICKER_LAYERS) or _unservable_ticker_network(model, card), card.ticker


def _unservable_ticker_network(model: Path, card: ModelCard) -> str | None:
    """Why ``predict`` and ``run`` could not run a per-ticker network, or None.

    Loads it as they do, in numpy (``numpy_net``: no TensorFlow, milliseconds),
    and runs it once on zeros of the window its card describes. An archive with
    no weights at all passed ``_archive_problem`` only because it describes no
    layer; there is no network to load.
    """
    import numpy as np

    from forecast.models.numpy_net import NumpyNetwork

    try:
        with zipfile.ZipFile(model) as archive:
            if "model.weights.h5" not in archive.namelist():
                return None
        network = NumpyNetwork.from_keras_file(model)
        out = network.predict(np.zeros((1, card.config.lookback, len(card.features)), np.float32))
    except Exception as exc:  # anything that stops predict from loading or running it
        return f"model.keras cannot be loaded as predict loads it ({_reason(exc)})"
    if out.shape[-1] != card.config.horizon:
        return f"model.keras forecasts {out.shape[-1]} days; its card says {card.config.horizon}"
    return None


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


def _pointer_problem(path: Path, text: str | None, good: dict[str, str], broken: set[str], place: Callable[[str], Path],
                     model_dir: Callable[[str], Path], what: str = "ticker") -> str | None:
    """Why a pointer, pin or universe pointer does not lead to a good model of its own name, or None.

    ``place``: the workspace's path for the name (refuses a name leading out);
    ``model_dir``: the workspace's path for the id it holds (refuses an id leading out).
    """
    try:
        place(path.name)
        if what == "ticker" and not _ticker(path.name):
            return "its name is not a ticker"
    except ForecastError:
        return f"it leads out of {path.parent.name}/"
    if text is None or not text.isprintable():
        return "unreadable (binary content)" if path.is_file() else "not a pointer file"
    if not text:
        return "empty"
    try:
        safe_name(text, "model id")
        model_dir(text)
    except ForecastError:
        return f"holds no valid model id ({text[:80]!r})"
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
    """backtests/@<universe>/latest.json: the scores of a cross-sectional backtest, read as ``results.CrossBacktestRecord``."""
    from forecast.models.results import CrossBacktestRecord

    for folder in _entries(workspace.backtests_dir):
        if not folder.is_dir() or not folder.name.startswith("@"):
            continue
        universe = folder.name[1:]
        path = workspace.cross_backtest_json(universe)
        try:
            CrossBacktestRecord.from_dict(json.loads(path.read_text(encoding="utf-8")), path.name)
            continue
        except CorruptFileError as exc:
            problem = str(exc).split("; run ")[0]  # "latest.json is damaged (KeyError: ...)": the advice is below
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            problem = f"unreadable ({type(exc).__name__})"
        yield Finding("backtest", path, problem, f"make it again: forecast backtest --universe {universe} --models ...")


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
