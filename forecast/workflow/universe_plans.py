"""The universe branches of ``train`` and ``backtest``, planned from their flags.

``train --universe NAME --preset global`` (one network for the universe) and
``backtest --universe NAME`` with a model only a cross-section knows, or a
fixed ``--split``: the settings, the mode, the refits to count and the
point-in-time membership are decided here; the work is ``universe_jobs``'.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from forecast.progress import ProgressReporter, say
from forecast.workflow.usage import UsageError
from forecast.workspace import Workspace


def train_global_model(workspace: Workspace, universe: str | None, tickers: Sequence[str], levels: tuple[float, ...],
                       epochs: int | None, seed: int | None, lookback: int | None, horizon: int | None,
                       progress: str = "none") -> tuple[Any, list[str]]:
    """Train one network for ``universe``: (the GlobalTrainResult, the members left out of it, sorted).

    Members with no complete training window (too short, or stored only after the
    training cut) are named, never silently dropped.
    """
    from forecast.models.pooled.model import GlobalSettings
    from forecast.workflow.universe_jobs import train_universe

    if universe is None:
        raise UsageError("--preset global trains one model for a universe: add --universe NAME (e.g. csi300, stored)")
    overrides: dict[str, Any] = {k: v for k, v in {"epochs": epochs, "seed": seed, "lookback": lookback, "horizon": horizon}.items()
                                 if v is not None}
    settings = dataclasses.replace(GlobalSettings(levels=levels), **overrides)
    result = train_universe(workspace, universe, tickers, settings, progress)
    return result, sorted(set(tickers) - set(result.card.tickers))


def is_cross_sectional(models: Sequence[str], split: str | None = None) -> bool:
    """``backtest`` ranks the universe instead of forecasting each ticker when a model only a cross-section knows is named,
    or a fixed ``--split`` (which only the cross-sectional backtest has) is given."""
    from forecast.evaluation.cross_backtest import CROSS_ONLY

    return split is not None or any(m in CROSS_ONLY for m in models)


def parse_split(split: str | None) -> Any:
    """``--split TRAIN_END,VALID_START,VALID_END,TEST_START,TEST_END`` as a FixedSplit; None without one."""
    from forecast.evaluation.cross_backtest import FixedSplit

    if not split:
        return None
    parts = [p.strip() for p in split.split(",")]
    if len(parts) != 5:
        raise UsageError("--split takes five dates: TRAIN_END,VALID_START,VALID_END,TEST_START,TEST_END")
    return FixedSplit(*parts)


def cross_settings(universe: str | None, models: Sequence[str], test_days: int, refit_every: int | None, horizon: int,
                   split: str | None, epochs: int | None, levels: tuple[float, ...] | None = None) -> Any:
    """The CrossSettings of a cross-sectional backtest of ``universe`` (a UsageError without one); ``levels``: the
    interval levels a universe model trained now would have (the config's), its bands are scored at."""
    from forecast.evaluation.cross_backtest import DEFAULT_REFIT_EVERY, CrossSettings
    from forecast.models.pooled.model import GlobalSettings

    if universe is None:
        raise UsageError("a cross-sectional backtest ranks a universe: add --universe NAME")
    fixed = parse_split(split)
    overrides: dict[str, Any] = {"horizon": horizon, **({"epochs": epochs} if epochs else {}), **({"levels": tuple(levels)} if levels else {})}
    network = dataclasses.replace(GlobalSettings(), **overrides)
    return CrossSettings(models=tuple(models), horizon=horizon, test_days=test_days, refit_every=refit_every or DEFAULT_REFIT_EVERY,
                         fixed=fixed, network=network)


def refit_count(settings: Any) -> int:
    """How many refits the backtest makes: one per learned model with a fixed split, else one per ``refit_every`` days."""
    from forecast.evaluation.cross_backtest import LEARNED

    learned = [m for m in settings.models if m in LEARNED]
    return len(learned) * (1 if settings.fixed else math.ceil(settings.test_days / settings.refit_every))


def point_in_time(workspace: Workspace, universe: str) -> Any:
    """The members of an index universe as they were on each day (no survivorship bias); None for other universes."""
    from forecast.data.universe import index_code_for, load_index

    code = index_code_for(universe)
    if code is None:
        return None  # all, watchlist, stored: today's list is the list
    return load_index(workspace, code).on


def cross_backtest_universe(workspace: Workspace, universe: str, tickers: Sequence[str], settings: Any,
                            reporter: ProgressReporter) -> Any:
    """Run the cross-sectional backtest of ``universe`` with its point-in-time membership, counting refits on ``reporter``."""
    from forecast.workflow.universe_jobs import backtest_universe

    reporter.start(refit_count(settings), "refits")
    try:
        return backtest_universe(workspace, universe, tickers, settings, membership=point_in_time(workspace, universe),
                                 progress=lambda note: reporter.advance(note), status=lambda note: say(reporter, note))
    finally:
        reporter.close()
