"""What pooling makes of bars, rows in long order (ticker, then date): each ticker's own inputs, and the slow signals
and daily statistics that are compared across tickers.

Pure numpy over whole blocks of rows: a ticker's rows are contiguous and
``start`` holds each row's ticker's first row, so a shift or a trailing window
is index arithmetic that never crosses into another ticker. A trailing window
is a difference of running sums over the block, so its last bits depend on the
rows before it in the block: a block is always pooled as one (``data.pool``,
``model.pooled_against``), never re-cut, so that one panel's inputs are the
same bits every time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

SEQUENCE_FEATURES = ("return", "excess_return", "close_open", "high_low", "volume")
STATIC_FEATURES = ("momentum_12_1", "momentum_60", "momentum_20", "reversal_5", "volatility_60")
VOL_WINDOW = 60
VOLUME_WINDOW = 20
CLIP = 5.0  # normalised inputs beyond 5 sigma are glitches or limit days: clipped, not learned from


def shift(values: np.ndarray, start: np.ndarray, k: int) -> np.ndarray:
    """``values`` shifted by ``k`` rows within each ticker (k > 0: the past, k < 0: the future); NaN across tickers."""
    out = np.full(values.shape, np.nan, dtype="float64")
    n = len(values)
    position = np.arange(n) - start
    if k > 0:
        out[k:] = values[:-k]
        out[position < k] = np.nan
    elif k < 0:
        ahead = np.arange(n) - k
        ok = ahead < n
        ok[ok] = start[ahead[ok]] == start[ok]  # the row k ahead belongs to the same ticker
        out[ok] = values[ahead[ok]]
    else:
        out[:] = values
    return out



def _rolling(values: np.ndarray, start: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean and sample std over ``window`` rows of the same ticker, NaN until the window is full.

    NaN values count as missing; a window needs at least two thirds of its rows.
    """
    present = np.isfinite(values)
    filled = np.where(present, values, 0.0)
    sums = np.concatenate([[0.0], np.cumsum(filled)])
    squares = np.concatenate([[0.0], np.cumsum(filled * filled)])
    counts = np.concatenate([[0], np.cumsum(present)])
    n = len(values)
    idx = np.arange(n)
    lo = np.maximum(idx - window + 1, start)
    count = counts[idx + 1] - counts[lo]
    total = sums[idx + 1] - sums[lo]
    total_sq = squares[idx + 1] - squares[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        var = (total_sq - count * mean * mean) / (count - 1)
    full = (idx - start + 1 >= window) & (count >= max(2, (2 * window) // 3))
    mean = np.where(full, mean, np.nan)
    std = np.where(full, np.sqrt(np.maximum(var, 0.0)), np.nan)
    return mean, std


def rank_within(values: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Percentile rank of each value among its day's values, centred to [-0.5, 0.5]; ties share their mean rank; NaN stays NaN.

    Vectorised with one sort (a groupby rank over 5,400 tickers x years of days takes seconds).
    """
    out = np.full(len(values), np.nan)
    ok = np.flatnonzero(np.isfinite(values))
    if not len(ok):
        return out
    order = ok[np.lexsort((values[ok], day[ok]))]
    d, v = day[order], values[order]
    new_day = np.r_[True, d[1:] != d[:-1]]
    new_value = new_day | np.r_[True, v[1:] != v[:-1]]
    day_start = np.maximum.accumulate(np.where(new_day, np.arange(len(order)), 0))
    position = np.arange(len(order)) - day_start  # 0-based rank within the day, before ties
    tie_start = np.maximum.accumulate(np.where(new_value, np.arange(len(order)), 0))
    tie_id = np.cumsum(new_value) - 1
    tie_size = np.bincount(tie_id)
    mean_rank = (position - (np.arange(len(order)) - tie_start)) + (tie_size[tie_id] - 1) / 2.0  # average of the tie's ranks
    day_id = np.cumsum(new_day) - 1
    count = np.bincount(day_id)[day_id]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[order] = np.where(count > 1, mean_rank / np.maximum(count - 1, 1) - 0.5, 0.0)
    return out


def demean_within(values: np.ndarray, day: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame({"v": values, "d": day})
    return values - frame.groupby("d")["v"].transform("mean").to_numpy()


def slow_signals(log_close: np.ndarray, sigma_now: np.ndarray, start: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(R, S) the slow signals of ``STATIC_FEATURES`` at ``rows`` (None: every row), before any ranking: 12-1, 60- and
    20-day momentum, 5-day reversal (log returns) and the log of the trailing volatility ``sigma_now``; NaN where a
    ticker's history is too short. ``log_close``, ``sigma_now`` (N,) in long order; ``start`` (N,): the index of each
    row's ticker's first row.

    The one owner of these signals: training (``data.pool``) and the batch's universe normalisation
    (``model.pooled_against``) both call it, so they can never disagree.
    """
    rows = np.arange(len(log_close)) if rows is None else rows
    position = rows - start[rows]

    def back(k: int) -> np.ndarray:  # the log close k rows earlier, NaN before the ticker's first row
        out = np.full(len(rows), np.nan)
        known = position >= k
        out[known] = log_close[rows[known] - k]
        return out

    now = log_close[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack([back(21) - back(252), now - back(60), now - back(20), back(5) - now, np.log(sigma_now[rows])])


@dataclass(frozen=True)
class OwnInputs:
    """What pooling makes of each ticker's bars alone, rows in long order: nothing here depends on another ticker."""

    tickers: np.ndarray  # (N,)
    dates: np.ndarray  # (N,) as the panel's date level holds them
    start: np.ndarray  # (N,) the index of the row's ticker's first row
    close: np.ndarray  # (N,) float64
    log_close: np.ndarray
    returns: np.ndarray  # log returns
    sigma_now: np.ndarray  # trailing volatility of the returns up to the row
    sigma: np.ndarray  # the volatility known the day before (NaN where about 0): what a day's inputs are divided by
    close_open: np.ndarray
    high_low: np.ndarray
    volume_rel: np.ndarray  # log volume against its trailing mean known the day before

    def __len__(self) -> int:
        return len(self.dates)

    def slow(self, static_from=None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, their ``slow_signals``): every row, or those on and after ``static_from`` (the only rows a forecast
        ranks; the others are unknown, the day's middle)."""
        if static_from is None:
            rows = np.arange(len(self))
        else:
            rows = np.flatnonzero(self.dates >= np.datetime64(pd.Timestamp(static_from), "ns"))
        return rows, slow_signals(self.log_close, self.sigma_now, self.start, rows)


@dataclass(frozen=True)
class Compared:
    """What is compared across tickers, for the rows of an ``OwnInputs``."""

    excess: np.ndarray  # (N,) the row's return less its day's mean return
    static_rows: np.ndarray  # (R,) the rows whose slow signals were ranked (the others: the day's middle, 0)
    static: np.ndarray  # (R, S) those rows' ranks within their day, centred to [-0.5, 0.5]; NaN: unknown


def compared_within(own: OwnInputs, static_from=None) -> Compared:
    """Each day's mean return and the ranks of the slow signals over ``own``'s own rows (a panel pooled alone)."""
    day = pd.factorize(own.dates)[0]
    with np.errstate(invalid="ignore"):
        excess = own.returns - pd.Series(own.returns).groupby(day).transform("mean").to_numpy()
    rows, slow = own.slow(static_from)
    static = np.column_stack([rank_within(slow[:, j], day[rows]) for j in range(slow.shape[1])])
    return Compared(excess, rows, static)


def long_order(panel: pd.DataFrame, first: Collection[str] | None = None) -> tuple[np.ndarray, int]:
    """(the positions of ``panel``'s rows in long order, how many rows belong to ``first``'s tickers).

    Long order is ``panel.swaplevel().sort_index()``'s (ticker, then date),
    computed on the index's integer codes (sorting the (ticker, date) index
    itself costs a second at 5,400 tickers); with ``first``, its tickers' rows
    come first, each part in long order.
    """
    index = panel.index
    date_codes, ticker_codes = (np.asarray(codes, dtype="int64") for codes in index.codes[:2])
    ranks = []
    for level in index.levels[:2]:
        rank = np.empty(len(level), dtype="int64")
        rank[np.argsort(level.to_numpy(), kind="stable")] = np.arange(len(level))
        ranks.append(rank)
    keys = [ranks[0][date_codes], ranks[1][ticker_codes]]
    if first is None:
        return np.lexsort(keys), 0
    outside = ~index.levels[1].isin(list(first))[ticker_codes]
    return np.lexsort([*keys, outside]), int(len(outside) - np.count_nonzero(outside))


def own_inputs(panel: pd.DataFrame, rows: np.ndarray) -> OwnInputs:
    """``panel``'s ``rows`` (positions in long order, as ``long_order`` gives them, one block) and what each ticker's own
    bars make of them."""
    index = panel.index
    tickers = index.levels[1].to_numpy()[np.asarray(index.codes[1])[rows]]
    dates = index.levels[0].to_numpy()[np.asarray(index.codes[0])[rows]]
    n = len(rows)
    first = np.r_[True, tickers[1:] != tickers[:-1]] if n else np.zeros(0, dtype=bool)
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))

    def column(name: str) -> np.ndarray:
        return panel[name].to_numpy("float64")[rows]

    with np.errstate(divide="ignore", invalid="ignore"):
        close = column("close")
        log_close = np.log(np.where(close > 0, close, np.nan))
        returns = log_close - shift(log_close, start, 1)
        _, sigma_now = _rolling(returns, start, VOL_WINDOW)
        sigma = shift(sigma_now, start, 1)  # known the day before: a day's move does not scale itself
        sigma = np.where(sigma > 1e-6, sigma, np.nan)
        opens = column("open")
        close_open = np.log(close / np.where(opens > 0, opens, np.nan))
        lows = column("low")
        high_low = np.log(column("high") / np.where(lows > 0, lows, np.nan))
        volume = np.log1p(np.maximum(column("volume"), 0.0))
        volume_mean, _ = _rolling(volume, start, VOLUME_WINDOW)
        volume_rel = volume - shift(volume_mean, start, 1)
    return OwnInputs(tickers, dates, start, close, log_close, returns, sigma_now, sigma, close_open, high_low, volume_rel)
