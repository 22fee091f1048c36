"""Train a network on one ticker's stored bars and register it.

TensorFlow is imported here only when a function runs, not at import time.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import pandas as pd

from forecast import __version__
from forecast.data.bars import Bars
from forecast.data.store import MarketStore
from forecast.data.tickers import parse_ticker
from forecast.errors import BadInputError
from forecast.maths import metrics
from forecast.maths.intervals import DEFAULT_LEVELS, bars_range, network_intervals
from forecast.models.card import ModelCard
from forecast.models.dataset import data_fingerprint, to_prices, training_arrays, unscaled_targets
from forecast.models.registry import ModelRegistry
from forecast.models.train_config import TrainConfig
from forecast.progress import ProgressReporter
from forecast.progress import progress_mode as _progress_mode

log = logging.getLogger(__name__)


@dataclass
class FittedModel:
    """A trained Keras model with everything needed to use and describe it."""

    model: object  # keras.Model; typed loosely to keep Keras out of imports
    card: ModelCard


def select_range(bars: Bars, cfg: TrainConfig) -> pd.DataFrame:
    """Return the bars between ``cfg.start`` and ``cfg.end`` (both optional, inclusive)."""
    frame = bars.frame
    if cfg.start:
        frame = frame[frame["date"] >= pd.Timestamp(cfg.start)]
    if cfg.end:
        frame = frame[frame["date"] <= pd.Timestamp(cfg.end)]
    return frame.reset_index(drop=True)


def progress_mode(quiet: bool) -> str:
    """How training shows its epochs: see forecast.progress.progress_mode."""
    return _progress_mode(quiet)


def fit_model(frame: pd.DataFrame, cfg: TrainConfig, ticker: str, progress: str | ProgressReporter = "none",
              levels=DEFAULT_LEVELS) -> FittedModel:
    """Fit a network on ``frame`` (every row is training data); return it with metadata.

    ``progress`` (a reporter, or a mode: tty | lines | none) hears of every epoch.
    """
    started = time.perf_counter()
    arrays = training_arrays(frame, cfg, ticker)  # too little history is refused before TensorFlow is imported
    from forecast.models import network

    model, history, best_epoch, best_val_loss = network.fit_network(
        cfg, arrays.X_train, arrays.Y_train, arrays.X_val, arrays.Y_val, progress, label=f"{ticker} epochs")
    predicted = network.predict(model, arrays.X_val)
    residuals = unscaled_targets(arrays.Y_val, arrays.scaling) - unscaled_targets(predicted, arrays.scaling)
    origins = arrays.val_last_rows
    prices = frame[cfg.target].to_numpy(dtype="float64")
    predicted_price = to_prices(predicted, frame, cfg, arrays.scaling, origins)[:, 0]
    actual = prices[origins + 1]
    rmse = metrics.rmse(actual, predicted_price)
    naive_rmse = metrics.rmse(actual, prices[origins])
    card = ModelCard(
        id="",  # named when registered
        ticker=ticker,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config=cfg,
        features=tuple(cfg.features),
        scaling=arrays.scaling.to_dict(),
        data={
            "range": [frame["date"].iloc[0].date().isoformat(), frame["date"].iloc[-1].date().isoformat()],
            "rows": len(frame), "sha256": data_fingerprint(frame),
            "train_windows": len(arrays.X_train), "val_windows": len(arrays.X_val),
            "val_start": frame["date"].iloc[arrays.split_row].date().isoformat(),
        },
        validation={
            "best_epoch": best_epoch, "val_loss": best_val_loss, "rmse": rmse, "naive_rmse": naive_rmse,
            "skill_vs_naive": metrics.skill(rmse, naive_rmse) if naive_rmse else None,
        },
        intervals=network_intervals(prices, origins, residuals, cfg.transform, levels, *bars_range(frame)),
        history=history,
        versions={"forecast": __version__, **network.versions()},
        train_seconds=round(time.perf_counter() - started, 2),
    )
    return FittedModel(model, card)


@dataclass
class TrainResult:
    model_id: str
    card: ModelCard


def train_ticker(store: MarketStore, registry: ModelRegistry, ticker_text: str, cfg: TrainConfig,
                 progress: str | ProgressReporter = "none", levels=DEFAULT_LEVELS) -> TrainResult:
    """Train on a stored ticker and save the model to the registry.

    A fit whose validation loss is not finite (NaN prices slipped into the
    data, or a learning rate that diverged) is refused, not registered.
    """
    ticker = str(parse_ticker(ticker_text))
    bars = store.read_bars(ticker, cfg.adjust)
    frame = select_range(bars, cfg)
    if len(frame):
        log.info("%s: training %s-%s on %d bars (%s..%s), lookback %d, horizon %d, up to %d epochs", ticker, cfg.preset,
                 cfg.arch, len(frame), frame["date"].iloc[0].date(), frame["date"].iloc[-1].date(), cfg.lookback,
                 cfg.horizon, cfg.epochs)
    fitted = fit_model(frame, cfg, ticker, progress, levels=levels)
    val_loss = fitted.card.validation["val_loss"]
    if not math.isfinite(val_loss):
        raise BadInputError(f"training {ticker} gave a non-finite validation loss ({val_loss}); nothing was registered. "
                            "Check the data for gaps (forecast data show) or lower --lr")
    from forecast.models import network

    model_id = registry.new_id(ticker, cfg.preset, cfg.arch)
    card = replace(fitted.card, id=model_id, data={**fitted.card.data, "source": bars.source, "adjust": bars.adjust})
    registry.save(card, lambda path: network.save_model(fitted.model, path))
    v = card.validation
    log.info("%s: registered %s (best epoch %s of %d, val_loss %.4f, val RMSE %.2f vs naive %.2f, %.1fs)", ticker,
             model_id, v["best_epoch"], len(card.history.get("loss", [])), v["val_loss"], v["rmse"], v["naive_rmse"],
             card.train_seconds)
    return TrainResult(model_id, card)
