"""The global network: one recurrent model over windows pooled from a whole universe.

Beside ``network.py`` the one other module that imports Keras. Imported lazily,
only by the global model's training and prediction; its settings
(``GlobalNetConfig``) live in ``net_config``, so a preset is read without Keras.

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
import pandas as pd

from forecast.errors import BadInputError
from forecast.models.network import KeepBest, keras, seed_everything, tf
from forecast.models.pooled.data import PooledData, daily_rank_ic, ensemble_forecast, flat_inputs, rows_by_day, tabular_inputs, window_batch
from forecast.models.pooled.net_config import GlobalNetConfig
from forecast.progress import ProgressReporter, SilentProgress, make_progress

LOSSES = ("mse", "ic", "listnet", "pairwise")  # issue 25 tried the two ranking losses: benchmarks/global_nested_tune.py
LISTNET_SHARPNESS = 8.0  # the truth's ranks times this before its softmax: the top name ~e^8 likelier than the bottom
_RNN = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


def build_global_network(cfg: GlobalNetConfig, n_sequence: int, n_static: int) -> keras.Model:
    """Return the compiled ensemble: ([B, L, F], [B, S]) -> [B, members, H].

    With ``cfg.linear``: a linear path ``linear`` (Dense over [Flatten(window),
    static], frozen: ``fit_global`` writes a ridge into it) is added to every
    member's head (``sum_m``), and the heads start at zero, so the untrained
    network is the ridge and the recurrent path learns what the ridge misses.
    """
    window = keras.Input(shape=(cfg.lookback, n_sequence), name="window")
    static = keras.Input(shape=(n_static,), name="static")
    linear = None
    if cfg.linear:
        flat = keras.layers.Flatten(name="window_flat")(window)
        joined = keras.layers.Concatenate(name="linear_inputs")([flat, static])
        linear_layer = keras.layers.Dense(cfg.horizon, name="linear", kernel_initializer="zeros",
                                          trainable=cfg.linear_trainable)
        linear = linear_layer(joined)
    outputs = []
    for m in range(cfg.members):
        x = _RNN[cfg.arch](cfg.units, name=f"{cfg.arch}_{m}")(window)
        x = keras.layers.Concatenate(name=f"join_{m}")([x, static])
        if cfg.dropout:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{m}")(x)
        x = keras.layers.Dense(cfg.head_units, activation="relu", name=f"hidden_{m}")(x)
        head = keras.layers.Dense(cfg.horizon, name=f"head_{m}",
                                  kernel_initializer="zeros" if cfg.linear else "glorot_uniform")(x)
        if linear is not None:
            head = keras.layers.Add(name=f"sum_{m}")([head, linear])
        outputs.append(keras.layers.Reshape((1, cfg.horizon), name=f"member_{m}")(head))
    stacked = outputs[0] if len(outputs) == 1 else keras.layers.Concatenate(axis=1, name="members")(outputs)
    model = keras.Model([window, static], stacked, name=f"global_{cfg.arch}")
    model.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss=_loss(cfg.loss))
    return model


def linear_map(lookback: int, n_sequence: int, n_static: int) -> np.ndarray:
    """The matrix M with ``tabular_inputs`` = [window.reshape(B, -1), static] @ M (``data.flat_inputs`` is linear)."""

    width = lookback * n_sequence + n_static
    basis = np.eye(width, dtype="float32")
    return flat_inputs(basis[:, : lookback * n_sequence].reshape(width, lookback, n_sequence), basis[:, lookback * n_sequence:],
                       lookback).astype("float64")


@dataclass
class NestedRidge:
    kernel: np.ndarray  # (L * F + S, H) over [Flatten(window), static]
    bias: np.ndarray  # (H,)
    alpha: float
    validation_rank_ic: float


def fit_nested_ridge(data: PooledData, target: np.ndarray, train_rows: np.ndarray, validation_rows: np.ndarray,
                     lookback: int, alphas=(1.0, 100.0, 10_000.0), batch: int = 50_000) -> NestedRidge:
    """The ridge of ``learners.RidgeLearner`` (same flat inputs, intercept, alphas chosen by validation Rank IC at step H),
    fitted for every step from normal equations summed in batches, and written over the network's own inputs."""

    horizon = target.shape[1]
    rows = train_rows[np.isfinite(target[train_rows]).all(axis=1)]
    mapping = linear_map(lookback, data.sequence.shape[1], data.static.shape[1])
    width = mapping.shape[1]
    n, sx, sy = 0, np.zeros(width), np.zeros(horizon)
    xx, xy = np.zeros((width, width)), np.zeros((width, horizon))
    for begin in range(0, len(rows), batch):
        part = rows[begin: begin + batch]
        x = tabular_inputs(data, part, lookback).astype("float64")
        y = target[part].astype("float64")
        n += len(x)
        sx += x.sum(axis=0)
        sy += y.sum(axis=0)
        xx += x.T @ x
        xy += x.T @ y
    if n < 2:
        return NestedRidge(np.zeros((mapping.shape[0], horizon), "float32"), np.zeros(horizon, "float32"), float("nan"),
                           float("nan"))
    mx, my = sx / n, sy / n
    xx_c = xx - n * np.outer(mx, mx)
    xy_c = xy - n * np.outer(mx, my)
    x_val = tabular_inputs(data, validation_rows, lookback).astype("float64") if len(validation_rows) else None
    best: tuple[float, np.ndarray, np.ndarray, float] | None = None
    for alpha in alphas:
        coef = np.linalg.solve(xx_c + alpha * np.eye(width), xy_c)  # (width, H)
        intercept = my - mx @ coef
        quality = -np.inf
        if x_val is not None:
            quality = daily_rank_ic(x_val @ coef[:, -1] + intercept[-1], data.labels[validation_rows, -1],
                                    data.dates[validation_rows], data.tickers[validation_rows])
            quality = quality if np.isfinite(quality) else -np.inf
        if best is None or quality > best[0]:
            best = (quality, coef, intercept, alpha)
    assert best is not None
    quality, coef, intercept, alpha = best
    return NestedRidge((mapping @ coef).astype("float32"), intercept.astype("float32"), float(alpha), float(quality))


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
    if kind == "listnet":
        def listnet(y_true, y_pred):
            # ListNet's top-one probabilities over the day: the truth's softmax (ranks in [-0.5, 0.5], sharpened
            # by a temperature of 1/8) against the guess's log-softmax, per member and step
            truth = tf.nn.softmax(y_true * LISTNET_SHARPNESS, axis=0)[:, None, :]
            return -tf.reduce_mean(tf.reduce_sum(truth * tf.nn.log_softmax(y_pred, axis=0), axis=0))
        return listnet
    if kind == "pairwise":
        def ranknet(y_true, y_pred):
            # RankNet: over every pair of the day with i above j in truth, the logistic loss of the guessed s_i - s_j
            above = tf.cast(y_true[:, None, :] - y_true[None, :, :] > 0, y_pred.dtype)[:, :, None, :]  # [B, B, 1, H]
            gaps = y_pred[:, None, :, :] - y_pred[None, :, :, :]  # [B, B, members, H]
            return tf.reduce_sum(above * tf.nn.softplus(-gaps)) / (tf.reduce_sum(above) * tf.cast(tf.shape(y_pred)[1], y_pred.dtype) + 1e-12)
        return ranknet
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
    """After each epoch, score the validation days by mean daily Rank IC at step H; keep the best epoch's weights.

    With a reference (``start_from_here``: the untrained network, which with a nested ridge is the ridge), an
    epoch counts only when its daily Rank IC beats the reference's on the same days with a Newey-West t of at
    least ``margin_t`` (H - 1 lags): one year's mean Rank IC is too noisy to leave the ridge for a small gain.
    """

    def __init__(self, data: PooledData, rows: np.ndarray, truth: np.ndarray, lookback: int, patience: int,
                 progress: ProgressReporter, margin_t: float = 0.0):
        super().__init__(patience)
        self.data, self.rows, self.truth, self.lookback, self.progress = data, rows, truth, lookback, progress
        self.margin_t = margin_t
        self.scores: list[float] = []
        self.initial = float("nan")
        self.reference: pd.Series | None = None

    def daily(self) -> pd.Series:
        from forecast.maths.cross_section import daily_ic

        forecast = predict_rows(self.model, self.data, self.rows, self.lookback)[:, -1]
        days, tickers = self.data.dates[self.rows], self.data.tickers[self.rows]
        order = np.lexsort((tickers, days))
        index = pd.MultiIndex.from_arrays([pd.DatetimeIndex(days[order]), tickers[order]])
        return daily_ic(pd.Series(forecast[order], index=index), pd.Series(self.truth[order], index=index), "spearman")

    def start_from_here(self) -> float:
        """Score the network before training as the candidate to beat (epoch -1): with a nested ridge and heads
        at zero that is the ridge, so training is kept only where it beats the ridge on validation."""
        reference = self.reference = self.daily()
        score = float(reference.mean()) if reference.notna().any() else float("nan")
        self.initial = score
        self.observe(-1, -score)
        self.wait = 0
        return score

    def on_epoch_end(self, epoch, logs=None):
        from forecast.maths.cross_section import newey_west_t

        ic = self.daily()
        score = float(ic.mean()) if ic.notna().any() else float("nan")
        self.scores.append(score)
        self.progress.advance(f"loss {(logs or {}).get('loss', float('nan')):.4f}  validation rank IC {score:.4f}")
        candidate = -score  # higher IC is better; a NaN day-score never is
        if self.reference is not None:
            gain = (ic - self.reference).dropna()
            if len(gain) < 3 or not newey_west_t(gain.to_numpy(), self.model.output_shape[-1] - 1) >= self.margin_t:
                candidate = np.inf  # not clearly better than the reference: never kept
        self.observe(epoch, candidate)

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
    linear_rank_ic: float = float("nan")  # the nested ridge's validation Rank IC alone (NaN without one)
    linear_alpha: float = float("nan")


