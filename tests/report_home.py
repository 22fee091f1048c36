"""A workspace with stored forecasts and backtests for the report's tests and benchmark, built fast from a synthetic market.

The results are made by the real library (baseline forecasts, a walk-forward
backtest, a cross-sectional backtest), not written by hand, so the page is
tested on what ``predict`` and ``backtest`` really store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from synthetic_market import synthetic_bars, write_store

from forecast.data.store import MarketStore
from forecast.models.results import save_forecast


def build_home(home: Path, n_tickers: int, n_days: int = 300, seed: int = 7, backtested: int = 1,
               universe: str | None = None, others: Sequence[str] = ()) -> list[str]:
    """Store ``n_tickers`` synthetic series with a drift forecast each; backtest the first ``backtested``; return the codes.

    ``others``: tickers of other markets ("AAPL") that the last of the series are stored as, for a page of mixed homes.
    """
    from forecast.evaluation.backtest import save_backtest, walk_forward
    from forecast.models.predicting import predict_baseline

    bars = synthetic_bars(n_tickers, n_days, seed=seed)
    if others:
        bars.codes[-len(others):] = list(others)
    store = MarketStore(home)
    write_store(store, bars)
    for code in bars.codes:
        save_forecast(home, predict_baseline(store, code, "drift"))
    for code in bars.codes[:backtested]:
        save_backtest(home, walk_forward(store.read_bars(code).frame, code, models=("naive", "drift"), test_days=40, refit_every=20))
    if universe:
        from forecast.evaluation.cross_backtest import CrossSettings
        from forecast.workflow.universe_jobs import backtest_universe

        backtest_universe(store.workspace, universe, bars.codes,
                          CrossSettings(models=("momentum", "reversal"), test_days=40, refit_every=20, validation_days=20))
    return bars.codes
