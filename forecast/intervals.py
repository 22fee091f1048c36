"""Volatility-normalised split-conformal prediction intervals: pure numpy.

At training time, the held-out validation windows' residuals (in the target's
own space: log-returns or price levels) are divided by the volatility known at
each origin (the standard deviation of the previous ``SCALE_WINDOW`` daily
changes). Per horizon step, the quantile ``q`` of those normalised residuals
gives the interval ``point ± q * volatility(origin)``: wider in turbulent
weeks, narrower in calm ones.

What it promises: if normalised errors behave as they did in the calibration
period (exchangeability), a fresh price falls inside the ``level`` interval
with probability of at least ``level``. What it does not: a regime never seen
in calibration (a crash, a limit-down run, a trading halt) can break it, and
coverage holds on average over many forecasts, not for each one. The
walk-forward backtest measures the coverage actually reached.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_LEVELS = (0.8, 0.95)
SCALE_WINDOW = 60  # trading days of history behind each origin's volatility
MIN_SCALE_ROWS = 5


def origin_scale(prices: np.ndarray, origins: np.ndarray, transform: str, window: int = SCALE_WINDOW) -> np.ndarray:
    """Return (n,) volatility at each origin from the ``window`` changes before it (inclusive).

    log-return targets: std of daily log-returns; level targets: std of daily
    price changes (same units as the residuals). Uses prices up to the origin only.
    """
    prices = np.asarray(prices, dtype="float64")
    if transform == "log-return":
        with np.errstate(invalid="ignore", divide="ignore"):
            changes = np.diff(np.log(prices))
    else:
        changes = np.diff(prices)
    out = np.empty(len(origins))
    for i, origin in enumerate(np.asarray(origins)):  # n origins, each O(window): cheap
        recent = changes[max(0, origin - window): origin]
        recent = recent[np.isfinite(recent)]
        out[i] = recent.std() if len(recent) >= MIN_SCALE_ROWS else np.nan
    fallback = np.nanmedian(out) if np.isfinite(out).any() else 1.0
    out = np.where(np.isfinite(out) & (out > 0), out, fallback)
    return out


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


def level_key(level: float | str) -> str:
    """Return how a level is keyed in stored artefacts: 0.8 -> "0.8"."""
    return f"{float(level):g}"


def level_percent(level: float | str) -> str:
    """Return a level as a percentage without a sign, for column names and labels: "0.8" -> "80", 0.575 -> "57.5"."""
    return f"{float(level) * 100:.10g}"


def level_label(level: float | str) -> str:
    """Return a level as people read it: "0.8" -> "80%"."""
    return f"{level_percent(level)}%"


def band_columns(level: float | str) -> tuple[str, str]:
    """Return the CSV column names of a level's band: ("lower_80", "upper_80")."""
    pct = level_percent(level)
    return f"lower_{pct}", f"upper_{pct}"


def check_levels(levels) -> tuple[float, ...]:
    """Return interval levels as a sorted tuple of floats in (0, 1), or raise BadInputError."""
    from forecast.errors import BadInputError

    if not isinstance(levels, (list, tuple)) or not levels:
        raise BadInputError(f"levels must be a list such as [0.8, 0.95], not {levels!r}")
    out = []
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
            raise BadInputError(f"each level must be a number between 0 and 1 (0.8 for 80 %), not {level!r}")
        out.append(float(level))
    return tuple(sorted(set(out)))


def interval_bounds(point: np.ndarray, quantile: np.ndarray, scale: np.ndarray, last_price: np.ndarray,
                    transform: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (lower, upper) prices: points (n, H) in target space ± quantile (H,) x scale (n,)."""
    halfwidth = np.asarray(quantile)[None, :] * np.asarray(scale)[:, None]
    lo, hi = point - halfwidth, point + halfwidth
    if transform == "log-return":
        return last_price[:, None] * np.exp(lo), last_price[:, None] * np.exp(hi)
    return lo, hi
