"""Issue 13's hostile inputs, each reproduced: a one-line error and a documented exit code, and no lost data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_FILE
from typer.testing import CliRunner

from forecast.cli import app
from forecast.errors import ExitCode, SourceError

runner = CliRunner()


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output and "internal error" not in result.stderr, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def sample_rows(n: int = 300) -> pd.DataFrame:
    return pd.read_csv(SAMPLE_FILE).tail(n).reset_index(drop=True)


def write_csv(path, frame: pd.DataFrame):
    frame.to_csv(path, index=False)
    return path


def fetch_csv(ticker: str, path, *extra) -> object:
    return runner.invoke(app, ["fetch", ticker, "--source", "csv", "--file", str(path), *extra])


def test_a_corrupt_store_file_is_repaired_by_the_advised_re_fetch(home):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    stored = home / "data" / "bars" / "600519.SH.parquet"
    stored.write_bytes(stored.read_bytes()[:100])
    broken = runner.invoke(app, ["data", "show", "600519.SH"])
    assert broken.exit_code == ExitCode.BAD_INPUT and "re-fetch" in one_error_line(broken)
    repaired = runner.invoke(app, ["fetch", "--source", "sample"])
    assert repaired.exit_code == 0, repaired.output
    assert "replaced an unreadable stored file" in repaired.stdout
    assert runner.invoke(app, ["data", "show", "600519.SH"]).exit_code == 0


def test_one_corrupt_ticker_does_not_hide_the_others_from_data_list(home, tmp_path):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    assert fetch_csv("AAPL", write_csv(tmp_path / "a.csv", sample_rows())).exit_code == 0
    (home / "data" / "bars" / "600519.SH.parquet").write_bytes(b"\0" * 64)
    listed = runner.invoke(app, ["data", "list"])
    assert "AAPL" in listed.stdout and "600519.SH" in one_error_line(listed)


def test_duplicate_dates_collapse_to_the_last_row_and_never_poison_the_next_import(home, tmp_path):
    rows = sample_rows()
    doubled = pd.concat([rows, rows.tail(40).assign(close=rows.tail(40)["close"] + 1)], ignore_index=True)
    first = fetch_csv("DUP", write_csv(tmp_path / "dup.csv", doubled))
    assert first.exit_code == 0 and "kept the last row" in first.stdout
    from forecast.data.store import MarketStore

    stored = MarketStore(home).read("DUP").frame
    assert stored["date"].is_unique and len(stored) == len(rows)
    assert stored["close"].iloc[-1] == pytest.approx(rows["close"].iloc[-1] + 1)  # the later row won
    clean = fetch_csv("DUP", write_csv(tmp_path / "clean.csv", rows))
    assert clean.exit_code == 0, clean.output


@pytest.mark.parametrize("column, value", [("volume", "1e400"), ("high", "9" * 400)])
def test_infinite_values_are_refused_and_nothing_is_stored(home, tmp_path, column, value):
    rows = sample_rows().astype({column: object})
    rows.loc[5, column] = value
    result = fetch_csv("INF", write_csv(tmp_path / "inf.csv", rows))
    line = one_error_line(result)  # the CSV reader refuses the text, or validation the overflowed number
    assert result.exit_code == ExitCode.BAD_INPUT and ("infinite" in line or "non-number" in line)
    assert not (home / "data" / "bars" / "INF.parquet").exists()


def test_validation_refuses_infinite_prices_whatever_their_source():
    from forecast.data.validation import refuse_unusable
    from forecast.errors import ValidationFailed

    frame = sample_rows(10).assign(date=lambda f: pd.to_datetime(f["date"]))
    frame.loc[3, "volume"] = np.inf
    with pytest.raises(ValidationFailed, match="infinite"):
        refuse_unusable(frame, "X")


def test_an_adjusted_close_of_zero_is_refused(home, tmp_path):
    rows = sample_rows(50)
    yahoo = pd.DataFrame({"Date": rows["date"], "Open": rows["open"], "High": rows["high"], "Low": rows["low"],
                          "Close": rows["close"], "Adj Close": 0.0, "Volume": rows["volume"]})
    result = fetch_csv("YH", write_csv(tmp_path / "y.csv", yahoo))
    assert result.exit_code == ExitCode.BAD_INPUT and "missing" in one_error_line(result)


def test_a_much_shorter_import_needs_replace(home, tmp_path):
    assert fetch_csv("SHR", write_csv(tmp_path / "full.csv", sample_rows())).exit_code == 0
    short = write_csv(tmp_path / "short.csv", sample_rows(1))
    refused = fetch_csv("SHR", short)
    assert refused.exit_code == ExitCode.BAD_INPUT and "--replace" in one_error_line(refused)
    from forecast.data.store import MarketStore

    assert len(MarketStore(home).read("SHR").frame) == 300
    replaced = fetch_csv("SHR", short, "--replace")
    assert replaced.exit_code == 0
    assert len(MarketStore(home).read("SHR").frame) == 1
    assert "299 dropped" in replaced.stdout  # the rows --replace threw away are said, not hidden behind "+0 new"


def test_dates_in_the_future_are_flagged(home, tmp_path):
    rows = sample_rows(60)
    rows.loc[len(rows) - 1, "date"] = "2099-01-05"
    result = fetch_csv("FUT", write_csv(tmp_path / "f.csv", rows))
    assert result.exit_code == 0 and "dates in the future" in result.stderr


@pytest.mark.parametrize("dates, message", [(["1500-01-02", "1500-01-03"], "1677"), (["2020-01-02", "01/03/2020"], "mix formats")])
def test_impossible_or_mixed_dates_say_what_is_wrong(home, tmp_path, dates, message):
    rows = sample_rows(len(dates)).assign(date=dates)
    result = fetch_csv("DT", write_csv(tmp_path / "d.csv", rows))
    assert result.exit_code == ExitCode.BAD_INPUT and message in one_error_line(result)


@pytest.mark.parametrize("flags", [["--units", "0"], ["--units", "abc"], ["--dropout", "2"], ["--start", "notadate"],
                                   ["--lr", "-1"], ["--features", "nope"]])
def test_bad_training_flags_are_refused_before_training(home, flags):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    result = runner.invoke(app, ["train", "600519.SH", *flags])
    assert result.exit_code in (ExitCode.USAGE, ExitCode.BAD_INPUT)
    one_error_line(result)
    assert not (home / "models").exists()


@pytest.mark.parametrize("model", ["ma0", "ma99999", "../x"])
def test_impossible_models_are_refused(home, model):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    result = runner.invoke(app, ["predict", "600519.SH", "--model", model])
    assert result.exit_code in (ExitCode.BAD_INPUT, ExitCode.NOT_FOUND)
    one_error_line(result)


def test_a_bad_lock_timeout_and_a_home_that_is_a_file_are_one_line_errors(home, tmp_path):
    bad_timeout = runner.invoke(app, ["data", "list"], env={"FORECAST_LOCK_TIMEOUT": "abc"})
    assert bad_timeout.exit_code == ExitCode.BAD_INPUT and "FORECAST_LOCK_TIMEOUT" in one_error_line(bad_timeout)
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    result = runner.invoke(app, ["--home", str(a_file), "fetch", "--source", "sample"])
    assert result.exit_code == ExitCode.BAD_INPUT
    one_error_line(result)


def test_a_crafted_card_cannot_read_or_delete_outside_the_home(home, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "victim.txt"
    outside.write_text("precious")
    folder = home / "models" / "EVIL"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps({"id": "EVIL", "ticker": f"../../../../{outside}", "config": {}}))
    (folder / "model.keras").write_bytes(b"PK")
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and "precious" not in listed.output
    removed = runner.invoke(app, ["models", "rm", "EVIL"])
    assert removed.exit_code == 0 and not folder.exists()
    assert outside.read_text() == "precious"


def test_backtest_out_csv_keeps_the_json_beside_it(home, tmp_path):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    out = tmp_path / "bt.csv"
    result = runner.invoke(app, ["backtest", "600519.SH", "--models", "naive,drift", "--test-days", "30",
                                 "--refit-every", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.with_suffix(".json").read_text())["ticker"] == "600519.SH"
    assert pd.read_csv(out)["model"].nunique() == 2


def test_the_store_lock_is_free_while_the_network_is_asked(home, fake_tushare, monkeypatch):
    from forecast.data.fetching import update_from_tushare
    from forecast.data.sources import tushare_pro
    from forecast.data.store import MarketStore
    from forecast.locks import hold_lock

    store = MarketStore(home, lock_timeout_s=0.05)
    real = tushare_pro.fetch_ticker_range
    seen = []

    def fetch_while_checking_the_lock(*args, **kwargs):
        with hold_lock(store.workspace.store_lock, 0.05, "held during a network call"):
            seen.append("free")
        return real(*args, **kwargs)

    monkeypatch.setattr(tushare_pro, "fetch_ticker_range", fetch_while_checking_the_lock)
    reports, failures = update_from_tushare(store, ["600519.SH"], tushare_pro.TushareClient(fake_tushare.valid_token),
                                            start="2020-01-01", end="2020-06-30")
    assert not failures and seen and reports[0].rows > 0


def test_paging_stops_when_a_server_ignores_end_date(monkeypatch):
    from forecast.data.sources import tushare_pro

    client = tushare_pro.TushareClient("token-for-paging-test")
    page = pd.DataFrame({"ts_code": "600519.SH", "trade_date": ["20200102"] * tushare_pro.PAGE_LIMIT, "close": 1.0})
    monkeypatch.setattr(client, "query", lambda *a, **k: page)
    with pytest.raises(SourceError, match="end_date"):
        client.query_all("daily", "ts_code,trade_date,close", ts_code="600519.SH", start_date="20000101", end_date="20200102")


def test_a_reply_missing_a_column_is_a_source_error_not_a_crash():
    from forecast.data.sources.tushare_wire import to_canonical

    daily = pd.DataFrame({"ts_code": ["600519.SH"], "trade_date": ["20200102"], "open": [1.0]})
    with pytest.raises(SourceError):
        to_canonical(daily, pd.DataFrame({"ts_code": [], "trade_date": [], "adj_factor": []}))


def test_a_token_in_a_server_message_never_leaves_the_process(home, tmp_path, monkeypatch):
    from forecast.data.sources import tushare_pro

    token = "tok-" + "7" * 20

    def leaky_query(self, api_name, fields, **params):
        raise SourceError(f"server said: bad request for token={token}")

    monkeypatch.setattr(tushare_pro.TushareClient, "query", leaky_query)
    (home / "forecast.toml").write_text('tickers = ["600519.SH"]\nsource = "tushare"\n')
    log = tmp_path / "run.log"
    result = runner.invoke(app, ["run", "--json", "--log-file", str(log), "--retrain-after", "never"],
                           env={"TUSHARE_TOKEN": token})
    assert result.exit_code == ExitCode.ALL_FAILED
    summary = (home / "daily" / "latest" / "summary.json").read_text()
    assert "server said" in summary
    for text in (result.stdout, result.stderr, log.read_text(), summary):
        assert token not in text


@pytest.mark.slow
def test_a_nan_row_is_not_trained_into_a_model_and_run_goes_on(home, tmp_path):
    rows = sample_rows(400)
    rows.loc[200, "close"] = np.nan
    assert fetch_csv("NANS", write_csv(tmp_path / "n.csv", rows)).exit_code == 0
    trained = runner.invoke(app, ["train", "NANS", "--epochs", "2", "--units", "4", "--lookback", "10", "--quiet"])
    line = one_error_line(trained)  # named before any fit (it was a non-finite loss after the whole fit)
    assert trained.exit_code == ExitCode.BAD_INPUT and "NANS: 1 bar(s) have missing close values" in line
    assert line.count("NANS") == 1
    assert not any((home / "models").glob("NANS-*"))


def test_run_with_an_invalid_config_still_leaves_a_summary(home):
    (home / "forecast.toml").write_text('tickers = ["600519.SH"]\nsource = "ftp"\n')
    result = runner.invoke(app, ["run"])
    assert result.exit_code == ExitCode.USAGE and "source" in result.stderr
    summary = json.loads((home / "daily" / "latest" / "summary.json").read_text())
    assert summary["exit_code"] == ExitCode.USAGE and "source" in summary["error"]


# The fuzz suite's findings (tests/hostile/test_fuzz_core.py), each pinned as a plain reproduction.

def test_an_explicit_date_format_does_not_let_a_missing_date_in(home, tmp_path):
    lines = SAMPLE_FILE.read_text().splitlines()[:81] + ["x"]
    csv = tmp_path / "f.csv"
    csv.write_text("\n".join(lines) + "\n")
    result = fetch_csv("DF", csv, "--date-format", "%Y-%m-%d")
    assert result.exit_code == ExitCode.BAD_INPUT
    one_error_line(result)


def test_data_show_survives_a_row_without_numbers(home, tmp_path):
    csv = tmp_path / "n.csv"
    csv.write_text("date,close\n2019-12-30,10\n2019-12-31,\n2020-01-02,12\n")
    assert fetch_csv("YYY", csv).exit_code == 0
    shown = runner.invoke(app, ["data", "show", "YYY"])
    assert shown.exit_code == 0, shown.output


def test_config_show_prints_a_toml_date(home):
    (home / "forecast.toml").write_text("[train]\nstart = 2015-01-01\n")
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0 and "2015-01-01" in shown.stdout


@pytest.mark.parametrize("flags", [["--target", ""], ["--target", "junk"], ["--horizon", "1000000000000"]])
def test_backtest_refuses_an_impossible_target_or_horizon(home, flags):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    result = runner.invoke(app, ["backtest", "600519.SH", "--models", "naive", "--test-days", "2", "--refit-every", "1", *flags])
    assert result.exit_code in (ExitCode.USAGE, ExitCode.BAD_INPUT)
    one_error_line(result)


def test_a_link_loop_in_the_store_is_a_one_line_error(home):
    bars = home / "data" / "bars"
    bars.mkdir(parents=True)
    (bars / "600519.SH.parquet").symlink_to(bars / "600519.SH.parquet")
    result = runner.invoke(app, ["data", "show", "600519.SH"])
    assert result.exit_code == ExitCode.BAD_INPUT and "loops" in one_error_line(result)


@pytest.mark.parametrize("damage", ["no rows", "no date column", "text dates", "text close", "dates after 2262"])
def test_a_stored_file_with_a_foreign_schema_is_unreadable_and_a_re_fetch_replaces_it(home, damage):
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    path = home / "data" / "bars" / "600519.SH.parquet"
    table = pq.read_table(path)
    frame = table.to_pandas()
    if damage == "no rows":
        frame = frame.iloc[:0]
    elif damage == "no date column":
        frame = frame.drop(columns="date")
    elif damage == "text dates":
        frame["date"] = frame["date"].astype(str)
    elif damage == "text close":
        frame["close"] = frame["close"].astype(str)
    damaged = pa.Table.from_pandas(frame, preserve_index=False)
    if damage == "dates after 2262":
        dates = pa.array([np.datetime64("2420-09-19", "us")] * len(frame), pa.timestamp("us"))
        damaged = damaged.set_column(damaged.schema.get_field_index("date"), "date", dates)
    pq.write_table(damaged.replace_schema_metadata(table.schema.metadata), path)
    for command in (["data", "show", "600519.SH"], ["predict", "600519.SH", "--model", "naive"]):
        result = runner.invoke(app, command)
        assert result.exit_code == ExitCode.BAD_INPUT and "unreadable" in one_error_line(result)
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    assert runner.invoke(app, ["data", "show", "600519.SH"]).exit_code == 0


def test_train_units_as_a_number_is_one_layer_and_errors_have_one_prefix(home):
    from forecast.workflow.settings import load_app_config

    (home / "forecast.toml").write_text("[train]\nunits = 5\n")
    assert load_app_config(home, env={}).train_config().units == (5,)
    (home / "forecast.toml").write_text('[train]\nunits = {a = 1}\n')
    with pytest.raises(Exception) as caught:
        load_app_config(home, env={})
    assert str(caught.value).count("[train]") == 1
