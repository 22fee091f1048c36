"""Forecast the next trading days from a registered model (or a baseline).

Forecasts are stored as JSON under ``<home>/forecasts/<TICKER>/latest.json``
so that ``plot`` can draw them without importing TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.atomic import atomic_write_text
from forecast.calendar import next_sessions
from forecast.config import TrainConfig
from forecast.dataset import Scaling, inference_windows, to_prices, unscaled_targets
from forecast.errors import BadInputError, ModelMismatchError
from forecast.jsonio import dumps
from forecast.intervals import interval_bounds, origin_scale
from forecast.registry import ModelRegistry
from forecast.store import MarketStore, resolve_home
from forecast.tickers import parse_ticker
from forecast.windows import FEATURE_COLUMNS, FEATURES, check_positive, require_history


@dataclass
class ForecastPoint:
    date: str
    value: float
    intervals: dict[str, list[float]] = field(default_factory=dict)  # level -> [lower, upper]


@dataclass
class ForecastResult:
    ticker: str
    model_id: str
    target: str
    last_date: str
    last_close: float
    last_value: float
    points: list[ForecastPoint]
    created_at: str
    model_summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for p in self.points:
            row = {"ticker": self.ticker, "date": p.date, "predicted": p.value}
            for level, (lo, hi) in p.intervals.items():
                pct = int(round(float(level) * 100))
                row[f"lower_{pct}"], row[f"upper_{pct}"] = lo, hi
            rows.append(row)
        return pd.DataFrame(rows)


class LoadedModels:
    """Keras models loaded once per process, shared by every ticker of one run."""

    def __init__(self, registry: ModelRegistry):
        self.registry = registry
        self._cache: dict[str, object] = {}

    def get(self, model_id: str):
        if model_id not in self._cache:
            from forecast import network

            self._cache[model_id] = network.load_model(self.registry.model_file(model_id))
        return self._cache[model_id]


def check_compatible(meta: dict, frame: pd.DataFrame, ticker: str) -> TrainConfig:
    cfg = TrainConfig.from_dict(meta["config"])
    unknown = [f for f in meta["features"] if f not in FEATURES]
    if unknown or len(meta["scaling"]["features"]["shift"]) != len(meta["features"]):
        raise ModelMismatchError(f"model {meta.get('id')} uses features this version cannot build: {', '.join(unknown)}")
    needed = {c for f in meta["features"] for c in FEATURE_COLUMNS.get(f, (f,))} | {cfg.target}
    missing = sorted(c for c in needed if c in frame and frame[c].isna().all())
    if missing:
        raise ModelMismatchError(f"model {meta.get('id')} needs {', '.join(missing)}, which {ticker}'s data lacks")
    require_history(len(frame), cfg.lookback, ticker, extra=1 if "return" in cfg.features else 0)
    check_positive(frame.tail(cfg.lookback + 1), list(cfg.features), cfg.target, cfg.transform)
    return cfg


BASELINE_HORIZON = 5


def predict_baseline(store: MarketStore, ticker_text: str, name: str, horizon: int | None = None,
                     target: str = "close", adjust: str = "qfq") -> ForecastResult:
    """Return a baseline's forecast (naive, drift, ma, linear), fit on every stored bar."""
    from forecast.baselines import make_baseline

    ticker = parse_ticker(ticker_text)
    bars = store.read_bars(ticker, adjust)
    frame = bars.frame
    steps = horizon or BASELINE_HORIZON
    require_history(len(frame), 30, str(ticker))
    model = make_baseline(name, steps, target).fit(frame)
    origin = np.array([len(frame) - 1])
    point = model.predict_log_returns(frame, origin)
    last_value = float(frame[target].iloc[-1])
    prices = last_value * np.exp(point[0])
    scale = origin_scale(frame[target].to_numpy(), origin, "log-return")
    bounds = {lv: interval_bounds(point, np.asarray(q), scale, np.array([last_value]), "log-return")
              for lv, q in model.quantiles.items()}
    return _result(str(ticker), name, target, bars.last_date, frame, last_value, prices, bounds,
                   {"preset": "baseline", "arch": name, "adjust": bars.adjust,
                    "data_range": [bars.first_date.date().isoformat(), bars.last_date.date().isoformat()]})


