"""The network a model's card (or its ``config.json``) describes, and so the largest archive it can be.

From a card's layers, units, window and features follow every weight's shape
(``Network.variable_shapes``), and so the most bytes a ``.keras`` file of that
network can hold (``Network.max_bytes``): the bound ``archive`` holds a model
file against before anything reads it. ``network_of_card`` reads a card
(``card_beside`` finds the one beside a model file, within MAX_CARD_BYTES);
``network_of_config`` reads a Keras ``config.json``, which must describe only
layers a forecast network has, each sized. Every refusal is a CorruptFileError
(exit 3) in one line. No TensorFlow or Keras here: ``global_numpy`` uses it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.choices import UNIVERSE_MODEL
from forecast.errors import CorruptFileError
from forecast.workspace import CARD_FILE

MiB = 1 << 20
# The bound: every weight stored as float64 (Keras writes float32), three times (the weights and Adam's two moments,
# which model.save keeps for a compiled model), doubled, plus a fixed MiB for HDF5's headers, config.json and metadata.json.
BYTES_PER_VALUE, COPIES, SLACK_FACTOR, FIXED_SLACK = 8, 3, 2, MiB
MAX_CARD_BYTES = 16 * MiB
GATES = {"gru": 3, "lstm": 4, "rnn": 1}
ARCH_OF_CLASS = {"GRU": "gru", "LSTM": "lstm", "SimpleRNN": "rnn"}
TICKER_CLASSES = frozenset({"InputLayer", "Dropout", "Dense", "Bidirectional", *ARCH_OF_CLASS})


def mib(size: int) -> str:
    """A size for a message: in MiB, or in bytes when under a tenth of one."""
    return f"{size / MiB:.1f} MiB" if size >= MiB // 10 else f"{size} bytes"


@dataclass(frozen=True)
class Network:
    """A saved network's shape, as its card (or its config.json) declares it: enough to know every weight's shape.

    ``kind`` "ticker" is ``network.build_network``'s network (recurrent layers
    of ``units``, the first one Bidirectional if ``bidirectional``, then
    Dense(horizon)); ``UNIVERSE_MODEL`` is ``pooled.network.build_global_network``'s
    ensemble (``members`` x [recurrent(units[0]), Dense(head_units) over
    [state, static], Dense(horizon)]).
    """

    kind: str
    arch: str  # gru | lstm | rnn
    units: tuple[int, ...]
    lookback: int
    features: int
    horizon: int
    bidirectional: bool = False
    members: int = 1
    head_units: int = 0
    static: int = 0
    linear: bool = False  # the global network's nested ridge: one Dense(horizon) over [window flattened, static]

    def variable_shapes(self) -> list[tuple[int, ...]]:
        """Every weight of the network (Keras 3 defaults: a GRU's bias is [2, 3U] with reset_after)."""
        def recurrent(inputs: int, units: int) -> list[tuple[int, ...]]:
            width = GATES[self.arch] * units
            return [(inputs, width), (units, width), (2, width) if self.arch == "gru" else (width,)]

        shapes: list[tuple[int, ...]] = []
        if self.kind == UNIVERSE_MODEL:
            units = self.units[0]
            for _ in range(self.members):
                shapes += recurrent(self.features, units)
                shapes += [(units + self.static, self.head_units), (self.head_units,), (self.head_units, self.horizon), (self.horizon,)]
            if self.linear:
                shapes += [(self.lookback * self.features + self.static, self.horizon), (self.horizon,)]
            return shapes
        inputs = self.features
        for depth, units in enumerate(self.units):
            both = self.bidirectional and depth == 0
            shapes += recurrent(inputs, units) * (2 if both else 1)
            inputs = units * (2 if both else 1)  # Bidirectional concatenates its two directions
        return shapes + [(inputs, self.horizon), (self.horizon,)]

    def parameters(self) -> int:
        return sum(math.prod(shape) for shape in self.variable_shapes())

    def max_bytes(self) -> int:
        """The largest archive this network can be: SLACK_FACTOR x COPIES x BYTES_PER_VALUE x parameters + FIXED_SLACK."""
        return SLACK_FACTOR * COPIES * BYTES_PER_VALUE * self.parameters() + FIXED_SLACK

    def describe(self) -> str:
        layers = "+".join(map(str, self.units))
        extra = (f", {self.members} members, head {self.head_units}, {self.static} static" if self.kind == UNIVERSE_MODEL
                 else ", bidirectional" if self.bidirectional else "")
        return (f"{self.arch}({layers}), window {self.lookback}x{self.features}{extra}, horizon {self.horizon}: "
                f"{self.parameters():,} weights")


# ---- the network a card describes --------------------------------------------------------------------------------

def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CorruptFileError(f"the model card's {what} is not a positive whole number ({value!r})")
    return value


def _units(value: Any) -> tuple[int, ...]:
    """A card's units as TrainConfig reads them: 64, [64, 32] or "64,32"."""
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.split(",")]
        except ValueError:
            raise CorruptFileError(f"the model card's config.units is not a list of whole numbers ({value[:40]!r})") from None
    values = value if isinstance(value, list) else [value]
    if not values:
        raise CorruptFileError("the model card's config.units is empty")
    return tuple(_whole(v, "config.units") for v in values)


