"""Typed configuration: training presets, and ``forecast.toml`` loading.

Precedence everywhere: CLI flags > environment > config file > defaults.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from forecast.errors import BadInputError

ARCHS = ("lstm", "gru", "rnn")
PRESETS = ("default", "tutorial")


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
        if self.arch not in ARCHS:
            raise BadInputError(f"unknown arch {self.arch!r}; use one of {', '.join(ARCHS)}")
        if self.lookback < 1 or self.horizon < 1:
            raise BadInputError(f"lookback ({self.lookback}) and horizon ({self.horizon}) must be at least 1")
        if self.target not in ("close", "open"):
            raise BadInputError(f"target must be close or open, not {self.target!r}")
        if not 0 < self.val_fraction < 0.5:
            raise BadInputError(f"val_fraction ({self.val_fraction}) must be between 0 and 0.5")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["units"], data["features"] = list(self.units), list(self.features)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise BadInputError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        data = dict(data)
        for key in ("units", "features"):
            if key in data:
                value = data[key]
                data[key] = tuple(value.split(",") if isinstance(value, str) else value)
        if "units" in data:
            data["units"] = tuple(int(u) for u in data["units"])
        return cls(**data)


# The course exercise, exactly: 60 opens -> next open, LSTM(80)->LSTM(100), MinMax, 50 epochs.
TUTORIAL = TrainConfig(
    preset="tutorial", arch="lstm", units=(80, 100), dropout=0.2, zero_head=False, lookback=60, horizon=1,
    features=("open",), target="open", transform="level", scaler="minmax", epochs=50, batch_size=64,
    lr=1e-3, patience=0, val_fraction=0.15,
)
DEFAULT = TrainConfig()


def preset_config(name: str) -> TrainConfig:
    if name == "tutorial":
        return TUTORIAL
    if name == "default":
        return DEFAULT
    raise BadInputError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")


def build_train_config(preset: str = "default", file_options: dict | None = None, overrides: dict | None = None) -> TrainConfig:
    """Return the preset, updated by the config file's [train] table, then by CLI flags."""
    config = preset_config(preset)
    merged = {**(file_options or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    merged.pop("preset", None)
    if not merged:
        return config
    base = config.to_dict()
    base.update(merged)
    return TrainConfig.from_dict(base)


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise BadInputError(f"no such config file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{path}: not valid TOML: {exc}") from None


@dataclass(frozen=True)
class AppConfig:
    """The workspace's ``forecast.toml``: what the daily job does."""

    tickers: tuple[str, ...] = ()
    source: str = "tushare"
    adjust: str = "qfq"
    preset: str = "default"
    train: dict = field(default_factory=dict)
    retrain_after_days: int | None = 20  # None: never retrain an existing model
    outdir: str = "daily"
    levels: tuple[float, ...] = (0.8, 0.95)
    tushare_token: str | None = None

    def masked(self) -> dict:
        data = asdict(self)
        data["tickers"], data["levels"] = list(self.tickers), list(self.levels)
        if data["tushare_token"]:
            data["tushare_token"] = "****" + data["tushare_token"][-2:] if len(data["tushare_token"]) > 8 else "****"
        return data


def load_app_config(home: Path, path: Path | None = None, env: dict | None = None) -> AppConfig:
    """Return defaults < ``<home>/forecast.toml`` (or ``path``) < environment."""
    env = os.environ if env is None else env
    path = path or home / "forecast.toml"
    raw = read_toml(path) if path.is_file() or path != home / "forecast.toml" else {}
    section = {**raw.get("forecast", {}), **{k: v for k, v in raw.items() if not isinstance(v, dict)}}
    values: dict = {}
    for key in ("source", "adjust", "preset", "outdir"):
        if key in section:
            values[key] = str(section[key])
    if "tickers" in section:
        values["tickers"] = tuple(section["tickers"])
    if "levels" in section:
        values["levels"] = tuple(float(v) for v in section["levels"])
    if "retrain_after_days" in section:
        value = section["retrain_after_days"]
        values["retrain_after_days"] = None if value in ("never", -1) else int(value)
    token = raw.get("tushare", {}).get("token") or section.get("tushare_token")
    if token:
        values["tushare_token"] = str(token)
    values["train"] = dict(raw.get("train", {}))
    if env.get("TUSHARE_TOKEN"):
        values["tushare_token"] = env["TUSHARE_TOKEN"]
    if env.get("FORECAST_TICKERS"):
        values["tickers"] = tuple(t for t in env["FORECAST_TICKERS"].replace(",", " ").split() if t)
    unknown = set(section) - {"tickers", "source", "adjust", "preset", "outdir", "levels", "retrain_after_days", "tushare_token"}
    if unknown:
        raise BadInputError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return AppConfig(**values)
