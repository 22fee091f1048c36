"""Issue 16, the data layer: per-ticker sources, a dead network that fails once, and a calendar for every series.

The real tushare client talks to the fake server (tests/fake_tushare.py) or to a
closed port on 127.0.0.1; CSV files are written in tmp_path from exchange-calendars'
own sessions. No Keras, no network beyond the loopback.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import socket

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.fetching import import_csv, update_from_tushare
from forecast.data.sources import tushare_pro
from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
from forecast.data.store import MarketStore
from forecast.errors import ConfigError, ExitCode
from forecast.workflow.settings import AppConfig, load_app_config

runner = CliRunner()
AFTER_CLOSE_SAT = dt.datetime(2020, 12, 26, 10, 0)  # Saturday after the sample's last bar


def sessions(name: str, start: str, end: str) -> pd.DatetimeIndex:
    """Return an exchange's real sessions in [start, end] (exchange-calendars), tz-naive."""
    import exchange_calendars as xcals

    return pd.DatetimeIndex(xcals.get_calendar(name, start="2000-01-04").sessions_in_range(start, end)).tz_localize(None)


def bars_csv(path, dates: pd.DatetimeIndex, seed: int = 0):
    """Write a plain ``date,open,high,low,close,volume`` file with a positive random walk on ``dates``."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates))))
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "open": close, "high": close * 1.01, "low": close * 0.99,
                  "close": close, "volume": 1e6}).to_csv(path, index=False)
    return path


def quiet_client(token: str, **retry) -> TushareClient:
    return TushareClient(token, timeout=2.0, retry=RetryPolicy(sleep=lambda s: None, **retry))


# --- item 5: mixed watchlists -------------------------------------------------------------------------------


def test_a_csv_ticker_never_stops_the_tushare_fetch_of_the_others_in_run(home, fake_tushare, tmp_path, monkeypatch):
    """Issue 16 item 5: `run` with ["600519.SH", "MTY"] made no call for 600519.SH and pinned MTY's error on it."""
    from forecast.workflow.pipeline import _fetch

    monkeypatch.setattr(tushare_pro, "RetryPolicy", functools.partial(RetryPolicy, sleep=lambda s: None))
    store = MarketStore(home)
    import_csv(store, "MTY", bars_csv(tmp_path / "mty.csv", sessions("XNYS", "2020-01-02", "2020-12-24")))
    config = AppConfig(tickers=("600519.SH", "MTY"), source="tushare", tushare_token=fake_tushare.valid_token)
    new_rows, errors = _fetch(store, config, ["600519.SH", "MTY"])
    assert fake_tushare.calls("daily") >= 1 and new_rows["600519.SH"] > 0
    assert set(errors) == {"MTY"}
    message = str(errors["MTY"])
    assert message.startswith("MTY") and "600519.SH" not in message
    assert "forecast fetch MTY --source csv --file" in message and str(tmp_path / "mty.csv") in message
    assert '"MTY" = "csv" under [sources]' in message  # how to stop the daily warning
    no_token = AppConfig(tickers=config.tickers, source="tushare", tushare_token=None)
    _, errors = _fetch(store, no_token, ["600519.SH", "MTY"])  # the token's error is 600519.SH's alone
    assert errors["600519.SH"].exit_code == ExitCode.AUTH_FAILED and "CSV file" in str(errors["MTY"])


def test_the_library_fetch_fails_a_non_china_ticker_on_its_own(home, fake_tushare):
    reports, failures = update_from_tushare(MarketStore(home), ["600519.SH", "AAPL"], quiet_client(fake_tushare.valid_token),
                                            now=AFTER_CLOSE_SAT)
    assert [r.ticker for r in reports] == ["600519.SH"] and reports[0].new_rows > 0
    assert [f.ticker for f in failures] == ["AAPL"]
    assert "AAPL" in str(failures[0].error) and failures[0].error.exit_code == ExitCode.BAD_INPUT


