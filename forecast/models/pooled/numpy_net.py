"""The global network's forward pass in numpy, read straight from its ``.keras`` file.

The nightly ``forecast predict`` must not pay TensorFlow's start-up (seconds,
more than the whole prediction of a universe), so prediction evaluates the
saved network here with numpy and h5py alone: this module never imports
TensorFlow or Keras. ``build_global_network`` in ``global_network.py`` stays the
one definition of the network; this file only evaluates what it built, and
refuses (ValueError naming the layer) any layer or setting it does not
implement. The recurrent cells (GRU, LSTM) are ``models.numpy_net``'s, shared
with the per-ticker networks; this module holds the ensemble's layout (members,
their static inputs and heads). ``tests/models/pooled/test_numpy_net.py`` checks that the two agree. Before it
reads anything, ``model_archive`` holds the file against the network its card
describes (sizes, then the weights' declared shapes): a zip bomb is refused
in one line, never read (``tests/models/test_archive_bombs.py``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from forecast.choices import UNIVERSE_MODEL
from forecast.models.archive import open_model_archive
from forecast.models.numpy_net import CLASS_SETTINGS, RECURRENT_SETTINGS, RecurrentCell, expect_settings, inputs_of, weights_by_layer

Array = np.ndarray
ROWS_PER_CHUNK = 1024  # bounds memory at any batch size; measured about 10 % faster than the whole batch at once
ARCHS = ("GRU", "LSTM")  # the recurrent layers build_global_network uses; their cells live in models/numpy_net.py


@dataclass(frozen=True)
class _Member:
    cell: RecurrentCell  # a GRU or an LSTM
    hidden_from_state: Array  # [U, K]: the hidden kernel's rows for the state (Concatenate put it first)
    hidden_from_static: Array  # [S, K]
    hidden_bias: Array  # [K]
    head_kernel: Array  # [K, H]
    head_bias: Array  # [H]

    def forecast(self, steps: Array, static: Array) -> Array:
        """[L, b, F + 1] time-major windows (last feature 1) and [b, S] -> [b, H]."""
        state = self.cell.run(steps)
        hidden = np.maximum(state @ self.hidden_from_state + static @ self.hidden_from_static + self.hidden_bias, 0)
        return hidden @ self.head_kernel + self.head_bias


def _check_layout(layers: dict[str, Any]) -> tuple[str, int, int]:
    """(arch, units, members) of a network laid out as build_global_network lays it out; ValueError otherwise."""
    recurrent = [layer["class_name"] for layer in layers.values() if layer["class_name"] in ARCHS]
    arch, members = (recurrent[0] if recurrent else "GRU"), len(recurrent)
    # every layer must be one this module evaluates: any other would be skipped silently, so refuse it
    expected = {"window": "InputLayer", "static": "InputLayer", "members": "Concatenate"}
    nested = "linear" in layers
    if nested:  # the nested ridge: Dense(horizon) over [window flattened, static], added to every member's head
        expected |= {"window_flat": "Flatten", "linear_inputs": "Concatenate", "linear": "Dense"}
    for m in range(members):
        expected |= {f"{arch.lower()}_{m}": arch, f"join_{m}": "Concatenate", f"dropout_{m}": "Dropout",
                     f"hidden_{m}": "Dense", f"head_{m}": "Dense", f"member_{m}": "Reshape"}
        if nested:
            expected[f"sum_{m}"] = "Add"
    for name, layer in layers.items():
        if expected.get(name) != layer["class_name"]:
            raise ValueError(f"layer {name!r} ({layer['class_name']}) is not one the numpy forward pass of the global network knows")
    if not members or "window" not in layers or "static" not in layers:
        raise ValueError("not a global network: it needs inputs 'window' and 'static' and a GRU or LSTM")
    units = layers[f"{arch.lower()}_0"]["config"]["units"]
    for m in range(members):
        rnn = f"{arch.lower()}_{m}"
        expect_settings(layers[rnn], units=units, return_sequences=False, go_backwards=False, **RECURRENT_SETTINGS,
                        **CLASS_SETTINGS[arch])
        expect_settings(layers[f"hidden_{m}"], activation="relu", use_bias=True)
        expect_settings(layers[f"head_{m}"], activation="linear", use_bias=True)
        if f"join_{m}" not in layers or inputs_of(layers[f"join_{m}"]) != [rnn, "static"]:  # the hidden kernel's rows follow this order
            raise ValueError(f"layer 'join_{m}' must concatenate [{rnn!r}, 'static']")
    if nested:
        expect_settings(layers["linear"], activation="linear", use_bias=True)
        if inputs_of(layers["window_flat"]) != ["window"] or inputs_of(layers["linear_inputs"]) != ["window_flat", "static"]:
            raise ValueError("the nested ridge must read [flattened 'window', 'static'] in that order")
        if inputs_of(layers["linear"]) != ["linear_inputs"]:
            raise ValueError("layer 'linear' must read 'linear_inputs'")
        for m in range(members):
            if sorted(inputs_of(layers[f"sum_{m}"])) != sorted([f"head_{m}", "linear"]) or inputs_of(layers[f"member_{m}"]) != [f"sum_{m}"]:
                raise ValueError(f"layer 'sum_{m}' must add 'head_{m}' and 'linear', and 'member_{m}' reshape it")
    if members > 1 and ("members" not in layers or inputs_of(layers["members"]) != [f"member_{m}" for m in range(members)]):
        raise ValueError("layer 'members' must concatenate member_0, member_1, ... in order")
    return arch, units, members


@dataclass(frozen=True)
class NumpyGlobalNet:
    """The saved ensemble, evaluated member by member: ([B, L, F], [B, S]) -> [B, members, H]."""

    lookback: int
    members: list[_Member]
    linear_kernel: Array | None = None  # the nested ridge: [L * F + S, H] over [window flattened row-major, static]
    linear_bias: Array | None = None  # [H]

    @classmethod
    def from_keras_file(cls, path: str | Path, card: dict | None = None) -> NumpyGlobalNet:
        """Load the network of a global model's ``.keras`` file.

        ``card``: its card as JSON, by default the ``metadata.json`` beside it.
        Before anything is read, ``model_archive`` checks the archive's sizes
        and the weights' declared shapes against the network the card
        describes (CorruptFileError, one line); then a layout this module does
        not implement is refused (ValueError naming the layer).
        """
        checked = open_model_archive(path, UNIVERSE_MODEL, card)
        layers = {layer["config"]["name"]: layer for layer in checked.config["config"]["layers"]}
        with h5py.File(io.BytesIO(checked.weights), "r") as h5:
            weights = weights_by_layer(h5)
        arch, units, count = _check_layout(layers)
        members = []
        for m in range(count):
            try:
                (kernel, recurrent_kernel, bias), (hidden, hidden_bias), (head, head_bias) = (
                    weights[f"{prefix}_{m}"] for prefix in (arch.lower(), "hidden", "head"))
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}: model.weights.h5 lacks the variables of member {m} ({exc!r})") from None
            members.append(_Member(RecurrentCell.from_keras(arch, kernel, recurrent_kernel, bias), hidden[:units], hidden[units:],
                                   hidden_bias, head, head_bias))
        linear = weights.get("linear") if "linear" in layers else None
        if "linear" in layers and (linear is None or len(linear) != 2):
            raise ValueError(f"{path}: model.weights.h5 lacks the nested ridge's kernel and bias")
        return cls(lookback=int(layers["window"]["config"]["batch_shape"][1]), members=members,
                   linear_kernel=np.asarray(linear[0], np.float32) if linear else None,
                   linear_bias=np.asarray(linear[1], np.float32) if linear else None)

    def predict(self, window: Array, static: Array) -> Array:
        """Forecasts [B, members, H] for windows [B, lookback, F] and static inputs [B, S], in float32 like Keras."""
        window, static = np.asarray(window, np.float32), np.asarray(static, np.float32)
        first = self.members[0]
        features, n_static = first.cell.kernel.shape[1] - 1, first.hidden_from_static.shape[0]
        if window.shape[1:] != (self.lookback, features) or static.shape != (len(window), n_static):
            raise ValueError(f"expected window [B, {self.lookback}, {features}] and static [B, {n_static}], got {window.shape} and {static.shape}")
        out = np.empty((len(window), len(self.members), len(first.head_bias)), np.float32)
        with _one_blas_thread():
            self._predict_into(out, window, static, features)
        return out

    def _predict_into(self, out: Array, window: Array, static: Array, features: int) -> None:
        for start in range(0, len(window), ROWS_PER_CHUNK):
            rows = slice(start, start + ROWS_PER_CHUNK)
            chunk = window[rows]
            steps = np.ones((window.shape[1], len(chunk), features + 1), np.float32)  # time-major, so a step's inputs are contiguous
            steps[..., :features] = chunk.transpose(1, 0, 2)
            for m, member in enumerate(self.members):
                out[rows, m] = member.forecast(steps, static[rows])
            if self.linear_kernel is not None and self.linear_bias is not None:  # Keras' Flatten is row-major: t * F + f
                flat = len(chunk), window.shape[1] * features
                ridge = chunk.reshape(flat) @ self.linear_kernel[: flat[1]] + static[rows] @ self.linear_kernel[flat[1]:]
                out[rows] += (ridge + self.linear_bias)[:, None, :]


def _one_blas_thread():
    """A context in which BLAS runs on the calling thread alone.

    The recurrence is 60 small matrix products a chunk, each too small to share
    out: OpenBLAS's threads cost more in hand-offs than they save, and on a
    machine whose cores are busy with other work they wait for a core at every
    product (5,400 tickers: 1.7 s on one thread against 12 to 50 s on two
    threads under a load of 8). One thread gives the same bits: threads split a
    product's rows and columns, never the sum behind one number.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")
