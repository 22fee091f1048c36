"""Per-ticker units of work: (workspace, ticker, settings) in, a typed result out.

Each function reads what it needs from the store and the registry and writes
through them; nothing is carried from one ticker to the next except what the
caller passes in on purpose (a LoadedModels cache, so that one process loads
each network once, in numpy). Executors map these over tickers. TensorFlow is
imported only inside the job bodies that need it, never at import time, so a
worker can set its thread counts first.

``TrainJob``, ``PredictJob`` and ``BacktestJob`` bind the settings of one
command to a function of the ticker alone, and pickle: the pool and Ray ship
them to other processes (forecast/workflow/executors.py). Each fit starts from a clear
Keras session, so a worker that trains hundreds of tickers does not grow.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forecast.data.store import MarketStore
from forecast.data.tickers import parse_ticker
from forecast.maths.intervals import DEFAULT_LEVELS
from forecast.models.predicting import LoadedModels, predict_ticker
from forecast.models.registry import ModelRegistry
from forecast.models.results import ForecastResult, save_forecast
from forecast.models.train_config import TrainConfig
from forecast.models.training import TrainResult
from forecast.workspace import Workspace

if TYPE_CHECKING:
    from forecast.evaluation.backtest import BacktestResult
    from forecast.progress import ProgressReporter


def fresh_keras_session() -> None:
    """Clear what earlier fits left in Keras, when this process has loaded it (never import TensorFlow just for this)."""
    if "forecast.models.network" in sys.modules:
        from forecast.models.network import clear_session

        clear_session()


def train_one(workspace: Workspace, ticker: str, cfg: TrainConfig, progress: str | ProgressReporter = "none",
              levels: Sequence[float] = DEFAULT_LEVELS) -> TrainResult:
    """Train a network on one stored ticker and register it."""
    from forecast.models.training import train_ticker

    fresh_keras_session()
    return train_ticker(MarketStore(workspace), ModelRegistry(workspace), ticker, cfg, progress, levels)


def predict_one(workspace: Workspace, ticker: str, model_id: str | None = None, horizon: int | None = None,
                levels: Sequence[float] = DEFAULT_LEVELS, models: LoadedModels | None = None) -> ForecastResult:
    """Forecast one ticker and store the forecast for ``plot``.

    By the model in use for the ticker (no ``model_id``, or the one it names),
    or when no model serves the ticker at all (a baseline is then all there
    is), it is the ticker's forecast of record, stored whole (``horizon`` only
    cuts what is returned); by any other model it is kept apart, labelled
    ``of_record`` False, and the forecast of record stands.
    """
    registry = ModelRegistry(workspace)
    from forecast.workflow.price_limits import cap_forecasts

    record = model_id is None or _in_use(workspace, ticker, model_id)
    store = MarketStore(workspace)
    result = predict_ticker(store, registry, ticker, model_id, None if record else horizon, models, levels)
    if record and horizon is not None and horizon > len(result.points):  # beyond the model's horizon: its own error
        predict_ticker(store, registry, ticker, model_id or result.model_id, horizon, models, levels)
    result = cap_forecasts(workspace, [result])[0]  # a China ticker's band stops at its price limits
    result.of_record = record
    save_forecast(workspace, result)
    if horizon is not None and horizon < len(result.points):
        result = dataclasses.replace(result, points=result.points[:horizon])
    return result


def _in_use(workspace: Workspace, ticker: str, model_id: str) -> bool:
    """Whether ``model_id`` is the model in use for ``ticker`` (``workflow.serving.model_for`` without --model), or no
    model is in use for it (nothing trained, no universe model, or a broken pin): then ``model_id``'s is all there is."""
    from forecast.errors import ForecastError
    from forecast.workflow.serving import model_for

    try:
        return model_for(workspace, ticker).model_id == model_id
    except ForecastError:  # no model serves it: this forecast is its forecast of record until one does
        return True


@dataclass(frozen=True)
class BacktestSettings:
    """Everything a walk-forward backtest needs besides the ticker's bars."""

    models: tuple[str, ...]
    test_days: int = 250
    refit_every: int = 20
    horizon: int = 5
    window: int | None = None
    target: str = "close"
    adjust: str = "qfq"
    levels: tuple[float, ...] = DEFAULT_LEVELS
    network_overrides: dict = field(default_factory=dict)


def backtest_one(workspace: Workspace, ticker: str, settings: BacktestSettings,
                 progress: ProgressReporter | None = None) -> BacktestResult:
    """Walk-forward backtest of one stored ticker; stores and returns the BacktestResult.

    ``progress`` advances once per refit of each model.
    """
    from forecast.evaluation.backtest import save_backtest, walk_forward

    fresh_keras_session()
    name = str(parse_ticker(ticker))
    frame = MarketStore(workspace).read_bars(name, settings.adjust).frame
    result = walk_forward(frame, name, models=settings.models, test_days=settings.test_days,
                          refit_every=settings.refit_every, horizon=settings.horizon, window=settings.window,
                          target=settings.target, levels=settings.levels, network_overrides=settings.network_overrides,
                          progress=progress)
    save_backtest(workspace, result)
    return result


@dataclass(frozen=True)
class TrainJob:
    """``train_one`` with one command's settings: ticker -> TrainResult."""

    workspace: Workspace
    cfg: TrainConfig
    levels: tuple[float, ...] = DEFAULT_LEVELS
    progress: str = "none"  # the epochs' progress mode; "none" where the job runs in another process

    def __call__(self, ticker: str) -> TrainResult:
        return train_one(self.workspace, ticker, self.cfg, self.progress, self.levels)


@dataclass
class PredictJob:
    """``predict_one`` with one command's settings: ticker -> ForecastResult; loads each model once per process."""

    workspace: Workspace
    model_id: str | None = None
    horizon: int | None = None
    levels: tuple[float, ...] = DEFAULT_LEVELS
    _models: LoadedModels | None = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, ticker: str) -> ForecastResult:
        if self._models is None:
            self._models = LoadedModels(ModelRegistry(self.workspace))
        return predict_one(self.workspace, ticker, self.model_id, self.horizon, self.levels, self._models)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_models": None}  # loaded networks stay in the process that loaded them


@dataclass(frozen=True)
class BacktestJob:
    """``backtest_one`` with one command's settings: ticker -> BacktestResult."""

    workspace: Workspace
    settings: BacktestSettings
    progress: ProgressReporter | None = None  # the refits' progress; None where the job runs in another process

    def __call__(self, ticker: str) -> BacktestResult:
        return backtest_one(self.workspace, ticker, self.settings, self.progress)
