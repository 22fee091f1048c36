"""The numpy forward pass of a per-ticker network: it agrees with Keras on every preset, refuses what it does not
implement in one line, and ``forecast predict`` through it imports neither TensorFlow nor Keras."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import subprocess_env
from typer.testing import CliRunner

from forecast.cli import app
from forecast.errors import CorruptFileError, ExitCode
from forecast.models.numpy_net import NumpyNetwork, load_network
from forecast.models.train_config import TUTORIAL, TrainConfig
from tests.models.test_networks import sample_frame

runner = CliRunner()
pytestmark = pytest.mark.slow  # real Keras fits: seconds each
TOLERANCE = 1e-5
TINY = ["--epochs", "1", "--units", "4", "--lookback", "10", "--horizon", "3", "--quiet"]


def tiny(arch: str, units: tuple[int, ...] = (5,), **changes) -> TrainConfig:
    return TrainConfig(arch=arch, units=units, lookback=8, horizon=3, epochs=1, seed=5, features=("return", "log_volume"),
                       **changes)


PRESETS: dict[str, TrainConfig] = {
    "gru": tiny("gru"),
    "lstm": tiny("lstm"),
    "rnn": tiny("rnn"),
    "stacked": tiny("gru", (5, 3), dropout=0.1),
    "bidirectional": tiny("lstm", (4, 3), bidirectional=True, dropout=0.1),
    "bidirectional-gru": tiny("gru", (4,), bidirectional=True),
    "tutorial": dataclasses.replace(TUTORIAL, lookback=12, epochs=1),  # LSTM(80, 100), dropout, MinMax scaler on open
}


@pytest.fixture(scope="module", params=sorted(PRESETS))
def trained(request, tmp_path_factory):
    """(config, the Keras forecaster, the saved file, its card as JSON) of a tiny real fit of each preset."""
    from forecast.models import network
    from forecast.models.forecasters import NetworkForecaster

    cfg = PRESETS[request.param]
    keras_forecaster = NetworkForecaster(request.param, cfg, ticker="600519.SH").fit(sample_frame())
    path = tmp_path_factory.mktemp(request.param) / "model.keras"
    network.save_model(keras_forecaster.model, path)
    card = {"config": cfg.to_dict(), "features": list(cfg.features)}
    return cfg, keras_forecaster, path, card


def test_numpy_forecasts_equal_keras_for_every_preset(trained):
    """The whole prediction chain (windows, scaler, network, target) through numpy gives Keras's forecast."""
    from forecast.models.dataset import inference_windows
    from forecast.models.forecasters import NetworkForecaster
    from forecast.models.network import predict
    from forecast.models.predicting import NumpyNetworkForecaster

    cfg, keras_forecaster, path, card = trained
    frame = sample_frame()
    origins = np.arange(cfg.lookback + 1, len(frame))
    X = inference_windows(frame, cfg, keras_forecaster.scaling, origins)
    numpy_net = NumpyNetwork.from_keras_file(path, card)
    with np.errstate(over="raise"):
        got = numpy_net.predict(X)
    expected = predict(keras_forecaster.model, X)
    assert got.shape == expected.shape == (len(origins), cfg.horizon)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    served = NumpyNetworkForecaster("served", cfg, ticker="600519.SH")
    served.model, served.scaling = numpy_net, keras_forecaster.scaling
    np.testing.assert_allclose(served.predict_target(frame, origins[-50:]),
                               NetworkForecaster.predict_target(keras_forecaster, frame, origins[-50:]), rtol=TOLERANCE, atol=0)


def test_numpy_equals_keras_with_every_weight_random(trained, tmp_path):
    """Random weights and biases everywhere (a fresh fit leaves small biases): a misplaced gate or bias would show."""
    from forecast.models import network

    cfg, keras_forecaster, _, card = trained
    model = keras_forecaster.model
    rng = np.random.default_rng(3)
    saved = model.get_weights()
    try:
        # biases N(0, 0.5); a matrix N(0, 1 / sqrt(its rows)), so that 100 units saturate no more than 5 do
        model.set_weights([rng.normal(0, 0.5 if w.ndim == 1 else 1 / np.sqrt(w.shape[0]), w.shape).astype("float32")
                           for w in saved])
        path = tmp_path / "random.keras"
        network.save_model(model, path)
        X = rng.normal(0, 2, (37, cfg.lookback, len(cfg.features))).astype("float32")
        X[0, 0, 0], X[1, -1, -1] = 300.0, -300.0  # saturated gates must not overflow
        expected = network.predict(model, X)
    finally:
        model.set_weights(saved)
    with np.errstate(over="raise"):
        got = NumpyNetwork.from_keras_file(path, card).predict(X)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_windows_of_the_wrong_shape_are_refused(trained):
    cfg, _, path, card = trained
    with pytest.raises(ValueError, match="expected windows"):
        NumpyNetwork.from_keras_file(path, card).predict(np.zeros((2, cfg.lookback + 1, len(cfg.features))))


