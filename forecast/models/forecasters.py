"""One forecasting interface, and the static catalogue of every per-ticker model by name.

A Forecaster is fit on the bars up to an origin and then says, for each
origin, its H-step path in its own target space (log-returns relative to the
origin's price, or price levels) plus the conformal quantiles it calibrated.
A model whose intervals are its own (GARCH's variance path, ETS's state-space
formulas) also has ``predict_bounds``, which then replaces the conformal
quantiles. ``forecast_bands`` turns either into prices and intervals: the one
prediction chain that ``predict`` and ``backtest`` share, for baselines and
networks alike. A new per-ticker model is one more class here; the
universe-wide models are ``PooledLearner``s (``models.pooled.learners``).

The catalogue is a dict in code, never chosen by config text:

    naive, drift, ma (= ma5), maK, linear     baselines (numpy/scikit-learn)
    garch, ets                                interval anchors (the optional extra forecast[intervals])
    default, tutorial, <preset>-<arch>        recurrent networks (TensorFlow, imported when fit)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from forecast.choices import Arch, ModelKind, Preset
from forecast.errors import BadInputError, CorruptFileError
from forecast.maths.intervals import DEFAULT_LEVELS, DEFAULT_SCALE, SCALE_WINDOW, bars_range, check_scale, interval_bounds, origin_scale, scale_name
from forecast.maths.windows import invert_target
from forecast.models.baselines import Drift, LinearAR, MovingAverage, Naive
from forecast.models.ets import EtsForecaster
from forecast.models.garch import GarchForecaster
from forecast.models.train_config import TrainConfig, preset_config

if TYPE_CHECKING:
    from forecast.models.card import ModelCard
    from forecast.models.dataset import Scaling

MAX_MA_WINDOW = 1000  # a moving average longer than four years of bars is a typo


class Forecaster(Protocol):
    """Fit on bars up to an origin; say the next ``horizon`` steps at any later origins."""

    name: str
    kind: ModelKind
    horizon: int
    target: str
    transform: str
    quantiles: dict[str, list[float]]  # level key -> one volatility-normalised quantile per step
    scale_window: int
    scale: str  # how intervals.origin_scale measures each origin's volatility: "std60", "ewma0.94"

    def fit(self, frame: pd.DataFrame) -> Forecaster: ...

    def predict_target(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Return (len(origins), horizon) predictions in target space, from rows up to each origin."""
        ...


