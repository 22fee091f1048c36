"""The recurrent networks' forward pass in numpy, read straight from a ``.keras`` file: no TensorFlow, no Keras.

``forecast predict`` and a ``run`` that does not retrain must not pay
TensorFlow's start-up (seconds, more than the whole forecast), so they evaluate
a saved per-ticker network here with numpy and h5py alone. ``network.build_network``
stays the one definition of that network (and ``train`` and ``backtest`` keep
Keras); this module only evaluates what it built: an input window, recurrent
layers (GRU with ``reset_after``, LSTM, SimpleRNN; stacked; the first one may be
Bidirectional with ``merge_mode="concat"``), Dropout (the identity at
inference) and a linear Dense head. Any other layer or setting is refused
(ValueError naming the layer), never skipped. ``tests/models/test_numpy_net.py``
checks that Keras and this module agree on every preset.

The recurrent cells (``RecurrentCell``) are shared with the universe model's
forward pass (``models.pooled.numpy_net``), which builds on this module.
Before anything is read, ``archive.open_model_archive`` holds the file against
the network its card describes (a zip bomb is refused in one line, never read).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from forecast.errors import unloadable_model
from forecast.models.archive import open_model_archive

Array = np.ndarray
ROWS_PER_CHUNK = 1024  # bounds memory at any batch size
HALF = np.float32(0.5)
GATES = {"GRU": 3, "LSTM": 4, "SimpleRNN": 1}  # Keras's gate order: GRU z, r, h; LSTM i, f, c, o
# The settings the recurrences below implement (Keras 3's defaults, as both networks use them), per layer class.
RECURRENT_SETTINGS: dict[str, Any] = {"activation": "tanh", "use_bias": True, "return_state": False, "stateful": False}
CLASS_SETTINGS: dict[str, dict[str, Any]] = {"GRU": {"recurrent_activation": "sigmoid", "reset_after": True},
                                             "LSTM": {"recurrent_activation": "sigmoid"}, "SimpleRNN": {}}


def sigmoid_in_place(x: Array) -> None:
    """Keras's sigmoid, in place: the tanh form cannot overflow where exp(-x) would, and agrees to float32 rounding."""
    x *= HALF
    np.tanh(x, out=x)
    x *= HALF
    x += HALF


def gate_major(matrix: Array, units: int) -> Array:
    """[..., gates * U] -> [gates, ..., U], contiguous: every gate's slice of a step is then one contiguous block."""
    return np.ascontiguousarray(np.moveaxis(matrix.reshape(*matrix.shape[:-1], -1, units), -2, 0))


def with_bias_input(sequence: Array) -> Array:
    """[L, b, F] time-major -> [L, b, F + 1], the last feature 1: the input a cell's kernel (bias row last) expects."""
    steps = np.ones((*sequence.shape[:-1], sequence.shape[-1] + 1), np.float32)
    steps[..., :-1] = sequence
    return steps


@dataclass(frozen=True)
class RecurrentCell:
    """One recurrent layer's weights, gate-major with the input bias folded into the kernel, and its recurrence."""

    arch: str  # "GRU", "LSTM" or "SimpleRNN"
    kernel: Array  # [gates, F + 1, U]: the last row is the bias, met by a constant input of 1
    recurrent_kernel: Array  # [gates, U, U]
    candidate_recurrent_bias: Array  # [1, U]: the GRU's recurrent candidate bias, applied inside the reset gate

    @classmethod
    def from_keras(cls, arch: str, kernel: Array, recurrent_kernel: Array, bias: Array) -> RecurrentCell:
        """From Keras's variables: kernel [F, gates*U], recurrent kernel [U, gates*U], bias ([2, 3U] for a GRU)."""
        units = recurrent_kernel.shape[0]
        if arch == "GRU":  # reset_after keeps [input bias, recurrent bias]; only the candidate's recurrent one is reset-gated
            folded = bias[0] + np.concatenate([bias[1, : 2 * units], np.zeros(units, np.float32)])
            candidate_bias = bias[1, 2 * units:]
        else:
            folded, candidate_bias = bias, np.zeros(units, np.float32)
        return cls(arch, gate_major(np.vstack([kernel, folded]), units), gate_major(recurrent_kernel, units), candidate_bias[None])

    @property
    def units(self) -> int:
        return int(self.recurrent_kernel.shape[1])

    def run(self, steps: Array, sequences: bool = False) -> Array:
        """[L, b, F + 1] time-major inputs (last feature 1) -> the last state [b, U], or every state [L, b, U]."""
        state = np.zeros((steps.shape[1], self.units), np.float32)
        cell = np.zeros_like(state)  # the LSTM's carry
        outputs = np.empty((len(steps), *state.shape), np.float32) if sequences else None
        for t, inputs in enumerate(steps):
            from_input = np.matmul(inputs, self.kernel)  # [gates, b, U], bias included: cheaper than a broadcast add
            gates = np.matmul(state, self.recurrent_kernel)
            # in place on whole contiguous gate blocks: temporaries and strided slices cost as much as the matmuls
            if self.arch == "GRU":
                update_reset = gates[:2]
                update_reset += from_input[:2]
                sigmoid_in_place(update_reset)
                candidate = gates[2]
                candidate += self.candidate_recurrent_bias
                candidate *= update_reset[1]
                candidate += from_input[2]
                np.tanh(candidate, out=candidate)
                state -= candidate  # state = update * state + (1 - update) * candidate, in place
                state *= update_reset[0]
                state += candidate
            elif self.arch == "LSTM":
                gates += from_input
                sigmoid_in_place(gates[:2])  # input and forget gates
                sigmoid_in_place(gates[3])  # output gate
                np.tanh(gates[2], out=gates[2])
                cell *= gates[1]
                cell += gates[0] * gates[2]
                state = gates[3] * np.tanh(cell)
            else:  # SimpleRNN: state = tanh(x W + b + state U)
                gates += from_input
                state = np.tanh(gates[0])
            if outputs is not None:
                outputs[t] = state
        return state if outputs is None else outputs


