"""The global model through the CLI: train --preset global, predict's fallback, rank, and the cross-sectional backtest."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.store import MarketStore
from forecast.data.validation import ValidationReport
from forecast.errors import ExitCode
from tests.models.pooled.test_data import make_panel

runner = CliRunner()
TICKERS = [f"T{i}" for i in range(6)]
TINY = ("--epochs", "1", "--lookback", "10", "--horizon", "3", "--quiet")


def cli(*args: str):
    return runner.invoke(app, list(args))


def store_panel(home, panel: pd.DataFrame, calendar: str = "business") -> None:
    store = MarketStore(home)
    with store.writing():
        for ticker, rows in panel.groupby(level="ticker"):
            frame = rows.droplevel("ticker").reset_index()
            frame["amount"] = frame["close"] * frame["volume"]
            frame["adj_factor"] = 1.0
            store.write(ticker, frame, "csv", "qfq", ValidationReport(len(frame), []), calendar=calendar)


@pytest.fixture
def market_home(home):
    store_panel(home, make_panel({t: 420 for t in TICKERS}, seed=21))
    return home


@pytest.mark.slow
def test_train_global_then_rank_predict_and_fall_back_for_a_ticker_with_no_model(market_home):
    trained = cli("--home", str(market_home), "train", "--universe", "stored", "--preset", "global", *TINY, "--json")
    assert trained.exit_code == 0, trained.output
    card = json.loads(trained.stdout)
    assert card["universe"] == "stored" and card["tickers"] == len(TICKERS)

    ranked = cli("rank", "--universe", "stored", "--top", "3", "--json")
    assert ranked.exit_code == 0, ranked.output
    payload = json.loads(ranked.stdout)
    assert payload["model_id"] == card["id"] and payload["horizon"] == 3
    rows = payload["ranking"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert [r["expected_return"] for r in rows] == sorted((r["expected_return"] for r in rows), reverse=True)
    for row in rows:
        low, high = row["interval"]
        assert row["interval_level"] == 0.8
        assert low < high and row["ticker"] in TICKERS

    # a newcomer the global model never saw, with no model of its own: predict says it used the global one;
    # its series trades on XSHG and ends on 2020-12-30, so its forecast skips New Year's Day
    start = pd.bdate_range(end="2020-12-30", periods=300)[0]
    store_panel(market_home, make_panel({"NEWCO": 300}, seed=77, start=str(start.date())), calendar="XSHG")
    predicted = cli("predict", "NEWCO", "--json")
    assert predicted.exit_code == 0, predicted.output
    forecast = json.loads(predicted.stdout)
    assert forecast["model_id"] == card["id"] and forecast["model_choice"].startswith("global")
    assert forecast["model_summary"]["trained_on_ticker"] is False and len(forecast["points"]) == 3
    assert [p["date"] for p in forecast["points"]] == ["2020-12-31", "2021-01-04", "2021-01-05"]
    # stored for plot in the model's batch file, not one file per ticker; plot draws it
    assert not (market_home / "forecasts" / "NEWCO").exists()
    assert (market_home / "forecasts" / "@stored" / "latest.json").is_file()
    drawn = cli("plot", "NEWCO", "--kind", "forecast", "--json")
    assert drawn.exit_code == 0, drawn.output

    listed = json.loads(cli("models", "list", "--json").stdout)
    assert [m["id"] for m in listed if m.get("kind") == "global"] == [card["id"]]
    assert "universe (global) models" in cli("models", "list").stdout
    shown = json.loads(cli("models", "show", card["id"], "--json").stdout)
    assert shown["universe"] == "stored" and sorted(shown["tickers"]) == TICKERS

    out = market_home / "rank.csv"
    assert cli("rank", "T0", "T1", "--model", card["id"], "--out", str(out)).exit_code == 0
    assert list(pd.read_csv(out)["ticker"]) != [] and set(pd.read_csv(out)["ticker"]) == {"T0", "T1"}
    store_panel(market_home, make_panel({"TINY": 5}, seed=78, start=str(start.date())), calendar="XSHG")
    for json_flag in ([], ["--json"]):  # every ticker skipped: the documented exit 9, in text and in JSON alike
        nothing = cli("rank", "TINY", "--model", card["id"], *json_flag)
        assert nothing.exit_code == ExitCode.ALL_FAILED and "TINY" in nothing.output, nothing.output
    assert cli("models", "rm", card["id"]).exit_code == 0
    assert cli("rank", "--universe", "stored").exit_code == ExitCode.NOT_FOUND  # gone, and nothing stands in


def test_preset_global_needs_a_universe_and_rank_needs_a_model(market_home):
    result = cli("train", "T0", "--preset", "global")
    assert result.exit_code == ExitCode.USAGE and "--universe" in result.output
    result = cli("rank", "--universe", "stored")
    assert result.exit_code == ExitCode.NOT_FOUND and "--preset global" in result.output


def test_cross_sectional_backtest_from_the_cli_saves_json_and_csv(market_home):
    result = cli("backtest", "--universe", "stored", "--models", "linear,momentum_20,reversal,naive", "--test-days", "30",
                 "--refit-every", "15", "--horizon", "3", "--quiet", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["models"]) == {"linear", "momentum_20", "reversal", "naive"}
    assert payload["newey_west_lags"] == 2 and payload["models"]["naive"]["days"] == 0
    assert len([r for r in payload["refits"] if r["model"] == "linear"]) == 2
    saved = json.loads((market_home / "backtests" / "@stored" / "latest.json").read_text())
    assert saved["models"] == payload["models"]
    daily = pd.read_csv(market_home / "backtests" / "@stored" / "latest.csv")
    assert len(daily) == 30 and "linear_cumulative_rank_ic" in daily
    chart = market_home / "backtests" / "@stored" / "latest.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert payload["price_skill"]["linear"]["tickers"] == len(TICKERS) and "naive" not in payload["price_skill"]


def test_split_is_only_for_a_cross_sectional_backtest(market_home):
    result = cli("backtest", "T0", "--models", "naive", "--split", "2020-01-01,2020-02-01,2020-03-01,2020-04-01,2020-05-01")
    assert result.exit_code == ExitCode.USAGE and "cross-sectional" in result.output
    result = cli("backtest", "--universe", "stored", "--models", "momentum", "--split", "2020-01-01,2020-02-01")
    assert result.exit_code == ExitCode.USAGE and "five dates" in result.output


def test_a_universe_backtest_refuses_out_and_a_split_with_a_refit_schedule_naming_what_to_do(market_home):
    result = cli("backtest", "--universe", "stored", "--models", "momentum", "--out", str(market_home / "x.json"))
    assert result.exit_code == ExitCode.USAGE and "backtests/@stored/" in result.output and "--json" in result.output
    split = "2020-06-01,2020-06-02,2020-09-01,2020-09-10,2021-01-01"
    result = cli("backtest", "--universe", "stored", "--models", "momentum", "--split", split, "--refit-every", "20")
    assert result.exit_code == ExitCode.USAGE and "--split trains once" in result.output
    assert not (market_home / "backtests" / "@stored").exists()


def test_a_global_network_cut_inside_its_archive_is_found_by_doctor_and_refused_in_one_line(market_home):
    import zipfile

    store_panel(market_home, make_panel({"YOUNG": 30}, seed=4))  # a member too short for one training window
    trained = cli("--home", str(market_home), "train", "--universe", "stored", "--preset", "global", *TINY, "--json")
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["left_out"] == ["YOUNG"]  # named, not silently dropped
    model = market_home / "models" / "global" / json.loads(trained.stdout)["id"] / "model.keras"
    assert cli("doctor").stdout.strip() == "healthy"
    # too little history for the network's window, ending with the universe (a series that stopped long before its
    # universe is refused as stale, in every command: issue 29)
    store_panel(market_home, make_panel({"SHORT": 40}, seed=3, start=str(pd.bdate_range("2020-01-01", periods=420)[-40].date())))
    short = cli("predict", "SHORT")
    assert short.exit_code == ExitCode.BAD_INPUT, short.output  # as for a per-ticker model: bad input, not "not found"
    assert "too little history" in short.output and "SHORT: SHORT" not in short.output
    with zipfile.ZipFile(model) as archive:  # a whole zip whose weights were cut in half: zipfile.is_zipfile still says yes
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts["model.weights.h5"] = parts["model.weights.h5"][: len(parts["model.weights.h5"]) // 2]
    with zipfile.ZipFile(model, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    found = cli("doctor", "--json")
    assert found.exit_code == 3
    problems = sorted(f["problem"] for f in json.loads(found.stdout)["findings"])
    assert len(problems) == 2 and "cannot be loaded" in problems[0]  # the model, and the universe's pointer at it
    assert problems[1].startswith("points at a broken model")
    ranked = cli("rank", "--universe", "stored")
    assert ranked.exit_code == ExitCode.BAD_INPUT and "cannot be loaded" in ranked.output and "Traceback" not in ranked.output


@pytest.mark.parametrize("epoch, linear, words", [(0, True, "the nested ridge alone"), (0, False, "epoch 0"),
                                                   (3, True, "epoch 3")])
def test_the_training_line_says_when_the_nested_ridge_was_kept(epoch, linear, words):
    from types import SimpleNamespace

    from forecast.cli.models import _kept

    card = SimpleNamespace(validation={"best_epoch": epoch}, config={"linear": linear})
    assert _kept(card).startswith(words)


@pytest.mark.slow
def test_the_cross_sectional_backtest_scores_the_universe_networks_bands_at_the_configs_levels(market_home):
    (market_home / "forecast.toml").write_text("levels = [0.9]\n")  # the levels a universe model trained here has
    args = ("backtest", "--universe", "stored", "--models", "global,momentum_20", "--epochs", "1", "--test-days", "20",
            "--horizon", "3", "--quiet")
    shown = cli(*args)
    assert shown.exit_code == 0, shown.output
    assert "global's intervals on the test days (6 tickers, 120 forecasts" in shown.stdout
    payload = json.loads(cli(*args, "--json").stdout)
    assert set(payload["intervals"]) == {"global"}  # momentum has no bands
    assert list(payload["intervals"]["global"]["levels"]) == ["0.9"]
    cells = payload["intervals"]["global"]["levels"]["0.9"]
    table = shown.stdout.split("global's intervals", 1)[1].splitlines()
    step2 = next(line for line in table if line.split()[:1] == ["2"])  # the second row of the 90 % level
    pct = [f"{v:.1%}" for v in (cells["coverage"][1], cells["adaptive_coverage"][1], cells["adaptive_below"][1],
                                cells["adaptive_above"][1], cells["within_5"][1], cells["adaptive_within_5"][1],
                                cells["adaptive_winkler"][1])]
    assert step2.split() == ["2", pct[0], "->", pct[1], pct[2], "/", pct[3], pct[4], "->", pct[5], f"{cells['adaptive_winkler'][1]:.2%}",
                             f"{cells['adaptive_winkler'][1] / cells['winkler'][1]:.3f}"]
    assert any(line.split()[:2] == ["90%", "1"] for line in table)
    saved = json.loads((market_home / "backtests" / "@stored" / "latest.json").read_text())
    assert saved["intervals"] == payload["intervals"]
