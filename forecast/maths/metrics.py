"""Forecast accuracy metrics and significance tests: pure numpy/scipy.

Arrays are aligned: ``actual``, ``predicted`` and ``last`` (the price at the
forecast origin) all have shape (n,) for one horizon step.
"""

from __future__ import annotations

import math

import numpy as np


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(actual)) ** 2)))


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(predicted) - np.asarray(actual))))


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error as a fraction (0.0125 is 1.25 %), like every other share in the JSON."""
    actual = np.asarray(actual, dtype="float64")
    return float(np.mean(np.abs((np.asarray(predicted) - actual) / actual)))


def naive_scale(in_sample: np.ndarray) -> float:
    """Mean absolute one-step change of the training series: MASE's denominator."""
    return float(np.mean(np.abs(np.diff(np.asarray(in_sample, dtype="float64")))))


def mase(actual: np.ndarray, predicted: np.ndarray, scale: float) -> float:
    return mae(actual, predicted) / scale if scale > 0 else float("nan")


def skill(model_rmse: float, naive_rmse: float) -> float:
    """1 - RMSE/RMSE_naive: positive when the model beats "tomorrow = today"."""
    return 1.0 - model_rmse / naive_rmse if naive_rmse > 0 else float("nan")


def directional_accuracy(actual: np.ndarray, predicted: np.ndarray, last: np.ndarray) -> tuple[float, int, float]:
    """Return (hit rate, number of calls, two-sided binomial p-value against 50 %).

    Only origins where the forecast predicts a move (and the price moved) count;
    a forecast of "no change" makes no directional call.
    """
    from scipy.stats import binomtest

    predicted_move = np.sign(np.asarray(predicted) - last)
    actual_move = np.sign(np.asarray(actual) - last)
    calls = (predicted_move != 0) & (actual_move != 0)
    n = int(calls.sum())
    if n == 0:
        return float("nan"), 0, float("nan")
    hits = int((predicted_move[calls] == actual_move[calls]).sum())
    return hits / n, n, float(binomtest(hits, n, 0.5).pvalue)


def diebold_mariano(errors_model: np.ndarray, errors_naive: np.ndarray, horizon: int = 1) -> tuple[float, float]:
    """Return (statistic, two-sided p-value) of the Diebold-Mariano test on squared errors.

    Negative statistics favour the model. Uses a Newey-West variance with
    ``horizon - 1`` lags and the Harvey-Leybourne-Newbold small-sample
    correction, compared with Student's t on n - 1 degrees of freedom.
    """
    from scipy.stats import t as student_t

    d = np.asarray(errors_model, dtype="float64") ** 2 - np.asarray(errors_naive, dtype="float64") ** 2
    n = len(d)
    if n < 3 or np.allclose(d, 0):
        return float("nan"), float("nan")
    centred = d - d.mean()
    variance = np.dot(centred, centred) / n
    for lag in range(1, horizon):
        variance += 2 * np.dot(centred[lag:], centred[:-lag]) / n
    if variance <= 0:
        return float("nan"), float("nan")
    statistic = d.mean() / math.sqrt(variance / n)
    correction = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic *= correction
    return float(statistic), float(2 * student_t.sf(abs(statistic), df=n - 1))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    actual = np.asarray(actual)
    return float(np.mean((actual >= lower) & (actual <= upper)))


def mean_width(lower: np.ndarray, upper: np.ndarray) -> float:
    return float(np.mean(np.asarray(upper) - np.asarray(lower)))


def relative_width(lower: np.ndarray, upper: np.ndarray, reference: np.ndarray) -> float:
    """Mean of (upper - lower) / reference: an interval's width as a fraction of the price at its origin."""
    return float(np.mean((np.asarray(upper) - np.asarray(lower)) / np.asarray(reference, dtype="float64")))


def winkler(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float) -> float:
    """Mean Winkler interval score of central ``level`` intervals [l, u]; lower is better.

    With alpha = 1 - level, each forecast scores
        W = (u - l) + (2 / alpha) * (l - y)   if y < l,
        W = (u - l)                           if l <= y <= u,
        W = (u - l) + (2 / alpha) * (y - u)   if y > u,
    in the units of the prices: a narrow interval scores low, a miss pays twice
    its distance divided by alpha (Gneiting and Raftery 2007, eq. 43).
    """
    y, lo, hi = (np.asarray(a, dtype="float64") for a in (actual, lower, upper))
    alpha = 1.0 - float(level)
    penalty = (2.0 / alpha) * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))
    return float(np.mean(hi - lo + penalty))


def pinball(actual: np.ndarray, quantile: np.ndarray, tau: float) -> float:
    """Mean pinball (quantile) loss of ``quantile`` forecasts at probability ``tau``:

        L = tau * (y - q)          if y >= q,
        L = (1 - tau) * (q - y)    if y < q.
    """
    diff = np.asarray(actual, dtype="float64") - np.asarray(quantile, dtype="float64")
    return float(np.mean(np.maximum(tau * diff, (tau - 1.0) * diff)))


def interval_pinball(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float) -> float:
    """Mean of the pinball losses at the interval's two quantiles, tau = alpha/2 (lower) and 1 - alpha/2 (upper).

    For a central interval this equals alpha/4 times its Winkler score.
    """
    alpha = 1.0 - float(level)
    return 0.5 * (pinball(actual, lower, alpha / 2) + pinball(actual, upper, 1 - alpha / 2))
