"""Split-conformal prediction intervals: pure numpy.

At training time, the absolute residuals of the held-out validation windows
(in the target's own space: log-returns or price levels) give, per horizon
step, the quantile ``q`` such that a fresh residual falls within ``±q`` with
probability of at least ``level``, *if the future behaves like the validation
period* (exchangeability). Nothing more is promised: regime changes (a crash,
a new volatility level) break it, which the walk-forward coverage measures.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_LEVELS = (0.8, 0.95)


def conformal_quantiles(residuals: np.ndarray, levels=DEFAULT_LEVELS) -> dict[str, list[float]]:
    """Return {"0.8": [q_step1, ...], ...} from residuals of shape (n, horizon).

    Uses the finite-sample rank ceil((n + 1) * level) of the absolute residuals.
    """
    residuals = np.abs(np.asarray(residuals, dtype="float64"))
    if residuals.ndim == 1:
        residuals = residuals[:, None]
    n = len(residuals)
    out = {}
    for level in levels:
        rank = min(n, max(1, math.ceil((n + 1) * level)))
        out[level_key(level)] = [float(v) for v in np.sort(residuals, axis=0)[rank - 1]] if n else [float("nan")] * residuals.shape[1]
    return out


def level_key(level: float) -> str:
    return f"{level:g}"


def interval_bounds(point: np.ndarray, halfwidth: np.ndarray, last_price: np.ndarray, transform: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (lower, upper) prices for points (n, H) in target space, ``±halfwidth`` (H,)."""
    lo, hi = point - halfwidth, point + halfwidth
    if transform == "log-return":
        return last_price[:, None] * np.exp(lo), last_price[:, None] * np.exp(hi)
    return lo, hi
