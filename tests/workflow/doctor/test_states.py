"""``forecast doctor`` finds every state that makes a command fail, and after ``doctor --repair`` the command works again.

Each test breaks the home for real on disk, shows the command that fails,
asserts that doctor names the damage (not ``healthy``, exit non-zero), repairs
it, and runs the command again. Global models are written by hand (numpy and
h5py, laid out as Keras saves ``build_global_network``'s ensemble: what
``rank`` reads without TensorFlow), so those tests are fast; the per-ticker
ones need a trained Keras model and are marked slow.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.jsonio import dumps
from forecast.models.pooled.card import GlobalCard
from forecast.models.pooled.data import SEQUENCE_FEATURES, STATIC_FEATURES
from forecast.models.pooled.model import GlobalSettings
from forecast.workspace import CARD_FILE, MODEL_FILE, Workspace
from tests.models.pooled.test_commands import TICKERS, store_panel
from tests.models.pooled.test_data import make_panel

runner = CliRunner()
LOOKBACK, HORIZON, UNITS, HEAD = 10, 3, 4, 3
OLDER, NEWER = "stored-global-20260101T000000-aaaa", "stored-global-20260102T000000-bbbb"
ESCAPE = "../../../../etc/passwd"


def cli(*args: str):
    return runner.invoke(app, list(args))


def doctor_json(*args: str) -> tuple[int, dict]:
    result = cli("doctor", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def found(report: dict, home: Path) -> dict[str, dict]:
    """{path relative to the home: finding}."""
    return {os.path.relpath(f["path"], home): f for f in report["findings"]}


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---- a global model, written as Keras writes build_global_network's (one member), without TensorFlow ----------------

def _tensor(name: str, shape: list) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"shape": shape, "dtype": "float32", "keras_history": [name, 0, 0]}}


def _layer(class_name: str, name: str, inputs: list | dict | None, **config) -> dict:
    return {"module": "keras.layers", "class_name": class_name, "config": {"name": name, "trainable": True, **config},
            "registered_name": None, "name": name, "inbound_nodes": [] if inputs is None else [{"args": [inputs], "kwargs": {}}]}


def global_archive(path: Path, seed: int = 0) -> None:
    """A .keras file of a one-member GRU ensemble: window [LOOKBACK, F] and static [S] -> [1, HORIZON]."""
    n_seq, n_static, width = len(SEQUENCE_FEATURES), len(STATIC_FEATURES), 3 * UNITS
    gru = {"units": UNITS, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True, "return_sequences": False,
           "return_state": False, "go_backwards": False, "stateful": False, "reset_after": True}
    layers = [_layer("InputLayer", "window", None, batch_shape=[None, LOOKBACK, n_seq]),
              _layer("InputLayer", "static", None, batch_shape=[None, n_static]),
              _layer("GRU", "gru_0", _tensor("window", [None, LOOKBACK, n_seq]), **gru),
              _layer("Concatenate", "join_0", [_tensor("gru_0", [None, UNITS]), _tensor("static", [None, n_static])], axis=-1),
              _layer("Dropout", "dropout_0", _tensor("join_0", [None, UNITS + n_static]), rate=0.1),
              _layer("Dense", "hidden_0", _tensor("dropout_0", [None, UNITS + n_static]), units=HEAD, activation="relu", use_bias=True),
              _layer("Dense", "head_0", _tensor("hidden_0", [None, HEAD]), units=HORIZON, activation="linear", use_bias=True),
              _layer("Reshape", "member_0", _tensor("head_0", [None, HORIZON]), target_shape=[1, HORIZON])]
    config = {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
              "config": {"name": "global_gru", "trainable": True, "layers": layers,
                         "input_layers": [["window", 0, 0], ["static", 0, 0]], "output_layers": ["member_0", 0, 0]}}
    rng = np.random.default_rng(seed)
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:  # groups named by class, as Keras names them; the layer's name is an attribute
        groups = {"input_layer": ("window", []), "input_layer_1": ("static", []), "concatenate": ("join_0", []),
                  "dropout": ("dropout_0", []), "reshape": ("member_0", []),
                  "dense": ("hidden_0", [(UNITS + n_static, HEAD), (HEAD,)]), "dense_1": ("head_0", [(HEAD, HORIZON), (HORIZON,)])}
        for group, (name, shapes) in groups.items():
            variables = h5.create_group(f"layers/{group}/vars")
            variables.attrs["name"] = name
            for i, shape in enumerate(shapes):
                variables[str(i)] = rng.normal(0, 0.3, shape).astype("float32")
        h5.create_group("layers/gru/vars").attrs["name"] = "gru_0"
        cell = h5.create_group("layers/gru/cell/vars")
        cell.attrs["name"] = "gru_cell"
        for i, shape in enumerate([(n_seq, width), (UNITS, width), (2, width)]):
            cell[str(i)] = rng.normal(0, 0.3, shape).astype("float32")
    with zipfile.ZipFile(path, "w") as archive:  # stored, not deflated, as Keras writes
        archive.writestr("metadata.json", json.dumps({"keras_version": "3", "date_saved": "2026-01-01@00:00:00"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights.getvalue())


def global_card(model_id: str, created_at: str) -> GlobalCard:
    settings = GlobalSettings(lookback=LOOKBACK, horizon=HORIZON, units=UNITS, head_units=HEAD, members=1,
                              linear=False)  # the handmade archive below has no nested ridge
    return GlobalCard(model_id, "stored", tuple(TICKERS), created_at, settings.to_dict(),
                      {"sequence": list(SEQUENCE_FEATURES), "static": list(STATIC_FEATURES)},
                      {"range": ["2020-01-01", "2021-08-10"]}, {"rank_ic": 0.01, "best_epoch": 1, "scores": [0.01]},
                      {"slope": [0.01] * HORIZON, "intercept": [0.0] * HORIZON},
                      {"method": "test", "quantiles": {"0.8": [[-1.3, 1.3]] * HORIZON, "0.95": [[-2.0, 2.0]] * HORIZON}})


def save_global(home: Path, model_id: str, created_at: str, point: bool = True, seed: int = 0) -> Path:
    workspace = Workspace.at(home)
    folder = workspace.global_model_dir(model_id)
    folder.mkdir(parents=True)
    global_archive(folder / MODEL_FILE, seed)
    (folder / CARD_FILE).write_text(dumps(global_card(model_id, created_at).to_dict()))
    if point:
        pointer = workspace.global_latest_pointer("stored")
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text(model_id + "\n")
    return folder


@pytest.fixture
def global_home(home):
    """Six stored tickers and two global models of the universe "stored"; the pointer names the newer one."""
    store_panel(home, make_panel({t: 420 for t in TICKERS}, seed=21))
    save_global(home, OLDER, "2026-01-01T00:00:00+00:00", point=False)
    save_global(home, NEWER, "2026-01-02T00:00:00+00:00", seed=1)
    ranked = cli("rank", "--universe", "stored", "--top", "3", "--json")
    assert ranked.exit_code == 0 and json.loads(ranked.stdout)["model_id"] == NEWER, ranked.output
    assert cli("doctor").stdout.strip() == "healthy"
    return home


def rewrite_member(archive_path: Path, member: str, change) -> None:
    """Replace one member of a zip with ``change(its bytes)``, keeping the others (and their order)."""
    with zipfile.ZipFile(archive_path) as archive:
        members = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    with zipfile.ZipFile(archive_path, "w") as archive:
        for name, data in members:
            archive.writestr(name, change(data) if name == member else data)


def reshape_weight(data: bytes, layer: str, index: int, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as h5:
        for group in h5["layers"].values():
            if group["vars"].attrs["name"] == layer:
                holder = group["cell"]["vars"] if "cell" in group else group["vars"]
                del holder[str(index)]
                holder[str(index)] = np.zeros(shape, "float32")
    return buffer.getvalue()


# ---- global models and their pointers -------------------------------------------------------------------------------

def test_global_weights_of_the_wrong_shape_are_named_and_rank_works_after_repair(global_home):
    home, workspace = global_home, Workspace.at(global_home)
    wrong = (UNITS + len(STATIC_FEATURES) + 1, HEAD)  # one static input too many
    rewrite_member(workspace.global_model_dir(NEWER) / MODEL_FILE, "model.weights.h5",
                   lambda data: reshape_weight(data, "hidden_0", 0, wrong))
    assert cli("rank", "--universe", "stored", "--top", "3").exit_code != 0

    code, report = doctor_json()
    assert code == 3 and report["healthy"] is False
    findings = found(report, home)
    model = findings[f"models/global/{NEWER}"]
    assert model["kind"] == "model" and "'hidden_0'" in model["problem"] and str(wrong) in model["problem"]
    assert "forecast train --universe stored --preset global" in model["advice"]
    assert findings["models/global/.latest/stored"]["kind"] == "pointer"

    assert cli("doctor", "--repair").exit_code == 0
    ranked = cli("rank", "--universe", "stored", "--top", "3", "--json")
    assert ranked.exit_code == 0 and json.loads(ranked.stdout)["model_id"] == OLDER, ranked.output
    assert workspace.global_latest_pointer("stored").read_text().strip() == OLDER
    assert cli("doctor").stdout.strip() == "healthy"


@pytest.mark.parametrize("text", ["../../x", ESCAPE, "stored-global-gone"])
def test_a_bad_global_pointer_is_named_and_repair_points_it_at_the_newest_valid_model(global_home, text):
    home, workspace = global_home, Workspace.at(global_home)
    pointer = workspace.global_latest_pointer("stored")
    pointer.write_text(text + "\n")
    if "/" in text:
        failed = cli("rank", "--universe", "stored", "--top", "3")
        assert failed.exit_code == 3 and "not a valid model id" in one_line_error(failed)

    code, report = doctor_json()
    assert code == 3
    (finding,) = report["findings"]
    assert finding["kind"] == "pointer" and os.path.relpath(finding["path"], home) == "models/global/.latest/stored"
    assert text[:20] in finding["problem"]

    result = cli("doctor", "--repair")
    assert result.exit_code == 0, result.output
    assert f"pointed again at the newest valid model, {NEWER}" in result.stdout
    assert pointer.read_text().strip() == NEWER
    (moved,) = (home / "quarantine").rglob("stored")
    assert moved.read_text().strip() == text  # the bad pointer is kept, not deleted
    ranked = cli("rank", "--universe", "stored", "--top", "3", "--json")
    assert ranked.exit_code == 0 and json.loads(ranked.stdout)["model_id"] == NEWER, ranked.output


def test_a_global_pointer_with_no_valid_model_left_is_moved_aside(global_home):
    workspace = Workspace.at(global_home)
    for model_id in (OLDER, NEWER):
        rewrite_member(workspace.global_model_dir(model_id) / MODEL_FILE, "model.weights.h5",
                       lambda data: reshape_weight(data, "head_0", 1, (HORIZON + 1,)))
    assert cli("doctor").exit_code == 3
    result = cli("doctor", "--repair")
    assert result.exit_code == 0, result.output
    assert not workspace.global_latest_pointer("stored").exists()
    failed = cli("rank", "--universe", "stored")
    assert failed.exit_code == 4 and "forecast train" in one_line_error(failed)  # what doctor said to do


# ---- pins --------------------------------------------------------------------------------------------------------

def test_a_pin_that_leads_out_of_the_home_is_named_and_moved_aside(global_home):
    home, workspace = global_home, Workspace.at(global_home)
    pin = workspace.pin_file("T0")
    pin.parent.mkdir(parents=True)
    pin.write_text(ESCAPE + "\n")

    code, report = doctor_json()
    assert code == 3
    (finding,) = report["findings"]
    assert finding["kind"] == "pin" and os.path.relpath(finding["path"], home) == "models/.pinned/T0"
    assert "no valid model id" in finding["problem"] and ESCAPE in finding["problem"]

    assert cli("doctor", "--repair").exit_code == 0
    assert not pin.exists() and len(list((home / "quarantine").rglob("T0"))) == 1
    predicted = cli("predict", "T0", "--json")
    assert predicted.exit_code == 0 and json.loads(predicted.stdout)["model_id"] == NEWER, predicted.output
    assert cli("doctor").stdout.strip() == "healthy"


def test_predict_says_a_pin_is_invalid_rather_than_ignoring_it(global_home):
    pin = Workspace.at(global_home).pin_file("T0")
    pin.parent.mkdir(parents=True)
    pin.write_text(ESCAPE + "\n")
    result = cli("predict", "T0")
    assert result.exit_code != 0 and "pin" in one_line_error(result) and "invalid" in one_line_error(result)


# ---- locks -------------------------------------------------------------------------------------------------------

def _register(home: Path) -> str:
    """One per-ticker model folder (card and a small zip), enough for ``models use``, which takes models/.lock."""
    from tests.workflow.doctor.test_doctor import register

    model_id = "600519.SH-default-gru-20260101T000000-aaaa"
    register(home, model_id, "600519.SH")
    return model_id


@pytest.mark.parametrize("lock", ["data/.lock", "models/.lock"])
@pytest.mark.parametrize("content", [False, True], ids=["empty", "not-empty"])
def test_a_lock_that_is_a_folder_is_named_and_repair_makes_the_command_work(home, lock, content):
    model_id = _register(home)
    command = ["fetch", "--source", "sample"] if lock == "data/.lock" else ["models", "use", model_id]
    path = home / lock
    path.mkdir(parents=True)
    if content:
        (path / "left-here").write_text("someone's file")

    failed = cli(*command)
    assert failed.exit_code == 3 and "forecast doctor --repair" in one_line_error(failed) and lock in one_line_error(failed)
    code, report = doctor_json()
    assert code == 3
    finding = found(report, home)[lock]
    assert finding["kind"] == "lock" and "folder" in finding["problem"]

    result = cli("doctor", "--repair")
    assert result.exit_code == 0, result.output
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("1 moved to quarantine/") if content else summary == "1 removed"
    if content:  # kept, in quarantine
        (kept,) = (home / "quarantine").rglob("left-here")
        assert kept.read_text() == "someone's file" and kept.parent.name == ".lock"
    assert not path.is_dir()
    worked = cli(*command)
    assert worked.exit_code == 0, worked.output
    assert path.is_file() and cli("doctor").stdout.strip() == "healthy"


@pytest.mark.parametrize("lock", [".run.lock", "data/backfill/.lock"])
def test_every_other_lock_path_is_checked_too(home, lock):
    (home / lock).mkdir(parents=True)
    code, report = doctor_json()
    assert code == 3 and [f["kind"] for f in report["findings"]] == ["lock"]
    assert cli("doctor", "--repair").exit_code == 0 and not (home / lock).exists()
    assert cli("doctor").stdout.strip() == "healthy"


def test_a_folder_of_the_layout_that_is_a_file_is_moved_aside(home):
    (home / "data").mkdir()
    (home / "data" / "bars").write_text("not a folder")
    assert cli("fetch", "--source", "sample").exit_code != 0
    code, report = doctor_json()
    assert code == 3 and found(report, home)["data/bars"]["kind"] == "folder"
    assert cli("doctor", "--repair").exit_code == 0
    assert cli("fetch", "--source", "sample").exit_code == 0
    assert cli("doctor").stdout.strip() == "healthy"


# ---- the home itself ---------------------------------------------------------------------------------------------

def test_a_home_that_is_a_file_is_named_first_and_never_healthy(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("a file")
    monkeypatch.setenv("FORECAST_HOME", str(home))
    result = cli("doctor")
    assert result.exit_code == 3
    assert result.stdout.splitlines()[0] == f"home: {home}: not a folder (a file); point FORECAST_HOME (or --home) at the workspace folder"
    repaired = cli("doctor", "--repair", "--json")
    assert repaired.exit_code == 3 and json.loads(repaired.stdout)["healthy"] is False
    assert home.read_text() == "a file"  # a person's to fix


def test_a_home_that_does_not_exist_exits_4_and_is_not_created(tmp_path, monkeypatch):
    home = tmp_path / "no-such-home"
    monkeypatch.setenv("FORECAST_HOME", str(home))
    result = cli("doctor")
    assert result.exit_code == 4 and result.stdout.startswith(f"home: {home}: it does not exist")
    assert f"mkdir -p {home}" in result.stdout
    assert cli("doctor", "--repair").exit_code == 4 and not home.exists()
    home.mkdir()  # what doctor said to do
    assert cli("doctor").stdout.strip() == "healthy"


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_a_home_that_is_not_writable_is_named_before_anything_else(home, monkeypatch):
    (home / "data" / "bars").mkdir(parents=True)
    (home / "data" / "bars" / ".x.parquet.999999999.tmp").write_text("debris")
    home.chmod(0o555)
    real = os.access
    try:
        with monkeypatch.context() as patch:  # undoes only this (the home fixture's FORECAST_HOME stays)
            if os.geteuid() == 0:  # root writes anyway: let doctor see the home as any other user would
                patch.setattr(os, "access", lambda path, mode: not mode & os.W_OK and real(path, mode)
                              if Path(path) == home else real(path, mode))
            result = cli("doctor", "--repair")
        lines = result.stdout.splitlines()
        assert result.exit_code == 3 and lines[0].startswith(f"home: {home}: not writable")
        assert any(line.startswith("debris: ") and "left in place" in line for line in lines[1:])
    finally:
        home.chmod(0o755)
    assert os.environ["FORECAST_HOME"] == str(home)
    assert cli("doctor", "--repair").exit_code == 0
    assert cli("doctor").stdout.strip() == "healthy"


# ---- linked folders: named, not problems -------------------------------------------------------------------------

def test_linked_folders_are_named_with_where_they_lead(home, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    for name in ("daily", "charts"):
        (outside / name).mkdir(parents=True)
        (home / name).symlink_to(outside / name)
    result = cli("doctor")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"linked: charts -> {outside / 'charts'}", f"linked: daily -> {outside / 'daily'}", "healthy"]
    code, report = doctor_json()
    assert code == 0 and report["healthy"] is True
    assert report["linked"] == [{"path": str(home / name), "target": str(outside / name)} for name in ("charts", "daily")]

    shutil.rmtree(outside / "daily")  # the disk behind daily/ is gone: a problem, for a person
    code, report = doctor_json("--repair")
    assert code == 3 and [f["kind"] for f in report["findings"]] == ["folder"]
    assert "left in place" in report["findings"][0]["problem"] and (home / "daily").is_symlink()


# ---- per-ticker Keras models: a trained one, so predict can run (slow) -----------------------------------------------

TICKER = "600519.SH"
TRAIN = ("--epochs", "1", "--units", "4", "--lookback", "10", "--horizon", "3", "--quiet")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A home with the sample series and one small trained model of it."""
    home = tmp_path_factory.mktemp("trained")
    assert runner.invoke(app, ["--home", str(home), "fetch", "--source", "sample"]).exit_code == 0
    result = runner.invoke(app, ["--home", str(home), "train", TICKER, *TRAIN])
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def model_home(trained, home) -> tuple[Path, str]:
    """A copy of the trained home, as ``home``; and its model's id."""
    shutil.copytree(trained, home, dirs_exist_ok=True)
    (model_id,) = Workspace.at(home).latest_pointer(TICKER).read_text().split()
    return home, model_id