# ---- reading a .keras file --------------------------------------------------------------------------------------

def expect_settings(layer: dict[str, Any], **settings: Any) -> None:
    """Refuse a layer whose settings this module would evaluate wrongly, naming it."""
    for key, wanted in settings.items():
        if layer["config"].get(key) != wanted:
            raise ValueError(f"layer {layer['config']['name']!r} has {key}={layer['config'].get(key)!r}; "
                             f"the numpy forward pass implements only {wanted!r}")


def inputs_of(layer: dict[str, Any]) -> list[str]:
    """The names of the layers whose outputs ``layer`` takes, in order."""
    args = layer["inbound_nodes"][0]["args"][0]
    return [tensor["config"]["keras_history"][0] for tensor in (args if isinstance(args, list) else [args])]


def _variables(group: h5py.Group) -> list[Array]:
    """A layer group's variables in creation order: its own, its cell's, then a Bidirectional's forward and backward layers'."""
    found = [np.asarray(group["vars"][str(i)], dtype=np.float32) for i in range(len(group["vars"]))] if "vars" in group else []
    for part in ("cell", "forward_layer", "backward_layer"):
        if part in group:
            found += _variables(group[part])
    return found


def weights_by_layer(h5: h5py.File) -> dict[str, list[Array]]:
    """Each layer's own name -> its variables in creation order (a recurrent layer's live under ``cell``)."""
    # groups are keyed by class ("gru_1", "dense_4"); the layer's name is an attribute
    return {str(group["vars"].attrs["name"]): _variables(group) for group in h5["layers"].values()}


def recurrent_cell(layer: dict[str, Any], variables: list[Array], go_backwards: bool = False) -> RecurrentCell:
    """The cell of a GRU, LSTM or SimpleRNN layer's config and its three variables; ValueError naming what it cannot evaluate."""
    arch = layer["class_name"]
    if arch not in GATES:
        raise ValueError(f"layer {layer['config']['name']!r} ({arch}) is not a recurrent layer the numpy forward pass knows")
    expect_settings(layer, go_backwards=go_backwards, **RECURRENT_SETTINGS, **CLASS_SETTINGS[arch])
    try:
        kernel, recurrent_kernel, bias = variables
    except ValueError:
        raise ValueError(f"layer {layer['config']['name']!r} has {len(variables)} variables, not kernel, "
                         "recurrent kernel and bias") from None
    return RecurrentCell.from_keras(arch, kernel, recurrent_kernel, bias)


@dataclass(frozen=True)
class _Recurrent:
    forward: RecurrentCell
    backward: RecurrentCell | None  # a Bidirectional layer's second direction, concatenated after the first
    sequences: bool  # return_sequences

    def __call__(self, sequence: Array) -> Array:
        steps = with_bias_input(sequence)
        out = self.forward.run(steps, self.sequences)
        if self.backward is None:
            return out
        back = self.backward.run(steps[::-1], self.sequences)  # go_backwards reads the window from its end
        return np.concatenate([out, back[::-1] if self.sequences else back], axis=-1)  # Bidirectional aligns it in time


@dataclass(frozen=True)
class _Dense:
    kernel: Array  # [inputs, outputs]
    bias: Array  # [outputs]

    def __call__(self, x: Array) -> Array:
        return x @ self.kernel + self.bias


def _recurrent_layer(layer: dict[str, Any], variables: list[Array]) -> _Recurrent:
    config, name = layer["config"], layer["config"]["name"]
    if layer["class_name"] != "Bidirectional":
        return _Recurrent(recurrent_cell(layer, variables), None, bool(config.get("return_sequences")))
    expect_settings(layer, merge_mode="concat")
    forward, backward = config.get("layer"), config.get("backward_layer")
    if not isinstance(forward, dict) or not isinstance(backward, dict):
        raise ValueError(f"layer {name!r} (Bidirectional) does not name both of its directions")
    if forward["config"].get("return_sequences") != backward["config"].get("return_sequences"):
        raise ValueError(f"layer {name!r} (Bidirectional): its two directions differ in return_sequences")
    half = len(variables) // 2
    return _Recurrent(recurrent_cell(forward, variables[:half]), recurrent_cell(backward, variables[half:], go_backwards=True),
                      bool(forward["config"].get("return_sequences")))


