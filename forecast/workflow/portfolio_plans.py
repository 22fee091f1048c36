"""``backtest --universe NAME --portfolio``: what following each model's ranking would have done, after costs.

The scores are the cross-sectional backtest's (``CrossBacktestResult.scores``:
each model's out-of-sample scores on the test days, walk-forward or with a
fixed split, on the members of each day). ``evaluation.portfolio.simulate``
trades them as a top-k portfolio; this module gathers what it needs from the
store and saves what it gives:

* raw open and close prices (lots, costs and price limits are about the prices
  traded at; an imported series has only its own basis, and is traded on it),
  and the adjustment between raw and adjusted closes (a dividend is not a loss);
* for China tickers, the trading status of each day (``data.trading_status``:
  limit-up and limit-down opens, suspensions), from tushare's facts where
  stored (``data.trading_facts``), else by rule;
* the benchmark: the universe's equal-weight return over the members of each
  day, and the index when one is stored (000300.SH for csi300);
* the strategy: ``[portfolio]`` in forecast.toml < the command's flags; the
  costs: A-share or plain defaults < ``[costs]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forecast.errors import BadInputError, NoDataError
from forecast.workspace import Workspace

MIN_DISTINCT_SCORES = 2  # a model whose scores are one number on every day (naive) ranks nothing: nothing to trade


@dataclass
class PortfolioRun:
    """Each model's simulated portfolio, and how it was run (what the record stores beside them)."""

    results: dict[str, Any]  # model -> PortfolioResult
    run: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def is_china_universe(tickers: Sequence[str]) -> bool:
    from forecast.data.trading_rules import is_china

    return bool(tickers) and all(is_china(t) for t in tickers)


