"""The volatility a universe model's bands rest on: a card's ``intervals.scale`` measured on each ticker's bars.

A universe card's band at a row is its calibrated mean ± its validation
residuals' quantiles × this volatility × sqrt(step). Cards trained before the
card named a scale rest on the 60-day standard deviation of close-to-close
returns, the one the inputs are divided by (``PooledData.sigma``); new cards on
the per-ticker models' default, ``intervals.DEFAULT_SCALE`` (the day's range,
an EWMA blended with the last 250 days), or its close-to-close form where most
of the validation rows have no range (a universe of close-only files).
benchmarks/universe_intervals.py measured the switch: the range scale's
Winkler score is about 2 % lower than the 60-day std's on both halves of the
S&P 500, recalibrated, with a smaller worst coverage miss (at 95 % the share
of tickers within 5 points of nominal falls a little; see the README).
"""

from __future__ import annotations

import numpy as np

from forecast.maths.adaptive_batch import BandShape
from forecast.maths.intervals import scale_for_range_share
from forecast.maths.long_scale import long_origin_scale
from forecast.models.pooled.data import PooledData


def universe_scale(data: PooledData, rows: np.ndarray) -> str:
    """The scale a card trained on ``rows`` (its validation rows) records: on the range where most of them have one."""
    log_range = data.log_range[rows]
    return scale_for_range_share(float(np.mean(np.isfinite(log_range) & (log_range > 0))) if len(rows) else 0.0)


def band_scale(data: PooledData, rows: np.ndarray, scale: str | None) -> np.ndarray:
    """(n,) the volatility of ``rows``' bands: ``scale`` on each row's ticker's bars up to the row, or ``PooledData.sigma``
    for a card without one (None). A row whose ``scale`` cannot be measured (too little history, a flat price) gets
    that 60-day std, as a card without a scale would."""
    sigma = data.sigma[rows].astype("float64")
    if scale is None:
        return sigma
    start = np.arange(len(data)) - data.position
    measured = long_origin_scale(data.close, data.log_range, start, rows, scale)
    return np.where(np.isfinite(measured), measured, sigma)


def band_shape(quantiles: dict[str, list[list[float]]], horizon: int) -> BandShape:
    """A card's band per unit of volatility (``BandShape``): each level's residual quantiles (``calibrate``'s
    ``{level: [[lower, upper] per step]}``, in the order given) times the square root of the step."""
    steps = np.sqrt(np.arange(1, horizon + 1))
    return BandShape(np.array([[np.asarray(quantiles[key], dtype="float64")[:, side] * steps for key in quantiles]
                               for side in (0, 1)]))
