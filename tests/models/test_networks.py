"""Real (tiny) Keras networks: fit, save, reload elsewhere, determinism, and the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_FILE, subprocess_env, tree_snapshot
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.sources.csv_file import read_bars_csv
from forecast.errors import ExitCode
from forecast.models.train_config import TrainConfig

runner = CliRunner()
pytestmark = pytest.mark.slow  # real Keras fits and subprocesses: seconds each; all of them run in CI
TINY = ["--epochs", "2", "--units", "4", "--lookback", "10", "--horizon", "3", "--quiet"]


def tiny_config(arch: str, seed: int = 7) -> TrainConfig:
    return TrainConfig(arch=arch, units=(6,), lookback=12, horizon=2, epochs=2, seed=seed, features=("return", "log_volume"))


def sample_frame() -> pd.DataFrame:
    return read_bars_csv(SAMPLE_FILE).frame.tail(400).reset_index(drop=True)


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_fit_save_and_load_in_a_new_process_give_identical_predictions(tmp_path, arch):
    from forecast.models import network
    from forecast.models.dataset import training_arrays
    from forecast.models.training import fit_model

    frame, cfg = sample_frame(), tiny_config(arch)
    fitted = fit_model(frame, cfg, "600519.SH")
    X = training_arrays(frame, cfg, "600519.SH").X_val
    here = network.predict(fitted.model, X)
    network.save_model(fitted.model, tmp_path / "m.keras")
    np.save(tmp_path / "X.npy", X)
    script = (
        "import sys, numpy as np\n"
        "from forecast.models import network\n"
        "m = network.load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], network.predict(m, np.load(sys.argv[2])))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.keras"), str(tmp_path / "X.npy"), str(tmp_path / "P.npy")],
                   check=True, env=subprocess_env(), timeout=180)
    np.testing.assert_array_equal(np.load(tmp_path / "P.npy"), here)
    assert fitted.card.config.arch == arch
    assert set(fitted.card.quantiles) == {"0.8", "0.95"}


def test_the_same_seed_gives_the_same_model_and_another_seed_does_not():
    from forecast.models import network
    from forecast.models.dataset import training_arrays
    from forecast.models.training import fit_model

    frame = sample_frame()
    X = training_arrays(frame, tiny_config("gru"), "600519.SH").X_val
    first = network.predict(fit_model(frame, tiny_config("gru", seed=3), "600519.SH").model, X)
    second = network.predict(fit_model(frame, tiny_config("gru", seed=3), "600519.SH").model, X)
    other = network.predict(fit_model(frame, tiny_config("gru", seed=4), "600519.SH").model, X)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_tutorial_preset_is_the_course_network():
    from forecast.models import network
    from forecast.models.train_config import TUTORIAL

    model = network.build_network(TUTORIAL, 1)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["LSTM", "Dropout", "LSTM", "Dropout", "Dense"]
    assert [model.layers[1].units, model.layers[3].units, model.layers[5].units] == [80, 100, 1]
    assert model.input_shape == (None, 60, 1)


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """A home with the sample and one tiny model, trained once per module. Read it; never change it."""
    home = tmp_path_factory.mktemp("home")
    env = {"FORECAST_HOME": str(home)}
    assert runner.invoke(app, ["fetch", "--source", "sample"], env=env).exit_code == 0
    result = runner.invoke(app, ["train", "600519", *TINY, "--json"], env=env)
    assert result.exit_code == 0, result.output
    before = tree_snapshot(home)
    yield home, json.loads(result.stdout)[0]
    assert tree_snapshot(home) == before, "a test changed the shared home; give it own_home"


@pytest.fixture
def own_home(trained_home, tmp_path):
    """A copy of ``trained_home`` for one test, which may change it (predict, for one, stores its forecast)."""
    home, trained = trained_home
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    return copy, trained


def test_train_then_predict_through_the_cli(own_home, tmp_path):
    home, trained = own_home
    env = {"FORECAST_HOME": str(home)}
    assert trained["data_range"] == ["2010-12-27", "2020-12-25"]
    out = tmp_path / "f.csv"
    result = runner.invoke(app, ["predict", "600519.SH", "--json", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    forecast = json.loads(result.stdout)
    assert forecast["ticker"] == "600519.SH" and forecast["model_id"] == trained["id"]
    assert forecast["last_date"] == "2020-12-25" and forecast["last_close"] == 1830.0
    # 2021-01-01 is a holiday and 26/27 December a weekend
    assert [p["date"] for p in forecast["points"]] == ["2020-12-28", "2020-12-29", "2020-12-30"]
    for p in forecast["points"]:
        lo80, hi80 = p["intervals"]["0.8"]
        lo95, hi95 = p["intervals"]["0.95"]
        assert lo95 <= lo80 <= p["value"] <= hi80 <= hi95
    written = pd.read_csv(out)
    assert list(written["predicted"]) == pytest.approx([p["value"] for p in forecast["points"]])
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"], env=env).stdout)
    assert [m["id"] for m in listed] == [trained["id"]] and listed[0]["latest"]
    shown = json.loads(runner.invoke(app, ["models", "show", trained["id"], "--json"], env=env).stdout)
    assert {"config", "features", "scaling", "data", "validation", "history", "versions"} <= set(shown)
    assert len(shown["data"]["sha256"]) == 64 and shown["versions"]["keras"].startswith("3")


def test_predict_is_repeatable(own_home):
    env = {"FORECAST_HOME": str(own_home[0])}
    first = json.loads(runner.invoke(app, ["predict", "600519.SH", "--json"], env=env).stdout)["points"]
    second = json.loads(runner.invoke(app, ["predict", "600519.SH", "--json"], env=env).stdout)["points"]
    assert first == second


def test_models_are_stored_as_keras_and_json_only(trained_home):
    home, trained = trained_home
    files = sorted(p.name for p in (home / "models" / trained["id"]).iterdir())
    assert files == ["metadata.json", "model.keras"]
    assert (home / "models" / "latest" / "600519.SH").read_text().strip() == trained["id"]


@pytest.mark.parametrize(
    "args, code",
    [
        (["predict", "600036.SH"], ExitCode.NOT_FOUND),  # no data, no model
        (["predict", "600519.SH", "--model", "nope"], ExitCode.NOT_FOUND),
        (["predict", "600519.SH", "--horizon", "9"], ExitCode.BAD_INPUT),
        (["train", "600036.SH", *TINY], ExitCode.NOT_FOUND),
    ],
)
def test_model_errors_give_their_exit_codes(own_home, args, code):
    result = runner.invoke(app, args, env={"FORECAST_HOME": str(own_home[0])})
    assert result.exit_code == code, result.output
    assert result.stderr.strip().startswith("Error: ")


def test_too_little_history_and_mismatched_models_are_refused(own_home, tmp_path):
    home, trained = own_home
    env = {"FORECAST_HOME": str(home)}
    short = read_bars_csv(SAMPLE_FILE).frame.tail(30)
    path = tmp_path / "short.csv"
    pd.DataFrame({"date": short["date"].dt.strftime("%Y-%m-%d"), "close": short["close"], "volume": short["volume"]}).to_csv(path, index=False)
    assert runner.invoke(app, ["fetch", "SHORT", "--source", "csv", "--file", str(path)], env=env).exit_code == 0
    result = runner.invoke(app, ["train", "SHORT", *TINY], env=env)
    assert result.exit_code == ExitCode.BAD_INPUT and "SHORT has 30" in result.stderr
    mismatch = runner.invoke(app, ["predict", "SHORT", "--model", trained["id"]], env=env)
    assert mismatch.exit_code == ExitCode.BAD_INPUT and "trained on 600519.SH" in mismatch.stderr


def test_models_rm_removes_the_model_and_its_latest_pointer(own_home):
    home, trained = own_home
    env = {"FORECAST_HOME": str(home)}
    extra = runner.invoke(app, ["train", "600519.SH", *TINY, "--json"], env=env)
    model_id = json.loads(extra.stdout)[0]["id"]
    assert (home / "models" / "latest" / "600519.SH").read_text().strip() == model_id
    assert runner.invoke(app, ["models", "rm", model_id], env=env).exit_code == 0
    assert not (home / "models" / model_id).exists()
    assert runner.invoke(app, ["models", "show", model_id], env=env).exit_code == ExitCode.NOT_FOUND
    # the ticker's previous model is its latest again
    assert json.loads(runner.invoke(app, ["predict", "600519.SH", "--json"], env=env).stdout)["model_id"] == trained["id"]


def test_a_model_whose_features_the_data_lacks_is_refused(tmp_path):
    env = {"FORECAST_HOME": str(tmp_path)}
    assert runner.invoke(app, ["fetch", "--source", "sample"], env=env).exit_code == 0
    trained = runner.invoke(app, ["train", "600519.SH", *TINY, "--features", "return,log_volume"], env=env)
    assert trained.exit_code == 0, trained.output
    bars = read_bars_csv(SAMPLE_FILE).frame
    close_only = tmp_path / "close.csv"
    pd.DataFrame({"date": bars["date"].dt.strftime("%Y-%m-%d"), "close": bars["close"]}).to_csv(close_only, index=False)
    assert runner.invoke(app, ["fetch", "600519.SH", "--source", "csv", "--file", str(close_only)], env=env).exit_code == 0
    result = runner.invoke(app, ["predict", "600519.SH"], env=env)
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "needs volume" in result.stderr


def test_a_ticker_with_a_dash_imports_trains_predicts_and_plots_under_its_own_family(home, tmp_path):
    """BRK-B: the model family comes from the card, not from splitting the id on dashes."""
    from forecast.models.card import ModelCard

    csv = tmp_path / "brk-b.csv"
    csv.write_text(SAMPLE_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert runner.invoke(app, ["fetch", "BRK-B", "--source", "csv", "--file", str(csv)]).exit_code == 0
    trained = runner.invoke(app, ["train", "BRK-B", *TINY, "--json"])
    assert trained.exit_code == 0, trained.output
    model_id = json.loads(trained.stdout)[0]["id"]
    card = ModelCard.from_dict(json.loads((home / "models" / model_id / "metadata.json").read_text()))
    assert card.ticker == "BRK-B" and card.family == "default"
    predicted = runner.invoke(app, ["predict", "BRK-B", "--json"])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["model_summary"]["family"] == "default"
    chart = runner.invoke(app, ["plot", "BRK-B", "--json"])
    assert chart.exit_code == 0, chart.output
    assert json.loads(chart.stdout)["path"].endswith("BRK-B-forecast.png")
    from forecast.models.results import load_forecast

    assert load_forecast(home, "BRK-B").family == "default"
