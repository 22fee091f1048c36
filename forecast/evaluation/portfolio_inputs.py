"""What a portfolio backtest trades on, checked and aligned: the ``Market`` as numpy arrays (days x tickers).

``market_arrays(scores, market)`` checks the inputs (date-indexed tables of
numbers, each date once and ascending, no scores on days or of tickers the
market has no prices for, adjustment factors > 0; else ``BadInputError`` in
one line) and aligns them on the market's dates and tickers: the prices to
trade and to value at, the share ratio of each day's corporate actions, the
trading rules as flags (a day or ticker a rule's table does not name has no
rule against it) and the equal-weight universe's daily return.
``portfolio.simulate`` trades on what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.errors import BadInputError


@dataclass(frozen=True)
class Market:
    open: pd.DataFrame  # date x ticker, raw prices the trades happen at; NaN where no bar
    close: pd.DataFrame  # date x ticker, raw close, to value holdings
    adjustment: pd.DataFrame | None = None  # cumulative hfq-style factor; None = no corporate actions
    can_buy: pd.DataFrame | None = None  # False where a buy at that day's open is impossible (limit-up)
    can_sell: pd.DataFrame | None = None  # False where a sell at that day's open is impossible (limit-down)
    suspended: pd.DataFrame | None = None  # True where the ticker does not trade at all


# ---------------------------------------------------------------- the market as arrays


@dataclass(frozen=True)
class MarketArrays:
    """The market and the scores aligned on the market's dates and tickers, as numpy arrays (days x tickers)."""

    dates: pd.DatetimeIndex
    tickers: list[str]
    scores: np.ndarray
    open: np.ndarray
    value_price: np.ndarray  # the last known close (the open where no close was ever seen), 0 before any price
    share_ratio: np.ndarray  # f_t / f_(t-1): what a held share becomes at the start of day t
    can_buy: np.ndarray
    can_sell: np.ndarray
    no_trade: np.ndarray  # suspended, or no open to trade at
    benchmark_return: np.ndarray  # the equal-weight universe's close-to-close return of each day


def _dated(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise BadInputError(f"{what} must be a date x ticker table, not {type(frame).__name__}")
    try:
        index = pd.DatetimeIndex(frame.index)
    except (TypeError, ValueError):
        raise BadInputError(f"{what} must be indexed by dates") from None
    return frame.set_axis(index, axis=0)


def _numbers(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    try:
        return frame.astype(float)
    except (TypeError, ValueError):
        raise BadInputError(f"{what} must hold numbers") from None


def _flags(frame: pd.DataFrame | None, like: pd.DataFrame, default: bool, what: str) -> np.ndarray:
    if frame is None:
        return np.full(like.shape, default)
    aligned = _dated(frame, what).reindex(index=like.index, columns=like.columns, fill_value=default)
    if all(pd.api.types.is_bool_dtype(kind) for kind in aligned.dtypes):
        return aligned.to_numpy(dtype=bool)
    values = aligned.to_numpy(dtype=object)
    values[pd.isna(values)] = default  # a day or ticker the frame does not name (or leaves blank) has no rule against it
    return values.astype(bool)


def market_arrays(scores: pd.DataFrame, market: Market) -> MarketArrays:
    close = _numbers(_dated(market.close, "market.close"), "market.close")
    dates = close.index
    if not dates.is_monotonic_increasing or not dates.is_unique:
        raise BadInputError("market.close must have each date once, in ascending order")
    open_ = _numbers(_dated(market.open, "market.open").reindex(index=dates, columns=close.columns), "market.open")
    scores = _numbers(_dated(scores, "scores"), "scores")
    _check_scores_within(scores, close)
    factor = _adjustment(market.adjustment, close)
    no_open = ~(open_.to_numpy() > 0)  # no bar (NaN), or a price no trade happens at
    value_price = close.ffill().fillna(open_.ffill()).fillna(0.0)
    return MarketArrays(
        dates=dates, tickers=[str(t) for t in close.columns],
        scores=scores.reindex(index=dates, columns=close.columns).to_numpy(dtype=float),
        open=open_.to_numpy(), value_price=value_price.to_numpy(),
        share_ratio=(factor / factor.shift(1)).fillna(1.0).to_numpy(),
        can_buy=_flags(market.can_buy, close, True, "market.can_buy"),
        can_sell=_flags(market.can_sell, close, True, "market.can_sell"),
        no_trade=_flags(market.suspended, close, False, "market.suspended") | no_open,
        benchmark_return=_equal_weight_returns(close, factor),
    )


def _check_scores_within(scores: pd.DataFrame, close: pd.DataFrame) -> None:
    if not scores.index.is_unique:
        raise BadInputError("scores must have each date once")
    extra_days = scores.index.difference(close.index)
    if len(extra_days):
        raise BadInputError(f"scores have {len(extra_days)} day(s) the market has no prices for, the first {extra_days[0]:%Y-%m-%d}")
    extra_tickers = scores.columns.difference(close.columns)
    if len(extra_tickers):
        raise BadInputError(f"scores name {len(extra_tickers)} ticker(s) the market has no prices for: {', '.join(map(str, extra_tickers[:5]))}")


def _adjustment(adjustment: pd.DataFrame | None, close: pd.DataFrame) -> pd.DataFrame:
    """The cumulative factor carried over days without one; 1 where a ticker has none (no corporate action known)."""
    if adjustment is None:
        return pd.DataFrame(1.0, index=close.index, columns=close.columns)
    factor = _numbers(_dated(adjustment, "market.adjustment").reindex(index=close.index, columns=close.columns), "market.adjustment")
    values = factor.to_numpy()
    if (values[np.isfinite(values)] <= 0).any():
        raise BadInputError("market.adjustment must be > 0 where given")
    return factor.ffill().bfill().fillna(1.0)


def _equal_weight_returns(close: pd.DataFrame, factor: pd.DataFrame) -> np.ndarray:
    adjusted = (close * factor).to_numpy()
    previous = pd.DataFrame(adjusted).ffill().shift(1).to_numpy()  # a ticker back from a suspension counts its gap
    returns = adjusted / previous - 1
    counted = np.isfinite(returns)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counted, returns, 0.0).sum(axis=1) / counted.sum(axis=1)
    return np.nan_to_num(mean, nan=0.0)