def newer_copy(home: Path, model_id: str) -> str:
    """The model again under a newer id, its ticker's pointer moved to it (as a second train would leave it)."""
    workspace = Workspace.at(home)
    newer = model_id[:-4] + "zzzz"
    shutil.copytree(workspace.model_dir(model_id), workspace.model_dir(newer))
    card = json.loads(workspace.model_card_file(newer).read_text())
    card.update(id=newer, created_at="2099-01-01T00:00:00+00:00")
    workspace.model_card_file(newer).write_text(dumps(card))
    workspace.latest_pointer(TICKER).write_text(newer + "\n")
    return newer


def flip_a_weight_byte(path: Path) -> None:
    """One byte of model.weights.h5's stored data changed in place: the zip still opens, the member's CRC fails."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.weights.h5")
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    data[info.header_offset + 30 + name_length + extra_length + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def add_a_lambda(data: bytes) -> bytes:
    """The Dropout layer turned into a Lambda (identity), as a hostile or foreign file would carry Python code."""
    config = json.loads(data)
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dropout":
            layer["class_name"] = "Lambda"
            layer["config"] = {"name": layer["config"]["name"], "trainable": True, "arguments": {}, "output_shape": None,
                               "function": {"class_name": "__lambda__", "config": {
                                   "code": "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMEAAAAfABTACkBTqkAKQHaAXhyAQAAAHIBAAAA+gY8c3RkaW4+2gg8bGFtYmRhPgEAAADzAAAAAA==",
                                   "defaults": None, "closure": None}}}
    return json.dumps(config).encode()


@pytest.mark.slow
@pytest.mark.parametrize(("damage", "named", "said"), [
    ("crc", "fails its CRC check", "CRC"),
    ("lambda", "Lambda", "Lambda"),
])
def test_a_damaged_or_foreign_keras_model_is_named_and_predict_works_after_repair(model_home, damage, named, said):
    home, model_id = model_home
    workspace = Workspace.at(home)
    newer = newer_copy(home, model_id)
    archive = workspace.model_file(newer)
    if damage == "crc":
        flip_a_weight_byte(archive)
    else:
        rewrite_member(archive, "config.json", add_a_lambda)
    failed = cli("predict", TICKER)
    assert failed.exit_code == 3 and said in one_line_error(failed)

    code, report = doctor_json()
    assert code == 3
    finding = found(report, home)[f"models/{newer}"]
    assert finding["kind"] == "model" and named in finding["problem"] and f"forecast train {TICKER}" in finding["advice"]

    assert cli("doctor", "--repair").exit_code == 0
    predicted = cli("predict", TICKER, "--json")
    assert predicted.exit_code == 0 and json.loads(predicted.stdout)["model_id"] == model_id, predicted.output
    assert workspace.latest_pointer(TICKER).read_text().strip() == model_id  # pointed again at the model that works
    assert cli("doctor").stdout.strip() == "healthy"


@pytest.mark.slow
def test_a_bad_pin_of_a_ticker_with_its_own_model_is_moved_aside_and_predict_works(model_home):
    home, model_id = model_home
    pin = Workspace.at(home).pin_file(TICKER)
    pin.parent.mkdir(parents=True)
    pin.write_text(ESCAPE + "\n")
    refused = cli("predict", TICKER)
    assert refused.exit_code == 3 and "pin is invalid" in one_line_error(refused)  # a damaged file, not a missing model
    code, report = doctor_json()
    assert code == 3 and found(report, home)[f"models/.pinned/{TICKER}"]["kind"] == "pin"
    assert cli("doctor", "--repair").exit_code == 0
    predicted = cli("predict", TICKER, "--json")
    assert predicted.exit_code == 0 and json.loads(predicted.stdout)["model_choice"] == "latest", predicted.output


@pytest.mark.slow
def test_train_with_a_models_lock_folder_fails_in_one_line_exit_3_and_works_after_repair(model_home):
    home, _ = model_home
    (home / "models" / ".lock").unlink()
    (home / "models" / ".lock").mkdir()
    failed = cli("train", TICKER, *TRAIN)
    assert failed.exit_code == 3 and "forecast doctor --repair" in one_line_error(failed)
    assert cli("doctor").exit_code == 3
    assert cli("doctor", "--repair").exit_code == 0
    worked = cli("train", TICKER, *TRAIN)
    assert worked.exit_code == 0, worked.output


@pytest.mark.slow
def test_the_networks_the_product_builds_pass_every_check(model_home):
    """No false alarm: every layer build_network and build_global_network use is allowed, and a saved global network
    (not written by hand) passes the shape checks and ranks."""
    from forecast.models.network import build_network, save_model
    from forecast.models.pooled.net_config import GlobalNetConfig
    from forecast.models.pooled.network import build_global_network
    from forecast.models.train_config import preset_config
    from forecast.workflow.doctor import GLOBAL_LAYERS, TICKER_LAYERS

    home, _ = model_home
    assert cli("doctor").stdout.strip() == "healthy"  # the trained model
    for arch in ("gru", "lstm", "rnn"):
        for bidirectional in (False, True):
            cfg = dataclasses.replace(preset_config("default"), arch=arch, bidirectional=bidirectional, units=(4, 3), dropout=0.1)
            layers = build_network(cfg, 3).get_config()["layers"]
            classes = {layer["class_name"] for layer in layers} | {layer["config"]["layer"]["class_name"]
                                                                   for layer in layers if layer["class_name"] == "Bidirectional"}
            assert classes <= TICKER_LAYERS, (arch, bidirectional, classes - TICKER_LAYERS)

    store_panel(home, make_panel({t: 420 for t in TICKERS}, seed=21))
    for members, arch in ((1, "gru"), (2, "lstm")):
        model_id = f"stored-global-2026010{members}T000000-real"
        folder = Workspace.at(home).global_model_dir(model_id)
        folder.mkdir(parents=True)
        network = build_global_network(GlobalNetConfig(lookback=LOOKBACK, horizon=HORIZON, arch=arch, units=UNITS,
                                                       head_units=HEAD, members=members), len(SEQUENCE_FEATURES), len(STATIC_FEATURES))
        assert {layer["class_name"] for layer in network.get_config()["layers"]} <= GLOBAL_LAYERS
        save_model(network, folder / MODEL_FILE)
        card = global_card(model_id, f"2026-01-0{members}T00:00:00+00:00").to_dict()
        card["config"].update(arch=arch, members=members)
        (folder / CARD_FILE).write_text(dumps(card))
        result = cli("doctor")
        assert result.stdout.strip() == "healthy", result.output
        ranked = cli("rank", "--universe", "stored", "--json")
        assert ranked.exit_code == 0 and json.loads(ranked.stdout)["model_id"] == model_id, ranked.output


# ---- a universe model whose weights are not numbers ------------------------------------------------------------------

def nan_weights(data: bytes, layer: str) -> bytes:
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as h5:
        for group in h5["layers"].values():
            if group["vars"].attrs["name"] == layer:
                for name in list(group["vars"]):
                    group["vars"][name][...] = np.nan
    return buffer.getvalue()


def test_a_forecast_that_is_not_a_number_is_an_error_for_its_ticker_never_a_stored_result(global_home):
    workspace = Workspace.at(global_home)
    rewrite_member(workspace.global_model_dir(NEWER) / MODEL_FILE, "model.weights.h5", lambda data: nan_weights(data, "head_0"))
    before = {p: p.read_bytes() for p in (global_home / "forecasts").rglob("*.json")}
    ranked = cli("rank", "--universe", "stored", "--json")
    out = json.loads(ranked.stdout)
    assert out["ranking"] == [] and all("forecast no number" in s["error"] for s in out["skipped"]), ranked.output
    assert len(out["skipped"]) == len(TICKERS)
    predicted = cli("predict", "--universe", "stored", "--model", "global", "--json")
    assert predicted.exit_code != 0 and "forecast no number" in predicted.stderr
    assert {p: p.read_bytes() for p in (global_home / "forecasts").rglob("*.json")} == before  # nothing stored
