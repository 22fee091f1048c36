"""The exponential-smoothing baseline: statsforecast's AutoETS on the log close, with its own intervals.

The classical forecaster a statistician would pick. ``AutoETS(season_length=1)``
chooses the error/trend form by AICc on the log prices of the training rows
(``statsforecast`` is an optional extra, imported inside ``fit``). At each
origin the fitted model is run forward, parameters fixed, over the log prices
up to that origin (``forward``); its point path and its analytic 80/95 %
intervals (from the model's one-step variance and the state-space formulas)
are exponentiated back to prices. On daily prices it usually picks ETS(A,N,N)
with alpha near 1: a random walk whose interval width is the long-run
volatility times sqrt(k).

What it promises: intervals that hold if the log price follows the chosen
state-space model with constant variance. What it does not: react to a
volatility regime, since its variance is one number over the whole history.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecast.choices import ModelKind, TargetTransform
from forecast.errors import BadInputError
from forecast.maths.intervals import DEFAULT_LEVELS, DEFAULT_SCALE, SCALE_WINDOW, import_extra, level_key, level_percent


class EtsForecaster:
    """AutoETS on the log close; satisfies forecasters.Forecaster with its own bands (``predict_bounds``)."""

    name = "ets"
    kind = ModelKind.BASELINE
    transform = str(TargetTransform.LOG_RETURN)
    scale_window = SCALE_WINDOW
    scale = DEFAULT_SCALE  # unused: the bands are the model's own

    def __init__(self, horizon: int, target: str = "close", levels: Sequence[float] = DEFAULT_LEVELS):
        self.horizon, self.target, self.levels = horizon, target, tuple(levels)
        self.quantiles: dict[str, list[float]] = {}  # no conformal quantiles: see predict_bounds
        self.model: object = None
        self._memo: tuple[pd.DataFrame, bytes, dict] | None = None  # the last (frame, origins) and its forecasts

    def _log_prices(self, frame: pd.DataFrame) -> np.ndarray:
        prices = frame[self.target].to_numpy(dtype="float64")
        if not np.isfinite(prices).all() or (prices <= 0).any():
            raise BadInputError(f"the {self.name} baseline needs positive, finite {self.target} prices")
        return np.log(prices)

    def fit(self, frame: pd.DataFrame) -> EtsForecaster:
        """Choose and fit the ETS model on the log prices of every row of ``frame``."""
        models = import_extra("statsforecast.models", self.name)
        logp = self._log_prices(frame)
        if len(logp) < 30:
            raise BadInputError(f"the ets baseline needs at least 30 prices, not {len(logp)}")
        self.model = models.AutoETS(season_length=1).fit(logp)
        self._memo = None
        return self

    def _forecasts(self, frame: pd.DataFrame, origins: np.ndarray) -> dict:
        """Return {"mean": (n, H), level key: (lower, upper)} in log-returns relative to each origin."""
        origins = np.asarray(origins, dtype=int)
        if self._memo is not None and self._memo[0] is frame and self._memo[1] == origins.tobytes():
            return self._memo[2]  # predict_target and predict_bounds share one pass
        if self.model is None:
            raise RuntimeError(f"{self.name}: predict before fit")
        logp = self._log_prices(frame.iloc[: int(origins.max()) + 1] if len(origins) else frame)
        percents = {level_key(level): float(level_percent(level)) for level in self.levels}
        out: dict = {"mean": np.empty((len(origins), self.horizon))}
        for key in percents:
            out[key] = (np.empty((len(origins), self.horizon)), np.empty((len(origins), self.horizon)))
        for i, origin in enumerate(origins):  # about half a millisecond each
            fc = self.model.forward(logp[: origin + 1], h=self.horizon, level=list(percents.values()))  # type: ignore[attr-defined]
            out["mean"][i] = fc["mean"] - logp[origin]
            for key, pct in percents.items():
                out[key][0][i] = fc[f"lo-{pct}"] - logp[origin]
                out[key][1][i] = fc[f"hi-{pct}"] - logp[origin]
        self._memo = (frame, origins.tobytes(), out)
        return out

    def predict_target(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Return (len(origins), H) log-returns of the ETS point path relative to each origin."""
        return np.asarray(self._forecasts(frame, origins)["mean"])

    def predict_bounds(self, frame: pd.DataFrame, origins: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return {level key: (lower, upper)}, each (n, H) log-returns: the model's own intervals."""
        forecasts = self._forecasts(frame, origins)
        return {key: forecasts[key] for key in forecasts if key != "mean"}
