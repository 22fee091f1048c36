"""Forecast the next trading days from a registered model or a catalogue baseline.

Both go through ``forecasters.forecast_bands``; the result is a
``results.ForecastResult`` that ``save_forecast`` stores for ``plot``.

Today's bands are then recalibrated online (``adapt_bands``, issue 27): the
model's own band at each past origin whose outcome has come in since the last
predict is recomputed (one batched call, at most ``ADAPTIVE_CATCH_UP``
origins), each outcome moves the state of its step and level
(maths/adaptive_intervals.py, ``DEFAULT_METHOD``), and the state widens or
narrows today's band. The state lives in ``forecasts/<T>/adaptive/<model>.json``
(``Workspace.adaptive_state_file``), keyed by the date of the last bar applied
and written atomically: a run killed before the write repeats the same updates.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forecast.atomic import atomic_write_text
from forecast.choices import MIN_HISTORY_BARS, ModelKind
from forecast.data.calendar import calendar_of
from forecast.data.store import MarketStore
from forecast.data.tickers import Ticker, parse_ticker
from forecast.errors import BadInputError, CorruptFileError, ForecastError, ModelMismatchError
from forecast.jsonio import dumps
from forecast.maths.adaptive_intervals import adjust, new_state, shown_multiplier
from forecast.maths.adaptive_replay import replay
from forecast.maths.adaptive_state import DEFAULT_ETA, DEFAULT_METHOD, AdaptiveState
from forecast.maths.intervals import DEFAULT_LEVELS, SCALE_WINDOW
from forecast.maths.windows import FEATURE_COLUMNS, check_positive, require_history
from forecast.models.card import ModelCard
from forecast.models.forecasters import Bands, Forecaster, NetworkForecaster, forecast_bands, is_baseline, make_baseline
from forecast.models.registry import ModelRegistry
from forecast.models.results import ForecastPoint, ForecastResult, ModelSummary, load_forecast, save_forecast
from forecast.workspace import Workspace

if TYPE_CHECKING:
    from forecast.models.numpy_net import NumpyNetwork

__all__ = ["ForecastPoint", "ForecastResult", "LoadedModels", "load_forecast", "predict_ticker", "save_forecast"]

log = logging.getLogger(__name__)

BASELINE_HORIZON = 5
ADAPTIVE_CATCH_UP = 500  # the most past origins one predict recomputes to bring a state up to date (a new one: two years)
ADAPTIVE_VERSION = 1
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


# --- online recalibration of today's bands --------------------------------------------------------------

def read_adaptive_state(path: Path) -> dict[str, Any]:
    """Return a stored state file's content, checked: {"states": {level: [one AdaptiveState per step]}, "through":
    Timestamp, "model_id", "method", "horizon"}; CorruptFileError, one line ending "<path> is unreadable (<why>)",
    when it is no state file this version wrote. Whether it fits today's model and levels is ``_read_adaptive``'s
    question; doctor asks only this one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != ADAPTIVE_VERSION:
            raise ValueError("not a state file of this version")
        if not isinstance(data["states"], dict):
            raise TypeError("its states are not a mapping of levels")
        horizon = int(data["horizon"])
        states = {lv: [AdaptiveState.from_dict(d) for d in data["states"][lv]] for lv in sorted(data["states"], key=float)}
        if any(len(steps) != horizon or any(s.level != float(lv) for s in steps) for lv, steps in states.items()):
            raise ValueError(f"not one state per step (horizon {horizon}) of its level at every level")
        return {"states": states, "through": pd.Timestamp(str(data["through"])), "model_id": data.get("model_id"),
                "method": data.get("method"), "horizon": horizon, "scale": data.get("scale")}
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, OSError, ForecastError) as exc:
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}" if str(exc) else type(exc).__name__
        raise CorruptFileError(f"adaptive interval state {path} is unreadable ({why})") from None


def _read_adaptive(path: Path, ticker: str, model_id: str, horizon: int, levels: list[str],
                   scale: str) -> tuple[dict | None, str | None]:
    """Return (the stored state file's content, None), or (None, why it is rebuilt): missing, unreadable, other settings."""
    if not path.is_file():
        return None, "new"
    try:
        stored = read_adaptive_state(path)
    except CorruptFileError as exc:
        log.warning("%s %s: %s; rebuilt from the stored bars", ticker, model_id, exc)
        return None, "unreadable " + str(exc).rpartition(" is unreadable ")[2]
    states = stored["states"]
    same = (list(states) == levels and stored["model_id"] == model_id and stored["method"] == DEFAULT_METHOD
            and stored["horizon"] == horizon and stored["scale"] == scale
            and all(s.method == DEFAULT_METHOD for lv in levels for s in states[lv]))
    if not same:  # another model, method, horizon, set of levels or band scale (a baseline's bars gained a range): started again
        return None, "other settings"
    return {"states": states, "through": stored["through"]}, None


