"""A forecast band read as two half-widths around its point: an outcome's score against it, and the band scaled.

Pure numpy, no I/O, no state. ``band_scores`` gives an outcome's distance
from the point in units of the half-width on its own side (1: on the bound);
``scale_band`` multiplies both halves by one number, so a band scaled by
``m`` covers an outcome exactly when its score is at most ``m``. Both work in
``space`` "log" (the default; ``adaptive_intervals`` says why) or "linear".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from forecast.errors import BadInputError

SPACES = ("log", "linear")
FloatArray = NDArray[np.float64]


def _to_space(values: ArrayLike, space: str) -> FloatArray:
    values = np.asarray(values, dtype="float64")
    if space == "linear":
        return values
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)  # no log of a non-price: unscored


def band_scores(realised: ArrayLike, lower: ArrayLike, upper: ArrayLike, point: ArrayLike, space: str = "log") -> FloatArray:
    """Return each outcome's distance from its point in half-widths of its band on that side (>= 0; NaN where unscorable).

    A half-width of zero scores 0 for an outcome on the point and infinity
    for any other on that side; a non-positive value in log space, or any NaN,
    scores NaN (the outcome is skipped, not counted as a hit or a miss).
    """
    if space not in SPACES:
        raise BadInputError(f"unknown score space {space!r}; use log or linear")
    y, lo, hi, p = (_to_space(a, space) for a in (realised, lower, upper, point))
    below, above = p - lo, hi - p
    distance = y - p
    half = np.where(distance < 0, below, above)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.abs(distance) / half
    score = np.where(distance == 0, 0.0, score)  # on the point: covered by any band, even the empty one
    score = np.where((half == 0) & (distance != 0), np.inf, score)
    bad = ~(np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(p)) | (below < 0) | (above < 0)
    return np.where(bad, np.nan, score)


def scale_band(lower: ArrayLike, upper: ArrayLike, point: ArrayLike, multiplier: ArrayLike,
               space: str = "log") -> tuple[FloatArray, FloatArray]:
    """Return (lower, upper): both halves of the band around ``point`` times ``multiplier`` (in ``space``)."""
    lo, hi, p = (_to_space(a, space) for a in (lower, upper, point))
    m = np.asarray(multiplier, dtype="float64")
    with np.errstate(invalid="ignore", over="ignore"):
        new_lo, new_hi = p - m * (p - lo), p + m * (hi - p)
        if space == "log":
            new_lo, new_hi = np.exp(new_lo), np.exp(new_hi)
    # where the band cannot be scaled (a non-positive price in log space, a NaN), it stays the model's own
    keep = ~(np.isfinite(new_lo) & np.isfinite(new_hi))
    return (np.where(keep, np.asarray(lower, dtype="float64"), new_lo),
            np.where(keep, np.asarray(upper, dtype="float64"), new_hi))
