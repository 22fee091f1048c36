"""Baseline forecasters (no TensorFlow): naive, drift, moving average, ridge AR.

Each works in log-return space relative to the origin's price, like the
default network, and calibrates its split-conformal intervals on its own
forecast errors over the last ``intervals.CALIBRATION_ORIGINS`` training origins,
normalised by ``intervals.DEFAULT_SCALE``. (The GARCH and ETS anchors, whose
intervals are their own, live in garch.py and ets.py.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.choices import ModelKind, TargetTransform
from forecast.errors import BadInputError
from forecast.maths.intervals import (
    DEFAULT_LEVELS,
    DEFAULT_SCALE,
    SCALE_WINDOW,
    bars_range,
    calibration_origins,
    calibration_scale,
    conformal_quantiles,
    origin_scale,
)
from forecast.maths.windows import sliding_windows, target_matrix


class LogReturnForecaster:
    """Shared machinery: subclasses return (n, H) predicted log-returns at origins.

    Satisfies forecasters.Forecaster: its target space is log-returns relative
    to the origin's price.
    """

    name = "base"
    kind = ModelKind.BASELINE
    transform = str(TargetTransform.LOG_RETURN)
    scale_window = SCALE_WINDOW
    scale = DEFAULT_SCALE

    def __init__(self, horizon: int, target: str = "close", levels=DEFAULT_LEVELS):
        self.horizon, self.target, self.levels = horizon, target, levels
        self.quantiles: dict[str, list[float]] = {}  # volatility-normalised conformal quantiles

    def _fit(self, logp: np.ndarray) -> None:  # parameters from training prices only
        pass

    def _predict(self, logp: np.ndarray, origins: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, frame: pd.DataFrame) -> LogReturnForecaster:
        """Fit on every row of ``frame`` (the rows up to the forecast origin)."""
        prices = frame[self.target].to_numpy(dtype="float64")
        if (prices <= 0).any():
            raise BadInputError(f"the {self.name} baseline needs positive {self.target} prices")
        logp = np.log(prices)
        self._fit(logp)
        origins = calibration_origins(len(prices), self.horizon, first=self.min_history())
        if len(origins):
            truth = target_matrix(prices, self.horizon, "log-return")[origins]
            high, low = bars_range(frame)
            self.scale = calibration_scale(high, low)  # the range's, unless most bars have none (a close-only file)
            scale = origin_scale(prices, origins, "log-return", scale=self.scale, high=high, low=low)
            self.quantiles = conformal_quantiles((truth - self._predict(logp, origins)) / scale[:, None], self.levels)
        return self

    def min_history(self) -> int:
        return 1

    def predict_target(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Return (len(origins), H) log-returns relative to each origin's price."""
        return self._predict(np.log(frame[self.target].to_numpy(dtype="float64")), np.asarray(origins))


class Naive(LogReturnForecaster):
    """Persistence: every future price equals the price at the origin."""

    name = "naive"

    def _predict(self, logp, origins):
        return np.zeros((len(origins), self.horizon))


class Drift(LogReturnForecaster):
    """The random walk with drift: the training period's mean log-return, per step."""

    name = "drift"

    def _fit(self, logp):
        self.step = float((logp[-1] - logp[0]) / (len(logp) - 1))

    def _predict(self, logp, origins):
        return np.tile(self.step * np.arange(1, self.horizon + 1), (len(origins), 1))


class MovingAverage(LogReturnForecaster):
    """A flat path at the mean of the last ``k`` prices."""

    def __init__(self, horizon, target="close", levels=DEFAULT_LEVELS, k: int = 5):
        super().__init__(horizon, target, levels)
        self.k, self.name = k, f"ma{k}" if k != 5 else "ma"

    def min_history(self):
        return self.k - 1

    def _predict(self, logp, origins):
        prices = np.exp(logp)
        means = sliding_windows(prices, self.k)[:, :, 0].mean(axis=1)  # mean ending at row k-1+i
        level = np.log(means[origins - self.k + 1]) - logp[origins]
        return np.repeat(level[:, None], self.horizon, axis=1)


class LinearAR(LogReturnForecaster):
    """Ridge regression of the next H cumulative log-returns on the last ``lags`` ones."""

    name = "linear"

    def __init__(self, horizon, target="close", levels=DEFAULT_LEVELS, lags: int = 10):
        super().__init__(horizon, target, levels)
        self.lags = lags

    def min_history(self):
        return self.lags

    def _lagged(self, logp, origins):
        returns = np.concatenate([[np.nan], np.diff(logp)])
        windows = sliding_windows(returns, self.lags)[:, :, 0]  # row i ends at row lags-1+i
        return windows[origins - self.lags + 1]

    def _fit(self, logp):
        from sklearn.linear_model import RidgeCV

        prices = np.exp(logp)
        origins = np.arange(self.lags, len(logp) - self.horizon)
        X, Y = self._lagged(logp, origins), target_matrix(prices, self.horizon, "log-return")[origins]
        self.model = RidgeCV(alphas=np.logspace(-6, 1, 15)).fit(X, Y)

    def _predict(self, logp, origins):
        return self.model.predict(self._lagged(logp, origins)).reshape(len(origins), self.horizon)
