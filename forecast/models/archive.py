"""Refuse a ``.keras`` archive that is larger than the network its card describes, before anything is read from it.

A ``.keras`` file is a zip (``metadata.json``, ``config.json``,
``model.weights.h5``) that Keras and ``global_numpy`` read into memory. A zip
member can declare gigabytes and store almost nothing (zeros deflate about
1000:1), and an HDF5 dataset can declare any shape and store nothing (its fill
value), so reading a small hostile file can take the machine's memory. The
card beside the model (``metadata.json``) says what network it is: from its
layers, units, window and features follow every weight's shape, so the largest
archive such a network can be (``Network.max_bytes``). This module is the one
owner of that check; both loaders call ``open_model_archive`` (through
``check_model_file`` for the Keras one) before they read anything:

1. the archive (``check_archive``): its size on disk, its members (exactly the
   three Keras writes), each member's declared size and their sum against the
   bound, the compression ratio, and that each deflated stream really inflates
   to the size it declares (counted in bounded chunks, nothing kept);
2. ``config.json`` (read within the bound): it must describe the card's network,
   because Keras allocates every weight of the network it describes;
3. ``model.weights.h5`` (read within the bound): every dataset's declared shape
   must be one of the network's weights (``check_weight_shapes``), before any is read.

Every refusal is a CorruptFileError (exit 3) in one line. This module imports
neither TensorFlow nor Keras: ``global_numpy`` must stay free of them.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from forecast.choices import UNIVERSE_MODEL
from forecast.errors import CorruptFileError
from forecast.workspace import CARD_FILE

MiB = 1 << 20
CONFIG_MEMBER, WEIGHTS_MEMBER, METADATA_MEMBER = "config.json", "model.weights.h5", "metadata.json"
MEMBERS = frozenset({CONFIG_MEMBER, WEIGHTS_MEMBER, METADATA_MEMBER})  # what keras.Model.save writes for our networks
# The bound: every weight stored as float64 (Keras writes float32), three times (the weights and Adam's two moments,
# which model.save keeps for a compiled model), doubled, plus a fixed MiB for HDF5's headers, config.json and metadata.json.
BYTES_PER_VALUE, COPIES, SLACK_FACTOR, FIXED_SLACK = 8, 3, 2, MiB
MAX_RATIO = 100  # Keras stores members uncompressed (1:1); floats never deflate 100:1, zeros do about 1000:1
RATIO_FLOOR = MiB  # small members (a repetitive config.json) may compress well; the ratio is judged above this
CARDLESS_MAX_BYTES = 64 * MiB  # a file with no card beside it (library use): the network its config.json describes, up to this
MAX_CARD_BYTES = 16 * MiB
CHUNK = MiB
GATES = {"gru": 3, "lstm": 4, "rnn": 1}
ARCH_OF_CLASS = {"GRU": "gru", "LSTM": "lstm", "SimpleRNN": "rnn"}
TICKER_CLASSES = frozenset({"InputLayer", "Dropout", "Dense", "Bidirectional", *ARCH_OF_CLASS})
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then the file name's and the extra field's lengths at bytes 26-29


def _mib(size: int) -> str:
    return f"{size / MiB:.1f} MiB" if size >= MiB // 10 else f"{size} bytes"


@dataclass(frozen=True)
class Network:
    """A saved network's shape, as its card (or its config.json) declares it: enough to know every weight's shape.

    ``kind`` "ticker" is ``network.build_network``'s network (recurrent layers
    of ``units``, the first one Bidirectional if ``bidirectional``, then
    Dense(horizon)); "global" is ``global_network.build_global_network``'s
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
    (``kind`` "global"): ``config.arch``, ``units``, ``head_units``, ``members``,
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
        raise CorruptFileError(f"{card} is {_mib(card.stat().st_size)}, more than a model card can be")
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
    """The network a Keras ``config.json`` (parsed) describes, of ``kind`` "ticker" or "global"; CorruptFileError otherwise."""
    layers = _layers(config)
    try:
        return _global_network(layers) if kind == UNIVERSE_MODEL else _ticker_network(layers)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:  # junk where a name or a size belongs
        raise CorruptFileError(f"config.json is not a network's description ({type(exc).__name__}: {exc})") from None


# ---- the archive ---------------------------------------------------------------------------------------------------

