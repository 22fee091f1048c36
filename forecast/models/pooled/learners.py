"""Models that learn across tickers, behind one interface, for the cross-sectional backtest.

Each learner fits on pooled rows (``global_data.PooledData``) up to an origin
and scores any rows after it; a higher score means a higher expected return
over the horizon. Three learn:

* ``global``: the recurrent network of ``global_network`` (the product's model);
* ``linear``: a ridge regression on the same inputs, flattened;
* ``lightgbm``: gradient-boosted trees on the same inputs (the field's standard
  strong baseline, and Qlib's), when the optional ``lightgbm`` package is there.

The flat inputs for the two tabular learners are the window's last 10 days as
they are, the means of days 11-20, 21-40 and 41-60 (a 60-day window in 65
numbers instead of 300), and the static inputs. Their one setting (ridge's
alpha, the trees' number of rounds) is chosen on the validation rows by daily
Rank IC, never on the rows scored.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from forecast.choices import UNIVERSE_MODEL
from forecast.models.pooled.data import PooledData, every_nth_day, tabular_inputs
from forecast.models.pooled.model import GlobalSettings

RIDGE_ALPHAS = (1.0, 100.0, 10_000.0)


class PooledLearner(Protocol):
    name: str

    def fit(self, data: PooledData, target: np.ndarray, train_rows: np.ndarray, validation_rows: np.ndarray) -> None: ...

    def score(self, data: PooledData, rows: np.ndarray) -> np.ndarray: ...


def _rank_ic(scores: np.ndarray, data: PooledData, rows: np.ndarray) -> float:
    from forecast.models.pooled.data import daily_rank_ic

    return daily_rank_ic(scores, data.labels[rows, -1], data.dates[rows], data.tickers[rows])


class GlobalNetworkLearner:
    name = UNIVERSE_MODEL

    def __init__(self, settings: GlobalSettings):
        self.settings = settings
        self.model = None
        self.validation_rank_ic = self.linear_rank_ic = float("nan")
        self.best_epoch = 0

    def fit(self, data, target, train_rows, validation_rows) -> None:
        from forecast.models.pooled.network import fit_global

        every = every_nth_day(train_rows, data, self.settings.train_every)
        fitted = fit_global(self.settings.network(), data, target, every, validation_rows, linear_rows=train_rows)
        self.model, self.validation_rank_ic = fitted.model, fitted.validation_rank_ic
        self.linear_rank_ic, self.best_epoch = fitted.linear_rank_ic, fitted.best_epoch

    def score(self, data, rows) -> np.ndarray:
        return self.paths(data, rows)[:, -1]

    def paths(self, data, rows) -> np.ndarray:
        """(n, H): the network's score at every step (its bands are calibrated per step: evaluation/universe_bands.py)."""
        from forecast.models.pooled.network import predict_rows

        assert self.model is not None, "fit first"
        return predict_rows(self.model, data, rows, self.settings.lookback)


class RidgeLearner:
    name = "linear"

    def __init__(self, lookback: int, alphas: tuple[float, ...] = RIDGE_ALPHAS):
        self.lookback, self.alphas = lookback, alphas
        self.model = None
        self.alpha = float("nan")

    def fit(self, data, target, train_rows, validation_rows) -> None:
        from sklearn.linear_model import Ridge

        x, y = tabular_inputs(data, train_rows, self.lookback), target[train_rows, -1]
        x_val = tabular_inputs(data, validation_rows, self.lookback)
        best = (-np.inf, None, float("nan"))
        for alpha in self.alphas:
            model = Ridge(alpha=alpha).fit(x, y)
            quality = _rank_ic(model.predict(x_val), data, validation_rows) if len(validation_rows) else 0.0
            if not np.isfinite(quality):
                quality = -np.inf
            if best[1] is None or quality > best[0]:
                best = (quality, model, alpha)
        _, self.model, self.alpha = best

    def score(self, data, rows) -> np.ndarray:
        assert self.model is not None, "fit first"
        return np.asarray(self.model.predict(tabular_inputs(data, rows, self.lookback)))


class BoostedTreesLearner:
    """LightGBM with Qlib's benchmark-like settings; rounds chosen by validation Rank IC."""

    name = "lightgbm"
    ROUNDS = (50, 100, 200, 400)

    def __init__(self, lookback: int, seed: int = 42):
        self.lookback, self.seed = lookback, seed
        self.booster: Any = None
        self.rounds = 0

    def fit(self, data, target, train_rows, validation_rows) -> None:
        from forecast.models.pooled.boosting import train_booster

        x, y = tabular_inputs(data, train_rows, self.lookback), target[train_rows, -1]
        x_val = tabular_inputs(data, validation_rows, self.lookback)
        booster = self.booster = train_booster(x, y, max(self.ROUNDS), self.seed)
        qualities = []
        for rounds in self.ROUNDS:
            quality = _rank_ic(booster.predict(x_val, num_iteration=rounds), data, validation_rows) \
                if len(validation_rows) else 0.0
            qualities.append(quality if np.isfinite(quality) else -np.inf)
        self.rounds = self.ROUNDS[int(np.argmax(qualities))]

    def score(self, data, rows) -> np.ndarray:
        assert self.booster is not None, "fit first"
        return np.asarray(self.booster.predict(tabular_inputs(data, rows, self.lookback), num_iteration=self.rounds))


def boosting_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("lightgbm") is not None


def make_learner(name: str, settings: GlobalSettings) -> PooledLearner:
    if name == UNIVERSE_MODEL:
        return GlobalNetworkLearner(settings)
    if name == "linear":
        return RidgeLearner(settings.lookback)
    if name == "lightgbm":
        return BoostedTreesLearner(settings.lookback, settings.seed)
    raise ValueError(f"{name} is not a pooled learner")