def test_a_sources_table_gives_each_ticker_its_source(home, fake_tushare, tmp_path):
    from forecast.workflow.pipeline import _fetch

    (home / "forecast.toml").write_text(
        'tickers = ["600519.SH", "MTY"]\nsource = "tushare"\n\n'
        '[sources]\n"MTY" = "csv"\n"*.SH" = "tushare"\n"AAPL" = "csv"\n"6000*" = "sample"\n'
    )
    config = load_app_config(home, env={"TUSHARE_TOKEN": fake_tushare.valid_token})
    assert config.source_for("MTY") == "csv" and config.source_for("AAPL") == "csv"
    assert config.source_for("600519.SH") == "tushare"  # exact names, then patterns in file order, then `source`
    assert config.source_for("600000.SH") == "tushare" and config.source_for("000858.SZ") == "tushare"
    assert config.masked()["sources"] == {"MTY": "csv", "*.SH": "tushare", "AAPL": "csv", "6000*": "sample"}
    store = MarketStore(home)
    import_csv(store, "MTY", bars_csv(tmp_path / "mty.csv", sessions("XNYS", "2020-01-02", "2020-12-24")))
    new_rows, errors = _fetch(store, config, ["600519.SH", "MTY"])
    assert errors == {} and new_rows["MTY"] == 0 and new_rows["600519.SH"] > 0
    assert {r["params"].get("ts_code") for r in fake_tushare.requests} == {"600519.SH"}


def test_a_bare_code_in_the_sources_table_is_normalised_and_sample_works_per_ticker(home):
    from forecast.workflow.pipeline import _fetch

    (home / "forecast.toml").write_text('source = "tushare"\n[sources]\n"600519" = "sample"\n')
    config = load_app_config(home, env={})
    assert config.source_for("600519.SH") == "sample"
    new_rows, errors = _fetch(MarketStore(home), config, ["600519.SH"])
    assert errors == {} and new_rows["600519.SH"] > 0  # the sample, and no token needed


def test_every_problem_in_the_sources_table_is_its_own_line(home):
    (home / "forecast.toml").write_text('source = "ftp"\n[sources]\n"MTY" = "yahoo"\n"not a ticker!" = "csv"\n"AAPL" = 3\n')
    with pytest.raises(ConfigError) as info:
        load_app_config(home, env={})
    lines = str(info.value).splitlines()
    assert "4 problems" in lines[0]
    assert any(line.strip().startswith("source:") for line in lines)
    assert any("[sources] MTY" in line and "yahoo" in line for line in lines)
    assert any("not a ticker!" in line for line in lines)
    assert any("[sources] AAPL" in line for line in lines)
    (home / "forecast.toml").write_text('sources = "csv"\n')
    with pytest.raises(ConfigError, match=r"\[sources\] must be a table"):
        load_app_config(home, env={})


def test_without_a_token_fetch_of_a_csv_ticker_says_where_it_came_from(home, tmp_path):
    path = bars_csv(tmp_path / "mty.csv", sessions("XNYS", "2020-01-02", "2020-12-24"))
    assert runner.invoke(app, ["fetch", "MTY", "--source", "csv", "--file", str(path)]).exit_code == 0
    result = runner.invoke(app, ["fetch", "MTY"])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "tushare.pro" not in result.stderr and "TUSHARE_TOKEN" not in result.stderr
    assert f"forecast fetch MTY --source csv --file {path}" in result.stderr
    never = runner.invoke(app, ["fetch", "NOPE"])  # never imported: how to import it, still no sign-up
    assert never.exit_code == ExitCode.BAD_INPUT and "forecast fetch NOPE --source csv --file" in never.stderr
    assert "tushare.pro" not in never.stderr


def test_a_mixed_cli_fetch_reports_each_ticker_on_its_own_line(home, fake_tushare, tmp_path):
    path = bars_csv(tmp_path / "mty.csv", sessions("XNYS", "2020-01-02", "2020-12-24"))
    assert runner.invoke(app, ["fetch", "MTY", "--source", "csv", "--file", str(path)]).exit_code == 0
    result = runner.invoke(app, ["fetch", "600519.SH", "MTY", "--json"])
    assert result.exit_code == ExitCode.PARTIAL, result.output
    payload = json.loads(result.stdout)
    assert [r["ticker"] for r in payload["results"]] == ["600519.SH"]
    assert [f["ticker"] for f in payload["failures"]] == ["MTY"] and str(path) in payload["failures"][0]["error"]


# --- item 6: a dead network fails once ----------------------------------------------------------------------


