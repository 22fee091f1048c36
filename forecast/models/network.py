"""The per-ticker Keras networks (GRU, LSTM, RNN; stacked or bidirectional); ``models.pooled.network`` is the universe model's.

One of the two modules that import TensorFlow/Keras (``tests/project/test_layers.py`` holds them to it).

Imported lazily by training and prediction, never by ``--help``, ``fetch`` or ``plot``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forecast.models.train_config import TrainConfig
from forecast.progress import ProgressReporter, SilentProgress, make_progress

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_quietly():
    """Import TensorFlow with its native start-up chatter (oneDNN, CUDA probes) kept off stderr.

    Those lines are written by C++ before any log level applies, and they would
    land in every cron log. Python-level import errors still propagate.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras as keras_module
        import tensorflow as tf_module
        tf_module.constant(0)  # runtime initialisation prints too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras_module, tf_module


if TYPE_CHECKING:  # mypy reads the packages; at run time they are imported once, quietly
    import keras
    import tensorflow as tf
else:
    keras, tf = _import_quietly()
tf.get_logger().setLevel("ERROR")  # retracing notices from per-fold predict calls are noise to users

_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}


def versions() -> dict:
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def seed_everything(seed: int) -> None:
    """Make weights, dropout and shuffling repeatable on this machine."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def clear_session() -> None:
    """Drop Keras' global state (layer-name counters, the TF graph) left by earlier fits, so a long-lived worker does not creep.

    Models already built stay usable; only what the next fit would inherit is reset.
    """
    keras.backend.clear_session()


def build_network(cfg: TrainConfig, n_features: int) -> keras.Model:
    """Return a compiled recurrent network: (batch, lookback, F) -> (batch, horizon)."""
    inputs = keras.Input(shape=(cfg.lookback, n_features), name="window")
    x = inputs
    for depth, units in enumerate(cfg.units):
        layer = _LAYERS[cfg.arch](units, return_sequences=depth < len(cfg.units) - 1, name=f"{cfg.arch}_{depth}")
        if cfg.bidirectional and depth == 0:
            layer = keras.layers.Bidirectional(layer, name=f"bi_{cfg.arch}_{depth}")
        x = layer(x)
        if cfg.dropout:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{depth}")(x)
    head = {"kernel_initializer": "zeros", "bias_initializer": "zeros"} if cfg.zero_head else {}
    outputs = keras.layers.Dense(cfg.horizon, name="horizon_head", **head)(x)
    model = keras.Model(inputs, outputs, name=f"{cfg.preset}_{cfg.arch}")
    model.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss="mse")
    return model


class KeepBest(keras.callbacks.Callback):
    """Track the epoch with the lowest val_loss and restore its weights at the end; stop after ``patience`` epochs without one.

    Subclasses score epochs their own way and hand the score to ``observe``
    (lower is better; NaN never counts as better).
    """

    def __init__(self, patience: int):
        super().__init__()
        self.patience, self.best, self.best_epoch, self.best_weights, self.wait = patience, np.inf, -1, None, 0

    def on_epoch_end(self, epoch, logs=None):
        self.observe(epoch, (logs or {}).get("val_loss", np.inf))

    def observe(self, epoch: int, loss: float) -> None:
        if loss < self.best:
            self.best, self.best_epoch, self.best_weights, self.wait = loss, epoch, self.model.get_weights(), 0
        else:
            self.wait += 1
            if self.patience and self.wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class EpochLog(keras.callbacks.Callback):
    """Reports each epoch to a ProgressReporter (forecast/progress.py): a bar on a terminal, one line otherwise."""

    def __init__(self, epochs: int, progress: ProgressReporter, label: str = "epochs"):
        super().__init__()
        self.epochs, self.progress, self.label = epochs, progress, label

    def on_train_begin(self, logs=None):
        self.progress.start(self.epochs, self.label)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.progress.advance(f"loss {logs.get('loss', float('nan')):.4f}  val_loss {logs.get('val_loss', float('nan')):.4f}")

    def on_train_end(self, logs=None):
        self.progress.close()


def fit_network(cfg: TrainConfig, X_train, Y_train, X_val, Y_val, progress: str | ProgressReporter = "none",
                label: str = "epochs"):
    """Return (model, history dict, best epoch, best val_loss); each epoch is reported to ``progress`` (a reporter or a mode)."""
    seed_everything(cfg.seed)
    model = build_network(cfg, X_train.shape[-1])
    keep_best = KeepBest(cfg.patience)
    reporter = make_progress(progress)
    callbacks = [keep_best] + ([] if isinstance(reporter, SilentProgress) else [EpochLog(cfg.epochs, reporter, label)])
    try:
        history = model.fit(
            X_train, Y_train, validation_data=(X_val, Y_val), epochs=cfg.epochs, batch_size=cfg.batch_size,
            shuffle=True, verbose=0, callbacks=callbacks,
        )
    finally:
        reporter.close()  # a fit that raised leaves no bar running
    hist = {k: [float(v) for v in values] for k, values in history.history.items()}
    return model, hist, keep_best.best_epoch + 1, float(keep_best.best)


def predict(model: keras.Model, X: np.ndarray) -> np.ndarray:
    """Return (n, horizon) scaled predictions; one graph call per batch, no Python loop."""
    if len(X) == 0:
        return np.empty((0, model.output_shape[-1]), dtype="float32")
    return np.asarray(model.predict_on_batch(X)) if len(X) <= 4096 else model.predict(X, batch_size=4096, verbose=0)


def save_model(model: keras.Model, path: Path) -> None:
    model.save(path)


def load_model(path: Path, card: dict | None = None) -> keras.Model:
    """Load a ``.keras`` file into Keras in safe mode (no arbitrary code from the file).

    ``predict`` and ``run`` do not come here: they serve a saved network in
    numpy (``numpy_net.load_network``, no TensorFlow). This is Keras's way in,
    for library use and for the tests that hold the two to the same forecast.

    First ``model_archive.check_model_file`` holds the file against its card
    (``card`` as JSON, by default the ``metadata.json`` beside it): the
    archive's declared sizes, its config.json and its weights' shapes must be
    those of the network the card describes, before Keras reads or builds anything.
    A file that is missing, truncated, not a Keras archive, larger than its
    network, or refused by safe mode raises CorruptFileError naming the model
    folder, not the loader's own error.
    """
    from forecast.errors import unloadable_model
    from forecast.models.archive import check_model_file

    try:
        check_model_file(path, card)
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # zipfile, h5py, JSON and safe-mode errors all mean: this file cannot be used
        raise unloadable_model(path, exc) from None
