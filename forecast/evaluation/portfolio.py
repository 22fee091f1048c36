"""Portfolio backtest: what following a model's ranking would have done, with trades that could really happen.

``simulate(scores, market, strategy, costs)`` promises:

* **Timing.** ``scores`` is date x ticker; a row holds the scores known at the
  CLOSE of that date (NaN = not scored). They are traded at the OPEN of the
  next trading day (the next row of ``market.open``), at raw (unadjusted)
  prices. A rebalance is due on the first day with any score and then every
  ``rebalance_every`` trading days; a due rebalance on a day with no score waits
  for the next day that has one.
* **Span.** The NAV starts at the close of the first scored day, all cash
  (= ``capital``), and ends ``rebalance_every`` trading days after the last
  rebalance (the last scores are held one full period), or on the market's
  last day if that comes first.
* **TopkDropout** (Qlib's, with ``max_drop`` as its ``n_drop``). At a
  rebalance the names scored that day are ranked, best first (ties in column
  order). Held names still in the top k are kept; of held names outside it the
  worst-scored are sold first, at most ``max_drop`` of them (a held name with
  no score counts as worst); then the best-scored names not held are bought
  until k names are held: never more than the names actually sold plus the
  empty slots. The first rebalance fills k names.
* **Equal weight, whole lots.** Sells sell the whole holding. The cash after
  the sells is split equally over the names to buy (``budget``); each is bought
  at the open in whole lots, best-scored first: ``shares = floor(budget /
  (price x lot)) x lot``, less one lot at a time while value + cost exceeds the
  cash left, so cash never goes negative. Weights of kept names are not
  rebalanced.
* **Trading rules** come as boolean frames (the trade day's row applies).
  A buy where ``can_buy`` is False (limit-up) or the name is suspended (or has
  no open) is skipped and its slot stays cash until the next rebalance; a sell
  where ``can_sell`` is False (limit-down) or the name is suspended is not done
  and the name stays held. Each is counted in ``blocked``, as is a buy whose
  budget is below one lot (``not_affordable``). A held name with no close is
  valued at its last known close.
* **Corporate actions.** With ``market.adjustment`` (a cumulative hfq-style
  factor), held shares are multiplied by ``f_t / f_(t-1)`` at the start of each
  day, so an ex-dividend day or a split leaves the NAV unchanged (the dividend
  is reinvested in the name, fractional shares allowed).
* **Costs.** Each order pays ``costs.order_cost(trade_day, value, sell)``,
  out of cash.
* **Benchmark.** ``benchmark_returns`` (date -> return; missing days 0)
  compounded from ``capital``; when None, the equal-weight universe of
  ``market``: each day the mean, over the tickers with a close that day, of
  the adjusted close over the last known adjusted close, less one.
  ``index_close`` (when given) is scaled to ``capital`` at its first value in
  the span.
* **Metrics** (NaN when undefined): total_return; annual_return (geometric,
  252 days a year); benchmark_total_return, benchmark_annual_return;
  excess_annual_return (mean daily excess over the benchmark x 252);
  information_ratio (mean / std of daily excess x sqrt 252); max_drawdown
  (a negative fraction); annual_turnover (one-way: (bought + sold) / 2 over
  the average NAV, per 252 days); cost_drag (costs over the average NAV, per
  252 days); total_cost; hit_rate (the share of rebalance periods, close of
  one rebalance day to close of the next, in which the NAV beat the
  benchmark); days (NAV days); trades; and over the index (NaN without one):
  index_annual_return, excess_annual_return_over_index,
  information_ratio_over_index.
* **Bad input** raises ``BadInputError`` with one line: no day with any
  score; ``top_k`` above the number of tickers scored on any day; a capital below the
  cheapest lot (with its costs) on the first rebalance; scores on days or of
  tickers the market has no prices for. A day with no scores is skipped.

The ``Market`` and its checks, aligned into numpy arrays, are ``portfolio_inputs``'.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecast.errors import BadInputError
from forecast.evaluation.costs import Costs
from forecast.evaluation.portfolio_inputs import Market, MarketArrays, market_arrays
from forecast.maths.performance import portfolio_metrics

TRADE_COLUMNS = ["date", "ticker", "side", "shares", "price", "value", "cost"]
POSITION_COLUMNS = ["date", "ticker", "shares", "close", "value", "weight"]
BLOCKED_KEYS = ("buy_at_limit_up", "sell_at_limit_down", "suspended_held", "suspended_not_bought", "not_affordable")


@dataclass(frozen=True)
class Strategy:
    top_k: int = 20  # hold the top k names by score, equal weight
    rebalance_every: int = 5  # trading days between rebalances (the 5-day label's horizon)
    max_drop: int = 5  # at most this many names replaced per rebalance (Qlib's TopkDropout n_drop)
    capital: float = 1_000_000.0
    lot: int = 100  # shares per lot (100 for A-shares, 1 elsewhere)

    def __post_init__(self) -> None:
        for name in ("top_k", "rebalance_every", "max_drop", "lot"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise BadInputError(f"{name} must be a whole number >= 1, not {value!r}")
        capital = self.capital
        if isinstance(capital, bool) or not isinstance(capital, (int, float, np.number)) or not math.isfinite(capital) or capital <= 0:
            raise BadInputError(f"capital must be a number > 0, not {capital!r}")


@dataclass
class PortfolioResult:
    nav: pd.Series
    benchmark: pd.Series
    index: pd.Series | None
    positions: pd.DataFrame
    trades: pd.DataFrame
    blocked: dict[str, int]
    metrics: dict[str, float]
    strategy: Strategy
    costs: Costs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metrics, blocked counts, strategy, costs, first and last day, trade count; NaN as None."""
        return {
            "first_day": f"{self.nav.index[0]:%Y-%m-%d}", "last_day": f"{self.nav.index[-1]:%Y-%m-%d}",
            "trades": len(self.trades), "metrics": {name: _json_number(v) for name, v in self.metrics.items()},
            "blocked": dict(self.blocked), "strategy": dataclasses.asdict(self.strategy), "costs": self.costs.to_dict(),
        }

    def daily_frame(self) -> pd.DataFrame:
        """Date-indexed: nav, benchmark, (index), drawdown, daily_return, excess_return, turnover (one-way traded value
        over the previous day's NAV), cost."""
        frame = pd.DataFrame({"nav": self.nav, "benchmark": self.benchmark})
        if self.index is not None:
            frame["index"] = self.index
        frame["drawdown"] = self.nav / self.nav.cummax() - 1
        frame["daily_return"] = self.nav.pct_change()
        frame["excess_return"] = frame["daily_return"] - self.benchmark.pct_change()
        by_day = self.trades.groupby("date")[["value", "cost"]].sum().reindex(self.nav.index, fill_value=0.0)
        frame["turnover"] = (by_day["value"] / 2 / self.nav.shift(1)).fillna(0.0)
        frame["cost"] = by_day["cost"].astype(float)
        frame.index.name = "date"
        return frame


