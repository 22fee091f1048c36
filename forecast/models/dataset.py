"""From bars to training arrays, without leakage, and back to prices.

Rows ``[0, split)`` are training rows; validation windows are the ones whose
targets all lie in ``[split, T)``: carved from the *end* of the training period.
Scalers see training rows only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.errors import InsufficientHistoryError
from forecast.maths.windows import (
    Scaler,
    check_complete,
    check_positive,
    feature_matrix,
    invert_target,
    make_windows,
    sliding_windows,
    target_matrix,
)
from forecast.models.train_config import TrainConfig

MIN_WINDOWS = 40  # fewer windows than this cannot fill both a training and a validation part


@dataclass(frozen=True)
class Scaling:
    features: Scaler
    target: Scaler

    def to_dict(self) -> dict:
        return {"features": self.features.to_dict(), "target": self.target.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Scaling:
        return cls(Scaler(**data["features"]), Scaler(**data["target"]))


@dataclass(frozen=True)
class TrainingArrays:
    """X: (n, lookback, F) float32; Y: (n, horizon) float32; last_rows: (n,) origins."""

    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    val_last_rows: np.ndarray
    scaling: Scaling
    split_row: int


def first_valid_row(cfg: TrainConfig) -> int:
    """Return 1 when a return feature makes row 0 undefined, else 0."""
    return 1 if "return" in cfg.features else 0


def fit_scaling(bars: pd.DataFrame, cfg: TrainConfig, train_rows: int) -> Scaling:
    """Fit feature and target scalers on rows ``[first valid, train_rows)`` only."""
    start = first_valid_row(cfg)
    feats = feature_matrix(bars, list(cfg.features), cfg.target)[start:train_rows]
    prices = bars[cfg.target].to_numpy(dtype="float64")
    feature_scaler = Scaler.fit(feats, cfg.scaler)
    if cfg.transform == "log-return":
        targets = target_matrix(prices[:train_rows], 1, "log-return")[start:-1, 0]
        # No shift: an output of 0 must stay "no change", so drift is learnt, not assumed.
        target_scaler = Scaler("standard", [0.0], [float(np.nanstd(targets)) or 1.0])
    else:
        target_scaler = Scaler.fit(prices[start:train_rows, None], cfg.scaler)
    return Scaling(feature_scaler, target_scaler)


def scaled_inputs(bars: pd.DataFrame, cfg: TrainConfig, scaling: Scaling) -> np.ndarray:
    """Return (T, F) scaled features as float32 (row 0 NaN for return features)."""
    return scaling.features.transform(feature_matrix(bars, list(cfg.features), cfg.target)).astype("float32")


def scaled_targets(bars: pd.DataFrame, cfg: TrainConfig, scaling: Scaling) -> np.ndarray:
    """Return (T, horizon) scaled targets (NaN where the future is unknown)."""
    prices = bars[cfg.target].to_numpy(dtype="float64")
    raw = target_matrix(prices, cfg.horizon, cfg.transform)
    return scaling.target.transform(raw[..., None])[..., 0].astype("float32")


def training_arrays(bars: pd.DataFrame, cfg: TrainConfig, ticker: str) -> TrainingArrays:
    """Return train/validation windows for ``bars`` (every row is training data)."""
    check_complete(bars, list(cfg.features), cfg.target)  # the caller names the ticker
    check_positive(bars, list(cfg.features), cfg.target, cfg.transform)
    start = first_valid_row(cfg)
    T = len(bars)
    needed = start + cfg.lookback + cfg.horizon + MIN_WINDOWS
    if needed > T:
        raise InsufficientHistoryError(
            f"training with lookback {cfg.lookback} and horizon {cfg.horizon} needs at least {needed} bars; {ticker} has {T}"
        )
    split = start + int(round((T - start) * (1 - cfg.val_fraction)))
    scaling = fit_scaling(bars, cfg, split)
    X, Y, last_rows = make_windows(scaled_inputs(bars, cfg, scaling)[start:], scaled_targets(bars, cfg, scaling)[start:],
                                   cfg.lookback, cfg.horizon)
    last_rows = last_rows + start
    train = last_rows + cfg.horizon <= split - 1
    val = last_rows >= split - 1
    return TrainingArrays(
        X_train=np.ascontiguousarray(X[train]), Y_train=Y[train], X_val=np.ascontiguousarray(X[val]), Y_val=Y[val],
        val_last_rows=last_rows[val], scaling=scaling, split_row=split,
    )


def inference_windows(bars: pd.DataFrame, cfg: TrainConfig, scaling: Scaling, origins: np.ndarray) -> np.ndarray:
    """Return (len(origins), lookback, F): the windows ending at each origin row."""
    feats = scaled_inputs(bars, cfg, scaling)
    windows = sliding_windows(feats, cfg.lookback)
    return np.ascontiguousarray(windows[origins - cfg.lookback + 1])


def to_prices(scaled_predictions: np.ndarray, bars: pd.DataFrame, cfg: TrainConfig, scaling: Scaling,
              origins: np.ndarray) -> np.ndarray:
    """Return (n, horizon) predicted prices from scaled network outputs at ``origins``."""
    raw = scaling.target.inverse(scaled_predictions[..., None])[..., 0]
    last = bars[cfg.target].to_numpy(dtype="float64")[origins]
    return invert_target(raw, last, cfg.transform)


def unscaled_targets(scaled: np.ndarray, scaling: Scaling) -> np.ndarray:
    return scaling.target.inverse(scaled[..., None])[..., 0]


def data_fingerprint(bars: pd.DataFrame) -> str:
    """Return a SHA-256 of the bars a model was trained on (dates and prices)."""
    digest = hashlib.sha256()
    digest.update(bars["date"].to_numpy(dtype="datetime64[ns]").tobytes())
    digest.update(np.ascontiguousarray(bars[["open", "high", "low", "close", "volume"]].to_numpy(dtype="float64")).tobytes())
    return digest.hexdigest()