def _wide(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[column].unstack("ticker").sort_index()


def market_for(workspace: Workspace, tickers: Sequence[str], start: pd.Timestamp, china: bool,
               user_rates: Mapping[str, float] | None = None) -> tuple[Any, list[str]]:
    """The Market from ``start`` to the last stored day: raw prices where stored raw, the adjustment, the trading status
    (China's rules, and the limits ``[limits]`` sets for other tickers)."""
    from forecast.data.panel import load_panel
    from forecast.data.store import MarketStore
    from forecast.evaluation.portfolio_inputs import Market

    store = MarketStore(workspace)
    raw_tickers = [t for t in tickers if store.head(t).price_basis == "raw"]
    adjusted = load_panel(store, list(tickers), start=start, adjust="qfq").frame
    if adjusted.empty:
        raise NoDataError("no stored bars in the test period")
    open_, close = _wide(adjusted, "open"), _wide(adjusted, "close")
    adjustment = pd.DataFrame(1.0, index=close.index, columns=close.columns)
    if raw_tickers:
        raw = load_panel(store, raw_tickers, start=start, adjust="none").frame
        raw_open, raw_close = (_wide(raw, c).reindex(index=close.index) for c in ("open", "close"))
        adjustment[raw_close.columns] = close[raw_close.columns] / raw_close
        open_[raw_open.columns], close[raw_close.columns] = raw_open, raw_close
    notes: list[str] = []
    status = None
    if china or user_rates:
        status, notes = _trading_status(workspace, open_, close, user_rates)
    return Market(open_, close, adjustment.ffill(),
                  can_buy=None if status is None else status.can_buy(),
                  can_sell=None if status is None else status.can_sell(),
                  suspended=None if status is None else status.suspended), notes


def _trading_status(workspace: Workspace, open_: pd.DataFrame, close: pd.DataFrame,
                    user_rates: Mapping[str, float] | None = None) -> tuple[Any, list[str]]:
    """The trading status of each day: for A-shares tushare's stored facts where there are some, else the rules alone;
    for other tickers the limits the user set."""
    from forecast.data.trading_facts import load_facts
    from forecast.data.trading_rules import is_china
    from forecast.data.trading_status import trading_status
    from forecast.data.universe_cache import cached_list_dates

    if not any(is_china(t) for t in close.columns):  # only the user's limits apply: no A-share facts to miss
        return trading_status(open_, close, user_rates=user_rates), [f"price limits from [limits] in forecast.toml for "
                                                                     f"{len(user_rates or {})} ticker(s)"]
    facts = load_facts(workspace, list(close.columns))
    notes = [f"{what}: none stored; {fallback}" for what, stored, fallback in (
        ("stk_limit", facts.stk_limit, "limit prices by rule from the previous close"),
        ("suspend_d", facts.suspensions, "a listed ticker with no bar on a session counts as suspended"),
        ("namechange", facts.names, "no ST days known (their +-5 % limits are not applied)")) if stored is None]
    status = trading_status(open_, close, stk_limit=facts.stk_limit, suspensions=facts.suspensions, names=facts.names,
                            listed=cached_list_dates(workspace), user_rates=user_rates)
    return status, notes


def benchmark_returns(adjusted_close: pd.DataFrame, membership: Any) -> pd.Series:
    """The universe's equal-weight close-to-close return of each day, over the members of the day before."""
    from forecast.maths.signals import universe_mask

    returns = adjusted_close.pct_change(fill_method=None)
    if membership is not None:
        held = universe_mask(adjusted_close.stack().rename("close").to_frame(), membership)
        members = pd.Series(True, index=held.index).unstack("ticker").reindex_like(adjusted_close).fillna(False).astype(bool)
        returns = returns.where(members.shift(1, fill_value=False))
    return returns.mean(axis=1, skipna=True).fillna(0.0)


def index_close(workspace: Workspace, universe: str, start: pd.Timestamp) -> pd.Series | None:
    """The close of the universe's index, named by its code, when its bars are stored (``forecast fetch 000300.SH``)."""
    from forecast.data.store import MarketStore
    from forecast.data.universe import index_code_for

    code = index_code_for(universe)
    store = MarketStore(workspace)
    if code is None or not store.has(code):
        return None
    frame = store.read_bars(code).frame
    frame = frame.set_index("date") if "date" in frame.columns else frame
    return frame["close"][frame.index >= start].rename(code)


def wide_scores(scores: pd.Series) -> pd.DataFrame:
    """(date, ticker) scores as date x ticker."""
    return scores.unstack(level=1).sort_index()


def ranks_something(scores: pd.DataFrame) -> bool:
    return bool((scores.nunique(axis=1) >= MIN_DISTINCT_SCORES).any())


def simulate_models(workspace: Workspace, universe: str, tickers: Sequence[str], cross: Any, membership: Any,
                    table: Mapping[str, Any], overrides: Mapping[str, Any], costs_table: Mapping[str, Any]) -> PortfolioRun:
    """Trade each model's scores of ``cross`` (a CrossBacktestResult) as a top-k portfolio, and save the result."""
    from forecast.evaluation.costs import costs_for
    from forecast.evaluation.portfolio import simulate, strategy_for
    from forecast.evaluation.portfolio_records import save_portfolio
    from forecast.workflow.price_limits import user_limits

    china = is_china_universe(tickers)
    strategy = strategy_for(table, overrides, china)
    costs = costs_for(tickers, costs_table)
    start = pd.Timestamp(cross.test_range[0])
    market, notes = market_for(workspace, tickers, start, china, user_limits(workspace, tickers))
    adjusted_close = market.close * market.adjustment
    benchmark = benchmark_returns(adjusted_close, membership)
    index = index_close(workspace, universe, start)
    results: dict[str, Any] = {}
    for model, series in cross.scores.items():
        scores = wide_scores(series).reindex(columns=market.close.columns)
        if not ranks_something(scores):
            notes.append(f"{model}: ranks nothing (one score for every ticker), so it trades nothing")
            continue
        results[model] = simulate(scores, market, strategy, costs, benchmark, index)
    if not results:
        raise BadInputError("no model ranked anything on the test days: nothing to trade")
    run = {"schedule": cross.schedule, "test_range": list(cross.test_range), "prices": "raw open of the day after the scores; valued at the close",
           "benchmark": "equal-weight universe" + (f" and {index.name}" if index is not None else ""),
           "china_rules": china, "notes": notes}
    save_portfolio(workspace, universe, run, results)
    _chart(workspace, universe, cross)
    return PortfolioRun(results, run, notes)


def _chart(workspace: Workspace, universe: str, cross: Any) -> None:
    from forecast.evaluation.portfolio_records import load_portfolio
    from forecast.outputs.portfolio_charts import render_portfolio

    stored = load_portfolio(workspace, universe)
    if stored is not None and len(stored[1]):
        render_portfolio(stored[1], f"{universe}: top-k portfolio, {cross.schedule}, test {cross.test_range[0]}..{cross.test_range[1]}",
                         workspace.portfolio_chart(universe))


def portfolio_backtest_universe(workspace: Workspace, universe: str, tickers: Sequence[str], settings: Any, reporter: Any,
                                table: Mapping[str, Any], overrides: Mapping[str, Any], costs_table: Mapping[str, Any]) -> tuple[Any, PortfolioRun]:
    """The cross-sectional backtest of ``universe`` (saved as without --portfolio), then each model's portfolio.

    The strategy and the costs are checked first: a bad setting fails in a
    second, not after an hour of refits.
    """
    from forecast.evaluation.costs import costs_for
    from forecast.evaluation.portfolio import strategy_for
    from forecast.workflow.universe_plans import cross_backtest_universe, point_in_time

    strategy = strategy_for(table, overrides, is_china_universe(tickers))
    costs_for(tickers, costs_table)
    if strategy.top_k > len(tickers):
        raise BadInputError(f"--top-k {strategy.top_k} is more names than {universe} has ({len(tickers)})")
    cross = cross_backtest_universe(workspace, universe, tickers, settings, reporter)
    return cross, simulate_models(workspace, universe, tickers, cross, point_in_time(workspace, universe), table, overrides, costs_table)