def _json_number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# ---------------------------------------------------------------- the schedule and the choice


def _rebalance_days(scored: np.ndarray, every: int) -> list[int]:
    """Rows of the rebalances: the first scored day, then every ``every`` rows; a due day without scores waits for one."""
    days: list[int] = []
    due = 0
    for row in np.flatnonzero(scored):
        if row >= due:
            days.append(int(row))
            due = int(row) + every
    return days


@dataclass(frozen=True)
class _Order:
    """A rebalance's decision, traded at the next open: sells first, then buys from ``candidates`` until k are held."""

    sells: np.ndarray
    candidates: np.ndarray


def _choose(day_scores: np.ndarray, held: np.ndarray, strategy: Strategy) -> _Order:
    scored = np.flatnonzero(np.isfinite(day_scores))
    ranked = scored[np.argsort(-day_scores[scored], kind="stable")]
    held_rows = np.flatnonzero(held)
    outside = held_rows[~np.isin(held_rows, ranked[: strategy.top_k])]
    outside_scores = np.where(np.isfinite(day_scores[outside]), day_scores[outside], -np.inf)  # unscored = worst
    worst_first = outside[np.argsort(outside_scores, kind="stable")]
    return _Order(sells=worst_first[: strategy.max_drop], candidates=ranked[~np.isin(ranked, held_rows)])


# ---------------------------------------------------------------- the simulation


@dataclass
class _Book:
    """The account while the days run: cash, shares per ticker, and what was traded."""

    cash: float
    shares: np.ndarray
    trades: list[tuple[Any, ...]] = field(default_factory=list)
    blocked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BLOCKED_KEYS, 0))


def _execute(order: _Order, row: int, book: _Book, arrays: MarketArrays, strategy: Strategy, costs: Costs, day: str) -> None:
    for j in order.sells:
        if arrays.no_trade[row, j] or not arrays.can_sell[row, j]:
            book.blocked["suspended_held" if arrays.no_trade[row, j] else "sell_at_limit_down"] += 1
            continue
        price, shares = arrays.open[row, j], book.shares[j]
        value = shares * price
        cost = costs.order_cost(day, value, True)
        book.cash += value - cost
        book.shares[j] = 0.0
        book.trades.append((row, j, "sell", shares, price, value, cost))
    wanted = order.candidates[: max(0, strategy.top_k - int((book.shares > 0).sum()))]
    if len(wanted):
        budget = book.cash / len(wanted)
        for j in wanted:
            _buy(int(j), row, budget, book, arrays, strategy.lot, costs, day)


