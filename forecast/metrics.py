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
    """Mean absolute percentage error, in percent."""
    actual = np.asarray(actual, dtype="float64")
    return float(np.mean(np.abs((np.asarray(predicted) - actual) / actual)) * 100)


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
