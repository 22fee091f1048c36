"""Labels and baseline signals on a (date, ticker) panel: pure pandas, no look-ahead.

A panel is qlib's layout: a Series (or DataFrame) indexed by a sorted
``(date, ticker)`` MultiIndex, level 0 the date and level 1 the ticker, one
row per ticker per day it traded. Every shift below moves along a ticker's own
rows (its trading days), never along the calendar: "5 days ahead" is the
ticker's 5th next row, wherever the calendar put it.

Returns are simple returns, ``close[t+k] / close[t] - 1``, by default: the
quintile spread of a simple label is what an equal-weighted portfolio earned,
and issue 17's anchors were measured on it (their spreads are reproduced only
with simple labels). A Rank IC is the same either way (the log is monotone).
``kind="log"`` gives ``log(close[t+k] / close[t])``, the product's training
target (``forecast.maths.windows``), which adds up across days.

What it promises: a signal at date t reads closes at t and before only (a
property test changes every later price and finds each signal at t unchanged).
``forward_returns`` is the one function that looks ahead, on purpose: it is the
label. What it does not: survivorship. A panel holds the tickers someone chose;
``universe_mask`` keeps point-in-time members when a membership is known.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd

from forecast.errors import BadInputError

ReturnKind: TypeAlias = Literal["log", "simple"]
Membership: TypeAlias = Callable[[dt.date], Iterable[str]] | pd.Series | pd.DataFrame

TRADING_YEAR = 252  # rows, the usual count of US trading days in a year
SKIP_MONTH = 21  # rows: 12-1 momentum leaves out the last month, where short-term reversal lives


def check_panel(panel: pd.Series | pd.DataFrame, what: str = "panel") -> None:
    """Raise BadInputError unless ``panel`` has a sorted, unique two-level (date, ticker) index."""
    index = panel.index
    if not isinstance(index, pd.MultiIndex) or index.nlevels != 2:
        raise BadInputError(f"{what} needs a (date, ticker) MultiIndex, not {type(index).__name__} with {index.nlevels} level(s)")
    if not index.is_monotonic_increasing:
        raise BadInputError(f"{what} is not sorted by (date, ticker): call .sort_index() first")
    if index.has_duplicates:
        first = index[index.duplicated()][0]
        raise BadInputError(f"{what} has more than one row for {first[1]} on {first[0]}")


def _close(close: pd.Series) -> pd.Series:
    if not isinstance(close, pd.Series):
        raise BadInputError(f"expected a Series of closes, not {type(close).__name__}: pass panel['close']")
    check_panel(close, "close")
    values = close.astype("float64")
    if (values <= 0).any():
        bad = values[values <= 0].index[0]
        raise BadInputError(f"close must be positive for returns; {bad[1]} on {bad[0]} is {values[bad]}")
    return values


def _ticker_shift(values: pd.Series, rows: int) -> pd.Series:
    # Sorted by (date, ticker), each ticker's rows are in date order, so a
    # grouped shift moves along the ticker's own trading days.
    return values.groupby(level=1, sort=False).shift(rows)


def _change(later: pd.Series, earlier: pd.Series, kind: ReturnKind) -> pd.Series:
    if kind == "log":
        return np.log(later / earlier)
    if kind == "simple":
        return later / earlier - 1.0
    raise BadInputError(f"return kind must be 'log' or 'simple', not {kind!r}")


def _positive_rows(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise BadInputError(f"{name} must be a whole number of rows >= 1, not {value!r}")


def forward_returns(close: pd.Series, horizon: int, kind: ReturnKind = "simple") -> pd.Series:
    """The H-row forward return per (date, ticker): ``close[t+H] / close[t] - 1`` on the ticker's own rows.

    NaN for a ticker's last ``horizon`` rows, where the future is not in the
    panel. The label at t reads t+H: use it only as the realised value to score
    a signal made at t, never as an input.
    """
    _positive_rows(horizon, "horizon")
    values = _close(close)
    return _change(_ticker_shift(values, -horizon), values, kind).rename(f"forward_{horizon}")


def past_return(close: pd.Series, start: int, end: int = 0, kind: ReturnKind = "simple") -> pd.Series:
    """The return from ``start`` rows ago to ``end`` rows ago: ``close[t-end] / close[t-start] - 1``.

    NaN until the ticker has ``start`` earlier rows. Reads only rows at or
    before t.
    """
    _positive_rows(start, "start")
    if isinstance(end, bool) or not isinstance(end, int | np.integer) or not 0 <= end < start:
        raise BadInputError(f"end ({end!r}) must be a whole number of rows with 0 <= end < start ({start})")
    values = _close(close)
    later = values if end == 0 else _ticker_shift(values, end)
    return _change(later, _ticker_shift(values, start), kind)


def momentum_12_1(close: pd.Series) -> pd.Series:
    """12-1 momentum: the return from 252 to 21 rows before t (a year, less the last month)."""
    return past_return(close, TRADING_YEAR, SKIP_MONTH).rename("momentum_12_1")


def momentum(close: pd.Series, window: int = 20) -> pd.Series:
    """Momentum: the return over the last ``window`` rows, ``close[t] / close[t-window] - 1``."""
    return past_return(close, window).rename(f"momentum_{window}")


def reversal(close: pd.Series, window: int = 5) -> pd.Series:
    """Short-term reversal: minus the return over the last ``window`` rows (losers are expected to bounce)."""
    return (-past_return(close, window)).rename(f"reversal_{window}")


def naive(close: pd.Series) -> pd.Series:
    """The naive forecast: an expected return of zero for every (date, ticker).

    A constant ranks nothing: ``forecast.maths.cross_section`` gives it a NaN IC on
    every day (the correlation with a constant is undefined, not 0), so its
    summary has no days rather than a flattering or damning 0.
    """
    check_panel(close, "close")
    return pd.Series(0.0, index=close.index, name="naive")


def demean_by_date(values: pd.Series) -> pd.Series:
    """``values`` minus its mean across tickers on the same date (NaNs stay NaN and do not count)."""
    check_panel(values)
    return values - values.groupby(level=0, sort=False).transform("mean")


def rank_by_date(values: pd.Series) -> pd.Series:
    """Cross-sectional rank per date, scaled to [-0.5, 0.5]: ``(rank - 1) / (n - 1) - 0.5``.

    Ties share their average rank; NaNs stay NaN and do not count in n. A date
    with one valid value gets 0. The scale makes a ranked target comparable
    across dates with different numbers of tickers.
    """
    check_panel(values)
    by_date = values.groupby(level=0, sort=False)
    ranks = by_date.rank(method="average")
    counts = by_date.transform("count")
    scaled = (ranks - 1.0) / (counts - 1.0) - 0.5
    return scaled.where(counts > 1, 0.0).where(values.notna())


def universe_mask(panel: pd.Series | pd.DataFrame, membership: Membership) -> pd.Series | pd.DataFrame:
    """The rows of ``panel`` whose ticker was a member of the universe on that row's date.

    ``membership`` is one of:
    - a callable ``day -> tickers`` (``IndexMembership.on`` fits), called once per date;
    - a boolean Series on a (date, ticker) MultiIndex;
    - a boolean DataFrame, dates down and tickers across.

    A (date, ticker) the membership does not mention is not a member: unknown
    is excluded, so a missing record cannot bring a future constituent in.
    """
    check_panel(panel)
    dates = panel.index.get_level_values(0)
    tickers = panel.index.get_level_values(1)
    if callable(membership):
        keep = np.zeros(len(panel), dtype=bool)
        for day in dates.unique():
            rows = dates == day
            members = set(membership(pd.Timestamp(day).date()))
            keep[rows] = tickers[rows].isin(members)
    elif isinstance(membership, pd.DataFrame):
        stacked = membership.stack(future_stack=True)
        keep = _lookup(stacked, panel.index)
    elif isinstance(membership, pd.Series):
        keep = _lookup(membership, panel.index)
    else:
        raise BadInputError(f"membership must be a callable, a Series or a DataFrame, not {type(membership).__name__}")
    return panel[keep]


def _lookup(flags: pd.Series, index: pd.MultiIndex) -> np.ndarray:
    if not isinstance(flags.index, pd.MultiIndex) or flags.index.nlevels != 2:
        raise BadInputError("a membership Series needs a (date, ticker) MultiIndex")
    if flags.dtype != bool:
        raise BadInputError(f"membership flags must be booleans, not {flags.dtype}")
    return flags.reindex(index, fill_value=False).to_numpy(dtype=bool)
