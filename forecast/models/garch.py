"""The GARCH(1,1) baseline with Student-t innovations: the quant's standard interval anchor.

Fit with the ``arch`` package (an optional extra, imported inside ``fit``) on
daily log-returns in percent, with a constant (or zero) mean. Its intervals
come from its own conditional variance, not from conformal calibration: at
each origin the variance recursion is run with the fitted parameters over the
returns up to that origin, and ``SIMULATED_PATHS`` H-step paths are simulated
from there (the variance of each day feeding on the simulated shock of the
day before, as the model says). The per-step quantiles of the cumulative
simulated log-returns are the bands; the point path is the mean, ``mu * k``.
The same standardised t draws (seeded) serve every origin, so a forecast is
reproducible and predict at the last bar equals the backtest at that origin.

What it promises: if returns follow a GARCH(1,1)-t with the fitted
parameters, the bands hold their nominal level at every step. What it does
not: parameters are fixed between refits; a jump after a calm spell meets a
low conditional variance, just as it does for any volatility model; and
Student-t tails are symmetric, so a skewed crash is under-covered on one side.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecast.choices import ModelKind, TargetTransform
from forecast.errors import BadInputError
from forecast.maths.intervals import DEFAULT_LEVELS, DEFAULT_SCALE, SCALE_WINDOW, import_extra, level_key

SIMULATED_PATHS = 4000
PERCENT = 100.0  # arch fits best on returns in percent
ORIGINS_PER_BATCH = 100
BACKCAST_ROWS = 75  # arch's own choice: the first 75 squared residuals, weighted 0.94**i, start the recursion


class GarchForecaster:
    """GARCH(1,1)-t on daily log-returns; satisfies forecasters.Forecaster with its own bands (``predict_bounds``)."""

    name = "garch"
    kind = ModelKind.BASELINE
    transform = str(TargetTransform.LOG_RETURN)
    scale_window = SCALE_WINDOW
    scale = DEFAULT_SCALE  # unused: the bands come from the model's own variance

    def __init__(self, horizon: int, target: str = "close", levels: Sequence[float] = DEFAULT_LEVELS,
                 mean: str = "constant", paths: int = SIMULATED_PATHS, seed: int = 0):
        if mean not in ("constant", "zero"):
            raise BadInputError(f"the garch mean must be constant or zero, not {mean!r}")
        self.horizon, self.target, self.levels = horizon, target, tuple(levels)
        self.mean, self.paths, self.seed = mean, paths, seed
        self.quantiles: dict[str, list[float]] = {}  # no conformal quantiles: see predict_bounds
        self.params: dict[str, float] = {}  # mu, omega, alpha, beta, nu (returns in percent)

    def fit(self, frame: pd.DataFrame) -> GarchForecaster:
        """Fit GARCH(1,1)-t by maximum likelihood on every row of ``frame``."""
        arch = import_extra("arch", self.name)
        returns = self._returns(frame)
        if len(returns) < 100:
            raise BadInputError(f"the garch baseline needs at least 100 daily returns, not {len(returns)}")
        model = arch.arch_model(returns, mean="Constant" if self.mean == "constant" else "Zero", vol="GARCH",
                                p=1, q=1, dist="t", rescale=False)
        with warnings.catch_warnings():  # a non-converged fit still gives usable parameters; the backtest judges them
            warnings.simplefilter("ignore")
            fitted = model.fit(disp="off", show_warning=False)
        p = fitted.params
        self.params = {"mu": float(p.get("mu", 0.0)), "omega": float(p["omega"]), "alpha": float(p["alpha[1]"]),
                       "beta": float(p["beta[1]"]), "nu": float(p["nu"])}
        nu = self.params["nu"]
        rng = np.random.default_rng(self.seed)
        self._shocks = rng.standard_t(nu, size=(self.paths, self.horizon)) * np.sqrt((nu - 2) / nu)  # unit variance
        return self

    def _returns(self, frame: pd.DataFrame) -> np.ndarray:
        prices = frame[self.target].to_numpy(dtype="float64")
        if not np.isfinite(prices).all() or (prices <= 0).any():
            raise BadInputError(f"the {self.name} baseline needs positive, finite {self.target} prices")
        return np.diff(np.log(prices)) * PERCENT

    def next_variance(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Return (n,) the conditional variance (percent squared) of the return after each origin.

        Runs sigma2[t] = omega + alpha * e[t-1]**2 + beta * sigma2[t-1] over the
        returns of ``frame`` up to the latest origin, started from arch's backcast.
        """
        if not self.params:
            raise RuntimeError(f"{self.name}: predict before fit")
        origins = np.asarray(origins, dtype=int)
        if len(origins) == 0:
            return np.empty(0)
        returns = self._returns(frame.iloc[: int(origins.max()) + 1])  # r[i] = log P[i+1] - log P[i]
        p = self.params
        e2 = (returns - p["mu"]) ** 2
        weights = 0.94 ** np.arange(min(BACKCAST_ROWS, len(e2)))
        backcast = float(np.dot(weights, e2[: len(weights)]) / weights.sum()) if len(e2) else p["omega"] / max(1e-9, 1 - p["alpha"] - p["beta"])
        # sigma2 of return i, for i = 0..len(returns): the last one is the return after the latest origin
        sigma2 = np.empty(len(e2) + 1)
        omega, alpha, beta = p["omega"], p["alpha"], p["beta"]
        s2 = backcast
        for i, shock2 in enumerate([backcast, *e2.tolist()]):  # a plain loop: about 1 ms for ten years
            s2 = omega + alpha * shock2 + beta * s2
            sigma2[i] = s2
        return sigma2[origins]  # the return after price row t is return t

    def _simulated(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Return (n, paths, H) simulated cumulative log-returns after each origin."""
        p = self.params
        sigma2 = np.repeat(self.next_variance(frame, origins)[:, None], self.paths, axis=1)  # (n, paths)
        total = np.zeros_like(sigma2)
        out = np.empty((len(sigma2), self.paths, self.horizon))
        for k in range(self.horizon):
            shock = np.sqrt(sigma2) * self._shocks[None, :, k]
            total = total + p["mu"] + shock
            out[:, :, k] = total
            sigma2 = p["omega"] + p["alpha"] * shock ** 2 + p["beta"] * sigma2
        return out / PERCENT

    def predict_target(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Return (len(origins), H) mean cumulative log-returns: mu * k (0 with a zero mean)."""
        if not self.params:
            raise RuntimeError(f"{self.name}: predict before fit")
        steps = np.arange(1, self.horizon + 1) * self.params["mu"] / PERCENT
        return np.tile(steps, (len(np.asarray(origins)), 1))

    def predict_bounds(self, frame: pd.DataFrame, origins: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return {level key: (lower, upper)}, each (n, H) log-returns: central quantiles of the simulated paths."""
        origins = np.asarray(origins, dtype=int)
        out = {level_key(level): (np.empty((len(origins), self.horizon)), np.empty((len(origins), self.horizon)))
               for level in self.levels}
        for lo in range(0, len(origins), ORIGINS_PER_BATCH):  # bounds memory: a batch holds batch x paths x H floats
            paths = self._simulated(frame, origins[lo: lo + ORIGINS_PER_BATCH])
            for level in self.levels:
                alpha = 1.0 - float(level)
                lower, upper = np.quantile(paths, [alpha / 2, 1 - alpha / 2], axis=1)
                out[level_key(level)][0][lo: lo + ORIGINS_PER_BATCH] = lower
                out[level_key(level)][1][lo: lo + ORIGINS_PER_BATCH] = upper
        return out
