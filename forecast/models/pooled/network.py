"""The global network: one recurrent model over windows pooled from a whole universe.

Beside ``network.py`` the one other module that imports Keras. Imported lazily,
only by the global model's training and prediction.

The network reads a window of normalised daily inputs through a GRU or LSTM
and joins the slow signals of its origin (``global_data.STATIC_FEATURES``)
before a small head. It holds ``members`` independent copies (one per seed,
each with its own weights and loss term), whose forecasts are averaged: an
ensemble over seeds in one ``.keras`` file, because single seeds varied as
much as the signal did.

Batches are cross-sections: one trading day's origins per batch, gathered from
the pooled arrays on demand (``PooledBatches``), so memory stays bounded at any
universe size. Two losses: ``mse`` on the target, and ``ic``, minus the
Pearson correlation between forecast and target within the day, which is the
daily IC the model is judged by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecast.models.network import KeepBest, keras, seed_everything, tf
from forecast.models.pooled.data import PooledData, daily_rank_ic, ensemble_forecast, rows_by_day, window_batch
from forecast.progress import ProgressReporter, SilentProgress, make_progress

LOSSES = ("mse", "ic")
_RNN = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


@dataclass(frozen=True)
class GlobalNetConfig:
    lookback: int = 60
    horizon: int = 5
    arch: str = "gru"
    units: int = 32
    head_units: int = 16
    dropout: float = 0.1
    members: int = 3
    loss: str = "ic"
    lr: float = 1e-3
    epochs: int = 8
    patience: int = 3
    seed: int = 42
    max_day_rows: int = 1024  # a day with more origins is cut into batches of about this size
    epoch_windows: int | None = None  # at most about this many training windows an epoch (None: every one)


def build_global_network(cfg: GlobalNetConfig, n_sequence: int, n_static: int) -> keras.Model:
    """Return the compiled ensemble: ([B, L, F], [B, S]) -> [B, members, H]."""
    window = keras.Input(shape=(cfg.lookback, n_sequence), name="window")
    static = keras.Input(shape=(n_static,), name="static")
    outputs = []
    for m in range(cfg.members):
        x = _RNN[cfg.arch](cfg.units, name=f"{cfg.arch}_{m}")(window)
        x = keras.layers.Concatenate(name=f"join_{m}")([x, static])
        if cfg.dropout:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{m}")(x)
        x = keras.layers.Dense(cfg.head_units, activation="relu", name=f"hidden_{m}")(x)
        outputs.append(keras.layers.Reshape((1, cfg.horizon), name=f"member_{m}")(
            keras.layers.Dense(cfg.horizon, name=f"head_{m}")(x)))
    stacked = outputs[0] if len(outputs) == 1 else keras.layers.Concatenate(axis=1, name="members")(outputs)
    model = keras.Model([window, static], stacked, name=f"global_{cfg.arch}")
    model.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss=_loss(cfg.loss))
    return model


def _loss(kind: str):
    if kind == "mse":
        def mse(y_true, y_pred):
            return tf.reduce_mean(tf.square(y_pred - y_true[:, None, :]))
        return mse
    if kind == "ic":
        def negative_ic(y_true, y_pred):
            # per member and step: minus the correlation across the batch (one day's cross-section)
            truth = y_true[:, None, :] - tf.reduce_mean(y_true, axis=0, keepdims=True)[:, None, :]
            guess = y_pred - tf.reduce_mean(y_pred, axis=0, keepdims=True)
            covariance = tf.reduce_mean(truth * guess, axis=0)
            scale = tf.sqrt(tf.reduce_mean(tf.square(truth), axis=0) * tf.reduce_mean(tf.square(guess), axis=0) + 1e-12)
            return -tf.reduce_mean(covariance / scale)
        return negative_ic
    raise ValueError(f"unknown loss {kind!r}; choose from {', '.join(LOSSES)}")


class PooledBatches(keras.utils.PyDataset):
    """One batch per trading day (cut into pieces of at most ``max_day_rows``), gathered on demand.

    With ``cfg.epoch_windows`` below the number of training windows, an epoch
    is a fresh random draw of day batches (a day of more than ``max_day_rows``
    origins is several) holding about that many windows: the cost of
    an epoch stays that of the data the configuration was chosen on (about
    58,000 windows on the S&P 500 set), while a longer history still reaches
    the network over the epochs instead of being cut off.
    """

    def __init__(self, data: PooledData, rows: np.ndarray, target: np.ndarray, cfg: GlobalNetConfig, shuffle_seed: int | None):
        super().__init__()
        self.data, self.target, self.cfg = data, target, cfg
        self.batches = []
        for day in rows_by_day(rows, data):
            pieces = max(1, math.ceil(len(day) / cfg.max_day_rows))
            self.batches.extend(np.array_split(day, pieces))
        self.batches = [b for b in self.batches if len(b) >= 2]  # a correlation needs two names
        self.order = np.arange(len(self.batches))
        total = sum(len(b) for b in self.batches)
        self.per_epoch = len(self.batches)
        capped = bool(cfg.epoch_windows and total > cfg.epoch_windows)
        # a capped epoch must draw afresh each time, so it always has a generator (seeded: the fit is reproducible)
        self._rng = None
        if shuffle_seed is not None or capped:
            self._rng = np.random.default_rng(shuffle_seed if shuffle_seed is not None else cfg.seed)
        if capped and self._rng is not None:
            self.per_epoch = max(1, round(len(self.batches) * (cfg.epoch_windows or total) / total))
            self._rng.shuffle(self.order)  # the first epoch draws at random too

    def __len__(self) -> int:
        return self.per_epoch

    def windows_per_epoch(self) -> float:
        """The mean number of windows an epoch trains on."""
        sizes = [len(b) for b in self.batches]
        return float(np.mean(sizes) * self.per_epoch) if sizes else 0.0

    def __getitem__(self, index: int):
        rows = self.batches[self.order[index]]
        window, static = window_batch(self.data, rows, self.cfg.lookback)
        return (window, static), self.target[rows]

    def on_epoch_end(self) -> None:
        if self._rng is not None:
            self._rng.shuffle(self.order)


def predict_rows(model: keras.Model, data: PooledData, rows: np.ndarray, lookback: int) -> np.ndarray:
    """Return the Keras ensemble's mean forecast (n, H) for origins ``rows`` (``global_data.ensemble_forecast``)."""
    return ensemble_forecast(lambda window, static: model.predict_on_batch((window, static)), data, rows, lookback,
                             model.output_shape[-1])


