"""The training configuration: ``TrainConfig`` (everything that decides a trained model) and its presets.

Precedence: CLI flags > forecast.toml's ``[train]`` > the preset's defaults
(``build_train_config``). The app's own settings are ``workflow.settings``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import pandas as pd

from forecast.choices import Adjust, Arch, Preset, ScalerKind, TargetColumn, TargetTransform
from forecast.errors import BadInputError
from forecast.maths.windows import FEATURES

_INT_FIELDS = ("lookback", "horizon", "epochs", "batch_size", "patience", "seed")
_FLOAT_FIELDS = ("dropout", "lr", "val_fraction")
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a trained model, given the data and the seed."""

    preset: str = "default"
    arch: str = "gru"
    units: tuple[int, ...] = (32,)
    dropout: float = 0.1
    bidirectional: bool = False
    zero_head: bool = True  # start at "tomorrow = today" for return targets
    lookback: int = 30
    horizon: int = 5
    features: tuple[str, ...] = ("return",)
    target: str = "close"
    transform: str = "log-return"
    scaler: str = "standard"
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    patience: int = 8
    val_fraction: float = 0.15
    seed: int = 42
    adjust: str = "qfq"
    start: str | None = None
    end: str | None = None

    def __post_init__(self):
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadInputError(f"{name} must be a whole number, not {value!r}")
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise BadInputError(f"{name} must be a number, not {value!r}")
        Arch.parse(self.arch, "arch")
        Preset.parse(self.preset, "preset")
        TargetColumn.parse(self.target, "target")
        TargetTransform.parse(self.transform, "target transform")
        ScalerKind.parse(self.scaler, "scaler")
        Adjust.parse(self.adjust, "adjust")
        if self.lookback < 1 or self.horizon < 1:
            raise BadInputError(f"lookback ({self.lookback}) and horizon ({self.horizon}) must be at least 1")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 0:
            raise BadInputError(f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be at least 1, patience 0 or more")
        if not self.units or any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in self.units):
            raise BadInputError(f"units must be whole numbers of at least 1 per layer, e.g. 64,32; not {list(self.units)!r}")
        if not 0 <= self.seed <= MAX_SEED:  # numpy and TensorFlow take 32-bit seeds: say so before loading either
            raise BadInputError(f"seed ({self.seed}) must be between 0 and {MAX_SEED}")
        if not 0 <= self.dropout < 1:
            raise BadInputError(f"dropout ({self.dropout}) must be at least 0 and below 1")
        if not self.lr > 0:
            raise BadInputError(f"lr ({self.lr}) must be above 0")
        if not 0 < self.val_fraction < 0.5:
            raise BadInputError(f"val_fraction ({self.val_fraction}) must be between 0 and 0.5")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown or not self.features:
            raise BadInputError(f"unknown feature(s) {', '.join(map(str, unknown)) or '(none given)'}; use {', '.join(FEATURES)}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                try:
                    stamp = pd.Timestamp(value)
                except (ValueError, TypeError, OverflowError):
                    stamp = pd.NaT
                if stamp is pd.NaT:
                    raise BadInputError(f"--{name} {value!r} is not a date (YYYY-MM-DD)")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["units"], data["features"] = list(self.units), list(self.features)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise BadInputError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        data = dict(data)
        for key in ("units", "features"):
            if key in data:
                value = data[key]
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = [value]  # units = 64: one layer
                if not isinstance(value, (str, list, tuple)):
                    raise BadInputError(f"{key} must be a list such as [64, 32] or text such as \"64,32\", not {value!r}")
                data[key] = tuple(value.split(",") if isinstance(value, str) else value)
        if "units" in data:
            data["units"] = tuple(_whole(u, "units") for u in data["units"])
        if "features" in data:
            data["features"] = tuple(str(f).strip() for f in data["features"])
        return cls(**data)


# The course exercise, exactly: 60 opens -> next open, LSTM(80)->LSTM(100), MinMax, 50 epochs.
TUTORIAL = TrainConfig(
    preset="tutorial", arch="lstm", units=(80, 100), dropout=0.2, zero_head=False, lookback=60, horizon=1,
    features=("open",), target="open", transform="level", scaler="minmax", epochs=50, batch_size=64,
    lr=1e-3, patience=0, val_fraction=0.15,
)
DEFAULT = TrainConfig()


PRESETS = {Preset.DEFAULT: DEFAULT, Preset.TUTORIAL: TUTORIAL}


def network_name(preset: str, arch: str) -> str:
    """Return the catalogue name of a network: the preset, plus ``-arch`` when it is not the preset's own."""
    return preset if arch == preset_config(preset).arch else f"{preset}-{arch}"


def _whole(value, name: str) -> int:
    """Return ``value`` as an int when it is one ("64" from a flag counts), else raise."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInputError(f"{name} must be whole numbers, e.g. 64,32; not {value!r}")
    return value


def preset_config(name: str) -> TrainConfig:
    return PRESETS[Preset.parse(name, "preset")]


def build_train_config(preset: str = "default", file_options: dict | None = None, overrides: dict | None = None) -> TrainConfig:
    """Return the preset, updated by the config file's [train] table, then by CLI flags."""
    config = preset_config(preset)
    merged = {**(file_options or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    merged.pop("preset", None)
    if not merged:
        return config
    base = config.to_dict()
    base.update(merged)
    try:
        return TrainConfig.from_dict(base)
    except TypeError as exc:  # a wrong type in forecast.toml's [train] table
        raise BadInputError(f"[train]: {exc}") from None
