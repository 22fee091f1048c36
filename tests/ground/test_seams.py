"""The seams: one owner for the home's layout, typed artefacts, settings read once, isolated jobs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.errors import BadInputError, CorruptFileError, ExitCode, ForecastError, StoreBusyError
from forecast.workspace import Workspace

runner = CliRunner()


@pytest.mark.parametrize("name", ["../../etc/passwd", "..", ".hidden", "a/b", "a\\b", "", "x\x00y"])
def test_a_name_from_data_never_becomes_a_path_outside_its_folder(tmp_path, name):
    workspace = Workspace.at(tmp_path)
    with pytest.raises(BadInputError):
        workspace.model_dir(name)
    with pytest.raises(BadInputError):
        workspace.latest_pointer(name)


def test_every_path_of_the_layout_lies_under_the_home(tmp_path):
    workspace = Workspace.at(tmp_path)
    paths = [workspace.bars_file("600519.SH"), workspace.model_file("M1"), workspace.latest_pointer("BRK-B"),
             workspace.forecast_file("BRK-B"), workspace.backtest_csv("BRK-B"), workspace.chart_file("BRK-B", "forecast"),
             workspace.run_lock, workspace.store_lock, workspace.registry_lock, workspace.config_file,
             workspace.quarantine_dir, workspace.universe_dir, workspace.outdir(None)]
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in paths)
    assert len(set(paths)) == len(paths)


def test_the_lock_timeout_is_read_once_for_the_store_and_the_registry(tmp_path, monkeypatch):
    from forecast.data.store import MarketStore
    from forecast.models.registry import ModelRegistry

    monkeypatch.setenv("FORECAST_LOCK_TIMEOUT", "0.2")
    assert MarketStore(tmp_path).lock_timeout_s == ModelRegistry(tmp_path).lock_timeout_s == 0.2
    monkeypatch.setenv("FORECAST_LOCK_TIMEOUT", "abc")
    with pytest.raises(BadInputError, match="FORECAST_LOCK_TIMEOUT"):
        ModelRegistry(tmp_path)


def test_a_held_registry_lock_makes_a_writer_wait_its_bound_then_exit_busy(tmp_path, monkeypatch):
    from forecast.locks import hold_lock
    from forecast.models.registry import ModelRegistry

    monkeypatch.setenv("FORECAST_LOCK_TIMEOUT", "0.1")
    registry = ModelRegistry(tmp_path)
    with hold_lock(registry.workspace.registry_lock, 1, "held"), pytest.raises(StoreBusyError), registry._locked():
        pass


def test_the_token_is_looked_up_the_same_way_for_every_command(tmp_path):
    from forecast.workflow.settings import load_app_config

    (tmp_path / "forecast.toml").write_text('[tushare]\ntoken = "from-the-file-123"\n')
    assert load_app_config(tmp_path, env={}).tushare_token == "from-the-file-123"
    assert load_app_config(tmp_path, env={"TS_TOKEN": "ts-token-456"}).tushare_token == "ts-token-456"
    both = {"TS_TOKEN": "ts-token-456", "TUSHARE_TOKEN": "ours-789"}
    assert load_app_config(tmp_path, env=both).tushare_token == "ours-789"


def test_config_problems_are_reported_together_one_line_each(tmp_path):
    from forecast.workflow.settings import load_app_config

    (tmp_path / "forecast.toml").write_text('tickers = "600519.SH"\nsource = "ftp"\nlevels = [1.5]\nadjust = "weird"\n'
                                            '[train]\nepochs = 2.5\n')
    with pytest.raises(ForecastError) as caught:
        load_app_config(tmp_path, env={})
    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE
    for key in ("tickers", "source", "levels", "adjust", "[train]"):
        assert sum(line.strip().startswith(key) for line in message.splitlines()) == 1, (key, message)


def test_levels_and_adjust_from_forecast_toml_are_honoured(home):
    from forecast.workflow.settings import load_app_config

    (home / "forecast.toml").write_text('levels = [0.9]\nadjust = "hfq"\n')
    assert load_app_config(home, env={}).train_config().adjust == "hfq"
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    result = runner.invoke(app, ["predict", "600519.SH", "--model", "naive", "--json"])
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout)["points"]
    assert all(set(p["intervals"]) == {"0.9"} for p in points)
    text = runner.invoke(app, ["predict", "600519.SH", "--model", "naive"]).stdout
    assert "90% low" in text and "80%" not in text  # predict prints a table: date, close, 90% low, 90% high


def test_interval_levels_are_formatted_by_one_function():
    from forecast.maths.intervals import level_key, level_label, level_percent

    assert level_label(0.57) == "57%" and level_label("0.8") == "80%" and level_percent(0.975) == "97.5"
    assert level_key(0.8) == "0.8" and level_key("0.95") == "0.95"


def test_a_model_card_refuses_fields_that_would_become_paths_or_crash_later(tmp_path):
    from forecast.models.card import ModelCard
    from forecast.models.train_config import DEFAULT

    good = {"id": "X-default-gru-1", "ticker": "600519.SH", "created_at": "2026-01-01T00:00:00+00:00",
            "config": DEFAULT.to_dict(), "features": ["return"],
            "scaling": {"features": {"kind": "standard", "shift": [0.0], "scale": [1.0]},
                        "target": {"kind": "standard", "shift": [0.0], "scale": [1.0]}},
            "data": {"range": ["2020-01-01", "2020-12-31"]}, "validation": {},
            "intervals": {"scale_window": 60, "quantiles": {"0.8": [1.0] * DEFAULT.horizon}}}
    card = ModelCard.from_dict(good)
    assert card.family == "default" and ModelCard.from_dict(card.to_dict()) == card
    for broken in ({**good, "ticker": "../../../../etc/passwd"}, {**good, "id": "../x"}, {**good, "config": "gru"},
                   {k: v for k, v in good.items() if k != "intervals"}, {**good, "data": {"range": "2020"}}):
        with pytest.raises(CorruptFileError):
            ModelCard.from_dict(broken)


def test_a_model_family_comes_from_its_card_not_its_id():
    from forecast.models.card import ModelCard
    from forecast.models.train_config import DEFAULT, TUTORIAL

    def card(cfg, model_id):
        return ModelCard(model_id, "BRK-B", "", cfg, cfg.features, {}, {"range": ["a", "b"]}, {}, {})

    assert card(DEFAULT, "BRK-B-default-gru-20260101T000000-abcd").family == "default"
    assert card(TUTORIAL, "BRK-B-tutorial-lstm-x").family == "tutorial"
    assert card(TUTORIAL.__class__(**{**TUTORIAL.__dict__, "arch": "gru"}), "BRK-B-x").family == "tutorial-gru"


def test_the_executor_isolates_every_item_from_every_exception():
    from forecast.redact import register_secret
    from forecast.workflow.executors import SerialExecutor, first_failure_code

    register_secret("s3cr3t-token-value")

    def job(item):
        if item == "bug":
            raise TypeError("unsupported operand s3cr3t-token-value")
        if item == "known":
            raise StoreBusyError("busy")
        return item.upper()

    seen = []
    outcomes = SerialExecutor().map(job, ["a", "bug", "known", "b"], on_done=lambda o: seen.append(o.item))
    assert seen == ["a", "bug", "known", "b"]
    assert [o.value for o in outcomes if o.ok] == ["A", "B"]
    bug, known = outcomes[1], outcomes[2]
    assert bug.exit_code == ExitCode.INTERNAL and "TypeError" in bug.error and "s3cr3t" not in bug.error
    assert known.exit_code == ExitCode.BUSY and first_failure_code(outcomes) == ExitCode.INTERNAL


def test_the_catalogue_names_every_model_once_and_refuses_unknown_ones():
    from forecast.choices import ModelKind
    from forecast.models.forecasters import make_forecaster, model_kind

    assert [model_kind(n) for n in ("naive", "ma", "ma20", "linear", "default", "tutorial-gru")] == \
        [ModelKind.BASELINE] * 4 + [ModelKind.NETWORK] * 2
    assert model_kind("default-xyz") is None and model_kind("prophet") is None
    for bad in ("ma0", "ma99999", "nope"):
        with pytest.raises(BadInputError):
            make_forecaster(bad, 5)


def test_predict_and_backtest_share_one_chain(home):
    """A baseline's forecast at the last bar equals its backtest path at that origin; its band is that path's band as
    the online recalibration scaled it (by the multiplier the forecast records)."""
    from forecast.data.fetching import import_sample
    from forecast.data.store import MarketStore
    from forecast.evaluation.backtest import walk_forward
    from forecast.models.predicting import predict_ticker
    from forecast.models.registry import ModelRegistry

    store = MarketStore(home)
    import_sample(store)
    frame = store.read_bars("600519.SH").frame
    forecast = predict_ticker(store, ModelRegistry(home), "600519.SH", "drift", horizon=3)
    origins = np.array([len(frame) - 1])
    bt = walk_forward(frame, "600519.SH", models=("drift",), horizon=3, origins=origins, first_fit_rows=len(frame))
    path = bt.paths["drift"]
    np.testing.assert_allclose([p.value for p in forecast.points], path.predicted[0])
    from forecast.maths.band_scores import scale_band

    multiplier = forecast.adaptive["levels"]["0.8"]["multiplier"]  # rounded to 6 decimals in the record
    lower, upper = scale_band(path.lower["0.8"][0], path.upper["0.8"][0], path.predicted[0], multiplier)
    np.testing.assert_allclose([p.intervals["0.8"][0] for p in forecast.points], lower, rtol=1e-5)
    np.testing.assert_allclose([p.intervals["0.8"][1] for p in forecast.points], upper, rtol=1e-5)


def test_a_failing_ticker_in_run_daily_never_stops_the_others_and_summary_is_written(home, monkeypatch):
    """run_daily with a fake per-ticker job: one ticker has a bug, the other works; its earlier file leaves latest/."""
    from forecast.atomic import atomic_write_text
    from forecast.workflow import pipeline
    from forecast.workflow.settings import AppConfig

    broken: set[str] = set()

    def fake_day(plan, outcome, models, fetch_error=None):
        if outcome.ticker in broken:
            outcome.retrained = True  # done before the failure: the summary must keep it
            raise TypeError("a bug in one ticker")
        path = plan.day_dir / f"{outcome.ticker}.csv"
        atomic_write_text(path, "date,predicted\n")
        outcome.ok, outcome.outputs["csv"] = True, str(path)
        return outcome

    monkeypatch.setattr(pipeline, "daily_ticker", fake_day)
    monkeypatch.setattr(pipeline, "_fetch", lambda store, config, tickers: ({}, {}))
    config = AppConfig(tickers=("600519.SH", "600036.SH"), source="sample")
    pipeline.run_daily(home, config)  # yesterday: both worked, and run published both (its manifest names them)
    stale = home / "daily" / "latest" / "600036.SH.csv"
    assert stale.is_file()
    broken.add("600036.SH")
    summary = pipeline.run_daily(home, config)
    by_ticker = {o.ticker: o for o in summary.tickers}
    assert by_ticker["600519.SH"].ok and not by_ticker["600036.SH"].ok
    assert by_ticker["600036.SH"].exit_code == ExitCode.INTERNAL and "TypeError" in by_ticker["600036.SH"].error
    assert by_ticker["600036.SH"].retrained
    assert summary.exit_code == ExitCode.PARTIAL
    latest = home / "daily" / "latest"
    assert json.loads((latest / "summary.json").read_text())["exit_code"] == ExitCode.PARTIAL
    assert (latest / "600036.SH.failed.json").is_file() and not stale.exists()
    assert (latest / "600519.SH.csv").is_file()


def test_models_rm_latest_is_refused_and_keeps_every_pointer(home):
    pointer = home / "models" / "latest" / "600519.SH"
    pointer.parent.mkdir(parents=True)
    pointer.write_text("600519.SH-default-gru-x\n")
    result = runner.invoke(app, ["models", "rm", "latest"])
    assert result.exit_code in (ExitCode.BAD_INPUT, ExitCode.NOT_FOUND) and pointer.is_file()


def test_a_home_whose_folders_are_links_still_works(home, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("disk") / "models"
    elsewhere.mkdir()
    (home / "models").symlink_to(elsewhere)
    assert Workspace.at(home).model_dir("M1") == home / "models" / "M1"
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output


def test_one_ticker_that_fails_under_json_prints_the_usual_error_object(home):
    result = runner.invoke(app, ["predict", "600519.SH", "--json"])
    assert result.exit_code == ExitCode.NOT_FOUND
    payload = json.loads(result.stdout)
    assert set(payload) == {"error", "exit_code"} and payload["exit_code"] == ExitCode.NOT_FOUND


def test_several_tickers_go_on_past_a_failure_and_say_which_failed(home):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    out = home / "next.csv"
    result = runner.invoke(app, ["predict", "NOPE", "600519.SH", "--model", "naive", "--out", str(out), "--json"])
    assert result.exit_code == ExitCode.PARTIAL, result.output  # as run: some worked
    payload = json.loads(result.stdout)
    assert [r["ticker"] for r in payload["results"]] == ["600519.SH"]
    assert [f["ticker"] for f in payload["failures"]] == ["NOPE"]
    assert "600519.SH" in out.read_text() and "NOPE" not in out.read_text()


def test_a_failure_shared_by_every_ticker_still_writes_the_summary(home):
    from forecast.workflow.pipeline import run_daily
    from forecast.workflow.settings import AppConfig

    config = AppConfig(tickers=("600519.SH",), source="sample", train={"epochs": 0})  # refused when the plan is made
    summary = run_daily(home, config)
    assert summary.exit_code == ExitCode.ALL_FAILED and "epochs" in summary.tickers[0].error
    assert json.loads((home / "daily" / "latest" / "summary.json").read_text())["exit_code"] == ExitCode.ALL_FAILED


def test_many_tickers_exit_as_run_does_and_fail_fast_stops_at_the_first(home):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    both_bad = runner.invoke(app, ["predict", "NOPE", "ALSO", "--model", "naive"])
    assert both_bad.exit_code == ExitCode.ALL_FAILED and len(both_bad.stderr.strip().splitlines()) == 2
    fast = runner.invoke(app, ["predict", "NOPE", "600519.SH", "--model", "naive", "--fail-fast"])
    assert fast.exit_code == ExitCode.NOT_FOUND and "600519.SH" not in fast.stdout
