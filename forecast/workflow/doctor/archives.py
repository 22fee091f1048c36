"""A ``model.keras`` read as the loaders read it, without TensorFlow: a zip the product made, of the layers its networks have.

The archive's bound, its members and every weight's declared shape against
the card are ``models/archive.py``'s (``check_model_file``); what is checked
here is what that module leaves to the loaders: each member's CRC, layer
classes the product's networks never have, Python code, classes from outside
Keras, every array h5py reads; and, before it, a global network's weights
named by layer (it compares their shapes, unnamed, as one multiset).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecast.errors import ForecastError
from forecast.models.archive_network import TICKER_CLASSES
from forecast.workflow.doctor.findings import _reason

if TYPE_CHECKING:
    from forecast.models.pooled.card import GlobalCard

# The layer classes the product's networks are made of; a model.keras with any other is not one the product made.
# network.build_network (per ticker: models/archive_network.py's TICKER_CLASSES) and global_network.build_global_network;
# tests/workflow/doctor/test_states.py checks that what they build passes.
TICKER_LAYERS = TICKER_CLASSES
GLOBAL_LAYERS = frozenset({"InputLayer", "GRU", "LSTM", "Concatenate", "Dropout", "Dense", "Reshape",
                           "Flatten", "Add"})  # the last two: the nested ridge (models/pooled/network.py)
_WRAPPED = ("layer", "backward_layer")  # Bidirectional's own layers, in its config
_MODEL_CLASSES = frozenset({"Functional"})  # keras.Model(inputs, outputs)
_CODE_CLASSES = frozenset({"Lambda", "__lambda__", "function"})  # Python code in the file: Keras' safe mode refuses it


def _global_shapes(config: Any, h5: Any, card: GlobalCard) -> str | None:
    """The first input or layer whose weights are not the shapes the card's network needs, named; None if all fit.

    Reads the shapes the datasets declare, never their data. A layout this
    does not know (no 'window', no 'gru_0'...) is left to the loader to name.
    """
    from forecast.models.pooled.data import SEQUENCE_FEATURES, STATIC_FEATURES

    n_sequence, n_static, horizon = len(SEQUENCE_FEATURES), len(STATIC_FEATURES), card.horizon
    try:
        layers = {layer["config"]["name"]: layer for layer in _layers(config)}
        declared = {}
        for group in h5["layers"].values():  # as global_numpy reads them: a recurrent layer's variables live under "cell"
            holder = group["cell"]["vars"] if "cell" in group else group["vars"]
            declared[str(group["vars"].attrs["name"])] = [tuple(holder[str(i)].shape) for i in range(len(holder))]
        for name, shape in (("window", [None, card.lookback, n_sequence]), ("static", [None, n_static])):
            if layers[name]["config"].get("batch_shape") != shape:
                return f"input {name!r} has shape {layers[name]['config'].get('batch_shape')}; the card's network needs {shape}"
        arch = next(layer["class_name"] for layer in layers.values() if layer["class_name"] in ("GRU", "LSTM"))
        gates, m = (3 if arch == "GRU" else 4), 0
        while f"{arch.lower()}_{m}" in layers:
            rnn = f"{arch.lower()}_{m}"
            units, hidden = layers[rnn]["config"]["units"], layers[f"hidden_{m}"]["config"]["units"]
            width = gates * units
            wanted = {rnn: [(n_sequence, width), (units, width), (2, width) if arch == "GRU" else (width,)],
                      f"hidden_{m}": [(units + n_static, hidden), (hidden,)], f"head_{m}": [(hidden, horizon), (horizon,)]}
            for name, shapes in wanted.items():
                if declared.get(name) != shapes:
                    return (f"layer {name!r} has weights of shapes {declared.get(name)}; the card's network "
                            f"({n_sequence} sequence and {n_static} static inputs, horizon {horizon}) needs {shapes}")
            m += 1
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration):
        return None
    return None


def _archive_problem(model: Path, allowed: frozenset[str], card: GlobalCard | None = None) -> str | None:
    """Why ``model.keras`` is not a Keras archive the product made, read without TensorFlow; None if it is.

    In this order, so that nothing is inflated or read before its size is
    known: present and not empty; a zip whose members declare no more than
    the card's network can take (a zip bomb); every member passes its CRC check; a
    ``config.json`` whose layers are all of the classes in ``allowed`` and that
    holds no Python code (a Lambda: Keras' safe mode refuses it) and no class
    from outside Keras; then, if it holds ``model.weights.h5``,
    ``archive.check_model_file`` (the archive, config.json and every
    weight's declared shape against the card), for a global model each
    layer's shapes named first (``_global_shapes``), and every array h5py
    reads. ``card``: a global model's.
    """
    import h5py

    from forecast.models.archive import check_model_file

    if not model.is_file():
        return "model.keras is missing"
    if model.stat().st_size == 0:
        return "model.keras is empty"
    if not zipfile.is_zipfile(model):
        return "model.keras is not a Keras archive (not a zip file)"
    try:
        with zipfile.ZipFile(model) as archive:
            declared, bound = sum(info.file_size for info in archive.infolist()), _size_bound(model)
            if declared > bound:
                return (f"model.keras declares {declared:,} bytes uncompressed, more than the {bound:,} its network "
                        "can take (a zip bomb?)")
            damaged = archive.testzip()
            if damaged is not None:
                return f"model.keras is damaged: {damaged} fails its CRC check (BadZipFile)"
            names = set(archive.namelist())
            if "config.json" not in names:
                return "model.keras has no config.json"
            config = json.loads(archive.read("config.json"))
            problem = _foreign_classes(config, allowed)
            if problem:
                return problem
            if "model.weights.h5" not in names:
                return "model.keras has no model.weights.h5" if _layers(config) else None
            weights = archive.read("model.weights.h5")  # no larger than the bound above
    except Exception as exc:  # zipfile, zlib, json: the loaders would fail too
        return f"model.keras cannot be read ({_reason(exc)})"
    try:
        if card is not None:  # the declared shapes only, named by layer, before archive.check_model_file compares them unnamed
            with h5py.File(io.BytesIO(weights), "r") as h5:
                problem = _global_shapes(config, h5, card)
            if problem:
                return problem
        check_model_file(model)
    except Exception as exc:  # archive's CorruptFileError, or h5py's error for a file that is not HDF5
        return f"model.keras cannot be loaded ({_reason(exc)})"
    try:  # every array, now that archive.check_model_file has bounded what they declare
        with h5py.File(io.BytesIO(weights), "r") as h5:
            h5.visititems(_read_dataset)
    except Exception as exc:
        return f"model.weights.h5 in model.keras cannot be read ({_reason(exc)})"
    return None


def _size_bound(model: Path) -> int:
    """The most bytes the archive's members may declare: what its card's network can take (``archive.open_model_archive``'s bound)."""
    from forecast.models.archive import CARDLESS_MAX_BYTES
    from forecast.models.archive_network import card_beside, network_of_card

    try:
        card = card_beside(model)
        return network_of_card(card).max_bytes() if card is not None else CARDLESS_MAX_BYTES
    except ForecastError:  # a card that says nothing of its network: the card's own finding says why
        return CARDLESS_MAX_BYTES


def _read_dataset(_name: str, item: Any) -> None:
    import h5py

    if isinstance(item, h5py.Dataset):
        item[()]


def _foreign_classes(config: Any, allowed: frozenset[str]) -> str | None:
    """Layer classes (and code) in a Keras ``config.json`` that the product's networks never have, named; or None."""
    if not isinstance(config, dict):
        return "config.json is not a Keras model's configuration"
    foreign: list[str] = []
    if "class_name" in config and config["class_name"] not in _MODEL_CLASSES:
        foreign.append(str(config["class_name"]))
    layers = list(_layers(config))
    while layers:
        layer = layers.pop()
        if layer.get("class_name") not in allowed:
            foreign.append(str(layer.get("class_name")))
        inner = layer.get("config")
        if isinstance(inner, dict):
            layers += [inner[key] for key in _WRAPPED if isinstance(inner.get(key), dict)]
    for item in _objects(config.get("config")):  # the architecture; compile_config is never loaded (compile=False)
        name, module = item.get("class_name"), item.get("module")
        custom = isinstance(item.get("registered_name"), str) and ">" in item["registered_name"]
        outside = isinstance(module, str) and module.split(".")[0] != "keras"
        if name in _CODE_CLASSES or custom or outside:
            foreign.append(f"{name} from {module}" if outside else str(name))
    if not foreign:
        return None
    names = ", ".join(dict.fromkeys(foreign))
    code = " (Python code: Keras' safe mode refuses it)" if any(n.split(" ")[0] in _CODE_CLASSES for n in foreign) else ""
    return f"config.json has layers the product's networks never have: {names[:160]}{code}"


def _layers(config: Any) -> list[dict]:
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    return [layer for layer in layers if isinstance(layer, dict)] if isinstance(layers, list) else []


def _objects(value: Any) -> Iterator[dict]:
    """Every JSON object holding a ``class_name`` under ``value``, depth first."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
