"""What the global network looks like and how it trains: ``GlobalNetConfig``, free of TensorFlow.

The one owner of the network's settings. ``network.py`` (Keras) builds and
fits from it; ``model.GlobalSettings``, the ``global`` preset, extends it with
what is not the network's, so reading or writing a preset never starts
TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GlobalNetConfig:
    lookback: int = 60
    horizon: int = 5
    arch: str = "gru"
    units: int = 32
    head_units: int = 16
    dropout: float = 0.1
    members: int = 3
    loss: str = "ic"
    lr: float = 1e-3
    epochs: int = 8
    patience: int = 3
    seed: int = 42
    max_day_rows: int = 1024  # a day with more origins is cut into batches of about this size
    epoch_windows: int | None = None  # at most about this many training windows an epoch (None: every one)
    linear: bool = False  # nest a ridge: a frozen linear path from the same inputs beside the recurrent one (wide & deep)
    linear_alphas: tuple[float, ...] = (1.0, 100.0, 10_000.0)  # the ridge's penalty, chosen on validation Rank IC
    linear_trainable: bool = False  # let training move the ridge's weights too (they start at the ridge either way)
    linear_margin_t: float = 2.0  # a trained epoch replaces the ridge alone only if it beats it on validation by this NW t