def adapt_bands(workspace: Workspace, ticker: str, model_id: str, model: Forecaster, frame: pd.DataFrame, bands: Bands,
                min_origin: int = MIN_HISTORY_BARS) -> tuple[Bands, dict[str, Any]]:
    """Return today's bands (row 0 of ``bands``, at the last row of ``frame``) recalibrated from the model's realised
    outcomes, and what was done (stored in the forecast as ``adaptive``).

    The state (one per level and step) is brought up to date with every bar after the last one it applied:
    the outcome at row r of the step-s forecast made at origin r - s, judged against the model's own band there,
    recomputed for all such origins in one ``forecast_bands`` call (at most ``ADAPTIVE_CATCH_UP`` of them; a new,
    unreadable or mismatched state is rebuilt from that many). Written atomically, keyed by the last bar's date.
    """
    levels = sorted(bands.lower, key=float)
    horizon = int(bands.point.shape[1])
    path = workspace.adaptive_state_file(ticker, model_id)
    stored, rebuilt = _read_adaptive(path, ticker, model_id, horizon, levels, model.scale)
    dates = pd.DatetimeIndex(frame["date"])
    last_row = len(frame) - 1
    first_row = max(min_origin, SCALE_WINDOW) + 1  # the first bar whose outcome can be judged
    if stored is not None:
        where = dates.get_indexer([stored["through"]])[0]
        if where < 0:  # its last bar is no longer stored (the bars were rewritten, or rewound): start again
            stored, rebuilt = None, "its last bar is no longer stored"
    if stored is not None:
        states: dict[str, list[AdaptiveState]] = stored["states"]
        start = int(where) + 1
    else:
        states = {lv: [new_state(float(lv)) for _ in range(horizon)] for lv in levels}
        start = first_row
    first_origin = max(start - horizon, last_row - ADAPTIVE_CATCH_UP, min_origin)
    applied = 0
    if start <= last_row and first_origin < last_row:
        origins = np.arange(first_origin, last_row)
        past = forecast_bands(model, frame, origins)  # the model's own band at each origin: one batched call
        prices = frame[model.target].to_numpy(dtype="float64")
        targets = origins[:, None] + np.arange(1, horizon + 1)[None, :]  # the row of each forecast's outcome
        new = (targets >= start) & (targets <= last_row)  # outcomes that came in since the state's last bar
        actual = np.where(new, prices[np.minimum(targets, last_row)], np.nan)  # NaN: applied before, or not known yet
        for lv in levels:  # replay applies them per step in time order, as ``update`` would one by one
            states[lv] = [s for s in replay(past.point, past.lower[lv], past.upper[lv], actual, float(lv), DEFAULT_METHOD,
                                            origins=origins, states=states[lv]).states if s is not None]
        applied = int(new.sum())
    if applied or rebuilt is not None:
        payload = {"version": ADAPTIVE_VERSION, "ticker": ticker, "model_id": model_id, "method": DEFAULT_METHOD,
                   "horizon": horizon, "scale": model.scale, "through": dates[last_row].date().isoformat(),
                   "states": {lv: [s.to_dict() for s in states[lv]] for lv in levels}}
        atomic_write_text(path, dumps(payload))
    lower = {lv: bands.lower[lv].copy() for lv in levels}
    upper = {lv: bands.upper[lv].copy() for lv in levels}
    by_level = {}
    for lv in levels:
        for k in range(horizon):
            lower[lv][0, k], upper[lv][0, k] = adjust(states[lv][k], bands.lower[lv][0, k], bands.upper[lv][0, k], bands.point[0, k])
        by_level[lv] = {
            "multiplier": [round(shown_multiplier(s), 6) for s in states[lv]],
            "coverage": [round(1 - s.miscoverage, 6) if s.updates else None for s in states[lv]],
            "outcomes": [s.updates for s in states[lv]],
        }
    record: dict[str, Any] = {"method": DEFAULT_METHOD, "eta": DEFAULT_ETA, "through": dates[last_row].date().isoformat(),
                              "applied": applied, "levels": by_level}
    if rebuilt is not None:
        record["rebuilt"] = rebuilt
    return Bands(bands.point, lower, upper), record


def _result(ticker: Ticker, model_id: str, model: Forecaster, frame: pd.DataFrame, bands: Bands, steps: int,
            summary: ModelSummary, adaptive: dict[str, Any] | None = None) -> ForecastResult:
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
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), model_summary=summary, adaptive=adaptive,
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
    bands, adaptive = adapt_bands(store.workspace, str(ticker), name, model, frame, bands)
    return _result(ticker, name, model, frame, bands, steps, ModelSummary(
        kind=str(ModelKind.BASELINE), family=name, preset="baseline", arch=name, adjust=bars.adjust,
        data_range=(bars.first_date.date().isoformat(), bars.last_date.date().isoformat())), adaptive)


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
    # a network's windows need lookback rows (one more for a return feature) before any origin
    bands, adaptive = adapt_bands(store.workspace, str(ticker), model_id, model, frame, bands,
                                  max(MIN_HISTORY_BARS, cfg.lookback + 1))
    summary = ModelSummary(kind=str(card.kind), family=card.family, preset=cfg.preset, arch=cfg.arch,
                           data_range=card.data_range, adjust=bars.adjust, validation_skill_vs_naive=card.skill_vs_naive)
    return _result(ticker, model_id, model, frame, bands, steps, summary, adaptive)