def fit_global(cfg: GlobalNetConfig, data: PooledData, target: np.ndarray, train_rows: np.ndarray,
               validation_rows: np.ndarray, progress: str | ProgressReporter = "none",
               linear_rows: np.ndarray | None = None) -> GlobalFit:
    """Train the ensemble on day batches of ``train_rows``; choose the epoch by validation Rank IC at step H.

    With ``cfg.linear`` the ridge is fitted first (on ``linear_rows``, by default ``train_rows``: pass every
    training day, as the ridge baseline sees them) and written into the frozen ``linear`` layer; the untrained
    network (the ridge) is then the validation score any epoch must beat to be kept.
    """
    import time

    seed_everything(cfg.seed)
    model = build_global_network(cfg, data.sequence.shape[1], data.static.shape[1])
    ridge = None
    if cfg.linear:
        ridge = fit_nested_ridge(data, target, train_rows if linear_rows is None else linear_rows, validation_rows,
                                 cfg.lookback, cfg.linear_alphas)
        model.get_layer("linear").set_weights([ridge.kernel, ridge.bias])
    batches = PooledBatches(data, train_rows, target, cfg, shuffle_seed=cfg.seed)
    if not batches.batches:  # every day's batch is a comparison across tickers: one ticker alone gives none
        raise BadInputError("the universe model learns by comparing tickers with each other on the same days; its training "
                            "data has no day with two tickers: add tickers to the universe")
    reporter = make_progress(progress)
    keep = KeepBestIC(data, validation_rows, data.labels[validation_rows, -1], cfg.lookback, cfg.patience, reporter,
                      cfg.linear_margin_t)
    if not isinstance(reporter, SilentProgress):
        reporter.start(cfg.epochs, "epochs")
    started = time.perf_counter()
    if ridge is not None:
        keep.set_model(model)
        keep.start_from_here()
    try:
        model.fit(batches, epochs=cfg.epochs, verbose=0, callbacks=[keep], shuffle=False)
    finally:
        reporter.close()
    seconds = time.perf_counter() - started
    epochs_run = len(keep.scores)
    return GlobalFit(model, keep.best_epoch + 1, keep.best_rank_ic, keep.scores,
                     batches.windows_per_epoch() * epochs_run / seconds if seconds > 0 else float("nan"),
                     round(batches.windows_per_epoch()), keep.initial if ridge is not None else float("nan"),
                     ridge.alpha if ridge is not None else float("nan"))