def _buy(j: int, row: int, budget: float, book: _Book, arrays: MarketArrays, lot: int, costs: Costs, day: str) -> None:
    if arrays.no_trade[row, j] or not arrays.can_buy[row, j]:
        book.blocked["suspended_not_bought" if arrays.no_trade[row, j] else "buy_at_limit_up"] += 1
        return
    price = float(arrays.open[row, j])
    lots = math.floor(budget / (price * lot) + 1e-9)  # the epsilon keeps 3000 / (10 x 100) at 3 lots, not 2.999...
    while lots > 0:  # the budget ignores costs: give back a lot until value and cost fit in the cash left
        value = lots * lot * price
        cost = costs.order_cost(day, value, False)
        if value + cost <= book.cash:
            break
        lots -= 1
    if lots == 0:
        book.blocked["not_affordable"] += 1
        return
    book.cash -= value + cost
    book.shares[j] = lots * lot
    book.trades.append((row, j, "buy", float(lots * lot), price, value, cost))



def simulate(scores: pd.DataFrame, market: Market, strategy: Strategy, costs: Costs,
             benchmark_returns: pd.Series | None = None, index_close: pd.Series | None = None) -> PortfolioResult:
    """Follow ``scores`` with ``strategy`` on ``market`` after ``costs``: the module docstring says how."""
    arrays = market_arrays(scores, market)
    rebalances = _rebalance_days(np.isfinite(arrays.scores).any(axis=1), strategy.rebalance_every)
    _check_tradable(arrays, rebalances, strategy, costs)
    start, end = rebalances[0], min(len(arrays.dates) - 1, rebalances[-1] + strategy.rebalance_every)
    days = arrays.dates.strftime("%Y-%m-%d")
    book = _Book(cash=float(strategy.capital), shares=np.zeros(len(arrays.tickers)))
    held = np.zeros((end - start + 1, len(arrays.tickers)))
    nav = np.zeros(end - start + 1)
    is_rebalance = set(rebalances)
    order: _Order | None = None
    for row in range(start, end + 1):
        book.shares *= arrays.share_ratio[row]  # row == start holds nothing yet
        if order is not None:
            _execute(order, row, book, arrays, strategy, costs, days[row])
            order = None
        nav[row - start] = book.cash + book.shares @ arrays.value_price[row]
        held[row - start] = book.shares
        if row in is_rebalance and row < end:
            order = _choose(arrays.scores[row], book.shares > 0, strategy)
    span = arrays.dates[start: end + 1]
    return _result(arrays, span, nav, held, book, rebalances, strategy, costs, benchmark_returns, index_close, start)


def _check_tradable(arrays: MarketArrays, rebalances: list[int], strategy: Strategy, costs: Costs) -> None:
    if not rebalances:
        raise BadInputError("no day has scores for any ticker: nothing to trade")
    scored_tickers = int(np.isfinite(arrays.scores).any(axis=0).sum())
    if strategy.top_k > scored_tickers:
        raise BadInputError(f"top_k is {strategy.top_k} but only {scored_tickers} tickers have scores: choose a top_k of at most {scored_tickers}")
    first, trade_row = rebalances[0], rebalances[0] + 1
    if trade_row >= len(arrays.dates):
        return  # no next open: nothing will be traded, so no lot to afford
    prices = np.where(np.isfinite(arrays.scores[first]) & (arrays.open[trade_row] > 0), arrays.open[trade_row], np.nan)
    if not np.isfinite(prices).any():
        return
    cheapest = int(np.nanargmin(prices))
    lot_value = float(prices[cheapest]) * strategy.lot
    lot_cost = lot_value + costs.order_cost(f"{arrays.dates[trade_row]:%Y-%m-%d}", lot_value, False)
    if strategy.capital < lot_cost:
        raise BadInputError(f"capital {strategy.capital:,.2f} is too small to buy one lot of any name: the cheapest, "
                            f"{arrays.tickers[cheapest]} ({strategy.lot} shares at {prices[cheapest]:,.2f}), costs {lot_cost:,.2f} with costs")


# ---------------------------------------------------------------- what comes out


