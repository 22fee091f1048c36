"""Zip bombs and weights that are not their card's network: refused in one line (exit 3), before they are read.

Every bomb here is a real trained model's ``.keras`` file rewritten: its card and
config.json kept, its ``model.weights.h5`` made to declare hundreds of MiB that
cost a few hundred KiB on disk. Loading one with no check takes that memory
(and the real h5 at its start makes it load); the bombs stay below a GiB so
that a test run on a loader without the check survives to fail.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import REPO, subprocess_env
from typer.testing import CliRunner

from forecast.cli import app
from forecast.errors import CorruptFileError, ExitCode
from forecast.models.archive import (
    CARDLESS_MAX_BYTES,
    check_archive,
    check_model_file,
)
from forecast.models.archive_network import (
    MiB,
    Network,
    network_of_card,
    network_of_config,
)

runner = CliRunner()
pytestmark = pytest.mark.slow  # trains two tiny models (about 10 s) and writes bombs of 300-512 MiB (a second or two each)
TINY = ["--epochs", "1", "--units", "4", "--lookback", "10", "--horizon", "3", "--quiet"]
GLOBAL_TINY = ["--epochs", "1", "--lookback", "10", "--horizon", "3", "--quiet"]
BOMB = 512 * MiB  # what a zeros bomb declares: about 0.5 MiB on disk
LOW = 64 * MiB  # the most a refusal may allocate (Python and numpy memory, tracemalloc): far below every bomb
WEIGHTS = "model.weights.h5"


# ---- real models -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ticker_home(tmp_path_factory) -> tuple[Path, str]:
    """A home with the sample and one tiny per-ticker model. Copy it before changing anything."""
    home = tmp_path_factory.mktemp("ticker-home")
    env = {"FORECAST_HOME": str(home)}
    assert runner.invoke(app, ["fetch", "--source", "sample"], env=env).exit_code == 0
    trained = runner.invoke(app, ["train", "600519", *TINY, "--json"], env=env)
    assert trained.exit_code == 0, trained.output
    return home, json.loads(trained.stdout)[0]["id"]


@pytest.fixture(scope="module")
def global_home(tmp_path_factory) -> tuple[Path, str]:
    """A home with a synthetic market and one tiny global model (3 GRU(64) members). Copy it before changing anything."""
    from tests.models.pooled.test_commands import TICKERS, store_panel
    from tests.models.pooled.test_data import make_panel

    home = tmp_path_factory.mktemp("global-home")
    store_panel(home, make_panel({t: 420 for t in TICKERS}, seed=21))
    trained = runner.invoke(app, ["--home", str(home), "train", "--universe", "stored", "--preset", "global", *GLOBAL_TINY, "--json"])
    assert trained.exit_code == 0, trained.output
    return home, json.loads(trained.stdout)["id"]


def copied(home: tuple[Path, str], tmp_path: Path) -> tuple[Path, Path]:
    """(a copy of the home, its model file)."""
    source, model_id = home
    copy = tmp_path / "home"
    shutil.copytree(source, copy)
    found = [p for p in copy.glob(f"models/**/{model_id}/model.keras")]
    assert len(found) == 1, found
    return copy, found[0]


# ---- bombs ----------------------------------------------------------------------------------------------------------

def rewrite_weights(model: Path, write: Callable[[zipfile.ZipFile, bytes], None]) -> None:
    """Rewrite ``model`` in place: metadata.json and config.json kept, model.weights.h5 written by ``write(zip, old h5)``."""
    with zipfile.ZipFile(model) as old:
        kept = {name: old.read(name) for name in ("metadata.json", "config.json")}
        weights = old.read(WEIGHTS)
    with zipfile.ZipFile(model, "w") as new:
        for name, data in kept.items():
            new.writestr(name, data)
        write(new, weights)


def zeros_after(declared: int, zip64: bool = True) -> Callable[[zipfile.ZipFile, bytes], None]:
    """The real weights, then zeros up to ``declared`` bytes, deflated (about 1000:1), written a MiB at a time."""
    def write(archive: zipfile.ZipFile, weights: bytes) -> None:
        info = zipfile.ZipInfo(WEIGHTS)
        info.compress_type = zipfile.ZIP_DEFLATED
        zeros = bytes(MiB)
        with archive.open(info, "w", force_zip64=zip64) as member:
            member.write(weights)
            left = declared - len(weights)
            while left > 0:
                member.write(zeros[:left])
                left -= MiB
    return write


def zeros_bomb(model: Path, declared: int = BOMB) -> None:
    rewrite_weights(model, zeros_after(declared))
    assert model.stat().st_size < 2 * MiB  # the bomb is small on disk
    with zipfile.ZipFile(model) as archive:
        assert archive.getinfo(WEIGHTS).file_size == declared


def lying_bomb(model: Path, inflates_to: int = 400 * MiB) -> None:
    """model.weights.h5 declares the real weights' size and CRC, but its deflated stream goes on to ``inflates_to`` bytes.

    A reader that inflates the member in one call (``ZipFile.read``, as Keras
    does) holds all of it before cutting it to the declared size.
    """
    with zipfile.ZipFile(model) as archive:
        weights = archive.read(WEIGHTS)
    rewrite_weights(model, zeros_after(inflates_to, zip64=False))
    with zipfile.ZipFile(model) as archive:
        info, directory = archive.getinfo(WEIGHTS), archive.start_dir
    data = bytearray(model.read_bytes())
    assert not info.extra, "a zip64 member: the sizes to patch are elsewhere"
    fields = struct.pack("<L", zlib.crc32(weights)), struct.pack("<L", len(weights))
    local = info.header_offset  # local header: CRC at 14, uncompressed size at 22
    data[local + 14:local + 18], data[local + 22:local + 26] = fields
    entry = directory  # central directory entries: 46 bytes, then the name, the extra field and the comment
    while True:
        name_length, extra_length, comment_length = struct.unpack("<HHH", data[entry + 28:entry + 34])
        if data[entry + 46:entry + 46 + name_length] == WEIGHTS.encode():
            break
        entry += 46 + name_length + extra_length + comment_length
    data[entry + 16:entry + 20], data[entry + 24:entry + 28] = fields  # central directory: CRC at 16, uncompressed size at 24
    model.write_bytes(bytes(data))
    with zipfile.ZipFile(model) as archive:
        assert archive.getinfo(WEIGHTS).file_size == len(weights)


def h5_changed(model: Path, change: Callable[[h5py.File], None]) -> None:
    """Rewrite model.weights.h5 (stored, as Keras writes it) after ``change`` edits a copy of it."""
    def write(archive: zipfile.ZipFile, weights: bytes) -> None:
        buffer = io.BytesIO(weights)
        with h5py.File(buffer, "r+") as h5:
            change(h5)
        archive.writestr(WEIGHTS, buffer.getvalue())
    rewrite_weights(model, write)


def replaced(name: str, shape: tuple[int, ...]) -> Callable[[h5py.File], None]:
    """Replace a dataset by one of ``shape`` that stores nothing (HDF5 allocates it only when written)."""
    def change(h5: h5py.File) -> None:
        del h5[name]
        h5.create_dataset(name, shape=shape, dtype="float32")
    return change


# ---- measuring --------------------------------------------------------------------------------------------------------

def traced(action: Callable[[], object]) -> tuple[object, int, float]:
    """(what ``action`` returned or raised, the Python/numpy memory it peaked at, seconds)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome = action()
    except Exception as exc:  # the caller asserts which
        outcome = exc
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak, seconds


