"""A universe model's online recalibration, per ticker, fed from the batch's own past forecasts; pure, no I/O.

A per-ticker model's state is caught up by recomputing the model's band at
every past origin whose outcome came in (``predicting.adapt_bands``). For the
universe model that is one forward pass of the whole universe per past origin
(about half a second for 5,400 tickers), so it keeps, instead, each ticker's
last forecasts until every step's outcome is in (``Tracks.origins``: at most
one per step of the horizon). The next batch judges them against the bars
stored since, moves the tracker (``adaptive_intervals.tracker_step``, the same
rule and step size as every other model's) and scales today's band by what
the tracker shows.

A kept forecast is its path as ratios to the origin's close and one number,
its scale: the universe model's band is the path times ``exp(offset x scale)``
per level and step (``BandShape``: its quantiles times the square root of the
step; the scale is the ticker's volatility at the origin), so a ticker's
track is 66 numbers (two levels, five steps) where its bands would be 161.
Outcomes are read as ratios of two closes of the ticker's own series: a forward-adjusted (qfq) series
rescales its past on an ex-dividend day, and a ratio of two of its closes does
not move. The step-k outcome of a forecast made at a bar is the close k bars
later, as in the backtest and ``adaptive_replay.replay``.

What it equals: ``replay`` over the same raw bands when a batch is forecast
at every bar (a test checks it). A bar with no batch has no forecast kept: its
outcomes never move the state (fewer updates, never a wrong one). A ticker
whose newest applied bar is no longer stored (its bars were rewritten) starts
again at the model's own band (multiplier 1, no outcomes: a per-ticker
state is instead rebuilt from the model's bands at up to 500 past origins,
which the universe model cannot afford).

Every ticker of a batch at once, as arrays (``Tracks``: one row per ticker):
5,400 tickers cost milliseconds, where a loop over them cost two seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.maths.adaptive_intervals import tracker_shown, tracker_step
from forecast.maths.band_scores import FloatArray, band_scores

NEW, REWRITTEN = "new", "its last bar is no longer stored"  # why a track starts again (the per-ticker state's words)


@dataclass(frozen=True)
class BandShape:
    """A universe model's band: ``point x exp(offsets x scale)``, ``offsets`` (2, L, H) the lower and upper log offsets
    per unit of scale at each level and step (its residual quantiles times sqrt(step))."""

    offsets: FloatArray

    def bands(self, point: FloatArray, scale: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Return (lower, upper), each (..., L, H), of paths ``point`` (..., H) with scales ``scale`` (...)."""
        spread = np.asarray(scale, dtype="float64")[..., None, None]
        base = np.asarray(point, dtype="float64")[..., None, :]
        return base * np.exp(self.offsets[0] * spread), base * np.exp(self.offsets[1] * spread)


@dataclass
class Tracks:
    """The tracker of one universe model on n tickers, L levels and H steps, and each one's kept forecasts (P = H slots).

    A kept forecast is its path as ratios to its origin's close and its scale (``BandShape``); an empty slot has
    origin NaT and NaN values.
    """

    tickers: list[str]
    through: np.ndarray  # (n,) datetime64[D]: the newest bar whose outcomes were applied (NaT: never moved)
    multiplier: FloatArray  # (n, L, H)
    updates: np.ndarray  # (n, L, H) int64: outcomes that moved it
    misses: np.ndarray  # (n, L, H) int64: of them, those outside the band shown then
    origins: np.ndarray  # (n, P) datetime64[D], oldest first
    point: FloatArray  # (n, P, H)
    scale: FloatArray  # (n, P)

    def __len__(self) -> int:
        return len(self.tickers)

    def rows(self, index: np.ndarray) -> Tracks:
        """Return the tracks of rows ``index`` (a copy)."""
        index = np.asarray(index, dtype=int)
        return Tracks([self.tickers[i] for i in index], *(getattr(self, name)[index] for name in TRACK_FIELDS))


TRACK_FIELDS = ("through", "multiplier", "updates", "misses", "origins", "point", "scale")


def fresh(tickers: list[str], levels: int, horizon: int) -> Tracks:
    """Return new tracks: the model's own band (multiplier 1), nothing applied, nothing kept."""
    n = len(tickers)
    return Tracks(list(tickers), np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"), np.ones((n, levels, horizon)),
                  np.zeros((n, levels, horizon), dtype="int64"), np.zeros((n, levels, horizon), dtype="int64"),
                  np.full((n, horizon), np.datetime64("NaT"), dtype="datetime64[D]"), np.full((n, horizon, horizon), np.nan),
                  np.full((n, horizon), np.nan))