class KeepBestIC(KeepBest):
    """After each epoch, score the validation days by mean daily Rank IC at step H; keep the best epoch's weights."""

    def __init__(self, data: PooledData, rows: np.ndarray, truth: np.ndarray, lookback: int, patience: int,
                 progress: ProgressReporter):
        super().__init__(patience)
        self.data, self.rows, self.truth, self.lookback, self.progress = data, rows, truth, lookback, progress
        self.scores: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        forecast = predict_rows(self.model, self.data, self.rows, self.lookback)[:, -1]
        score = daily_rank_ic(forecast, self.truth, self.data.dates[self.rows], self.data.tickers[self.rows])
        self.scores.append(score)
        self.progress.advance(f"loss {(logs or {}).get('loss', float('nan')):.4f}  validation rank IC {score:.4f}")
        self.observe(epoch, -score)  # higher IC is better; a NaN day-score never is

    @property
    def best_rank_ic(self) -> float:
        """The best epoch's Rank IC; NaN when no epoch could rank a day."""
        return float(-self.best) if np.isfinite(self.best) else float("nan")


@dataclass
class GlobalFit:
    model: keras.Model
    best_epoch: int
    validation_rank_ic: float
    scores: list[float]
    windows_per_second: float
    windows_per_epoch: int


def fit_global(cfg: GlobalNetConfig, data: PooledData, target: np.ndarray, train_rows: np.ndarray,
               validation_rows: np.ndarray, progress: str | ProgressReporter = "none") -> GlobalFit:
    """Train the ensemble on day batches of ``train_rows``; choose the epoch by validation Rank IC at step H."""
    import time

    seed_everything(cfg.seed)
    model = build_global_network(cfg, data.sequence.shape[1], data.static.shape[1])
    batches = PooledBatches(data, train_rows, target, cfg, shuffle_seed=cfg.seed)
    reporter = make_progress(progress)
    keep = KeepBestIC(data, validation_rows, data.labels[validation_rows, -1], cfg.lookback, cfg.patience, reporter)
    if not isinstance(reporter, SilentProgress):
        reporter.start(cfg.epochs, "epochs")
    started = time.perf_counter()
    try:
        model.fit(batches, epochs=cfg.epochs, verbose=0, callbacks=[keep], shuffle=False)
    finally:
        reporter.close()
    seconds = time.perf_counter() - started
    epochs_run = len(keep.scores)
    return GlobalFit(model, keep.best_epoch + 1, keep.best_rank_ic, keep.scores,
                     batches.windows_per_epoch() * epochs_run / seconds if seconds > 0 else float("nan"),
                     round(batches.windows_per_epoch()))
