"""The app's settings: ``forecast.toml`` (and the environment) loaded into a typed ``AppConfig``.

Precedence everywhere: CLI flags > environment > config file > defaults.
Every problem in the file is reported at once, one per line.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import tomllib

from forecast.choices import Adjust, ColorConvention, Preset, Source
from forecast.data.sources.pacing import DEFAULT_CALLS_PER_MINUTE as DEFAULT_TUSHARE_CALLS_PER_MINUTE
from forecast.data.tickers import parse_ticker
from forecast.errors import BadInputError, ConfigError
from forecast.home_rules import outdir_problem
from forecast.maths.intervals import DEFAULT_LEVELS, check_levels
from forecast.models.train_config import TrainConfig, build_train_config
from forecast.redact import mask, register_secret
from forecast.workspace import DEFAULT_OUTDIR, Workspace

TOKEN_ENV_VARS = ("TUSHARE_TOKEN", "TS_TOKEN")  # ours first, then tushare's own
CALLS_PER_MINUTE_ENV = "FORECAST_TUSHARE_CALLS_PER_MINUTE"
DEFAULT_STALE_AFTER_DAYS = 5  # trading days a ticker's last bar may lag its calendar before `run` calls it stale


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
    stale_after_days: int = DEFAULT_STALE_AFTER_DAYS  # a last bar older than this many trading days: the ticker is stale
    outdir: str = DEFAULT_OUTDIR
    levels: tuple[float, ...] = DEFAULT_LEVELS
    tushare_token: str | None = None
    tushare_calls_per_minute: int = DEFAULT_TUSHARE_CALLS_PER_MINUTE  # per endpoint: the client paces itself to it
    colors: str | None = None  # cn | us for every ticker; None: Chinese convention for China tickers, Western otherwise
    # [sources]: (ticker or pattern, source) in file order; ticker names normalised, patterns upper-cased
    sources: tuple[tuple[str, str], ...] = ()
    portfolio: dict = field(default_factory=dict)  # [portfolio]: top_k, rebalance_every, max_drop, capital (backtest --portfolio)
    costs: dict = field(default_factory=dict)  # [costs]: over the A-share or plain defaults (evaluation/costs.py)
    # [limits]: (ticker or pattern, daily limit rate) in file order, for tickers on no China board (those follow the exchange)
    limits: tuple[tuple[str, float], ...] = ()

    def masked(self) -> dict:
        data = asdict(self)
        data["tickers"], data["levels"] = list(self.tickers), list(self.levels)
        data["sources"] = dict(self.sources)
        data["limits"] = dict(self.limits)
        data["tushare_token"] = mask(self.tushare_token)
        return data

    def source_for(self, ticker: str) -> str:
        """Return the ticker's source: its own [sources] entry, else the first pattern there that matches, else ``source``."""
        found = _match(self.sources, ticker)
        return self.source if found is None else found

    def limit_for(self, ticker: str) -> float | None:
        """The daily price limit the user set for ``ticker`` (its own [limits] entry, else the first pattern that matches)."""
        return _match(self.limits, ticker)

    def user_limits(self, tickers: Sequence[str]) -> dict[str, float]:
        """{ticker: rate} for those of ``tickers`` with a [limits] entry."""
        return {str(t): rate for t in tickers if (rate := self.limit_for(str(t))) is not None}

    def ticker_problems(self) -> list[str]:
        """One line per entry of ``tickers`` that names no ticker ("../x", ""): ``config show`` fails on them, ``run``
        reports each as a failed ticker and does the others."""
        problems = []
        for entry in self.tickers:
            try:
                parse_ticker(entry)
            except BadInputError as exc:
                problems.append(f"tickers: {entry!r} is not a ticker ({exc})")
        return problems

    def train_config(self, overrides: dict | None = None, preset: str | None = None) -> TrainConfig:
        """The training config for this workspace: preset < top-level adjust < [train] < ``overrides``."""
        return build_train_config(preset or self.preset, {"adjust": self.adjust, **self.train}, overrides)


_SETTINGS = {"tickers", "source", "adjust", "preset", "outdir", "levels", "retrain_after_days", "stale_after_days", "tushare_token",
             "tushare_calls_per_minute", "colors"}