def _result(arrays: MarketArrays, span: pd.DatetimeIndex, nav_values: np.ndarray, held: np.ndarray, book: _Book, rebalances: list[int],
            strategy: Strategy, costs: Costs, benchmark_returns: pd.Series | None, index_close: pd.Series | None,
            start: int) -> PortfolioResult:
    capital = float(strategy.capital)
    nav = pd.Series(nav_values, index=span, name="nav")
    benchmark = _benchmark(arrays, span, start, capital, benchmark_returns)
    index = _scaled_index(index_close, span, capital)
    trades = _trades_frame(book.trades, arrays)
    metrics = portfolio_metrics(nav, benchmark, index, trades["value"].to_numpy(), trades["cost"].to_numpy(),
                                [r - start for r in rebalances])
    return PortfolioResult(nav=nav, benchmark=benchmark, index=index, positions=_positions_frame(held, arrays, span, start, nav_values),
                           trades=trades, blocked=dict(book.blocked), metrics=metrics, strategy=strategy, costs=costs)


def _benchmark(arrays: MarketArrays, span: pd.DatetimeIndex, start: int, capital: float, given: pd.Series | None) -> pd.Series:
    if given is None:
        returns = arrays.benchmark_return[start: start + len(span)].copy()
    else:
        series = pd.Series(given, dtype=float).set_axis(pd.DatetimeIndex(given.index))
        returns = series.reindex(span).fillna(0.0).to_numpy()
    returns[0] = 0.0  # the NAV starts at this close: the return into it is not the portfolio's
    return pd.Series(capital * np.cumprod(1 + returns), index=span, name="benchmark")


def _scaled_index(index_close: pd.Series | None, span: pd.DatetimeIndex, capital: float) -> pd.Series | None:
    if index_close is None:
        return None
    series = pd.Series(index_close, dtype=float).set_axis(pd.DatetimeIndex(index_close.index)).sort_index()
    on_span = series.reindex(series.index.union(span)).ffill().reindex(span)
    first = on_span.first_valid_index()
    if first is None:
        raise BadInputError(f"index_close has no value on or before {span[-1]:%Y-%m-%d}")
    return (on_span / on_span[first] * capital).rename("index")


def _trades_frame(trades: list[tuple[Any, ...]], arrays: MarketArrays) -> pd.DataFrame:
    if not trades:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in zip(TRADE_COLUMNS, ["datetime64[ns]", object, object, float, float, float, float])})
    frame = pd.DataFrame(trades, columns=TRADE_COLUMNS)
    frame["date"] = arrays.dates[frame["date"].to_numpy()]
    frame["ticker"] = np.asarray(arrays.tickers, dtype=object)[frame["ticker"].to_numpy()]
    return frame


def _positions_frame(held: np.ndarray, arrays: MarketArrays, span: pd.DatetimeIndex, start: int, nav: np.ndarray) -> pd.DataFrame:
    rows, cols = np.nonzero(held > 0)
    shares = held[rows, cols]
    close = arrays.value_price[rows + start, cols]
    return pd.DataFrame({"date": span[rows], "ticker": np.asarray(arrays.tickers, dtype=object)[cols], "shares": shares,
                         "close": close, "value": shares * close, "weight": shares * close / nav[rows]})


PORTFOLIO_SETTINGS = ("top_k", "rebalance_every", "max_drop", "capital")  # [portfolio] in forecast.toml
A_SHARE_LOT = 100


def strategy_for(table: Mapping[str, Any], overrides: Mapping[str, Any], china: bool) -> Strategy:
    """The Strategy: ``[portfolio]`` < ``overrides`` (the flags; None = not given); whole lots of 100 shares for China."""
    values = {**table, **{k: v for k, v in overrides.items() if v is not None}}
    unknown = sorted(set(values) - set(PORTFOLIO_SETTINGS))
    if unknown:
        raise BadInputError(f"[portfolio]: unknown setting(s) {', '.join(unknown)}; known: {', '.join(PORTFOLIO_SETTINGS)}")
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInputError(f"[portfolio] {key} must be a number, not {value!r}")
    try:
        return Strategy(**values, lot=A_SHARE_LOT if china else 1)
    except TypeError as exc:  # a float where a count is meant is the dataclass' own check
        raise BadInputError(f"[portfolio]: {exc}") from None


def portfolio_problems(table: Mapping[str, Any]) -> list[str]:
    """Every problem of a ``[portfolio]`` table, one line (forecast.toml is checked as a whole)."""
    try:
        strategy_for(table, {}, china=False)
    except BadInputError as exc:
        return [str(exc) if str(exc).startswith("[portfolio]") else f"[portfolio]: {exc}"]
    return []