def child(*args: str) -> tuple[int, str, int]:
    """Run the CLI in a new process: (exit code, stderr, the process's peak resident memory in bytes)."""
    process = subprocess.Popen([sys.executable, "-m", "forecast", *args], cwd=REPO, env=subprocess_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, stderr, usage.ru_maxrss * 1024  # Linux reports KiB


def one_line_refusal(stderr: str, *words: str) -> None:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    for word in words:
        assert word in lines[0], lines[0]


class KerasCalls:
    """Records calls to Keras's loader (and makes them): a refused file must never reach it."""

    def __init__(self, monkeypatch):
        from forecast.models import network

        self.paths: list[str] = []
        real = network.keras.saving.load_model

        def load(path, *args, **kwargs):
            self.paths.append(str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(network.keras.saving, "load_model", load)


# ---- the global model: rank, doctor's loader --------------------------------------------------------------------------

def test_rank_refuses_a_zip_bomb_in_one_line_without_taking_its_memory(global_home, tmp_path):
    clean, _ = copied(global_home, tmp_path / "clean")
    home, model = copied(global_home, tmp_path / "bomb")
    zeros_bomb(model)
    baseline = child("--home", str(clean), "rank", "--universe", "stored")
    assert baseline[0] == 0, baseline[1]
    code, stderr, peak = child("--home", str(home), "rank", "--universe", "stored")
    assert code == ExitCode.BAD_INPUT, stderr
    one_line_refusal(stderr, str(model), "model.weights.h5 declares 512.0 MiB")
    assert peak < baseline[2] + LOW, f"rank peaked at {peak / MiB:.0f} MiB; on the clean model {baseline[2] / MiB:.0f} MiB"


@pytest.mark.parametrize("bomb", [zeros_bomb, lying_bomb], ids=["declares-512MiB", "inflates-past-its-header"])
def test_the_numpy_loader_refuses_a_bomb_before_reading_it(global_home, tmp_path, bomb):
    """What predict, rank and doctor load the global network with."""
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

    _, model = copied(global_home, tmp_path)
    bomb(model)
    outcome, peak, seconds = traced(lambda: NumpyGlobalNet.from_keras_file(model))
    assert isinstance(outcome, CorruptFileError), outcome
    assert len(str(outcome).splitlines()) == 1
    assert peak < LOW, f"{peak / MiB:.0f} MiB"
    print(f"{bomb.__name__}: refused in {seconds:.3f} s, peak {peak / MiB:.1f} MiB: {outcome}")


def test_weights_whose_declared_shapes_are_not_the_cards_network_are_refused_before_allocating(global_home, tmp_path):
    """An HDF5 dataset declares its shape and may store nothing: 300 MiB in a file of a few KiB."""
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

    _, model = copied(global_home, tmp_path)
    h5_changed(model, replaced("layers/gru/cell/vars/1", (8192, 9600)))  # the recurrent kernel is [64, 192]
    assert model.stat().st_size < 2 * MiB
    outcome, peak, _ = traced(lambda: NumpyGlobalNet.from_keras_file(model))
    assert isinstance(outcome, CorruptFileError) and "(8192, 9600)" in str(outcome), outcome
    assert peak < LOW, f"{peak / MiB:.0f} MiB"


def test_rank_refuses_weights_of_another_shape_than_the_card_says(global_home, tmp_path):
    home, model = copied(global_home, tmp_path)

    def wider_head(h5: h5py.File) -> None:  # head_0 gives 4 steps where the card says 3: today's numpy pass would not notice
        for name, shape in (("layers/dense_3/vars/0", (16, 4)), ("layers/dense_3/vars/1", (4,))):
            del h5[name]
            h5.create_dataset(name, data=np.zeros(shape, "float32"))

    h5_changed(model, wider_head)
    result = runner.invoke(app, ["--home", str(home), "rank", "--universe", "stored"])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    one_line_refusal(result.stderr, str(model), "does not hold the weights of its network")


def test_a_global_model_whose_config_is_not_its_cards_network_is_refused(global_home, tmp_path):
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

    _, model = copied(global_home, tmp_path)
    card = json.loads((model.parent / "metadata.json").read_text())
    card["config"]["units"] = 32
    (model.parent / "metadata.json").write_text(json.dumps(card))
    with pytest.raises(CorruptFileError, match=r"config\.json describes gru\(64\).*its card gru\(32\)"):
        NumpyGlobalNet.from_keras_file(model)


# ---- the per-ticker model: predict, through numpy --------------------------------------------------------------------

@pytest.mark.parametrize("bomb", [zeros_bomb, lying_bomb], ids=["declares-512MiB", "inflates-past-its-header"])
def test_predict_refuses_a_per_ticker_bomb_before_keras_reads_it(ticker_home, tmp_path, monkeypatch, bomb):
    home, model = copied(ticker_home, tmp_path)
    bomb(model)
    keras = KerasCalls(monkeypatch)
    result, peak, seconds = traced(lambda: runner.invoke(app, ["--home", str(home), "predict", "600519.SH"]))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    one_line_refusal(result.stderr, str(model), "cannot be loaded")
    assert keras.paths == [], "Keras read the bomb"
    assert peak < LOW, f"predict peaked at {peak / MiB:.0f} MiB"
    print(f"{bomb.__name__}: predict refused in {seconds:.2f} s, peak {peak / MiB:.1f} MiB")


@pytest.mark.parametrize(("what", "change"), [
    ("a recurrent kernel of another shape", lambda h5: replaced("layers/gru/cell/vars/1", (4, 13))(h5)),
    ("a recurrent kernel declaring 300 MiB", lambda h5: replaced("layers/gru/cell/vars/1", (8192, 9600))(h5)),
])
def test_predict_refuses_weights_that_are_not_the_cards_network(ticker_home, tmp_path, monkeypatch, what, change):
    home, model = copied(ticker_home, tmp_path)
    h5_changed(model, change)
    keras = KerasCalls(monkeypatch)
    result, peak, _ = traced(lambda: runner.invoke(app, ["--home", str(home), "predict", "600519.SH"]))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    one_line_refusal(result.stderr, "model.weights.h5")
    assert keras.paths == [] and peak < LOW, (what, keras.paths, peak)


def test_predict_refuses_a_config_that_would_make_keras_build_a_larger_network_than_the_card(ticker_home, tmp_path, monkeypatch):
    """Keras allocates every weight config.json describes before it reads one: GRU(4096) is 200 MB of them."""
    home, model = copied(ticker_home, tmp_path)
    with zipfile.ZipFile(model) as old:
        members = {name: old.read(name) for name in old.namelist()}
    config = json.loads(members["config.json"])
    next(layer for layer in config["config"]["layers"] if layer["class_name"] == "GRU")["config"]["units"] = 4096
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(model, "w") as new:
        for name, data in members.items():
            new.writestr(name, data)
    keras = KerasCalls(monkeypatch)
    result = runner.invoke(app, ["--home", str(home), "predict", "600519.SH"])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    one_line_refusal(result.stderr, "config.json describes gru(4096)")
    assert keras.paths == []


def test_an_untouched_model_still_loads_and_predicts(ticker_home, tmp_path, monkeypatch):
    home, model = copied(ticker_home, tmp_path)
    keras = KerasCalls(monkeypatch)
    result = runner.invoke(app, ["--home", str(home), "predict", "600519.SH", "--json"])
    assert result.exit_code == 0, result.output
    assert keras.paths == []  # predict serves the network in numpy (models/numpy_net.py): Keras never reads the file


# ---- the archive check and its bound ---------------------------------------------------------------------------------

def card_of(cfg, features: int) -> dict:
    return {"config": cfg.to_dict(), "features": [f"f{i}" for i in range(features)]}


@pytest.mark.parametrize(("arch", "units", "bidirectional", "features"), [
    ("gru", (4,), False, 1), ("lstm", (6, 3), False, 2), ("rnn", (5,), True, 3), ("gru", (3, 2), True, 2), ("lstm", (80, 100), False, 1),
])
def test_the_bound_counts_every_weight_keras_builds_for_the_card(tmp_path, arch, units, bidirectional, features):
    from forecast.models import network
    from forecast.models.train_config import TrainConfig

    cfg = TrainConfig(arch=arch, units=units, bidirectional=bidirectional, lookback=7, horizon=2)
    model = network.build_network(cfg, features)
    expected = network_of_card(card_of(cfg, features))
    assert Counter(expected.variable_shapes()) == Counter(tuple(w.shape) for w in model.weights)
    assert expected.parameters() == model.count_params()
    path = tmp_path / "model.keras"
    network.save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        assert network_of_config(json.loads(archive.read("config.json")), "ticker") == expected
        assert sum(info.file_size for info in archive.infolist()) < expected.max_bytes()
    assert network.load_model(path, card_of(cfg, features)).count_params() == model.count_params()
    other = card_of(TrainConfig(arch=arch, units=tuple(u + 1 for u in units), bidirectional=bidirectional, lookback=7, horizon=2),
                    features)
    with pytest.raises(CorruptFileError, match=r"config\.json describes"):
        network.load_model(path, other)


@pytest.mark.parametrize(("arch", "members"), [("gru", 1), ("lstm", 3)])
def test_the_bound_counts_every_weight_of_the_global_network(arch, members):
    from forecast.models.pooled.net_config import GlobalNetConfig
    from forecast.models.pooled.network import build_global_network

    cfg = GlobalNetConfig(lookback=6, horizon=3, arch=arch, units=5, head_units=4, members=members)
    model = build_global_network(cfg, 4, 3)
    card = {"kind": "global", "config": {"arch": arch, "units": 5, "head_units": 4, "members": members, "lookback": 6, "horizon": 3},
            "features": {"sequence": list("abcd"), "static": list("xyz")}}
    expected = network_of_card(card)
    assert Counter(expected.variable_shapes()) == Counter(tuple(w.shape) for w in model.weights)
    assert expected.max_bytes() == 48 * model.count_params() + MiB


def test_real_models_are_far_inside_their_bound_and_bombs_far_outside(ticker_home, global_home):
    for home in (ticker_home, global_home):
        model = next(home[0].glob(f"models/**/{home[1]}/model.keras"))
        network = check_model_file(model)
        with zipfile.ZipFile(model) as archive:
            declared = sum(info.file_size for info in archive.infolist())
        assert declared * 1.5 < network.max_bytes() < BOMB / 100, (network.describe(), declared, network.max_bytes())


def zip_of(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(("members", "compression", "message"), [
    ({"config.json": b"{}", WEIGHTS: bytes(4 * MiB)}, zipfile.ZIP_DEFLATED, "more than 100:1"),
    ({"config.json": b"{}", WEIGHTS: b"w", "model.weights.npz": b"n"}, zipfile.ZIP_STORED, "holds 3 member"),
    ({"config.json": b"{}", WEIGHTS: b"w", "assets/x": b"x"}, zipfile.ZIP_STORED, "holds 3 member"),
    ({"config.json": b"{}"}, zipfile.ZIP_STORED, "holds 1 member"),
    ({"config.json": b"{}", WEIGHTS: bytes(9 * MiB)}, zipfile.ZIP_STORED, "more than the 8.0 MiB"),
])
def test_check_archive_refuses_what_no_network_of_its_size_is(tmp_path, members, compression, message):
    path = zip_of(tmp_path / "model.keras", members, compression)
    with pytest.raises(CorruptFileError, match=message):
        check_archive(path, 8 * MiB)


def test_check_archive_passes_a_keras_file_within_its_bound(tmp_path):
    members = {"metadata.json": b"{}", "config.json": b"{}", WEIGHTS: bytes(MiB)}
    assert len(check_archive(zip_of(tmp_path / "stored.keras", members), 2 * MiB)) == 3
    assert len(check_archive(zip_of(tmp_path / "deflated.keras", {**members, WEIGHTS: os.urandom(MiB)}, zipfile.ZIP_DEFLATED),
                             2 * MiB)) == 3


def test_a_bare_file_with_no_card_is_held_to_the_cardless_ceiling(global_home, tmp_path):
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

    _, model = copied(global_home, tmp_path)
    bare = tmp_path / "bare" / "model.keras"
    bare.parent.mkdir()
    shutil.copy(model, bare)
    assert NumpyGlobalNet.from_keras_file(bare).lookback == 10  # sized by its own config.json
    zeros_bomb(bare, CARDLESS_MAX_BYTES + 16 * MiB)
    outcome, peak, _ = traced(lambda: NumpyGlobalNet.from_keras_file(bare))
    assert isinstance(outcome, CorruptFileError) and "80.0 MiB" in str(outcome), outcome
    assert peak < LOW


def test_a_card_that_cannot_size_its_network_is_refused():
    with pytest.raises(CorruptFileError, match=r"config\.units"):
        network_of_card({"config": {"arch": "gru", "units": [0], "lookback": 5, "horizon": 1}, "features": ["return"]})
    with pytest.raises(CorruptFileError, match=r"config\.members"):
        network_of_card({"kind": "global", "config": {"arch": "gru", "units": 4, "head_units": 2, "lookback": 5, "horizon": 1},
                         "features": {"sequence": ["a"], "static": []}})
    assert Network("ticker", "gru", (32,), 30, 1, 5).parameters() == 3 * 32 * (1 + 32 + 2) + 32 * 5 + 5  # the default network
