"""Typed configuration: training presets, and ``forecast.toml`` loading.

Precedence everywhere: CLI flags > environment > config file > defaults.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import asdict, dataclass, field, fields
from fnmatch import fnmatchcase
from pathlib import Path

import pandas as pd
import tomllib

from forecast.choices import Adjust, Arch, ColorConvention, Preset, ScalerKind, Source, TargetColumn, TargetTransform
from forecast.errors import BadInputError, ConfigError
from forecast.intervals import DEFAULT_LEVELS, check_levels
from forecast.redact import mask, register_secret
from forecast.tickers import parse_ticker
from forecast.windows import FEATURES
from forecast.workspace import DEFAULT_OUTDIR, Workspace, outdir_problem

TOKEN_ENV_VARS = ("TUSHARE_TOKEN", "TS_TOKEN")  # ours first, then tushare's own
CALLS_PER_MINUTE_ENV = "FORECAST_TUSHARE_CALLS_PER_MINUTE"
# tushare's per-minute limit on daily and adj_factor from its lowest paid tier up (its docs: 500 a minute at
# 120 points and at 2,000); a lower limit (index_daily: 200 at 2,000 points) still ends in the retry path.
DEFAULT_TUSHARE_CALLS_PER_MINUTE = 500
_INT_FIELDS = ("lookback", "horizon", "epochs", "batch_size", "patience", "seed")
_FLOAT_FIELDS = ("dropout", "lr", "val_fraction")


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


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"no such config file: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def token_from(env: dict | os._Environ, file_token: str | None = None) -> str | None:
    """Return the tushare token: $TUSHARE_TOKEN, then $TS_TOKEN, then the config file's; registered for redaction."""
    token = next((env[name] for name in TOKEN_ENV_VARS if env.get(name)), None) or file_token or None
    register_secret(token)
    return token


@dataclass(frozen=True)
class AppConfig:
    """The workspace's ``forecast.toml``: what the daily job does."""

    tickers: tuple[str, ...] = ()
    source: str = "tushare"
    adjust: str = "qfq"
    preset: str = "default"
    train: dict = field(default_factory=dict)
    retrain_after_days: int | None = 20  # None: never retrain an existing model
    outdir: str = DEFAULT_OUTDIR
    levels: tuple[float, ...] = DEFAULT_LEVELS
    tushare_token: str | None = None
    tushare_calls_per_minute: int = DEFAULT_TUSHARE_CALLS_PER_MINUTE  # per endpoint: the client paces itself to it
    colors: str | None = None  # cn | us for every ticker; None: Chinese convention for China tickers, Western otherwise
    # [sources]: (ticker or pattern, source) in file order; ticker names normalised, patterns upper-cased
    sources: tuple[tuple[str, str], ...] = ()

    def masked(self) -> dict:
        data = asdict(self)
        data["tickers"], data["levels"] = list(self.tickers), list(self.levels)
        data["sources"] = dict(self.sources)
        data["tushare_token"] = mask(self.tushare_token)
        return data

    def source_for(self, ticker: str) -> str:
        """Return the ticker's source: its own [sources] entry, else the first pattern there that matches, else ``source``."""
        name = str(ticker).upper()
        for key, value in self.sources:
            if not is_pattern(key) and key == name:
                return value
        for key, value in self.sources:
            if is_pattern(key) and fnmatchcase(name, key):
                return value
        return self.source

    def train_config(self, overrides: dict | None = None, preset: str | None = None) -> TrainConfig:
        """The training config for this workspace: preset < top-level adjust < [train] < ``overrides``."""
        return build_train_config(preset or self.preset, {"adjust": self.adjust, **self.train}, overrides)


_SETTINGS = {"tickers", "source", "adjust", "preset", "outdir", "levels", "retrain_after_days", "tushare_token",
             "tushare_calls_per_minute", "colors"}
_TUSHARE_SETTINGS = {"token", "calls_per_minute"}
_PATTERN_CHARACTERS = "*?["


def is_pattern(key: str) -> bool:
    """True when a [sources] key is a shell-style pattern (``*.SH``, ``6*``) rather than one ticker."""
    return any(c in key for c in _PATTERN_CHARACTERS)