def _chain(config: dict[str, Any], weights: dict[str, list[Array]]) -> tuple[int, int, list[_Recurrent | _Dense]]:
    """(lookback, features, the layers to apply) of a one-input chain as build_network makes it; ValueError otherwise."""
    layers = config["config"]["layers"]
    if not layers or layers[0]["class_name"] != "InputLayer":
        raise ValueError("not a per-ticker network: its first layer is not an input")
    shape = layers[0]["config"].get("batch_shape")
    if not isinstance(shape, list) or len(shape) != 3:
        raise ValueError(f"input {layers[0]['config']['name']!r} has shape {shape}, not [batch, lookback, features]")
    chain: list[_Recurrent | _Dense] = []
    sequence, previous = True, layers[0]["config"]["name"]
    for layer in layers[1:]:
        kind, name = layer["class_name"], layer["config"]["name"]
        if inputs_of(layer) != [previous]:
            raise ValueError(f"layer {name!r} takes {inputs_of(layer)}, not the layer before it ({previous!r})")
        if kind in GATES or kind == "Bidirectional":
            if not sequence:
                raise ValueError(f"layer {name!r} ({kind}) follows a layer that returns no sequence")
            recurrent = _recurrent_layer(layer, weights.get(name, []))
            chain.append(recurrent)
            sequence = recurrent.sequences
        elif kind == "Dense":
            expect_settings(layer, activation="linear", use_bias=True)
            if sequence:
                raise ValueError(f"layer {name!r} (Dense) would apply to every step of a sequence")
            try:
                kernel, bias = weights[name]
            except (KeyError, ValueError):
                raise ValueError(f"layer {name!r} (Dense) lacks its kernel and bias in model.weights.h5") from None
            chain.append(_Dense(kernel, bias))
        elif kind != "Dropout":  # Dropout is the identity at inference
            raise ValueError(f"layer {name!r} ({kind}) is not one the numpy forward pass of a per-ticker network knows")
        previous = name
    if not chain or not isinstance(chain[-1], _Dense):
        raise ValueError("not a per-ticker network: it does not end in a Dense head")
    outputs = config["config"].get("output_layers")  # ["name", 0, 0], or a list of such for several outputs
    if outputs not in ([previous, 0, 0], [[previous, 0, 0]]):
        raise ValueError(f"the network's output is {outputs!r}, not its last layer {previous!r}")
    return int(shape[1]), int(shape[2]), chain


@dataclass(frozen=True)
class NumpyNetwork:
    """A saved per-ticker network, evaluated layer by layer: [n, lookback, F] -> [n, horizon], in float32 like Keras."""

    lookback: int
    features: int
    layers: tuple[_Recurrent | _Dense, ...]

    @classmethod
    def from_keras_file(cls, path: str | Path, card: dict | None = None) -> NumpyNetwork:
        """Load a per-ticker model's ``.keras`` file.

        ``card``: its card as JSON, by default the ``metadata.json`` beside it.
        Before anything is read, ``open_model_archive`` checks the archive's
        sizes and the weights' declared shapes against the network the card
        describes (CorruptFileError, one line); then a layer or setting this
        module does not implement is refused (ValueError naming the layer).
        """
        checked = open_model_archive(path, "ticker", card)
        with h5py.File(io.BytesIO(checked.weights), "r") as h5:
            weights = weights_by_layer(h5)
        lookback, features, chain = _chain(checked.config, weights)
        return cls(lookback, features, tuple(chain))

    @property
    def horizon(self) -> int:
        last = self.layers[-1]
        assert isinstance(last, _Dense)  # _chain ends every network in its Dense head
        return int(last.bias.shape[0])

    def predict(self, X: Array) -> Array:
        """Scaled forecasts [n, horizon] for windows [n, lookback, F] (``dataset.inference_windows``)."""
        X = np.asarray(X, np.float32)
        if X.ndim != 3 or X.shape[1:] != (self.lookback, self.features):
            raise ValueError(f"expected windows [n, {self.lookback}, {self.features}], got {X.shape}")
        out = np.empty((len(X), self.horizon), np.float32)
        for start in range(0, len(X), ROWS_PER_CHUNK):
            x = np.ascontiguousarray(X[start:start + ROWS_PER_CHUNK].transpose(1, 0, 2))  # time-major
            for layer in self.layers:
                x = layer(x)
            out[start:start + ROWS_PER_CHUNK] = x
        return out


def load_network(path: str | Path, card: dict | None = None) -> NumpyNetwork:
    """``NumpyNetwork.from_keras_file``, with any refusal turned into the one-line CorruptFileError naming the model."""
    try:
        return NumpyNetwork.from_keras_file(path, card)
    except Exception as exc:  # the archive check, h5py, or a layer this module does not implement
        raise unloadable_model(path, exc) from None
