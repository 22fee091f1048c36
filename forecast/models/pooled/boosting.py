"""Gradient-boosted trees (LightGBM): the one module that imports ``lightgbm``, an optional extra.

The settings follow the spirit of Qlib's LightGBM benchmark (deep trees held
back by strong L1/L2 penalties and row and column subsampling), scaled to a
2-core machine; threads are fixed and the run is deterministic, so the same
data and seed give the same trees.
"""

from __future__ import annotations

import numpy as np

from forecast.errors import MissingExtraError

PARAMS = {
    "objective": "regression", "learning_rate": 0.05, "num_leaves": 64, "max_depth": 8, "min_data_in_leaf": 100,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l1": 200.0, "lambda_l2": 500.0,
    "num_threads": 2, "deterministic": True, "force_row_wise": True, "verbosity": -1,
}


def train_booster(x: np.ndarray, y: np.ndarray, rounds: int, seed: int):
    """Return a LightGBM booster of ``rounds`` trees fitted to (x, y)."""
    try:
        import lightgbm
    except ImportError:
        raise MissingExtraError("the lightgbm model needs the optional package: pip install 'forecast[global]'") from None
    ok = np.isfinite(y)
    data = lightgbm.Dataset(x[ok], label=y[ok], free_raw_data=True)
    return lightgbm.train({**PARAMS, "seed": seed}, data, num_boost_round=rounds)