def _parse_sources(table: object, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """Return the [sources] table as (ticker or pattern, source) pairs; append one line per problem found."""
    if not isinstance(table, dict):
        problems.append(f"[sources] must be a table of ticker or pattern = source, e.g. \"MTY\" = \"csv\"; not {table!r}")
        return ()
    pairs = []
    for key, value in table.items():
        try:
            name = str(key).strip().upper() if is_pattern(str(key)) else str(parse_ticker(str(key)))
        except BadInputError as exc:  # also an ambiguous bare code
            problems.append(f"[sources] {key!r}: {exc}")
            continue
        try:
            pairs.append((name, str(Source.parse(value, "source"))))
        except BadInputError as exc:
            problems.append(f"[sources] {key}: {exc}")
    return tuple(pairs)


def _parse_settings(section: dict, problems: list[str]) -> dict:
    """Return the typed top-level settings; append one line per problem found."""
    values: dict = {}

    def check(key, parse):
        if key in section:
            try:
                values[key] = parse(section[key])
            except (BadInputError, ValueError, TypeError) as exc:
                problems.append(f"{key}: {exc}")

    def tickers(value):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"must be a list of strings, e.g. tickers = [\"600519.SH\"]; not {value!r}")
        return tuple(value)

    def retrain(value):
        if value in ("never", -1):
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"must be a number of days or \"never\", not {value!r}")
        return value

    def text(value):
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {value!r}")
        return value

    check("tickers", tickers)
    check("source", lambda v: str(Source.parse(v, "source")))
    check("adjust", lambda v: str(Adjust.parse(v, "adjust")))
    check("preset", lambda v: str(Preset.parse(v, "preset")))
    def outdir(value):  # one outside the home is allowed (run says so each time); one in the home's own folders is not
        problem = outdir_problem(text(value))
        if problem:
            raise ValueError(problem)
        return value

    check("outdir", outdir)
    check("levels", check_levels)
    check("retrain_after_days", retrain)
    check("colors", lambda v: str(ColorConvention.parse(v, "colors")))
    return values


def calls_per_minute(value: object, where: str) -> int:
    """Return the per-endpoint call rate that ``value`` asks for: 0 means the default; else raise ConfigError."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where} must be a whole number of calls a minute (0: the default, "
                          f"{DEFAULT_TUSHARE_CALLS_PER_MINUTE}), not {value!r}")
    return value or DEFAULT_TUSHARE_CALLS_PER_MINUTE


def parse_retrain_after(text: str) -> int | None:
    """Return days from ``--retrain-after DAYS|never`` (None: never), or raise ConfigError."""
    if text == "never":
        return None
    if not text.isdigit():
        raise ConfigError("--retrain-after takes a number of days or 'never'")
    return int(text)


def load_app_config(home: Workspace | Path | str | None, path: Path | None = None, env: dict | None = None) -> AppConfig:
    """Return defaults < ``<home>/forecast.toml`` (or ``path``) < environment, validated as a whole.

    Every problem in the file is reported at once, one per line (ConfigError, exit 2).
    """
    environ: dict | os._Environ = os.environ if env is None else env
    workspace = Workspace.at(home, lock_timeout_s=0)
    default_path = workspace.config_file
    path = path or default_path
    raw = read_toml(path) if path.is_file() or path != default_path else {}
    section = {**raw.get("forecast", {}), **{k: v for k, v in raw.items() if not isinstance(v, dict)}}
    problems: list[str] = []
    sources_table = section.pop("sources", raw.get("sources", {}))
    unknown = set(section) - _SETTINGS
    if unknown:
        problems.append(f"unknown setting(s) {', '.join(sorted(unknown))}")
    values = _parse_settings(section, problems)
    if "outdir" in values and (problem := outdir_problem(values["outdir"], workspace.root)):  # an absolute path, a link
        problems.append(f"outdir: {problem}")
    values["sources"] = _parse_sources(sources_table, problems)
    train = raw.get("train", {})
    if not isinstance(train, dict):
        problems.append("[train] must be a table")
        train = {}
    else:
        train = {k: v.isoformat() if isinstance(v, (dt.date, dt.time)) else v for k, v in train.items()}  # TOML dates
        try:
            build_train_config(values.get("preset", "default"), train)
        except BadInputError as exc:
            problems.append(f"[train]: {str(exc).removeprefix('[train]: ')}")
    values["train"] = dict(train)
    tushare_table = raw.get("tushare", {})
    if not isinstance(tushare_table, dict):
        problems.append("[tushare] must be a table, e.g. [tushare] token = \"...\"")
        tushare_table = {}
    if unknown_tushare := set(tushare_table) - _TUSHARE_SETTINGS:
        problems.append(f"[tushare]: unknown setting(s) {', '.join(sorted(unknown_tushare))}")
    file_token = tushare_table.get("token") or section.get("tushare_token")
    if file_token is not None and not isinstance(file_token, str):
        problems.append("[tushare] token must be a string")
        file_token = None
    values["tushare_token"] = token_from(environ, file_token)
    rate_sources = [(f"${CALLS_PER_MINUTE_ENV}", environ.get(CALLS_PER_MINUTE_ENV) or None),
                    ("[tushare] calls_per_minute", tushare_table.get("calls_per_minute")),
                    ("tushare_calls_per_minute", section.get("tushare_calls_per_minute"))]
    for where, value in rate_sources:
        if value is None:
            continue
        try:
            rate = calls_per_minute(value, where)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        values.setdefault("tushare_calls_per_minute", rate)  # the first one given wins: env > [tushare] > top level
    if environ.get("FORECAST_TICKERS"):
        values["tickers"] = tuple(t for t in environ["FORECAST_TICKERS"].replace(",", " ").split() if t)
    if problems:
        raise ConfigError(f"{path}: " + ("\n".join(problems) if len(problems) == 1 else
                                          f"{len(problems)} problems:\n  " + "\n  ".join(problems)))
    return AppConfig(**values)