def _inflated_size(handle: io.BufferedReader, info: zipfile.ZipInfo, limit: int) -> int:
    """How many bytes a deflated member really inflates to, counted CHUNK by CHUNK and kept nowhere; stops past ``limit``."""
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise CorruptFileError(f"{info.filename}: the zip's local header is missing")
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[1:]
    handle.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    inflater, left, size = zlib.decompressobj(-zlib.MAX_WBITS), info.compress_size, 0
    try:
        while left > 0 and not inflater.eof:
            pending = handle.read(min(CHUNK, left))
            if not pending:
                raise CorruptFileError(f"{info.filename}: the zip is cut short")
            left -= len(pending)
            while pending and not inflater.eof:
                size += len(inflater.decompress(pending, CHUNK))  # at most CHUNK bytes out per call
                if size > limit:
                    return size
                pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise CorruptFileError(f"{info.filename}: its deflated data is damaged ({exc})") from None
    return size


def check_archive(path: str | Path, max_bytes: int) -> list[zipfile.ZipInfo]:
    """Refuse (CorruptFileError) a ``.keras`` zip that could hold more than ``max_bytes``; return its members.

    Reads the central directory, never a member into memory: the file's size
    on disk, the members (exactly config.json, model.weights.h5 and
    metadata.json, none twice, stored or deflated, not encrypted), each
    member's declared size and their sum, the compression ratio of a member
    over RATIO_FLOOR, and that each deflated stream inflates to exactly the
    size its header declares (a header that lies would let a reader inflate
    more than was checked; counted in CHUNK pieces, kept nowhere).
    """
    path = Path(path)
    on_disk = path.stat().st_size
    if on_disk > max_bytes:
        raise CorruptFileError(f"{path.name} is {_mib(on_disk)}, more than the {_mib(max_bytes)} its network can take")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise CorruptFileError(f"{path.name} is not a readable zip ({exc})") from None
    names = [info.filename for info in members]
    if len(names) != len(set(names)) or set(names) - MEMBERS or {CONFIG_MEMBER, WEIGHTS_MEMBER} - set(names):
        listed = ", ".join(repr(name[:60]) for name in names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise CorruptFileError(f"{path.name} holds {len(names)} member(s) ({listed}); a Keras model holds exactly "
                               f"{', '.join(sorted(MEMBERS))}")
    total = 0
    for info in members:
        name = info.filename
        if info.flag_bits & 0x1:
            raise CorruptFileError(f"{path.name}: {name} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CorruptFileError(f"{path.name}: {name} uses compression method {info.compress_type}; Keras stores or deflates")
        total += info.file_size
        if info.file_size > max_bytes or total > max_bytes:
            raise CorruptFileError(f"{path.name}: {name} declares {_mib(info.file_size)} uncompressed, more than the "
                                   f"{_mib(max_bytes)} its network can take")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * info.compress_size:
            raise CorruptFileError(f"{path.name}: {name} declares {_mib(info.file_size)} in {_mib(info.compress_size)} on disk "
                                   f"(more than {MAX_RATIO}:1): a zip bomb")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise CorruptFileError(f"{path.name}: {name} is stored, yet declares {info.file_size} bytes in {info.compress_size}")
    with path.open("rb") as handle:
        for info in members:
            if info.compress_type == zipfile.ZIP_DEFLATED:
                size = _inflated_size(handle, info, info.file_size)
                if size != info.file_size:
                    raise CorruptFileError(f"{path.name}: {info.filename} declares {_mib(info.file_size)} but inflates to "
                                           f"{'more' if size > info.file_size else _mib(size)}")
    return members


# ---- the weights ---------------------------------------------------------------------------------------------------

def _datasets(h5: h5py.Group, prefix: str = "") -> Iterator[tuple[str, h5py.Dataset]]:
    """Every dataset under ``h5`` (links included: visititems skips what a link points to), read for its metadata only."""
    for name in h5:
        link = h5.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise CorruptFileError(f"model.weights.h5: {prefix}{name} is a {type(link).__name__}, not stored in the file")
        item = h5[name]
        if isinstance(item, h5py.Dataset):
            yield prefix + name, item
        elif isinstance(item, h5py.Group):
            yield from _datasets(item, f"{prefix}{name}/")


def check_weight_shapes(h5: h5py.File, network: Network) -> None:
    """Refuse weights that are not exactly the network's: compare every dataset's declared shape, read none.

    The datasets under ``layers/`` must be the network's weights, shape for
    shape; all the datasets of the file (the optimizer's too) must fit in the
    network's bound. An HDF5 dataset may declare any shape and store nothing,
    so this check, not the file's size, is what bounds reading them.
    """
    expected = Counter(network.variable_shapes())
    found: Counter[tuple[int, ...]] = Counter()
    declared, bound = 0, network.max_bytes()
    for name, dataset in _datasets(h5):
        if dataset.dtype.kind not in "fiub" or dataset.dtype.itemsize > BYTES_PER_VALUE:
            raise CorruptFileError(f"model.weights.h5: {name} holds {dataset.dtype}, not numbers")
        shape = tuple(int(size) for size in dataset.shape) if dataset.shape is not None else ()
        declared += math.prod(shape) * dataset.dtype.itemsize
        if declared > bound:
            raise CorruptFileError(f"model.weights.h5: {name} declares {shape}: its datasets declare more than the "
                                   f"{_mib(bound)} a network {network.describe()} can take")
        if name.startswith("layers/"):
            found[shape] += 1
    if found != expected:
        extra, missing = sorted((found - expected).elements()), sorted((expected - found).elements())
        raise CorruptFileError(f"model.weights.h5 does not hold the weights of its network {network.describe()} "
                               f"(unexpected shapes {extra[:4]}, missing {missing[:4]})")


# ---- both together -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckedArchive:
    network: Network
    config: dict  # config.json, parsed
    weights: bytes  # model.weights.h5, whose datasets check_weight_shapes has passed


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with archive.open(info) as member:  # at most file_size bytes, each decompress call bounded by it
        return member.read(info.file_size)


def open_model_archive(path: str | Path, kind: str, card: dict | None = None) -> CheckedArchive:
    """Check a ``.keras`` file against its card before anything else reads it; return what passed. CorruptFileError otherwise.

    ``card``: the model's card as JSON; by default the ``metadata.json`` beside
    ``path``. With no card at all (a bare file, in library use) the network
    config.json describes is the measure, up to CARDLESS_MAX_BYTES.
    ``kind``: "ticker" (loaded by Keras) or "global" (by global_numpy).
    """
    path = Path(path)
    card = card if card is not None else card_beside(path)
    carded = network_of_card(card) if card is not None else None
    if carded is not None and carded.kind != kind:
        raise CorruptFileError(f"{path.name}: its card describes a {carded.kind} model, not a {kind} one")
    bound = carded.max_bytes() if carded else CARDLESS_MAX_BYTES
    members = {info.filename: info for info in check_archive(path, bound)}
    with zipfile.ZipFile(path) as archive:
        try:
            config = json.loads(_read(archive, members[CONFIG_MEMBER]))
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, EOFError, zlib.error) as exc:  # JSON, or a bad CRC
            raise CorruptFileError(f"{path.name}: config.json is unreadable ({type(exc).__name__}: {str(exc)[:80]})") from None
        described = network_of_config(config, kind)
        if carded is not None and described != carded:
            raise CorruptFileError(f"{path.name}: config.json describes {described.describe()}; its card {carded.describe()}")
        if carded is None and described.max_bytes() > CARDLESS_MAX_BYTES:
            raise CorruptFileError(f"{path.name} has no card beside it, and its config.json describes a network of "
                                   f"{_mib(described.max_bytes())}, more than the {_mib(CARDLESS_MAX_BYTES)} allowed without one")
        network = carded or described
        if members[WEIGHTS_MEMBER].file_size > network.max_bytes():
            raise CorruptFileError(f"{path.name}: model.weights.h5 declares {_mib(members[WEIGHTS_MEMBER].file_size)}, more "
                                   f"than the {_mib(network.max_bytes())} a network {network.describe()} can take")
        try:
            weights = _read(archive, members[WEIGHTS_MEMBER])
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise CorruptFileError(f"{path.name}: model.weights.h5 is unreadable ({type(exc).__name__}: {exc})") from None
    try:
        with h5py.File(io.BytesIO(weights), "r") as h5:
            check_weight_shapes(h5, network)
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:  # h5py's errors for a file that is not (whole) HDF5
        raise CorruptFileError(f"{path.name}: model.weights.h5 is not a readable HDF5 file ({type(exc).__name__}: {exc})") from None
    return CheckedArchive(network, config, weights)


def check_model_file(path: str | Path, card: dict | None = None) -> Network:
    """Refuse (CorruptFileError, one line) a model file its card does not vouch for; the network it holds otherwise.

    The one check before loading a ``.keras`` file, Keras or numpy, and what
    ``doctor`` can call on any model folder: the kind (per-ticker or global)
    comes from the card beside the file (or ``card``); a bare file is taken as a per-ticker one.
    """
    card = card if card is not None else card_beside(Path(path))
    kind = UNIVERSE_MODEL if isinstance(card, dict) and card.get("kind") == UNIVERSE_MODEL else "ticker"
    return open_model_archive(path, kind, card).network
