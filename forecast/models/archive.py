"""Refuse a ``.keras`` archive that is larger than the network its card describes, before anything is read from it.

A ``.keras`` file is a zip (``metadata.json``, ``config.json``,
``model.weights.h5``) that Keras and ``global_numpy`` read into memory. A zip
member can declare gigabytes and store almost nothing (zeros deflate about
1000:1), and an HDF5 dataset can declare any shape and store nothing (its fill
value), so reading a small hostile file can take the machine's memory. The
card beside the model (``metadata.json``) says what network it is: from its
layers, units, window and features follow every weight's shape, so the largest
archive such a network can be (``Network.max_bytes``, in ``archive_network``).
This module is the one owner of the check of a file against that bound; both loaders call ``open_model_archive`` (through
``check_model_file`` for the Keras one) before they read anything:

1. the archive (``check_archive``): its size on disk, its members (exactly the
   three Keras writes), each member's declared size and their sum against the
   bound, the compression ratio, and that each deflated stream really inflates
   to the size it declares (counted in bounded chunks, nothing kept);
2. ``config.json`` (read within the bound): it must describe the card's network,
   because Keras allocates every weight of the network it describes
   (``archive_network.network_of_config``);
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

import h5py

from forecast.choices import UNIVERSE_MODEL
from forecast.errors import CorruptFileError
from forecast.models.archive_network import BYTES_PER_VALUE, MiB, Network, card_beside, mib, network_of_card, network_of_config

CONFIG_MEMBER, WEIGHTS_MEMBER, METADATA_MEMBER = "config.json", "model.weights.h5", "metadata.json"
MEMBERS = frozenset({CONFIG_MEMBER, WEIGHTS_MEMBER, METADATA_MEMBER})  # what keras.Model.save writes for our networks
MAX_RATIO = 100  # Keras stores members uncompressed (1:1); floats never deflate 100:1, zeros do about 1000:1
RATIO_FLOOR = MiB  # small members (a repetitive config.json) may compress well; the ratio is judged above this
CARDLESS_MAX_BYTES = 64 * MiB  # a file with no card beside it (library use): the network its config.json describes, up to this
CHUNK = MiB
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then the file name's and the extra field's lengths at bytes 26-29


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
        raise CorruptFileError(f"{path.name} is {mib(on_disk)}, more than the {mib(max_bytes)} its network can take")
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
            raise CorruptFileError(f"{path.name}: {name} declares {mib(info.file_size)} uncompressed, more than the "
                                   f"{mib(max_bytes)} its network can take")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * info.compress_size:
            raise CorruptFileError(f"{path.name}: {name} declares {mib(info.file_size)} in {mib(info.compress_size)} on disk "
                                   f"(more than {MAX_RATIO}:1): a zip bomb")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise CorruptFileError(f"{path.name}: {name} is stored, yet declares {info.file_size} bytes in {info.compress_size}")
    with path.open("rb") as handle:
        for info in members:
            if info.compress_type == zipfile.ZIP_DEFLATED:
                size = _inflated_size(handle, info, info.file_size)
                if size != info.file_size:
                    raise CorruptFileError(f"{path.name}: {info.filename} declares {mib(info.file_size)} but inflates to "
                                           f"{'more' if size > info.file_size else mib(size)}")
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
                                   f"{mib(bound)} a network {network.describe()} can take")
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
    ``kind``: "ticker" (loaded by Keras) or ``UNIVERSE_MODEL`` (by pooled.numpy_net).
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
                                   f"{mib(described.max_bytes())}, more than the {mib(CARDLESS_MAX_BYTES)} allowed without one")
        network = carded or described
        if members[WEIGHTS_MEMBER].file_size > network.max_bytes():
            raise CorruptFileError(f"{path.name}: model.weights.h5 declares {mib(members[WEIGHTS_MEMBER].file_size)}, more "
                                   f"than the {mib(network.max_bytes())} a network {network.describe()} can take")
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