_TUSHARE_SETTINGS = {"token", "calls_per_minute"}
_PATTERN_CHARACTERS = "*?["


def _match(pairs: Sequence[tuple[str, Any]], ticker: str) -> Any:
    """The value of ``ticker``'s own entry among (ticker or pattern, value) pairs, else of the first pattern that matches."""
    name = str(ticker).upper()
    for key, value in pairs:
        if not is_pattern(key) and key == name:
            return value
    for key, value in pairs:
        if is_pattern(key) and fnmatchcase(name, key):
            return value
    return None


def _parse_limits(table: object, problems: list[str]) -> tuple[tuple[str, float], ...]:
    """Return the [limits] table as (ticker or pattern, rate) pairs; append one line per problem found."""
    if not isinstance(table, dict):
        problems.append(f"[limits] must be a table of ticker or pattern = daily limit, e.g. \"*.T\" = 0.2; not {table!r}")
        return ()
    pairs = []
    for key, value in table.items():
        try:
            name = str(key).strip().upper() if is_pattern(str(key)) else str(parse_ticker(str(key)))
        except BadInputError as exc:
            problems.append(f"[limits] {key!r}: {exc}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            problems.append(f"[limits] {key}: a daily limit is a fraction between 0 and 1 (0.1 for +-10 %), not {value!r}")
            continue
        pairs.append((name, float(value)))
    return tuple(pairs)


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
        return tuple(value)  # each entry is checked by ticker_problems: run still does the others, config show says it

    def trading_days(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"must be a whole number of trading days, at least 1, not {value!r}")
        return value

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
    check("stale_after_days", trading_days)
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


def _train_problems(preset: str, train: dict) -> list[str]:
    """Every problem of a [train] table, one line each: each setting alone on the preset, then all of them together."""
    found = []
    for key, value in train.items():
        try:
            build_train_config(preset, {key: value})
        except BadInputError as exc:
            found.append(f"[train]: {str(exc).removeprefix('[train]: ')}")
    if not found:  # settings fine one by one may still disagree with each other
        try:
            build_train_config(preset, train)
        except BadInputError as exc:
            found.append(f"[train]: {str(exc).removeprefix('[train]: ')}")
    return found


def _portfolio_problems(table: dict) -> list[str]:
    from forecast.evaluation.portfolio import portfolio_problems

    return portfolio_problems(table) if table else []


def _costs_problems(table: dict) -> list[str]:
    from forecast.evaluation.costs import costs_problems

    return costs_problems(table) if table else []


def load_app_config(home: Workspace | Path | str | None, path: Path | None = None, env: dict | None = None,
                    strict_tickers: bool = False) -> AppConfig:
    """Return defaults < ``<home>/forecast.toml`` (or ``path``) < environment, validated as a whole.

    Every problem in the file is reported at once, one per line (ConfigError, exit 2). An entry of
    ``tickers`` that names no ticker is one of them only with ``strict_tickers`` (``config show``
    checks the file); ``run`` reports each as a failed ticker and does the others.
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
    values["limits"] = _parse_limits(raw.get("limits", {}), problems)
    train = raw.get("train", {})
    if not isinstance(train, dict):
        problems.append("[train] must be a table")
        train = {}
    else:
        train = {k: v.isoformat() if isinstance(v, (dt.date, dt.time)) else v for k, v in train.items()}  # TOML dates
        problems.extend(_train_problems(values.get("preset", "default"), train))
    values["train"] = dict(train)
    for name, problems_of in (("portfolio", _portfolio_problems), ("costs", _costs_problems)):
        table = raw.get(name, {})
        if not isinstance(table, dict):
            problems.append(f"[{name}] must be a table")
            continue
        table = {k: v.isoformat() if isinstance(v, (dt.date, dt.time)) else v for k, v in table.items()}
        problems.extend(problems_of(table))
        values[name] = table
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
    if strict_tickers:
        problems.extend(AppConfig(tickers=tuple(values.get("tickers", ()))).ticker_problems())
    if problems:  # named after the file only when there is one: a bad environment variable names itself
        raise ConfigError((f"{path}: " if path.is_file() else "") + ("\n".join(problems) if len(problems) == 1 else
                                          f"{len(problems)} problems:\n  " + "\n  ".join(problems)))
    return AppConfig(**values)
