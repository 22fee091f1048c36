"""Universe models (``models/global/<ID>/``): a card that loads, a network ``rank`` can run; and their pointers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from forecast.errors import ForecastError
from forecast.workflow.doctor.archives import GLOBAL_LAYERS, _archive_problem
from forecast.workflow.doctor.findings import Finding, _entries, _reason
from forecast.workflow.doctor.models import _pointer_problem, _read_pointer
from forecast.workspace import Workspace

if TYPE_CHECKING:
    from forecast.models.pooled.card import GlobalCard, GlobalRegistry


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