def _column(dates: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Return, per row, the column of ``dates`` (n, R) holding each of ``days`` (n, ...), or -1 where none does."""
    shape = days.shape
    flat = days.reshape(len(days), -1)
    hit = dates[:, None, :] == flat[:, :, None]  # NaT equals nothing
    return np.where(hit.any(axis=2), hit.argmax(axis=2), -1).reshape(shape)


def advance(tracks: Tracks, dates: np.ndarray, closes: np.ndarray, point: FloatArray, scale: FloatArray, shape: BandShape,
            levels: np.ndarray, eta: float) -> tuple[Tracks, np.ndarray, list[str | None]]:
    """Return (the tracks after the outcomes in each ticker's bars since it was last moved, how many per ticker, why each
    started again or None), today's raw band kept in each for the batches to come.

    ``dates`` (n, R, datetime64[D]) and ``closes`` (n, R): each ticker's stored bars up to today's origin, the last
    column today's, NaT-padded on the left; ``point`` (n, H) and ``scale`` (n,): today's forecast, its path as ratios
    to today's close, its band ``shape.bands(point, scale)``. Row i of ``tracks`` is the ticker of row i of the rest.
    """
    dates = np.asarray(dates).astype("datetime64[D]")
    closes = np.asarray(closes, dtype="float64")
    n, width = dates.shape
    levels_n, horizon = shape.offsets.shape[1], shape.offsets.shape[2]
    last = width - 1
    through = _column(dates, tracks.through)
    why: list[str | None] = [None] * n
    restart = through < 0
    for i in np.flatnonzero(restart):
        why[i] = NEW if np.isnat(tracks.through[i]) else REWRITTEN
    out = tracks.rows(np.arange(n))
    if restart.any():
        blank = fresh([out.tickers[i] for i in np.flatnonzero(restart)], levels_n, horizon)
        for name in TRACK_FIELDS:
            getattr(out, name)[restart] = getattr(blank, name)
        through = np.where(restart, last, through)

    origin = _column(dates, out.origins)  # (n, P); -1: empty slot, or its bar is gone
    steps = np.arange(1, horizon + 1)
    target = origin[:, :, None] + steps  # (n, P, H): the column of each step's outcome
    new = (origin[:, :, None] >= 0) & (origin[:, :, None] < last) & (target > through[:, None, None]) & (target <= last)
    row = np.arange(n)[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        realised = np.where(new, closes[row, np.minimum(target, last)] / closes[row, np.maximum(origin, 0)[:, :, None]], np.nan)
    # (n, P, L, H): each kept forecast's outcome, in half-widths of its band (NaN: nothing new for it)
    scores = band_scores(realised[:, :, None, :], *shape.bands(out.point, out.scale), out.point[:, :, None, :])
    alpha = 1.0 - np.asarray(levels, dtype="float64")[None, :, None]
    for slot in range(out.origins.shape[1]):  # oldest first: each step's outcomes in the order of their origins
        out.multiplier, missed = tracker_step(out.multiplier, scores[:, slot], eta, alpha)
        out.updates += ~np.isnan(scores[:, slot])
        out.misses += missed
    applied = new.sum(axis=(1, 2))  # outcomes, each counted once for all levels (as the per-ticker record counts them)

    # keep the forecasts with an outcome still to come (today's is replaced), oldest first, then today's
    keep = (origin >= 0) & (origin < last) & (origin + horizon > last)
    order = np.argsort(~keep, axis=1, kind="stable")
    for name in ("origins", "point", "scale"):
        values = getattr(out, name)
        packed = np.take_along_axis(values, order.reshape(order.shape + (1,) * (values.ndim - 2)), axis=1)
        packed[~np.take_along_axis(keep, order, axis=1)] = np.datetime64("NaT") if name == "origins" else np.nan
        setattr(out, name, packed)
    # the first free slot: at most H - 1 forecasts have an outcome to come (the cap only guards a hand-edited file)
    today = np.minimum(keep.sum(axis=1), out.origins.shape[1] - 1)
    out.origins[np.arange(n), today] = dates[:, last]
    out.point[np.arange(n), today] = point
    out.scale[np.arange(n), today] = scale
    out.through = dates[:, last].copy()
    return out, applied, why


def shown(tracks: Tracks) -> FloatArray:
    """Return (n, L, H): the factor each of today's bands is scaled by."""
    return np.asarray(tracker_shown(tracks.multiplier), dtype="float64")


def forecast_records(method: str, eta: float, tracks: Tracks, applied: np.ndarray, level_keys: list[str],
                     why: list[str | None]) -> list[dict[str, Any]]:
    """Return, per ticker, what its forecast stores as ``adaptive`` (the per-ticker models' form): the method, the newest
    bar applied, the outcomes this run applied, and per level and step the multiplier shown, the running coverage (None
    before any outcome) and the outcomes it rests on."""
    multipliers = np.round(shown(tracks), 6).tolist()
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.round(1 - tracks.misses / tracks.updates, 6).tolist()
    outcomes = tracks.updates.tolist()
    through = tracks.through.astype(str).tolist()
    records = []
    for i in range(len(tracks)):
        levels = {key: {"multiplier": multipliers[i][j], "outcomes": outcomes[i][j],
                        "coverage": [c if n else None for c, n in zip(coverage[i][j], outcomes[i][j])]}
                  for j, key in enumerate(level_keys)}
        record: dict[str, Any] = {"method": method, "eta": eta, "through": through[i], "applied": int(applied[i]), "levels": levels}
        if why[i] is not None:
            record["rebuilt"] = why[i]
        records.append(record)
    return records