def _result(ticker: str, model_id: str, target: str, last_date: pd.Timestamp, frame: pd.DataFrame, last_value: float,
            prices: np.ndarray, bounds: dict, summary: dict) -> ForecastResult:
    dates = next_sessions(last_date, len(prices), parse_ticker(ticker))
    points = [
        ForecastPoint(d.date().isoformat(), float(prices[k]),
                      {level: [float(lo[0, k]), float(hi[0, k])] for level, (lo, hi) in bounds.items()})
        for k, d in enumerate(dates)
    ]
    return ForecastResult(
        ticker=ticker, model_id=model_id, target=target, last_date=last_date.date().isoformat(),
        last_close=float(frame["close"].iloc[-1]), last_value=last_value, points=points,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), model_summary=summary,
    )


def predict_ticker(store: MarketStore, registry: ModelRegistry, ticker_text: str, model_id: str | None = None,
                   horizon: int | None = None, models: LoadedModels | None = None) -> ForecastResult:
    """Return the forecast for the trading days after the ticker's last stored bar."""
    from forecast.baselines import is_baseline

    if model_id and is_baseline(model_id):
        return predict_baseline(store, ticker_text, model_id, horizon)
    from forecast import network

    ticker = parse_ticker(ticker_text)
    model_id = registry.resolve(str(ticker), model_id)
    meta = registry.metadata(model_id)
    if meta["ticker"] != str(ticker):
        raise ModelMismatchError(f"model {model_id} was trained on {meta['ticker']}, not {ticker}")
    bars = store.read_bars(ticker, meta["config"]["adjust"])
    frame = bars.frame
    cfg = check_compatible(meta, frame, str(ticker))
    steps = horizon or cfg.horizon
    if steps > cfg.horizon:
        raise BadInputError(f"model {model_id} forecasts {cfg.horizon} days; train one with --horizon {steps}")
    scaling = Scaling.from_dict(meta["scaling"])
    origin = np.array([len(frame) - 1])
    X = inference_windows(frame, cfg, scaling, origin)
    scaled = network.predict((models or LoadedModels(registry)).get(model_id), X)
    prices = to_prices(scaled, frame, cfg, scaling, origin)[0, :steps]
    point_target = unscaled_targets(scaled, scaling)
    last_value = float(frame[cfg.target].iloc[-1])
    scale = origin_scale(frame[cfg.target].to_numpy(), origin, cfg.transform, meta["intervals"]["scale_window"])
    bounds = {
        level: interval_bounds(point_target, np.asarray(q), scale, np.array([last_value]), cfg.transform)
        for level, q in meta["intervals"]["quantiles"].items()
    }
    summary = {"preset": cfg.preset, "arch": cfg.arch, "data_range": meta["data"]["range"], "adjust": bars.adjust,
               "validation_skill_vs_naive": meta["validation"].get("skill_vs_naive")}
    return _result(str(ticker), model_id, cfg.target, bars.last_date, frame, last_value, prices, bounds, summary)


def forecast_path(home: Path | str | None, ticker: str) -> Path:
    return resolve_home(home) / "forecasts" / ticker / "latest.json"


def save_forecast(home: Path | str | None, result: ForecastResult) -> Path:
    """Store the forecast for ``plot`` (atomically) and return its path."""
    path = forecast_path(home, result.ticker)
    atomic_write_text(path, dumps(result.to_dict()))
    return path


def load_forecast(home: Path | str | None, ticker: str) -> dict | None:
    path = forecast_path(home, ticker)
    return json.loads(path.read_text()) if path.is_file() else None