def _arch(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise CorruptFileError(f"the model card's config.arch {value!r} is none of {', '.join(allowed)}")
    return str(value)


def network_of_card(card: dict) -> Network:
    """The network a card (``metadata.json``, as JSON) describes; CorruptFileError when it does not say.

    Per-ticker cards: ``config.arch``, ``config.units``, ``config.bidirectional``,
    ``config.lookback``, ``config.horizon`` and ``features``; global cards
    (``kind`` ``UNIVERSE_MODEL``): ``config.arch``, ``units``, ``head_units``, ``members``,
    ``lookback``, ``horizon`` and ``features.sequence`` / ``features.static``.
    """
    config = card.get("config") if isinstance(card, dict) else None
    if not isinstance(config, dict):
        raise CorruptFileError("the model card has no config to size its network by")
    if card.get("kind") == UNIVERSE_MODEL:
        features = card.get("features")
        if not isinstance(features, dict) or not isinstance(features.get("sequence"), list) or not isinstance(features.get("static"), list):
            raise CorruptFileError("the global model card lacks features.sequence and features.static")
        return Network(UNIVERSE_MODEL, _arch(config.get("arch"), ("gru", "lstm")), (_whole(config.get("units"), "config.units"),),
                       _whole(config.get("lookback"), "config.lookback"), len(features["sequence"]),
                       _whole(config.get("horizon"), "config.horizon"), members=_whole(config.get("members"), "config.members"),
                       head_units=_whole(config.get("head_units"), "config.head_units"), static=len(features["static"]),
                       linear=config.get("linear") is True)
    features = card.get("features", config.get("features"))
    if not isinstance(features, list) or not features:
        raise CorruptFileError("the model card lacks its features")
    bidirectional = config.get("bidirectional", False)
    if not isinstance(bidirectional, bool):
        raise CorruptFileError(f"the model card's config.bidirectional is not true or false ({bidirectional!r})")
    return Network("ticker", _arch(config.get("arch"), tuple(GATES)), _units(config.get("units")),
                   _whole(config.get("lookback"), "config.lookback"), len(features), _whole(config.get("horizon"), "config.horizon"),
                   bidirectional=bidirectional)


def card_beside(path: Path) -> dict | None:
    """The card (``metadata.json``) in the model file's folder, as JSON; None when there is none."""
    card = Path(path).parent / CARD_FILE
    if not card.is_file():
        return None
    if card.stat().st_size > MAX_CARD_BYTES:
        raise CorruptFileError(f"{card} is {mib(card.stat().st_size)}, more than a model card can be")
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise CorruptFileError(f"{card} is unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise CorruptFileError(f"{card} is not a JSON object")
    return data


# ---- the network a config.json describes -------------------------------------------------------------------------

def _layers(config: Any) -> list[dict]:
    layers = config.get("config", {}).get("layers") if isinstance(config, dict) and isinstance(config.get("config"), dict) else None
    if not isinstance(layers, list) or not all(isinstance(layer, dict) and isinstance(layer.get("config"), dict) for layer in layers):
        raise CorruptFileError("config.json holds no layer list")
    return layers


def _shape(layer: dict, rank: int) -> tuple[int, ...]:
    shape = layer["config"].get("batch_shape")
    if not isinstance(shape, list) or len(shape) != rank + 1 or shape[0] is not None:
        raise CorruptFileError(f"config.json: input {layer['config'].get('name')!r} has shape {shape!r}, not [None, {rank} sizes]")
    return tuple(_whole(size, f"input {layer['config'].get('name')!r} size") for size in shape[1:])


def _layer_units(layer: dict) -> int:
    return _whole(layer["config"].get("units"), f"layer {layer['config'].get('name')!r} units")


def _ticker_network(layers: list[dict]) -> Network:
    """A per-ticker network from its config: only the layers build_network uses, each sized (Keras builds what this says)."""
    inputs, recurrent, heads, bidirectional = [], [], [], []
    for layer in layers:
        kind = layer.get("class_name")
        if kind not in TICKER_CLASSES:
            raise CorruptFileError(f"config.json: layer {layer['config'].get('name')!r} ({kind}) is not one a forecast network has")
        if kind == "InputLayer":
            inputs.append(_shape(layer, 2))
        elif kind == "Dense":
            heads.append(_layer_units(layer))
        elif kind == "Bidirectional":
            directions = [layer["config"].get(key) for key in ("layer", "backward_layer") if key in layer["config"]]
            if not directions or not all(isinstance(d, dict) and isinstance(d.get("config"), dict) for d in directions):
                raise CorruptFileError(f"config.json: layer {layer['config'].get('name')!r} wraps no recurrent layer")
            kinds = {d.get("class_name") for d in directions}
            units = {_layer_units(d) for d in directions}
            if len(kinds) != 1 or len(units) != 1 or not kinds <= set(ARCH_OF_CLASS):
                raise CorruptFileError(f"config.json: layer {layer['config'].get('name')!r} wraps {sorted(map(str, kinds))} "
                                       f"of units {sorted(units)}, not one recurrent layer")
            recurrent.append((ARCH_OF_CLASS[kinds.pop()], units.pop()))
            bidirectional.append(len(recurrent) - 1)
        elif kind in ARCH_OF_CLASS:
            recurrent.append((ARCH_OF_CLASS[kind], _layer_units(layer)))
    archs = {arch for arch, _ in recurrent}
    if len(inputs) != 1 or len(heads) != 1 or len(archs) != 1 or bidirectional not in ([], [0]):
        raise CorruptFileError(f"config.json describes {len(inputs)} input(s), {len(heads)} Dense layer(s) and recurrent layers "
                               f"{recurrent}: not a network forecast builds")
    (lookback, features), = inputs
    return Network("ticker", archs.pop(), tuple(units for _, units in recurrent), lookback, features, heads[0],
                   bidirectional=bidirectional == [0])


def _global_network(layers: list[dict]) -> Network:
    """The global ensemble's sizes from its config (layers by name; global_numpy checks the layout itself)."""
    by_name = {layer["config"].get("name"): layer for layer in layers}
    recurrent = [layer for layer in layers if layer.get("class_name") in ("GRU", "LSTM")]
    if "window" not in by_name or "static" not in by_name or not recurrent or "hidden_0" not in by_name or "head_0" not in by_name:
        raise CorruptFileError("config.json: not a global network (it needs inputs 'window' and 'static', "
                               "a GRU or LSTM, 'hidden_0' and 'head_0')")
    (lookback, features), (static,) = _shape(by_name["window"], 2), _shape(by_name["static"], 1)
    return Network(UNIVERSE_MODEL, ARCH_OF_CLASS[recurrent[0]["class_name"]], (_layer_units(recurrent[0]),), lookback, features,
                   _layer_units(by_name["head_0"]), members=len(recurrent), head_units=_layer_units(by_name["hidden_0"]),
                   static=static, linear="linear" in by_name)


def network_of_config(config: Any, kind: str) -> Network:
    """The network a Keras ``config.json`` (parsed) describes, of ``kind`` "ticker" or ``UNIVERSE_MODEL``; CorruptFileError otherwise."""
    layers = _layers(config)
    try:
        return _global_network(layers) if kind == UNIVERSE_MODEL else _ticker_network(layers)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:  # junk where a name or a size belongs
        raise CorruptFileError(f"config.json is not a network's description ({type(exc).__name__}: {exc})") from None
