"""Universe-wide units of work: train the global model, forecast many tickers in one batch, rank, backtest.

Each reads the store's panel once (``panel.load_panel``) and writes
through the global registry or the workspace; the CLI calls these and only
prints. Which model serves a ticker is ``workflow.serving``'s call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.data.panel import load_panel
from forecast.data.store import MarketStore
from forecast.errors import CorruptFileError, ForecastError, InsufficientHistoryError, NoDataError, unloadable_model
from forecast.evaluation.cross_backtest import CrossBacktestResult, CrossSettings, cross_backtest
from forecast.models.pooled.card import GlobalCard, GlobalRegistry
from forecast.models.pooled.model import GlobalForecast, GlobalSettings, GlobalTrainResult, forecast_panel, ranked, train_global
from forecast.models.results import save_cross_backtest, save_forecast_batch
from forecast.workspace import Workspace

CALENDAR_DAYS_PER_ROW = 1.6  # trading rows -> calendar days, with room for holidays and suspensions


def train_universe(workspace: Workspace, universe: str, tickers: Sequence[str], settings: GlobalSettings,
                   progress="none") -> GlobalTrainResult:
    """Train one network on every stored member of ``universe`` and register it."""
    store = MarketStore(workspace)
    panel = load_panel(store, list(tickers), adjust=settings.adjust).frame
    if panel.empty:
        raise NoDataError(f"no stored bars for any member of {universe}; run: forecast fetch --universe {universe}")
    return train_global(panel, universe, settings, GlobalRegistry(workspace), progress)


@dataclass
class BatchForecast:
    card: GlobalCard
    forecasts: dict[str, GlobalForecast] = field(default_factory=dict)
    problems: dict[str, ForecastError] = field(default_factory=dict)

    def ranked(self) -> list[GlobalForecast]:
        return ranked(list(self.forecasts.values()))


def predict_batch(workspace: Workspace, tickers: Sequence[str], card: GlobalCard, save: bool = True) -> BatchForecast:
    """Forecast every ticker with the global model in one batched call; store each forecast for ``plot``.

    No TensorFlow: the network runs in numpy (``global_numpy``), so a nightly
    forecast of a whole market costs its data, not the framework's start.
    """
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

    batch = BatchForecast(card)
    history = GlobalSettings(lookback=card.lookback, horizon=card.horizon).history_rows()
    read = load_panel(MarketStore(workspace), list(tickers), adjust=str(card.config.get("adjust") or "qfq"), tail=history)
    panel = read.frame
    if len(panel):  # a series that stopped long before the others has no recent history to forecast from
        dates = panel.index.get_level_values("date")
        recent = dates >= dates.max() - pd.Timedelta(days=int(history * CALENDAR_DAYS_PER_ROW) + 30)
        panel = panel if recent.all() else panel[recent]
    stored = set(panel.index.get_level_values("ticker")) if len(panel) else set()
    for ticker in tickers:
        if ticker not in stored:
            batch.problems[ticker] = NoDataError(f"no recent stored bars for {ticker}; run: forecast fetch {ticker}")
    if stored:
        model_file = GlobalRegistry(workspace).model_file(card.id)
        try:
            network = NumpyGlobalNet.from_keras_file(model_file)
        except Exception as exc:  # a missing, truncated or foreign file: one line naming it, as for a per-ticker model
            raise unloadable_model(model_file, exc) from None
        forecasts, problems = forecast_panel(panel, card, network, calendars=read.calendars)
        for ticker, why in problems.items():
            batch.problems[ticker] = InsufficientHistoryError(why)
        finite = [item for item in forecasts if _finite(item)]
        for item in forecasts:
            if item not in finite:  # never stored: a file of nulls is one the product could not read back
                batch.problems[item.ticker] = CorruptFileError(
                    f"the universe model {card.id} forecast no number for {item.ticker} (NaN or infinite weights?); "
                    f"retrain it: forecast train --universe {card.universe} --preset global")
        from forecast.workflow.price_limits import cap_forecasts

        cap_forecasts(workspace, [item.result for item in finite])  # in place: a China ticker's band stops at its limits
        for item in finite:
            batch.forecasts[item.ticker] = item
        if save:
            save_forecast_batch(workspace, card.universe, [item.result for item in finite])
    return batch


def _finite(item: GlobalForecast) -> bool:
    """Every number of the forecast is finite: its score, its return and range, each step's price and band."""
    numbers = [item.score, item.expected_return, *item.interval]
    for point in item.result.points:
        numbers.append(point.value)
        numbers.extend(bound for band in point.intervals.values() for bound in band)
    return bool(np.isfinite(np.asarray(numbers, dtype="float64")).all())


def backtest_universe(workspace: Workspace, universe: str, tickers: Sequence[str], settings: CrossSettings,
                      membership=None, progress: Callable[[str], None] | None = None) -> CrossBacktestResult:
    """Cross-sectional backtest of ``universe``; the result is saved under ``backtests/@<universe>/``."""
    panel = load_panel(MarketStore(workspace), list(tickers), adjust=settings.network.adjust).frame
    if panel.empty:
        raise NoDataError(f"no stored bars for any member of {universe}; run: forecast fetch --universe {universe}")
    result = cross_backtest(panel, settings, membership, progress)
    daily = result.daily_frame()
    save_cross_backtest(workspace, result.record(universe), daily)
    if len(daily):
        from forecast.outputs.cross_charts import render_cross_backtest

        render_cross_backtest(daily, f"{universe}: {result.schedule}, test {result.test_range[0]}..{result.test_range[1]}, "
                                     f"horizon {settings.horizon}", workspace.cross_backtest_chart(universe))
    return result