@runtime_checkable
class OwnBounds(Protocol):
    """The optional part of a Forecaster whose intervals are its own rather than conformal (GARCH, ETS)."""

    def predict_bounds(self, frame: pd.DataFrame, origins: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return {level key: (lower, upper)}, each (len(origins), horizon) in target space."""
        ...


@dataclass
class Bands:
    """Prices at each origin: ``point`` (n, H) and ``lower``/``upper`` {level key: (n, H)}."""

    point: np.ndarray
    lower: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]


def forecast_bands(model: Forecaster, frame: pd.DataFrame, origins: np.ndarray) -> Bands:
    """Return the model's price paths and intervals at ``origins`` of ``frame``.

    The intervals are the model's own (``predict_bounds``) where it has them,
    else its conformal quantiles times each origin's volatility (``model.scale``).
    """
    origins = np.asarray(origins)
    raw = model.predict_target(frame, origins)
    prices = frame[model.target].to_numpy(dtype="float64")
    last = prices[origins]
    lower, upper = {}, {}
    if isinstance(model, OwnBounds):
        for level, (lo, hi) in model.predict_bounds(frame, origins).items():
            lower[level], upper[level] = invert_target(lo, last, model.transform), invert_target(hi, last, model.transform)
    else:
        high, low = bars_range(frame)
        scale = origin_scale(prices, origins, model.transform, model.scale_window, model.scale, high, low)
        for level, q in model.quantiles.items():
            lower[level], upper[level] = interval_bounds(raw, np.asarray(q), scale, last, model.transform)
    return Bands(invert_target(raw, last, model.transform), lower, upper)


class NetworkForecaster:
    """A recurrent network (training.fit_model), or a registered one loaded from its card."""

    kind = ModelKind.NETWORK

    def __init__(self, name: str, cfg: TrainConfig, levels: Sequence[float] = DEFAULT_LEVELS, ticker: str | None = None):
        self.name, self.cfg, self.levels, self.ticker = name, cfg, levels, ticker or name
        self.horizon, self.target, self.transform = cfg.horizon, cfg.target, cfg.transform
        self.quantiles: dict[str, list[float]] = {}
        self.scale_window = SCALE_WINDOW
        self.scale = DEFAULT_SCALE
        self.model: object = None
        self.scaling: Scaling | None = None

    @classmethod
    def from_card(cls, card: ModelCard, model: object) -> NetworkForecaster:
        from forecast.models.dataset import Scaling

        loaded = cls(card.family, card.config, ticker=card.ticker)
        loaded.model, loaded.scaling = model, Scaling.from_dict(card.scaling)
        loaded.quantiles, loaded.scale_window = card.quantiles, card.scale_window
        loaded.scale = card_scale(card)
        return loaded

    def fit(self, frame: pd.DataFrame, progress: str = "none") -> NetworkForecaster:
        from forecast.models.dataset import Scaling
        from forecast.models.training import fit_model

        fitted = fit_model(frame, self.cfg, self.ticker, progress, levels=self.levels)
        card = fitted.card
        self.model, self.scaling = fitted.model, Scaling.from_dict(card.scaling)
        self.quantiles, self.scale_window = card.quantiles, card.scale_window
        self.scale = card_scale(card)
        return self

    def predict_target(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        from forecast.models import network
        from forecast.models.dataset import inference_windows, unscaled_targets

        if self.model is None or self.scaling is None:
            raise RuntimeError(f"{self.name}: predict before fit")
        scaled = network.predict(self.model, inference_windows(frame, self.cfg, self.scaling, origins))
        return unscaled_targets(scaled, self.scaling)


def card_scale(card: ModelCard) -> str:
    """Return the interval scale a card was calibrated with; cards from before scales were named used ``std<window>``."""
    scale = card.intervals.get("scale") or scale_name(card.scale_window)
    try:
        return check_scale(scale)
    except BadInputError as exc:
        raise CorruptFileError(f"model {card.id}: {exc}") from None


# --- the catalogue ---------------------------------------------------------------------------

_BASELINES: dict[str, Callable[..., Forecaster]] = {"naive": Naive, "drift": Drift, "linear": LinearAR,
                                                    "garch": GarchForecaster, "ets": EtsForecaster}
_MOVING_AVERAGE = re.compile(r"ma(\d*)")


def model_kind(name: str) -> ModelKind | None:
    """Return whether ``name`` is a catalogue baseline or network; None if it is not a catalogue name."""
    if name in _BASELINES or _MOVING_AVERAGE.fullmatch(name):
        return ModelKind.BASELINE
    preset, _, arch = name.partition("-")
    if preset in Preset.values() and (not arch or arch in Arch.values()):
        return ModelKind.NETWORK
    return None


def is_baseline(name: str) -> bool:
    return model_kind(name) is ModelKind.BASELINE


def catalogue_names() -> str:
    return "naive, drift, ma, maK, linear, garch, ets, " + ", ".join(Preset.values()) + ", <preset>-<arch>"


def network_config(name: str, horizon: int, target: str, overrides: dict | None = None) -> TrainConfig:
    """Return the config behind a network name: ``default``, ``tutorial``, ``tutorial-gru``, ``default-lstm``..."""
    preset, _, arch = name.partition("-")
    cfg = preset_config(preset)
    changes = {"horizon": horizon, "target": target, **(overrides or {})}
    if arch:
        changes["arch"] = str(Arch.parse(arch, "arch"))
    if preset == Preset.TUTORIAL:
        changes["features"] = (target,)
    return TrainConfig.from_dict({**cfg.to_dict(), **changes})


def make_baseline(name: str, horizon: int, target: str = "close", levels: Sequence[float] = DEFAULT_LEVELS) -> Forecaster:
    """Return a baseline by name: naive, drift, ma, maK (e.g. ma20), linear, garch, ets."""
    if name in _BASELINES:
        return _BASELINES[name](horizon, target, levels)
    if m := _MOVING_AVERAGE.fullmatch(name):
        k = int(m[1] or 5)
        if not 1 <= k <= MAX_MA_WINDOW:
            raise BadInputError(f"{name}: a moving average needs a window of 1 to {MAX_MA_WINDOW} bars")
        return MovingAverage(horizon, target, levels, k=k)
    raise BadInputError(f"unknown baseline {name!r}; use one of naive, drift, ma, maK, linear, garch, ets")


def make_forecaster(name: str, horizon: int, target: str = "close", levels: Sequence[float] = DEFAULT_LEVELS,
                    network_overrides: dict | None = None, ticker: str | None = None) -> Forecaster:
    """Return an unfitted forecaster for a catalogue name."""
    kind = model_kind(name)
    if kind is ModelKind.BASELINE:
        return make_baseline(name, horizon, target, levels)
    if kind is ModelKind.NETWORK:
        return NetworkForecaster(name, network_config(name, horizon, target, network_overrides), levels, ticker)
    raise BadInputError(f"unknown model {name!r}; use one of {catalogue_names()}")

