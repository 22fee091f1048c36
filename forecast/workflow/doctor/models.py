"""Per-ticker models (``models/<ID>/``), their pointers (``models/latest/<TICKER>``) and pins (``models/.pinned/<TICKER>``)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from forecast.errors import ForecastError, ModelNotFoundError
from forecast.home_rules import safe_name
from forecast.models.registry import ModelRegistry
from forecast.workflow.doctor.archives import TICKER_LAYERS, _archive_problem
from forecast.workflow.doctor.findings import PIN, Finding, _entries, _reason, _ticker
from forecast.workspace import Workspace

if TYPE_CHECKING:
    from forecast.models.card import ModelCard


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