def closed_port_url() -> tuple[str, str]:
    """Return (base URL, host:port) of a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/dataapi", f"127.0.0.1:{port}"


def test_a_dead_network_fails_once_and_names_the_host(home, monkeypatch):
    from tushare.pro.client import DataApi

    url, host = closed_port_url()
    monkeypatch.setattr(DataApi, "_DataApi__http_url", url)
    client = quiet_client("some-token-0123456789")
    tickers = ["600519.SH", "000858.SZ", "601318.SH"]
    reports, failures = update_from_tushare(MarketStore(home), tickers, client, now=AFTER_CLOSE_SAT)
    assert reports == [] and [f.ticker for f in failures] == tickers
    assert client.calls == RetryPolicy().unreachable_after  # 3 tries in all, not 4 per ticker (12)
    messages = {str(f.error) for f in failures}
    assert len(messages) == 1 and host in messages.pop()  # the same message for every ticker, naming the host
    assert all(f.error.exit_code == ExitCode.SOURCE_FAILED for f in failures)


def test_answers_between_dropped_connections_keep_the_host_alive(fake_tushare):
    """Only failures in a row count: any answer from the host resets the count, and a rate limit stays per call."""
    fake_tushare.failures = ["drop", "drop", "rate_minute", "drop", "drop"]
    client = quiet_client(fake_tushare.valid_token, attempts=6)
    frame = client.query("daily", tushare_pro.DAILY_FIELDS, trade_date="20201225")
    assert len(frame) == 1 and client.calls == 6
    fake_tushare.failures = ["drop", "drop", "drop", "drop"]
    with pytest.raises(tushare_pro.SourceError, match=r"127\.0\.0\.1") as info:
        client.query("daily", tushare_pro.DAILY_FIELDS, trade_date="20201225")
    assert client.calls == 9
    with pytest.raises(tushare_pro.SourceError) as again:  # the host is down for this client: no more tries
        client.query("adj_factor", tushare_pro.FACTOR_FIELDS, trade_date="20201225")
    assert str(again.value) == str(info.value) and client.calls == 9


# --- item 7: a calendar for every series --------------------------------------------------------------------


def test_a_us_series_is_forecast_past_independence_day(home, tmp_path):
    """Issue 16 item 7: a series that stops on Tuesday 2018-07-03 is forecast for Thursday 2018-07-05."""
    from forecast.models.predicting import predict_baseline

    path = bars_csv(tmp_path / "spy.csv", sessions("XNYS", "2017-01-03", "2018-07-03"))
    result = runner.invoke(app, ["fetch", "SPY", "--source", "csv", "--file", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["calendar"] == "XNYS"
    store = MarketStore(home)
    assert store.read("SPY").calendar == "XNYS"
    forecast = predict_baseline(store, "SPY", "naive", horizon=3)
    assert [p.date for p in forecast.points] == ["2018-07-05", "2018-07-06", "2018-07-09"]


@pytest.mark.parametrize("exchange, expected", [("XNYS", "XNYS"), ("XLON", "XLON"), ("XHKG", "XHKG"), ("XSHG", "XSHG")])
def test_the_calendar_is_inferred_from_the_files_own_dates(home, tmp_path, exchange, expected):
    path = bars_csv(tmp_path / "x.csv", sessions(exchange, "2016-01-04", "2018-12-28"))
    report = import_csv(MarketStore(home), "SOMETHING", path)
    assert report.calendar == expected and any(f"calendar {expected}" in note for note in report.notes)
    assert MarketStore(home).read("SOMETHING").summary()["calendar"] == expected


def test_weekday_files_and_unclear_spans_get_the_tickers_rule(home, tmp_path):
    store = MarketStore(home)
    weekdays = import_csv(store, "WKD", bars_csv(tmp_path / "w.csv", pd.bdate_range("2016-01-04", "2018-12-28")))
    assert weekdays.calendar == "business-days"
    # six weeks with no holiday anywhere: every calendar fits alike, so the ticker's rule decides
    quiet = sessions("XNYS", "2018-07-05", "2018-08-15")
    assert import_csv(store, "QUIET", bars_csv(tmp_path / "q.csv", quiet)).calendar == "business-days"
    assert import_csv(store, "600036.SH", bars_csv(tmp_path / "c.csv", quiet)).calendar == "XSHG"


def test_calendar_option_overrides_the_inference_and_is_checked(home, tmp_path):
    path = bars_csv(tmp_path / "x.csv", pd.bdate_range("2018-01-02", "2018-07-03"))
    result = runner.invoke(app, ["fetch", "X", "--source", "csv", "--file", str(path), "--calendar", "nyse"])
    assert result.exit_code == 0, result.output
    assert MarketStore(home).read("X").calendar == "XNYS"
    # the weekday file has rows on NYSE holidays: validation now says so, by the chosen calendar
    findings = MarketStore(home).read("X").validation.findings
    assert any(f.check == "rows on non-trading days" and "2018-01-15" in f.examples for f in findings)
    bad = runner.invoke(app, ["fetch", "X", "--source", "csv", "--file", str(path), "--calendar", "XNYZ"])
    assert bad.exit_code == ExitCode.USAGE and "XNYS" in bad.stderr  # did you mean
    tushare = runner.invoke(app, ["fetch", "600519.SH", "--calendar", "XNYS"])
    assert tushare.exit_code == ExitCode.USAGE and "--calendar" in tushare.stderr


def test_a_stray_row_on_a_holiday_keeps_the_calendar_and_is_reported(home, tmp_path):
    days = sessions("XNYS", "2017-01-03", "2018-12-31").append(pd.DatetimeIndex(["2018-07-04"])).sort_values()
    report = import_csv(MarketStore(home), "SPY", bars_csv(tmp_path / "s.csv", days))
    assert report.calendar == "XNYS"
    assert any(f["check"] == "rows on non-trading days" and f["examples"] == ["2018-07-04"] for f in report.validation["findings"])


def test_files_from_before_calendars_read_as_the_old_rule(home, tmp_path):
    import pyarrow.parquet as pq

    store = MarketStore(home)
    import_csv(store, "AAPL", bars_csv(tmp_path / "a.csv", sessions("XNYS", "2017-01-03", "2018-07-03")))
    runner.invoke(app, ["fetch", "--source", "sample"])
    for ticker in ("AAPL", "600519.SH"):  # rewrite each file's metadata as an older version wrote it
        path = store.path_for(ticker)
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[b"forecast"])
        meta.pop("calendar"), meta.pop("origin")
        pq.write_table(table.replace_schema_metadata({b"forecast": json.dumps(meta).encode()}), path)
    assert store.read("AAPL").calendar is None and store.read("AAPL").summary()["calendar"] == "business-days"
    assert store.read("600519.SH").summary()["calendar"] == "XSHG"
    from forecast.models.predicting import predict_baseline

    assert predict_baseline(store, "AAPL", "naive", horizon=1).points[0].date == "2018-07-04"  # the old rule, as before


def test_tushare_series_record_xshg(home, fake_tushare):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], quiet_client(fake_tushare.valid_token), now=AFTER_CLOSE_SAT)
    assert store.read("600519.SH").calendar == "XSHG"


def test_the_trading_calendar_object_answers_for_its_exchange():
    from forecast.data.calendar import TradingCalendar, as_calendar, get_calendar, next_sessions
    from forecast.data.tickers import parse_ticker

    nyse = get_calendar("XNYS")
    assert [d.date().isoformat() for d in nyse.next_sessions("2020-12-31", 1)] == ["2021-01-04"]
    assert nyse.is_session_mask(pd.DatetimeIndex(["2021-01-01", "2021-01-04"])).tolist() == [False, True]
    assert as_calendar(parse_ticker("600519.SH")) == TradingCalendar("XSHG")
    assert as_calendar(parse_ticker("AAPL")) == TradingCalendar("business-days")
    assert next_sessions("2021-01-01", 1, "XNYS")[0] == pd.Timestamp("2021-01-04")


def test_data_list_and_show_name_the_price_basis_in_words_not_codes(home):
    """Issue 29 item 16: an imported series' prices are "as imported", never "none"."""
    from forecast.choices import adjust_words

    fixture = FIXTURES / "long_us_style.csv"
    imported = runner.invoke(app, ["fetch", "AAPL", "--source", "csv", "--file", str(fixture)])
    assert imported.exit_code == 0, imported.output
    listed = runner.invoke(app, ["data", "list"])
    shown = runner.invoke(app, ["data", "show", "AAPL"])
    assert shown.exit_code == 0 and listed.exit_code == 0
    for text in (listed.stdout, shown.stdout.splitlines()[1]):
        assert adjust_words("none") in text and "(none)" not in text and "prices none" not in text
