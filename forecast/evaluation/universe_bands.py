"""The universe model's intervals in the cross-sectional backtest: do its bands keep their promise, fixed and recalibrated?

At each refit the cross-sectional backtest trains the universe network as
``train --universe`` does (pooled/learners.py). Here each refit's bands are
made as ``train_global`` and ``predict`` make them: the network's scores on the
validation days mapped onto log returns and the residual quantiles in units of
each ticker's volatility (``pooled.model.calibrate``, on the scale
``pooled.band_scale.universe_scale`` chooses), then at every test origin the
calibrated mean ± those quantiles × the ticker's volatility then × sqrt(step)
(``band_shape``, the same as the card's). Each band is scored against the
close the step came to, as it was fitted ("fixed") and as ``predict`` ships
it: recalibrated by each ticker's tracker, moved by every outcome known at each
origin (``maths.adaptive_rows``: what the batches' tracks do when a batch runs
every day), and running on from one refit to the next, as ``predict``'s tracks
run on from one trained model to the next (pooled/recalibration.carried; predict
drops the old model's last few forecasts whose outcomes were still to come, at
most H - 1 a step, where the backtest still judges them).

Per level and step, over every (ticker, test day): the pooled coverage, the
share of outcomes below and above the band, the mean over tickers of the
Winkler score (as a fraction of the origin's close), and the share of tickers
whose own coverage is within ±5 points of nominal. Every ticker's test rows
are scored, whether or not an index held it that day (membership narrows the
ranking's days, not a ticker's bands).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.maths.adaptive_rows import tracker_over_rows
from forecast.maths.adaptive_state import DEFAULT_ETA
from forecast.maths.band_scores import band_scores, scale_band
from forecast.maths.intervals import level_key
from forecast.models.pooled.band_scale import band_scale, band_shape
from forecast.models.pooled.data import PooledData
from forecast.models.pooled.model import card_intervals

SERIES_TOLERANCE = 0.05  # a ticker's coverage "within ±5 points" of nominal: issue 27's per-series bar


@dataclass
class BandBlock:
    """One refit's bands at its test origins: paths and bands as ratios to each origin's close."""

    rows: np.ndarray  # (n,) rows of the pooled data
    point: np.ndarray  # (n, H)
    lower: np.ndarray  # (n, L, H)
    upper: np.ndarray  # (n, L, H)
    scale: str  # the volatility the bands rest on (the card's ``intervals.scale``)


def block_bands(data: PooledData, validation: np.ndarray, validation_scores: np.ndarray, rows: np.ndarray,
                scores: np.ndarray, levels: Sequence[float]) -> BandBlock:
    """The bands of one refit at ``rows``: calibrated on ``validation``'s scores (n, H) and labels as a card is."""
    calibration, intervals = card_intervals(data, validation, validation_scores, levels)
    point = np.exp(np.asarray(calibration["intercept"]) + np.asarray(calibration["slope"]) * scores)
    lower, upper = band_shape(intervals["quantiles"], scores.shape[1]).bands(point, band_scale(data, rows, intervals["scale"]))
    return BandBlock(rows, point, lower, upper, intervals["scale"])


def score_bands(data: PooledData, blocks: Sequence[BandBlock], levels: Sequence[float], eta: float = DEFAULT_ETA,
                restart: bool = False) -> dict:
    """Score every block's bands, fixed and recalibrated, per level and step (see the module docstring); JSON-ready.
    ``restart``: each refit's tracks start fresh (False: a ticker's track runs on across refits)."""
    rows = np.concatenate([b.rows for b in blocks])
    point = np.concatenate([b.point for b in blocks])
    lower = np.concatenate([b.lower for b in blocks])
    upper = np.concatenate([b.upper for b in blocks])
    realised = np.exp(data.labels[rows].astype("float64"))  # (n, H): the close each step came to / the origin's
    _, ticker = np.unique(data.tickers[rows], return_inverse=True)  # integer codes: grouping by them is cheap
    alpha = 1 - np.asarray(levels, dtype="float64")
    # one level at a time: the scores' temporaries stay (n, H), not (n, L, H)
    scores = np.stack([band_scores(realised, lower[:, j], upper[:, j], point) for j in range(len(levels))], axis=1)
    # one track per ticker, running on across refits as predict's does across retrains (restart: one per ticker and refit)
    refit = np.repeat(np.arange(len(blocks)), [len(b.rows) for b in blocks]) if restart else np.zeros(len(rows), dtype=int)
    shown = tracker_over_rows(ticker * len(blocks) + refit, data.position[rows], scores, alpha, eta)
    del scores
    out: dict = {"scale": sorted({b.scale for b in blocks}), "method": "tracker", "eta": eta, "tickers": int(ticker.max() + 1) if len(ticker) else 0,
                 "forecasts": int(np.isfinite(realised[:, 0]).sum()), "levels": {}}
    for j, level in enumerate(levels):
        fixed = _cells(realised, lower[:, j], upper[:, j], ticker, level)
        moved = _cells(realised, *scale_band(lower[:, j], upper[:, j], point, shown[:, j]), ticker, level)
        out["levels"][level_key(level)] = {
            "coverage": fixed["coverage"], "below": fixed["below"], "above": fixed["above"], "winkler": fixed["winkler"],
            "within_5": fixed["within_5"], "adaptive_coverage": moved["coverage"], "adaptive_below": moved["below"],
            "adaptive_above": moved["above"], "adaptive_winkler": moved["winkler"], "adaptive_within_5": moved["within_5"]}
    return out


def _per_ticker(code: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(tickers, H): the sum of ``values`` (n, H) over each ticker's rows (``code``: 0..tickers-1)."""
    size = int(code.max()) + 1
    return np.stack([np.bincount(code, weights=values[:, k], minlength=size) for k in range(values.shape[1])], axis=1)


def _cells(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, code: np.ndarray, level: float) -> dict[str, list]:
    """Per step (lists of H): pooled coverage, shares below and above, mean over tickers of the mean Winkler score, and
    the share of tickers within ±5 points of nominal; None where no outcome is known. ``code``: each row's ticker, 0..T-1."""
    known = np.isfinite(y) & np.isfinite(lower) & np.isfinite(upper)
    with np.errstate(invalid="ignore"):
        below, above = known & (y < lower), known & (y > upper)
        winkler = (upper - lower) + (2 / (1 - level)) * (np.maximum(lower - y, 0) + np.maximum(y - upper, 0))
    count = _per_ticker(code, known.astype("float64"))
    hits = _per_ticker(code, (known & ~below & ~above).astype("float64"))
    total = _per_ticker(code, np.where(known, winkler, 0.0))
    seen = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        own = hits / count
        mean_winkler = np.where(seen, total / count, np.nan)
        ok = np.abs(own - level) <= SERIES_TOLERANCE + 1e-9

    def per_step(values: np.ndarray, of: np.ndarray) -> list:
        return [round(float(v), 6) if n else None for v, n in zip(values, of)]

    n = known.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"coverage": per_step((known & ~below & ~above).sum(axis=0) / n, n), "below": per_step(below.sum(axis=0) / n, n),
                "above": per_step(above.sum(axis=0) / n, n),
                "winkler": per_step(np.where(seen, mean_winkler, 0.0).sum(axis=0) / seen.sum(axis=0), n),
                "within_5": per_step(ok.sum(axis=0) / seen.sum(axis=0), seen.sum(axis=0))}  # an unseen ticker's NaN is not ok
