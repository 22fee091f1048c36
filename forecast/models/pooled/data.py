"""Pooled training data for one network across a universe (the global model).

A panel (rows indexed by ``(date, ticker)``, sorted, as ``panel.load_panel``
returns it) becomes three aligned arrays in *long* order, ticker by ticker and
date by date within a ticker:

* ``sequence`` (N, F): per-day inputs, normalised per ticker so that one network
  fits a ¥3 and a ¥1,800 stock: returns and ranges divided by the ticker's own
  trailing volatility (known the day before), volume against its own trailing mean;
* ``static`` (N, S): slower signals at each origin (12-1, 60- and 20-day
  momentum, 5-day reversal, volatility), ranked within the day into [-0.5, 0.5]:
  a 60-day window cannot see a year of momentum, these can;
* ``labels`` (N, H): the cumulative log return 1..H of the ticker's own next rows.

A window for row ``p`` is ``sequence[p - L + 1 : p + 1]``, rows of the same
ticker, so windows are index arithmetic over one array (``window_batch``) and
never all held at once: 5,400 tickers x 10 years is 13.5 M rows x F floats,
while their windows would be 60 times that.

Everything here is a pure function of the panel up to each row's date, apart
from ``labels``, which look ahead by design and are only used where a split
(``time_split``) has checked that their dates lie before the cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

SEQUENCE_FEATURES = ("return", "excess_return", "close_open", "high_low", "volume")
STATIC_FEATURES = ("momentum_12_1", "momentum_60", "momentum_20", "reversal_5", "volatility_60")
VOL_WINDOW = 60
VOLUME_WINDOW = 20
CLIP = 5.0  # normalised inputs beyond 5 sigma are glitches or limit days: clipped, not learned from
TARGETS = ("return", "demeaned", "rank")


@dataclass(frozen=True)
class PooledData:
    """A universe's rows in long order (ticker, then date) with inputs, labels and bookkeeping."""

    tickers: np.ndarray  # (N,) ticker of each row
    dates: np.ndarray  # (N,) datetime64[ns] of each row
    position: np.ndarray  # (N,) the row's index within its ticker (0 = first bar)
    sequence: np.ndarray  # (N, F) float32
    static: np.ndarray  # (N, S) float32
    labels: np.ndarray  # (N, H) float32 cumulative log returns, NaN where the future is not there
    label_dates: np.ndarray  # (N,) datetime64[ns]: the date of the row H ahead (NaT where none)
    sigma: np.ndarray  # (N,) float32 trailing daily volatility of log returns, known at the row's date
    close: np.ndarray  # (N,) float64 the row's close

    @property
    def horizon(self) -> int:
        return int(self.labels.shape[1])

    def __len__(self) -> int:
        return len(self.dates)


def _shift(values: np.ndarray, start: np.ndarray, k: int) -> np.ndarray:
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


def _rank_within(values: np.ndarray, day: np.ndarray) -> np.ndarray:
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