# ---- what it does not implement --------------------------------------------------------------------------------

def rewrite_config(source: Path, target: Path, change: Callable[[list[dict]], None]) -> Path:
    """Copy a .keras archive with its config.json's layers changed; the weights stay."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config["config"]["layers"])
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def setting(name: str, key: str, value, inner: str | None = None) -> Callable[[list[dict]], None]:
    def change(layers: list[dict]) -> None:
        layer = next(layer for layer in layers if layer["config"]["name"] == name)
        (layer["config"][inner]["config"] if inner else layer["config"])[key] = value
    return change


@pytest.fixture(scope="module")
def bidirectional_file(tmp_path_factory) -> tuple[Path, dict]:
    """A stacked bidirectional GRU, built and saved (its weights do not matter here)."""
    from forecast.models import network

    cfg = tiny("gru", (3, 2), bidirectional=True, dropout=0.1)
    path = tmp_path_factory.mktemp("refusals") / "model.keras"
    network.save_model(network.build_network(cfg, len(cfg.features)), path)
    return path, {"config": cfg.to_dict(), "features": list(cfg.features)}


@pytest.mark.parametrize(("change", "message"), [
    (setting("gru_1", "activation", "relu"), "layer 'gru_1' has activation='relu'"),
    (setting("gru_1", "reset_after", False), "layer 'gru_1' has reset_after=False"),
    (setting("gru_1", "return_sequences", True), "layer 'horizon_head' \\(Dense\\) would apply to every step"),
    (setting("bi_gru_0", "merge_mode", "sum"), "layer 'bi_gru_0' has merge_mode='sum'"),
    (setting("bi_gru_0", "recurrent_activation", "hard_sigmoid", inner="backward_layer"),
     "layer 'backward_gru_0' has recurrent_activation='hard_sigmoid'"),
    (setting("horizon_head", "activation", "relu"), "layer 'horizon_head' has activation='relu'"),
    (setting("gru_1", "go_backwards", True), "layer 'gru_1' has go_backwards=True"),
])
def test_a_setting_it_does_not_implement_is_refused_in_one_line(bidirectional_file, tmp_path, change, message):
    path, card = bidirectional_file
    NumpyNetwork.from_keras_file(rewrite_config(path, tmp_path / "same.keras", lambda layers: None), card)
    changed = rewrite_config(path, tmp_path / "changed.keras", change)
    with pytest.raises(ValueError, match=message):
        NumpyNetwork.from_keras_file(changed, card)
    with pytest.raises(CorruptFileError, match=message) as refused:
        load_network(changed, card)
    assert "\n" not in str(refused.value)


def test_a_layer_it_does_not_know_is_refused_before_it_is_read(bidirectional_file, tmp_path):
    """A class no forecast network has (here GaussianNoise for Dropout) is refused by the archive check, in one line."""
    path, card = bidirectional_file

    def noise(layers: list[dict]) -> None:
        layer = next(layer for layer in layers if layer["config"]["name"] == "dropout_0")
        layer["class_name"], layer["config"]["stddev"] = "GaussianNoise", layer["config"].pop("rate")

    with pytest.raises(CorruptFileError, match="'dropout_0' \\(GaussianNoise\\)") as refused:
        load_network(rewrite_config(path, tmp_path / "noise.keras", noise), card)
    assert "\n" not in str(refused.value)


# ---- predict through the CLI ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_home(tmp_path_factory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("home")
    env = {"FORECAST_HOME": str(home)}
    assert runner.invoke(app, ["fetch", "--source", "sample"], env=env).exit_code == 0
    result = runner.invoke(app, ["train", "600519.SH", "--arch", "lstm", *TINY, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return home, json.loads(result.stdout)[0]


def heavy_modules_after(home: Path, *args: str) -> tuple[str, list[str]]:
    """(what ``forecast *args`` printed, the TensorFlow and Keras modules it left in sys.modules), run in a fresh process."""
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['forecast', *{list(args)!r}]\n"
        "try:\n    runpy.run_module('forecast', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('MODULES', ','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=subprocess_env(FORECAST_HOME=home), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    printed, _, modules = out.stdout.rpartition("MODULES ")
    return printed, [m for m in modules.strip().split(",") if m]


def test_predict_of_a_network_imports_neither_tensorflow_nor_keras(trained_home):
    home, trained_card = trained_home
    printed, heavy = heavy_modules_after(home, "predict", "600519.SH", "--json")
    forecast = json.loads(printed)
    assert forecast["model_id"] == trained_card["id"] and len(forecast["points"]) == 3
    assert heavy == []


def test_a_run_that_does_not_retrain_imports_neither_tensorflow_nor_keras(trained_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained_home[0], home)
    (home / "forecast.toml").write_text('tickers = ["600519.SH"]\nsource = "sample"\nretrain_after_days = 30\n')
    printed, heavy = heavy_modules_after(home, "run", "--json")
    (outcome,) = json.loads(printed)["tickers"]
    assert outcome["ok"] and not outcome["retrained"], outcome
    assert heavy == []


def test_predict_through_numpy_gives_the_keras_forecast(trained_home):
    """The served forecast (numpy) is the one the Keras network makes from the same card, scaler and windows."""
    from forecast.data.store import MarketStore
    from forecast.models import network
    from forecast.models.forecasters import NetworkForecaster, forecast_bands
    from forecast.models.registry import ModelRegistry
    from forecast.workspace import Workspace

    home, trained_card = trained_home
    served = json.loads(runner.invoke(app, ["predict", "600519.SH", "--json"], env={"FORECAST_HOME": str(home)}).stdout)
    registry = ModelRegistry(Workspace.at(home))
    card = registry.card(trained_card["id"])
    keras_model = NetworkForecaster.from_card(card, network.load_model(registry.model_file(card.id)))
    bars = MarketStore(Workspace.at(home)).read_bars("600519.SH", card.config.adjust).frame
    bands = forecast_bands(keras_model, bars, np.array([len(bars) - 1]))
    np.testing.assert_allclose([p["value"] for p in served["points"]], bands.point[0], rtol=TOLERANCE)


def test_a_model_it_cannot_serve_is_refused_in_one_line_by_predict(trained_home, tmp_path):
    from forecast.workspace import Workspace

    home, trained_card = trained_home
    model = Workspace.at(home).model_file(trained_card["id"])
    original = model.read_bytes()
    try:
        rewrite_config(model, tmp_path / "changed.keras", setting("lstm_0", "activation", "relu"))
        model.write_bytes((tmp_path / "changed.keras").read_bytes())
        result = runner.invoke(app, ["predict", "600519.SH"], env={"FORECAST_HOME": str(home)})
    finally:
        model.write_bytes(original)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "layer 'lstm_0' has activation='relu'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_doctor_loads_a_network_as_predict_does_and_names_what_predict_would_refuse(trained_home, tmp_path):
    from forecast.workspace import Workspace

    home = tmp_path / "home"
    shutil.copytree(trained_home[0], home)
    healthy = runner.invoke(app, ["--home", str(home), "doctor"])
    assert healthy.exit_code == 0 and healthy.stdout.strip() == "healthy", healthy.output
    model = Workspace.at(home).model_file(trained_home[1]["id"])
    rewrite_config(model, tmp_path / "changed.keras", setting("lstm_0", "recurrent_activation", "hard_sigmoid"))
    model.write_bytes((tmp_path / "changed.keras").read_bytes())
    result = runner.invoke(app, ["--home", str(home), "doctor", "--json"])
    (finding,) = [f for f in json.loads(result.stdout)["findings"] if f["kind"] == "model"]
    assert "cannot be loaded as predict loads it" in finding["problem"]
    assert "layer 'lstm_0' has recurrent_activation='hard_sigmoid'" in finding["problem"]
