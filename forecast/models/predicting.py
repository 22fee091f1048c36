"""Forecast the next trading days from a registered model or a catalogue baseline.

Both go through ``forecasters.forecast_bands``; the result is a
``results.ForecastResult`` that ``save_forecast`` stores for ``plot``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecast.choices import MIN_HISTORY_BARS, ModelKind
from forecast.data.calendar import calendar_of
from forecast.data.store import MarketStore
from forecast.data.tickers import Ticker, parse_ticker
from forecast.errors import BadInputError, ModelMismatchError
from forecast.maths.intervals import DEFAULT_LEVELS
from forecast.maths.windows import FEATURE_COLUMNS, check_positive, require_history
from forecast.models.card import ModelCard
from forecast.models.forecasters import Bands, Forecaster, NetworkForecaster, forecast_bands, is_baseline, make_baseline
from forecast.models.registry import ModelRegistry
from forecast.models.results import ForecastPoint, ForecastResult, ModelSummary, load_forecast, save_forecast

if TYPE_CHECKING:
    from forecast.models.numpy_net import NumpyNetwork

__all__ = ["ForecastPoint", "ForecastResult", "LoadedModels", "load_forecast", "predict_ticker", "save_forecast"]

BASELINE_HORIZON = 5
MAX_BASELINE_HORIZON = 250  # a year of sessions: past it a daily model's interval says nothing, and dates overflow far later


class LoadedModels:
    """Per-ticker networks loaded once per process, shared by every ticker of one job.

    Loaded in numpy (``numpy_net.load_network``: the archive check first, then
    h5py), never by Keras: ``predict`` and a ``run`` that does not retrain import no TensorFlow.
    """

    def __init__(self, registry: ModelRegistry):
        self.registry = registry
        self._cache: dict[str, NumpyNetwork] = {}

    def get(self, model_id: str) -> NumpyNetwork:
        if model_id not in self._cache:
            from forecast.models.numpy_net import load_network  # h5py: only where a network is served

            self._cache[model_id] = load_network(self.registry.model_file(model_id))
        return self._cache[model_id]


class NumpyNetworkForecaster(NetworkForecaster):
    """A registered network served by its numpy forward pass: the windows, scaling and targets of ``NetworkForecaster``."""

    def predict_target(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        from forecast.models.dataset import inference_windows, unscaled_targets
        from forecast.models.numpy_net import NumpyNetwork

        if not isinstance(self.model, NumpyNetwork) or self.scaling is None:
            raise RuntimeError(f"{self.name}: predict before its network is loaded")
        return unscaled_targets(self.model.predict(inference_windows(frame, self.cfg, self.scaling, origins)), self.scaling)


def check_compatible(card: ModelCard, frame: pd.DataFrame, ticker: str) -> None:
    """Raise ModelMismatchError unless ``frame`` has what the model was trained on."""
    cfg = card.config
    if len(card.scaling["features"]["shift"]) != len(card.features) or tuple(card.features) != tuple(cfg.features):
        raise ModelMismatchError(f"model {card.id} uses features this version cannot build: {', '.join(card.features)}")
    needed = {c for f in card.features for c in FEATURE_COLUMNS.get(f, (f,))} | {cfg.target}
    missing = sorted(c for c in needed if c in frame and frame[c].isna().all())
    if missing:
        raise ModelMismatchError(f"model {card.id} needs {', '.join(missing)}, which {ticker}'s data lacks")
    require_history(len(frame), cfg.lookback, ticker, extra=1 if "return" in cfg.features else 0)
    check_positive(frame.tail(cfg.lookback + 1), list(cfg.features), cfg.target, cfg.transform)


def _result(ticker: Ticker, model_id: str, model: Forecaster, frame: pd.DataFrame, bands: Bands, steps: int,
            summary: ModelSummary) -> ForecastResult:
    """Return the forecast at the last row of ``frame``: the first ``steps`` of each path."""
    last_date = frame["date"].iloc[-1]
    dates = calendar_of(frame, ticker).next_sessions(last_date, steps)  # the calendar the store recorded for the series
    points = [
        ForecastPoint(d.date().isoformat(), float(bands.point[0, k]),
                      {level: [float(bands.lower[level][0, k]), float(bands.upper[level][0, k])] for level in bands.lower})
        for k, d in enumerate(dates)
    ]
    return ForecastResult(
        ticker=str(ticker), model_id=model_id, target=model.target, last_date=last_date.date().isoformat(),
        last_close=float(frame["close"].iloc[-1]), last_value=float(frame[model.target].iloc[-1]), points=points,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), model_summary=summary,
    )


def predict_baseline(store: MarketStore, ticker_text: str, name: str, horizon: int | None = None,
                     target: str = "close", adjust: str = "qfq", levels=DEFAULT_LEVELS) -> ForecastResult:
    """Return a baseline's forecast (naive, drift, ma, linear), fit on every stored bar."""
    ticker = parse_ticker(ticker_text)
    bars = store.read_bars(ticker, adjust)
    frame = bars.frame
    steps = horizon or BASELINE_HORIZON
    if steps > MAX_BASELINE_HORIZON:
        raise BadInputError(f"--horizon {steps}: a baseline forecasts at most {MAX_BASELINE_HORIZON} trading days")
    require_history(len(frame), MIN_HISTORY_BARS, str(ticker))
    model = make_baseline(name, steps, target, levels).fit(frame)
    bands = forecast_bands(model, frame, np.array([len(frame) - 1]))
    return _result(ticker, name, model, frame, bands, steps, ModelSummary(
        kind=str(ModelKind.BASELINE), family=name, preset="baseline", arch=name, adjust=bars.adjust,
        data_range=(bars.first_date.date().isoformat(), bars.last_date.date().isoformat())))


def predict_ticker(store: MarketStore, registry: ModelRegistry, ticker_text: str, model_id: str | None = None,
                   horizon: int | None = None, models: LoadedModels | None = None,
                   levels=DEFAULT_LEVELS) -> ForecastResult:
    """Return the forecast for the trading days after the ticker's last stored bar."""
    if model_id and is_baseline(model_id):
        return predict_baseline(store, ticker_text, model_id, horizon, levels=levels)
    ticker = parse_ticker(ticker_text)
    model_id = registry.resolve(str(ticker), model_id)
    card = registry.card(model_id)
    if card.ticker != str(ticker):
        raise ModelMismatchError(f"model {model_id} was trained on {card.ticker}, not {ticker}")
    cfg = card.config
    steps = horizon or cfg.horizon
    if steps > cfg.horizon:
        raise BadInputError(f"model {model_id} forecasts {cfg.horizon} days; train one with --horizon {steps}")
    bars = store.read_bars(ticker, cfg.adjust)
    frame = bars.frame
    check_compatible(card, frame, str(ticker))
    model = NumpyNetworkForecaster.from_card(card, (models or LoadedModels(registry)).get(model_id))
    bands = forecast_bands(model, frame, np.array([len(frame) - 1]))
    summary = ModelSummary(kind=str(card.kind), family=card.family, preset=cfg.preset, arch=cfg.arch,
                           data_range=card.data_range, adjust=bars.adjust, validation_skill_vs_naive=card.skill_vs_naive)
    return _result(ticker, model_id, model, frame, bands, steps, summary)