def _demean_within(values: np.ndarray, day: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame({"v": values, "d": day})
    return values - frame.groupby("d")["v"].transform("mean").to_numpy()


def pool(panel: pd.DataFrame, horizon: int, static_from=None) -> PooledData:
    """Turn a (date, ticker) panel of bars into pooled inputs and H-step labels (see the module docstring).

    ``static_from``: rank the static inputs only on and after this date (a
    forecast needs them at its origins alone; ranking every day of 5,400
    tickers costs seconds); rows before it get the day's middle, 0.
    """
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    long = panel[["open", "high", "low", "close", "volume"]].swaplevel().sort_index()
    tickers = long.index.get_level_values(0).to_numpy()
    dates = long.index.get_level_values(1).to_numpy()
    n = len(long)
    first = np.r_[True, tickers[1:] != tickers[:-1]] if n else np.zeros(0, dtype=bool)
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        close = long["close"].to_numpy("float64")
        log_close = np.log(np.where(close > 0, close, np.nan))
        returns = log_close - _shift(log_close, start, 1)
        _, sigma_now = _rolling(returns, start, VOL_WINDOW)
        sigma = _shift(sigma_now, start, 1)  # known the day before: a day's move does not scale itself
        sigma = np.where(sigma > 1e-6, sigma, np.nan)
        day = pd.factorize(dates)[0]
        excess = returns - pd.Series(returns).groupby(day).transform("mean").to_numpy()
        opens = long["open"].to_numpy("float64")
        highs, lows = long["high"].to_numpy("float64"), long["low"].to_numpy("float64")
        close_open = np.log(close / np.where(opens > 0, opens, np.nan))
        high_low = np.log(highs / np.where(lows > 0, lows, np.nan))
        volume = np.log1p(np.maximum(long["volume"].to_numpy("float64"), 0.0))
        volume_mean, _ = _rolling(volume, start, VOLUME_WINDOW)
        volume_rel = volume - _shift(volume_mean, start, 1)
        sequence = np.column_stack([returns / sigma, excess / sigma, close_open / sigma, high_low / sigma, volume_rel])
        sequence = np.nan_to_num(np.clip(sequence, -CLIP, CLIP), nan=0.0).astype("float32")

        static_raw = np.column_stack([
            _shift(log_close, start, 21) - _shift(log_close, start, 252),
            log_close - _shift(log_close, start, 60),
            log_close - _shift(log_close, start, 20),
            _shift(log_close, start, 5) - log_close,
            np.log(sigma_now),
        ])
        if static_from is not None:
            static_raw[dates < np.datetime64(pd.Timestamp(static_from), "ns")] = np.nan
        static = np.column_stack([_rank_within(static_raw[:, j], day) for j in range(static_raw.shape[1])])
        static = np.nan_to_num(static, nan=0.0).astype("float32")  # unknown: the day's middle

        labels = np.column_stack([_shift(log_close, start, -h) - log_close for h in range(1, horizon + 1)])
    label_dates = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    ahead = np.arange(n) + horizon
    ok = ahead < n
    ok[ok] = start[ahead[ok]] == start[ok]
    label_dates[ok] = dates[ahead[ok]]
    return PooledData(
        tickers=tickers, dates=dates.astype("datetime64[ns]"), position=np.arange(n) - start,
        sequence=sequence, static=static, labels=labels.astype("float32"), label_dates=label_dates,
        sigma=np.nan_to_num(sigma_now, nan=np.nanmedian(sigma_now) if np.isfinite(sigma_now).any() else 0.02).astype("float32"),
        close=close,
    )


def targets(data: PooledData, kind: str, known_until=None) -> np.ndarray:
    """What the network learns: raw log returns, returns demeaned within each day, or their rank within the day.

    ``known_until``: the training cut. A label that ends after it is unknown
    (NaN) and takes no part in its day's rank or mean, so no training target
    depends on a price after the cut, not even through another ticker's label
    (a ticker suspended across the cut has a label "H rows ahead" that ends
    weeks later).
    """
    if kind not in TARGETS:
        raise ValueError(f"unknown target {kind!r}; choose from {', '.join(TARGETS)}")
    labels = data.labels.astype("float64")
    if known_until is not None:
        late = np.isnat(data.label_dates) | (data.label_dates > np.datetime64(pd.Timestamp(known_until), "ns"))
        labels[late] = np.nan
    if kind == "return":
        return labels.astype("float32")
    day = pd.factorize(data.dates)[0]
    transform = _demean_within if kind == "demeaned" else _rank_within
    return np.column_stack([transform(labels[:, h], day) for h in range(data.horizon)]).astype("float32")


def usable_rows(data: PooledData, lookback: int, warmup: int = VOL_WINDOW + 1) -> np.ndarray:
    """Rows that can be an origin: a full window of the ticker's own rows after its volatility is known."""
    return data.position >= max(lookback - 1, warmup)


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # row indices
    validation: np.ndarray
    cut: np.datetime64  # every training label ends on or before this date
    validation_end: np.datetime64


def time_split(data: PooledData, lookback: int, train_end, validation_end=None, validation_days: int = 0) -> Split:
    """Split origins by time, never by ticker.

    Training origins are those whose H-step label ends on or before
    ``train_end``; validation origins start after ``train_end`` (so every
    validation window is later than every training label, the H-day gap) and
    their labels end on or before ``validation_end``. With ``validation_days``
    instead of ``validation_end``, the last that many dates up to
    ``train_end`` become validation and training ends H days before them.
    """
    usable = usable_rows(data, lookback)
    known = ~np.isnat(data.label_dates) & np.isfinite(data.labels).all(axis=1)
    cut = np.datetime64(pd.Timestamp(train_end), "ns")
    if validation_end is None:
        days = np.unique(data.dates[data.dates <= cut])
        if validation_days <= 0 or len(days) <= validation_days:
            raise ValueError("need a validation period: validation_end or validation_days shorter than the history")
        validation_start = days[-validation_days]
        end = cut
        cut = validation_start - np.timedelta64(1, "ns")
    else:
        end = np.datetime64(pd.Timestamp(validation_end), "ns")
    train = usable & known & (data.label_dates <= cut)
    validation = usable & known & (data.dates > cut) & (data.label_dates <= end)
    return Split(np.flatnonzero(train), np.flatnonzero(validation), cut, end)


def window_batch(data: PooledData, rows: np.ndarray, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (B, L, F) windows ending at ``rows`` and their (B, S) static inputs, gathered on demand."""
    offsets = np.arange(-lookback + 1, 1)
    return data.sequence[rows[:, None] + offsets], data.static[rows]


def ensemble_forecast(predict: Callable[[np.ndarray, np.ndarray], np.ndarray], data: PooledData, rows: np.ndarray,
                      lookback: int, horizon: int, batch: int = 8192) -> np.ndarray:
    """The members' mean forecast (n, H) for origins ``rows``; ``predict(window, static)`` -> (B, members, H).

    In batches, so memory stays bounded; ``predict`` is the Keras model while
    training and ``global_numpy.NumpyGlobalNet`` when forecasting.
    """
    outputs = []
    for begin in range(0, len(rows), batch):
        window, static = window_batch(data, rows[begin: begin + batch], lookback)
        outputs.append(np.asarray(predict(window, static)).mean(axis=1))
    return np.concatenate(outputs) if outputs else np.empty((0, horizon), dtype="float32")


def latest_rows(data: PooledData, lookback: int, on=None) -> np.ndarray:
    """Each ticker's last usable row (on or before ``on``): the origins of a forecast made now."""
    usable = usable_rows(data, lookback)
    if on is not None:
        usable &= data.dates <= np.datetime64(pd.Timestamp(on), "ns")
    rows = np.flatnonzero(usable)
    if not len(rows):
        return rows
    last = np.r_[data.tickers[rows][1:] != data.tickers[rows][:-1], True]
    return rows[last]


def rows_by_day(rows: np.ndarray, data: PooledData) -> list[np.ndarray]:
    """Group origin rows by their date, oldest first (one cross-section per group)."""
    if not len(rows):
        return []
    order = np.argsort(data.dates[rows], kind="stable")
    ordered = rows[order]
    days = data.dates[ordered]
    breaks = np.flatnonzero(days[1:] != days[:-1]) + 1
    return np.split(ordered, breaks)


def daily_rank_ic(forecast: np.ndarray, truth: np.ndarray, days: np.ndarray, tickers: np.ndarray) -> float:
    """Mean daily Rank IC of forecast against truth: ``cross_section.daily_ic``, the same score the backtest reports."""
    from forecast.maths.cross_section import daily_ic

    index = pd.MultiIndex.from_arrays([pd.DatetimeIndex(days), tickers])
    order = np.lexsort((tickers, days))
    ic = daily_ic(pd.Series(forecast[order], index=index[order]), pd.Series(truth[order], index=index[order]), "spearman")
    return float(ic.mean()) if ic.notna().any() else float("nan")


def every_nth_day(rows: np.ndarray, data: PooledData, n: int) -> np.ndarray:
    """Keep the rows of every ``n``-th trading day (of the union calendar).

    Neighbouring days' H-day labels overlap, so their windows teach nearly the
    same thing; training on every n-th day cuts an epoch n-fold for little loss.
    """
    if n <= 1 or not len(rows):
        return rows
    day_index = np.searchsorted(np.unique(data.dates), data.dates[rows])
    return rows[day_index % n == 0]


# The flat inputs of the tabular learners (ridge, trees) and of the network's nested ridge: one owner for both.
RAW_DAYS = 10
BLOCKS = ((10, 20), (20, 40), (40, 60))  # days back (from, to) averaged into one number per feature


def flat_inputs(window: np.ndarray, static: np.ndarray, lookback: int) -> np.ndarray:
    """(B, L, F) windows and (B, S) static inputs -> the flat inputs (the last RAW_DAYS days as they are, the means of BLOCKS, the static inputs): a linear map,
    so the global network can hold a ridge on them as one Dense layer (``network.linear_map``; the tabular learners' inputs)."""
    recent = window[:, -RAW_DAYS:, :].reshape(len(window), -1)
    blocks = [window[:, max(0, lookback - hi): lookback - lo, :].mean(axis=1) for lo, hi in BLOCKS if lookback > lo]
    return np.concatenate([recent, *blocks, static], axis=1)


def tabular_inputs(data: PooledData, rows: np.ndarray, lookback: int, batch: int = 50_000) -> np.ndarray:
    """The flat inputs of the tabular learners for ``rows`` (the last RAW_DAYS days as they are, the means of BLOCKS, the static inputs), float32."""
    parts = []
    for begin in range(0, len(rows), batch):
        window, static = window_batch(data, rows[begin: begin + batch], lookback)
        parts.append(flat_inputs(window, static, lookback).astype("float32"))
    width = data.static.shape[1] + data.sequence.shape[1] * (RAW_DAYS + len(BLOCKS))
    return np.concatenate(parts) if parts else np.empty((0, width), dtype="float32")
