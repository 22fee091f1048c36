"""A trained model's card, per-ticker (ModelCard) or universe-wide (GlobalCard): typed and validated.

Stored beside the weights as ``metadata.json``. Both kinds are read through one
validator (``require``) and share their data range and summary here. A card is data read back
from disk, so ``ModelCard.from_dict`` checks every field it relies on (types,
the ticker and id that become paths) and raises CorruptFileError naming the
field, instead of a KeyError deep inside predict or a path outside the home.
The JSON shape is unchanged from format 1, so existing models keep loading.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from forecast.choices import Arch, ModelKind
from forecast.data.tickers import parse_ticker
from forecast.errors import CorruptFileError, ForecastError
from forecast.home_rules import safe_name
from forecast.models.train_config import TrainConfig, network_name

CARD_FORMAT = 1


GLOBAL_CARD_FORMAT = 1
GLOBAL_KIND = str(ModelKind.GLOBAL)


def require(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``data[key]`` if ``data`` is an object holding it with type ``kind`` (a bool is no number); CorruptFileError otherwise."""
    if not isinstance(data, dict) or key not in data:
        raise CorruptFileError(f"{where}: field {key!r} is missing")
    value = data[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise CorruptFileError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def require_data_range(data: Any, where: str) -> dict:
    """The card's ``data`` object, whose ``range`` must be two dates; CorruptFileError otherwise."""
    data_info = require(data, "data", dict, where)
    rng = require(data_info, "range", list, f"{where}: data")
    if len(rng) != 2 or not all(isinstance(v, str) for v in rng):
        raise CorruptFileError(f"{where}: data.range must be two dates")
    return data_info


class _Card:
    """What both kinds of card share: the trained data's range and the start of their summary."""

    id: str
    created_at: str
    data: dict

    @property
    def kind(self) -> ModelKind:
        raise NotImplementedError

    @property
    def horizon(self) -> int:
        raise NotImplementedError

    @property
    def data_range(self) -> tuple[str, str]:
        first, last = self.data["range"]
        return str(first), str(last)

    def _summary(self) -> dict:
        return {"id": self.id, "kind": str(self.kind), "horizon": self.horizon, "created_at": self.created_at,
                "data_range": list(self.data_range)}


@dataclass(frozen=True)
class ModelCard(_Card):
    """What ``metadata.json`` holds for a registered network."""

    id: str
    ticker: str
    created_at: str
    config: TrainConfig
    features: tuple[str, ...]
    scaling: dict  # dataset.Scaling.to_dict(): parsed where it is used
    data: dict  # range [first, last], rows, sha256, windows, val_start, source, adjust
    validation: dict  # best_epoch, val_loss, rmse, naive_rmse, skill_vs_naive
    intervals: dict  # method, space, scale_window, quantiles {level_key: [q per step]}
    history: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    format: int = CARD_FORMAT

    @property
    def kind(self) -> ModelKind:
        return ModelKind.NETWORK

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def family(self) -> str:
        """The catalogue name of this model's configuration, as backtests name it: ``default``, ``tutorial-gru``."""
        return network_name(self.config.preset, self.config.arch)

    @property
    def skill_vs_naive(self) -> float | None:
        return _number_or_none(self.validation.get("skill_vs_naive"))

    @property
    def quantiles(self) -> dict[str, list[float]]:
        return self.intervals["quantiles"]

    @property
    def scale_window(self) -> int:
        return int(self.intervals["scale_window"])

    def to_dict(self) -> dict:
        return {
            "format": self.format, "id": self.id, "ticker": self.ticker, "created_at": self.created_at,
            "config": self.config.to_dict(), "features": list(self.features), "scaling": self.scaling, "data": self.data,
            "validation": self.validation, "intervals": self.intervals, "history": self.history,
            "versions": self.versions, "train_seconds": self.train_seconds,
        }

    def summary(self, latest: bool = False) -> dict:
        """The one-line view ``models list`` shows."""
        return {
            **self._summary(), "ticker": self.ticker, "preset": self.config.preset, "arch": self.config.arch,
            "val_rmse": _number_or_none(self.validation.get("rmse")), "val_skill_vs_naive": self.skill_vs_naive,
            "latest": latest,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "metadata.json") -> ModelCard:
        """Return the card, or raise CorruptFileError naming the first field that is missing or wrong."""
        if not isinstance(data, dict):
            raise CorruptFileError(f"{where}: not a JSON object")
        model_id = require(data, "id", str, where)
        ticker_text = require(data, "ticker", str, where)
        try:
            safe_name(model_id, "model id")
            ticker = str(parse_ticker(safe_name(ticker_text, "ticker")))
            config = TrainConfig.from_dict(require(data, "config", dict, where))
            Arch.parse(config.arch, "arch")
        except CorruptFileError:
            raise
        except (ForecastError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{where}: {exc}") from None
        if ticker != ticker_text:
            raise CorruptFileError(f"{where}: ticker {ticker_text[:40]!r} is not in normal form")
        features = tuple(require(data, "features", list, where))
        scaling = require(data, "scaling", dict, where)
        for part in ("features", "target"):
            scaler = require(scaling, part, dict, f"{where}: scaling")
            for key in ("shift", "scale"):
                values = require(scaler, key, list, f"{where}: scaling.{part}")
                if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                    raise CorruptFileError(f"{where}: scaling.{part}.{key} holds a non-number")
        data_info = require_data_range(data, where)
        intervals = require(data, "intervals", dict, where)
        require(intervals, "scale_window", int, f"{where}: intervals")
        quantiles = require(intervals, "quantiles", dict, f"{where}: intervals")
        for level, values in quantiles.items():
            if not isinstance(values, list) or len(values) != config.horizon:
                raise CorruptFileError(f"{where}: intervals.quantiles[{level!r}] needs {config.horizon} numbers")
        return cls(
            id=model_id, ticker=ticker, created_at=require(data, "created_at", str, where), config=config,
            features=tuple(str(f) for f in features), scaling=scaling, data=data_info,
            validation=require(data, "validation", dict, where), intervals=intervals,
            history=dict(data["history"]) if isinstance(data.get("history"), dict) else {},
            versions=dict(data["versions"]) if isinstance(data.get("versions"), dict) else {},
            train_seconds=_number_or_none(data.get("train_seconds")) or 0.0,
            format=int(data.get("format", CARD_FORMAT)) if isinstance(data.get("format", CARD_FORMAT), int) else CARD_FORMAT,
        )


@dataclass(frozen=True)
class GlobalCard(_Card):
    """What a global model's ``metadata.json`` holds."""

    id: str
    universe: str
    tickers: tuple[str, ...]  # every ticker whose windows it trained on
    created_at: str
    config: dict  # global_model.GlobalSettings.to_dict()
    features: dict  # {"sequence": [...], "static": [...]}
    data: dict  # range [first, last], rows, train_cut, validation [start, end], windows_train, windows_validation
    validation: dict  # rank_ic (step H), best_epoch, scores per epoch
    calibration: dict  # {"slope": [H], "intercept": [H]}: expected log return = intercept + slope x score
    intervals: dict  # {"method": ..., "quantiles": {level_key: [[lo, hi] per step]}} of residual / (sigma sqrt(h))
    versions: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    windows_per_second: float = 0.0
    format: int = GLOBAL_CARD_FORMAT
    kind: str = GLOBAL_KIND  # type: ignore[assignment]  # stored as its string; _Card reads it through str()

    @property
    def horizon(self) -> int:
        return int(self.config["horizon"])

    @property
    def lookback(self) -> int:
        return int(self.config["lookback"])

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tickers"] = list(self.tickers)
        return data

    def summary(self) -> dict:
        return {**self._summary(), "universe": self.universe, "tickers": len(self.tickers),
                "validation_rank_ic": self.validation.get("rank_ic")}

    @classmethod
    def from_dict(cls, data: Any, where: str = "metadata.json") -> GlobalCard:
        """Return the card, or raise CorruptFileError naming what is missing or wrong."""
        require(data, "kind", str, where)
        if data["kind"] != GLOBAL_KIND:
            raise CorruptFileError(f"{where}: not a global model card (kind {data['kind']!r})")
        try:
            model_id = safe_name(require(data, "id", str, where), "model id")
            universe = safe_name(require(data, "universe", str, where), "universe")
        except ForecastError as exc:
            raise CorruptFileError(f"{where}: {exc}") from None
        config = require(data, "config", dict, where)
        for key in ("lookback", "horizon"):
            value = require(config, key, int, f"{where}: config")
            if value < 1:
                raise CorruptFileError(f"{where}: config.{key} must be positive")
        horizon = int(config["horizon"])
        calibration = require(data, "calibration", dict, where)
        for key in ("slope", "intercept"):
            values = require(calibration, key, list, f"{where}: calibration")
            if len(values) != horizon or not all(isinstance(v, (int, float)) for v in values):
                raise CorruptFileError(f"{where}: calibration.{key} needs {horizon} numbers")
        intervals = require(data, "intervals", dict, where)
        for level, pairs in require(intervals, "quantiles", dict, f"{where}: intervals").items():
            if not isinstance(pairs, list) or len(pairs) != horizon or not all(
                    isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in pairs):
                raise CorruptFileError(f"{where}: intervals.quantiles[{level!r}] needs {horizon} [lower, upper] pairs")
        data_info = require_data_range(data, where)
        tickers = require(data, "tickers", list, where)
        return cls(
            id=model_id, universe=universe, tickers=tuple(str(t) for t in tickers),
            created_at=require(data, "created_at", str, where), config=config,
            features=require(data, "features", dict, where), data=data_info, validation=require(data, "validation", dict, where),
            calibration=calibration, intervals=intervals,
            versions=dict(data.get("versions") or {}), train_seconds=float(data.get("train_seconds") or 0.0),
            windows_per_second=float(data.get("windows_per_second") or 0.0),
        )
