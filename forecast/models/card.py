"""A trained model's card: everything needed to use and describe it, typed and validated.

Stored beside the weights as ``metadata.json``. A card is data read back
from disk, so ``ModelCard.from_dict`` checks every field it relies on (types,
the ticker and id that become paths) and raises CorruptFileError naming the
field, instead of a KeyError deep inside predict or a path outside the home.
The JSON shape is unchanged from format 1, so existing models keep loading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from forecast.choices import Arch, ModelKind
from forecast.data.tickers import parse_ticker
from forecast.errors import CorruptFileError, ForecastError
from forecast.models.train_config import TrainConfig, network_name
from forecast.workspace import safe_name

CARD_FORMAT = 1


def _require(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise CorruptFileError(f"{where}: field {key!r} is missing")
    value = data[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise CorruptFileError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


@dataclass(frozen=True)
class ModelCard:
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
    def family(self) -> str:
        """The catalogue name of this model's configuration, as backtests name it: ``default``, ``tutorial-gru``."""
        return network_name(self.config.preset, self.config.arch)

    @property
    def data_range(self) -> tuple[str, str]:
        first, last = self.data["range"]
        return str(first), str(last)

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
            "id": self.id, "ticker": self.ticker, "preset": self.config.preset, "arch": self.config.arch,
            "horizon": self.config.horizon, "created_at": self.created_at, "data_range": list(self.data_range),
            "val_rmse": _number_or_none(self.validation.get("rmse")), "val_skill_vs_naive": self.skill_vs_naive,
            "latest": latest,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "metadata.json") -> ModelCard:
        """Return the card, or raise CorruptFileError naming the first field that is missing or wrong."""
        if not isinstance(data, dict):
            raise CorruptFileError(f"{where}: not a JSON object")
        model_id = _require(data, "id", str, where)
        ticker_text = _require(data, "ticker", str, where)
        try:
            safe_name(model_id, "model id")
            ticker = str(parse_ticker(safe_name(ticker_text, "ticker")))
            config = TrainConfig.from_dict(_require(data, "config", dict, where))
            Arch.parse(config.arch, "arch")
        except CorruptFileError:
            raise
        except (ForecastError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{where}: {exc}") from None
        if ticker != ticker_text:
            raise CorruptFileError(f"{where}: ticker {ticker_text[:40]!r} is not in normal form")
        features = tuple(_require(data, "features", list, where))
        scaling = _require(data, "scaling", dict, where)
        for part in ("features", "target"):
            scaler = _require(scaling, part, dict, f"{where}: scaling")
            for key in ("shift", "scale"):
                values = _require(scaler, key, list, f"{where}: scaling.{part}")
                if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                    raise CorruptFileError(f"{where}: scaling.{part}.{key} holds a non-number")
        data_info = _require(data, "data", dict, where)
        rng = _require(data_info, "range", list, f"{where}: data")
        if len(rng) != 2 or not all(isinstance(v, str) for v in rng):
            raise CorruptFileError(f"{where}: data.range must be two dates")
        intervals = _require(data, "intervals", dict, where)
        _require(intervals, "scale_window", int, f"{where}: intervals")
        quantiles = _require(intervals, "quantiles", dict, f"{where}: intervals")
        for level, values in quantiles.items():
            if not isinstance(values, list) or len(values) != config.horizon:
                raise CorruptFileError(f"{where}: intervals.quantiles[{level!r}] needs {config.horizon} numbers")
        return cls(
            id=model_id, ticker=ticker, created_at=_require(data, "created_at", str, where), config=config,
            features=tuple(str(f) for f in features), scaling=scaling, data=data_info,
            validation=_require(data, "validation", dict, where), intervals=intervals,
            history=dict(data["history"]) if isinstance(data.get("history"), dict) else {},
            versions=dict(data["versions"]) if isinstance(data.get("versions"), dict) else {},
            train_seconds=_number_or_none(data.get("train_seconds")) or 0.0,
            format=int(data.get("format", CARD_FORMAT)) if isinstance(data.get("format", CARD_FORMAT), int) else CARD_FORMAT,
        )
