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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.models.pooled.inputs import CLIP, Compared, OwnInputs, compared_within, demean_within, long_order, own_inputs, rank_within, shift
from forecast.models.pooled.inputs import SEQUENCE_FEATURES as SEQUENCE_FEATURES  # the features' names: data's importers read them here
from forecast.models.pooled.inputs import STATIC_FEATURES as STATIC_FEATURES
from forecast.models.pooled.inputs import VOL_WINDOW as VOL_WINDOW

TARGETS = ("return", "demeaned", "rank")


@dataclass(frozen=True)
class PooledData:
    """A universe's rows in long order (ticker, then date) with inputs, labels and bookkeeping."""

    tickers: np.ndarray  # (N,) ticker of each row
    dates: np.ndarray  # (N,) datetime64[ns] of each row
    position: np.ndarray  # (N,) the row's index within its ticker (0 = first bar)
    sequence: np.ndarray  # (N, F) float32
    static: np.ndarray  # (N, S) float32
    labels: np.ndarray  # (N, H) float32 cumulative log returns, NaN where the future is not there (all NaN: pooled without labels)
    label_dates: np.ndarray  # (N,) datetime64[ns]: the date of the row H ahead (NaT where none)
    sigma: np.ndarray  # (N,) float32 trailing daily volatility of log returns, known at the row's date
    close: np.ndarray  # (N,) float64 the row's close
    log_range: np.ndarray  # (N,) float64 ln(high / low) of the row's bar, NaN where it has none (the bands' scale reads it)

    @property
    def horizon(self) -> int:
        return int(self.labels.shape[1])

    def __len__(self) -> int:
        return len(self.dates)


def pool(panel: pd.DataFrame, horizon: int, static_from=None, labels: bool = True) -> PooledData:
    """Turn a (date, ticker) panel of bars into pooled inputs and H-step labels (see the module docstring).

    ``static_from``: rank the static inputs only on and after this date (a
    forecast needs them at its origins alone; ranking every day of 5,400
    tickers costs seconds); rows before it get the day's middle, 0.
    ``labels=False``: a forecast's pooling, which never reads them; see ``pooled``.
    """
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    own = own_inputs(panel, long_order(panel)[0])
    return pooled([(own, compared_within(own, static_from))], horizon, labels)


def pooled(parts: Sequence[tuple[OwnInputs, Compared]], horizon: int, labels: bool = True) -> PooledData:
    """The ``PooledData`` of the parts' rows, one part after another: each part's own inputs and what is compared across
    tickers for them (``Compared``). Written straight into the arrays of the whole, which at 5,400 tickers are
    hundreds of megabytes: a copy of them to join the parts would cost as much as making them.

    ``labels=False``: no label is computed; ``labels`` and ``label_dates`` are all unknown (NaN, NaT), read-only
    views of one value that take no memory (a forecast's 5,400 tickers' labels would be tens of megabytes unread).
    """
    n = sum(len(own) for own, _ in parts)
    tickers = np.empty(n, dtype=object)
    dates = np.empty(n, dtype="datetime64[ns]")
    position = np.empty(n, dtype="int64")
    sequence = np.empty((n, len(SEQUENCE_FEATURES)), dtype="float32")
    static = np.zeros((n, len(STATIC_FEATURES)), dtype="float32")  # unknown: the day's middle
    if labels:
        label_values = np.empty((n, horizon), dtype="float32")
        label_dates = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    else:
        label_values = np.broadcast_to(np.float32(np.nan), (n, horizon))
        label_dates = np.broadcast_to(np.datetime64("NaT", "ns"), (n,))
    sigma = np.empty(n, dtype="float32")
    close = np.empty(n, dtype="float64")
    log_range = np.empty(n, dtype="float64")
    begin = 0
    for own, compared in parts:
        end = begin + len(own)
        _fill(own, compared, tickers[begin:end], dates[begin:end], position[begin:end], sequence[begin:end],
              static[begin:end], sigma[begin:end], close[begin:end], log_range[begin:end])
        if labels:
            _fill_labels(own, horizon, label_values[begin:end], label_dates[begin:end])
        begin = end
    return PooledData(tickers=tickers, dates=dates, position=position, sequence=sequence, static=static, labels=label_values,
                      label_dates=label_dates, sigma=sigma, close=close, log_range=log_range)


def _fill(own: OwnInputs, compared: Compared, tickers, dates, position, sequence, static, sigma, close, log_range) -> None:
    """Write one part's rows into the slices of ``pooled``'s arrays (see ``PooledData`` for each), labels apart."""
    n = len(own)
    tickers[:], dates[:], close[:], log_range[:] = own.tickers, own.dates, own.close, own.high_low
    position[:] = np.arange(n) - own.start
    with np.errstate(divide="ignore", invalid="ignore"):
        inputs = (own.returns / own.sigma, compared.excess / own.sigma, own.close_open / own.sigma, own.high_low / own.sigma, own.volume_rel)
        for j, column in enumerate(inputs):
            sequence[:, j] = np.nan_to_num(np.clip(column, -CLIP, CLIP), nan=0.0)
    static[compared.static_rows] = np.nan_to_num(compared.static, nan=0.0)
    sigma_now = own.sigma_now
    sigma[:] = np.nan_to_num(sigma_now, nan=np.nanmedian(sigma_now) if np.isfinite(sigma_now).any() else 0.02)


def _fill_labels(own: OwnInputs, horizon: int, labels, label_dates) -> None:
    """Write one part's labels and label dates into the slices of ``pooled``'s arrays."""
    n = len(own)
    start, log_close = own.start, own.log_close
    with np.errstate(divide="ignore", invalid="ignore"):
        for h in range(1, horizon + 1):
            labels[:, h - 1] = shift(log_close, start, -h) - log_close
    ahead = np.arange(n) + horizon
    ok = ahead < n
    ok[ok] = start[ahead[ok]] == start[ok]
    label_dates[ok] = own.dates[ahead[ok]]


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
    transform = demean_within if kind == "demeaned" else rank_within
    return np.column_stack([transform(labels[:, h], day) for h in range(data.horizon)]).astype("float32")


def min_bars(lookback: int, warmup: int = VOL_WINDOW + 1) -> int:
    """The bars a ticker needs before its last one can be an origin (``usable_rows``): a full window of its own
    rows, and its volatility known."""
    return max(lookback - 1, warmup) + 1


def usable_rows(data: PooledData, lookback: int, warmup: int = VOL_WINDOW + 1) -> np.ndarray:
    """Rows that can be an origin: a full window of the ticker's own rows after its volatility is known."""
    return data.position >= min_bars(lookback, warmup) - 1


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
