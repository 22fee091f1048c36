"""Universe-wide units of work: train the global model, forecast many tickers in one batch, rank, backtest.

Each reads the store's panel once (``panel.load_panel``) and writes
through the global registry or the workspace; the CLI calls these and only
prints. Which model serves a ticker is ``workflow.serving``'s call.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.data.panel import load_panel
from forecast.data.store import MarketStore
from forecast.errors import CorruptFileError, ForecastError, InsufficientHistoryError, NoDataError, unloadable_model
from forecast.evaluation.cross_backtest import CrossBacktestResult, CrossSettings, cross_backtest
from forecast.models.backtest_records import save_cross_backtest
from forecast.models.pooled.card import GlobalCard, GlobalRegistry
from forecast.models.pooled.model import (
    GlobalForecast,
    GlobalSettings,
    GlobalTrainResult,
    Recalibration,
    forecast_panel,
    ranked,
    train_global,
)
from forecast.models.pooled.recalibration import read_tracks, with_carried, write_tracks
from forecast.models.results import save_forecast_batch
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


def predict_batch(workspace: Workspace, tickers: Sequence[str], card: GlobalCard, save: bool = True,
                  universe: str | None = None, record: Collection[str] | None = None) -> BatchForecast:
    """Forecast every ticker with the global model in one batched call; store each forecast for ``plot``.

    The inputs compared across tickers (each day's mean return, the ranks of
    the slow signals) are taken over the universe the model serves (the
    tickers it trained on), always, whichever tickers were asked for: a
    ticker's forecast never depends on which others a command included
    (``pooled.model.forecast_panel``'s ``reference``). So the model's
    universe is read once per batch, as ``predict --universe`` reads it.

    A forecast is stored as the ticker's forecast of record when this model is
    the one in use for it (``workflow.serving.of_record``, with the
    ``universe`` the command named; ``record``: those tickers, when the caller
    has routed them already); for a ticker another model serves it is kept
    apart, labelled ``of_record`` False.

    No TensorFlow: the network runs in numpy (``global_numpy``), so a nightly
    forecast of a whole market costs its data, not the framework's start.
    """
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

    batch = BatchForecast(card)
    wanted = list(dict.fromkeys(tickers))
    reference = set(card.tickers)
    history = GlobalSettings(lookback=card.lookback, horizon=card.horizon).history_rows()
    store = MarketStore(workspace)
    read = load_panel(store, list(dict.fromkeys([*wanted, *sorted(reference)])),
                      adjust=str(card.config.get("adjust") or "qfq"), tail=history)
    panel = read.frame
    newest = None
    if len(panel):  # a series that stopped long before its universe has no recent day to compare across tickers with
        index = panel.index  # the ticker level's integer codes, not a name per row: a million rows' names cost 0.1 s each time
        dates, ticker_codes = index.get_level_values("date"), np.asarray(index.codes[1])
        in_reference = index.levels[1].isin(list(reference))[ticker_codes]
        # the universe's newest bar, not the batch's: the same cut for a ticker in every command
        newest = dates[in_reference].max() if in_reference.any() else dates.max()
        recent = dates >= newest - pd.Timedelta(days=int(history * CALENDAR_DAYS_PER_ROW) + 30)
        panel = panel if recent.all() else panel[recent]
    stored = set(panel.index.levels[1][np.flatnonzero(np.bincount(panel.index.codes[1]))]) if len(panel) else set()
    for ticker in wanted:
        if ticker not in stored and not store.has(ticker):
            batch.problems[ticker] = NoDataError(f"no stored data for {ticker}; run: forecast fetch {ticker}")
        elif ticker not in stored:
            since = f" (its universe's last bar is {newest.date()})" if newest is not None else ""
            batch.problems[ticker] = NoDataError(f"no recent stored bars for {ticker}{since}; run: forecast fetch {ticker}")
    if stored & set(wanted):
        model_file = GlobalRegistry(workspace).model_file(card.id)
        try:
            network = NumpyGlobalNet.from_keras_file(model_file)
        except Exception as exc:  # a missing, truncated or foreign file: one line naming it, as for a per-ticker model
            raise unloadable_model(model_file, exc) from None
        level_keys = list(card.intervals["quantiles"])
        tracks_file = workspace.batch_adaptive_state_file(card.universe, card.id)
        recalibration = Recalibration(*read_tracks(tracks_file, card.id, level_keys, card.horizon))
        if recalibration.rebuilt in (None, "new"):  # a new model's tickers go on with the previous model's tracks
            recalibration.stored, recalibration.carried_from = with_carried(
                recalibration.stored, tracks_file, card.id, level_keys, card.horizon, wanted, GlobalRegistry(workspace).ids())
        forecasts, problems = forecast_panel(panel, card, network, calendars=read.calendars, bases=read.bases, reference=reference,
                                             wanted=set(wanted), recalibration=recalibration)
        if save and recalibration.moved is not None:  # before the forecasts: a run killed between the two, run again,
            written = {item.ticker for item in forecasts if _finite(item)}  # moves no track twice
            moved = recalibration.moved
            write_tracks(workspace, card.universe, card.id, level_keys, card.horizon,
                         moved.rows(np.array([i for i, t in enumerate(moved.tickers) if t in written], dtype=int)))
        for ticker, why in problems.items():
            batch.problems[ticker] = InsufficientHistoryError(why)
        finite: list[GlobalForecast] = []
        broken: list[GlobalForecast] = []
        for item in forecasts:  # one pass: a membership test per item was 5,400 x 5,400 comparisons (1.8 s)
            (finite if _finite(item) else broken).append(item)
        for item in broken:  # never stored: a file of nulls is one the product could not read back
            batch.problems[item.ticker] = CorruptFileError(
                f"the universe model {card.id} forecast no number for {item.ticker} (NaN or infinite weights?); "
                f"retrain it: forecast train --universe {card.universe} --preset global")
        from forecast.workflow.price_limits import cap_forecasts

        cap_forecasts(workspace, [item.result for item in finite])  # in place: a China ticker's band stops at its limits
        for item in finite:
            batch.forecasts[item.ticker] = item
        if save and finite:
            from forecast.workflow.serving import of_record

            chosen = set(record) if record is not None else of_record(workspace, [item.ticker for item in finite], card.id, universe)
            for item in finite:
                item.result.of_record = item.ticker in chosen
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
                      membership=None, progress: Callable[[str], None] | None = None,
                      status: Callable[[str], None] | None = None) -> CrossBacktestResult:
    """Cross-sectional backtest of ``universe``; the result is saved under ``backtests/@<universe>/``.

    ``progress`` hears of each refit done, ``status`` of what is starting (from the first second)."""
    if status:
        status(f"loading {len(tickers):,} tickers' bars")
    read = load_panel(MarketStore(workspace), list(tickers), adjust=settings.network.adjust)
    panel = read.frame
    if panel.empty:
        raise NoDataError(f"no stored bars for any member of {universe}; run: forecast fetch --universe {universe}")
    result = cross_backtest(panel, settings, membership, progress, status)
    if read.problems:  # in the record and the JSON, not only in a log line cut after five
        result.notes.append(f"skipped {len(read.problems)} of {len(tickers)} ticker(s) whose stored bars cannot be read "
                            f"({'; '.join(read.problems)}); run: forecast doctor")
    daily = result.daily_frame()
    save_cross_backtest(workspace, result.record(universe), daily)
    if len(daily):
        from forecast.outputs.cross_charts import render_cross_backtest

        render_cross_backtest(daily, f"{universe}: {result.schedule}, test {result.test_range[0]}..{result.test_range[1]}, "
                                     f"horizon {settings.horizon}", workspace.cross_backtest_chart(universe))
    return result
