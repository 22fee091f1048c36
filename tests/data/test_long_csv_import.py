"""Long-format CSV import: many tickers in one file, through the real CLI, checked through the store.

Fixtures (tests/fixtures/, made from the bundled Moutai sample's last 56 bars, prices scaled per ticker):
- long_daily_three_tickers.csv: a tushare ``daily`` dump of 600519.SH, 000001.SZ and 600036.SH, newest
  first, lots and thousands of CNY; one bad row: 600036.SH on 2020-12-16 has the close ``abc`` (data row 23).
- long_us_style.csv: Kaggle S&P 500 shape ``date,open,high,low,close,volume,Name`` for AAL, AAPL and ZTS on
  NYSE sessions 2017-10-02..2018-02-07; AAPL's open of 2017-10-16 is missing (a quirk of the real set).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import FIXTURES
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.importing import import_long_csv
from forecast.data.sources.csv_file import find_ticker_column
from forecast.data.store import MarketStore
from forecast.errors import ExitCode

DATA = FIXTURES
DAILY = DATA / "long_daily_three_tickers.csv"
US = DATA / "long_us_style.csv"
runner = CliRunner()


def fetch(*args: str):
    return runner.invoke(app, ["fetch", "--source", "csv", *args])


def test_a_tushare_dump_of_three_tickers_with_one_bad_row_stores_two_and_refuses_one(home):
    result = fetch("--file", str(DAILY), "--json")
    assert result.exit_code == ExitCode.PARTIAL, result.output
    out = json.loads(result.stdout)
    raw = pd.read_csv(DAILY, dtype=str)
    store = MarketStore(home)
    assert sorted(store.tickers()) == ["000001.SZ", "600519.SH"]
    for code in ("000001.SZ", "600519.SH"):
        rows = raw[raw.ts_code == code].sort_values("trade_date")
        stored = store.read(code).frame
        assert len(stored) == len(rows) and stored["date"].is_monotonic_increasing
        assert stored["close"].tolist() == pytest.approx(rows["close"].astype(float).tolist())
        assert stored["volume"].tolist() == pytest.approx((rows["vol"].astype(float) * 100).tolist())  # lots -> shares
        assert stored["amount"].tolist() == pytest.approx((rows["amount"].astype(float) * 1000).tolist())
    [refused] = out["failures"]
    assert refused["ticker"] == "600036.SH" and "'abc'" in refused["error"] and "data row 23" in refused["error"]
    summary = out["summary"]
    assert summary["tickers_imported"] == 2 and summary["rows"] == len(raw[raw.ts_code != "600036.SH"])
    assert summary["refused"][0]["rows"] == len(raw[raw.ts_code == "600036.SH"])
    assert "600036.SH: refused" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_summary_is_one_table_for_the_file(home):
    result = fetch("--file", str(US))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"long_us_style.csv: 3 tickers in column Name (+{len(pd.read_csv(US))} new rows")
    table = {line.rsplit(None, 2)[0].strip(): line.split()[-2:] for line in lines[2:]}
    assert table["imported"] == ["3", str(len(pd.read_csv(US)))] and table["refused (see the errors)"] == ["0", "0"]
    assert table["warning: missing values"] == ["1", "1"]  # AAPL's missing open
    assert "  missing values: AAPL 2017-10-16" in lines  # named with its ticker and day
    assert result.stderr.strip() == ""


def test_a_us_style_file_stores_each_name_on_the_nyse_calendar(home):
    report = import_long_csv(MarketStore(home), US)
    assert report.ticker_column == "Name" and report.refused == [] and not report.single
    raw = pd.read_csv(US)
    store = MarketStore(home)
    assert sorted(store.tickers()) == ["AAL", "AAPL", "ZTS"]
    for name in ("AAL", "AAPL", "ZTS"):
        stored = store.read(name)
        assert len(stored.frame) == (raw.Name == name).sum()
        assert stored.calendar == "XNYS"  # inferred from the dates: US holidays are missing, Chinese ones are not
        assert stored.frame["volume"].tolist() == raw.loc[raw.Name == name, "volume"].astype(float).tolist()  # shares
    aapl = store.read("AAPL").frame.set_index("date")
    assert pd.isna(aapl.loc["2017-10-16", "open"])  # the missing open stays missing, not invented


def test_a_second_import_of_the_same_file_revises_nothing(home):
    first = import_long_csv(MarketStore(home), US)
    again = import_long_csv(MarketStore(home), US)
    assert sum(r.new_rows for r in first.reports) == len(pd.read_csv(US))
    assert [(r.new_rows, r.revised_rows) for r in again.reports] == [(0, 0)] * 3


def test_codes_that_are_not_tickers_are_refused_each_on_its_own(home, tmp_path):
    raw = pd.read_csv(US, dtype=str)
    odd = pd.concat([raw, raw[raw.Name == "AAL"].head(3).assign(Name="no such!"),
                     raw[raw.Name == "AAL"].head(2).assign(Name="")], ignore_index=True)
    path = tmp_path / "odd.csv"
    odd.to_csv(path, index=False)
    result = fetch("--file", str(path), "--json")
    assert result.exit_code == ExitCode.PARTIAL, result.output
    refused = {f["ticker"]: f for f in json.loads(result.stdout)["failures"]}
    assert set(refused) == {"no such!", "(no ticker)"}
    assert all(f["exit_code"] == ExitCode.BAD_INPUT for f in refused.values())
    assert sorted(MarketStore(home).tickers()) == ["AAL", "AAPL", "ZTS"]


def test_600519_and_600519_sh_are_one_ticker(home, tmp_path):
    raw = pd.read_csv(DAILY, dtype=str)
    raw = raw[raw.ts_code != "600036.SH"]
    moutai = raw.index[raw.ts_code == "600519.SH"]
    raw.loc[moutai[::2], "ts_code"] = "600519"  # half of Moutai's rows with a bare code
    raw.loc[raw.index[raw.ts_code == "000001.SZ"][:3], "ts_code"] = "000001"  # a bare index number: never guessed
    path = tmp_path / "mixed.csv"
    raw.to_csv(path, index=False)
    report = import_long_csv(MarketStore(home), path)
    assert sorted(r.ticker for r in report.reports) == ["000001.SZ", "600519.SH"]
    assert len(MarketStore(home).read("600519.SH").frame) == 56
    [ambiguous] = report.refused
    assert ambiguous.ticker == "000001" and ambiguous.rows == 3 and "ambiguous" in ambiguous.reason


def test_ticker_column_names_a_column_detection_would_not_find(home, tmp_path):
    renamed = pd.read_csv(US, dtype=str).rename(columns={"Name": "stock"})
    path = tmp_path / "renamed.csv"
    renamed.to_csv(path, index=False)
    undetected = fetch("--file", str(path))
    assert undetected.exit_code == ExitCode.BAD_INPUT and "does not name its ticker" in undetected.output
    named = fetch("--file", str(path), "--ticker-column", "stock", "--json")
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout)["summary"]["ticker_column"] == "stock"
    assert sorted(MarketStore(home).tickers()) == ["AAL", "AAPL", "ZTS"]
    missing = fetch("--file", str(path), "--ticker-column", "Symbol")
    assert missing.exit_code == ExitCode.BAD_INPUT and "no such column" in missing.output
    both = fetch("AAL", "--file", str(path), "--ticker-column", "stock")
    assert both.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("columns, expected", [
    (["ts_code", "trade_date", "close"], "ts_code"), (["date", "close", "Name"], "Name"),
    (["date", "close", "ticker", "symbol"], "ticker"), (["date", "close", "SYMBOL"], "SYMBOL"), (["date", "close"], None),
])
def test_the_ticker_column_is_detected(columns, expected):
    assert find_ticker_column(columns) == expected


def test_a_file_naming_one_ticker_is_a_single_ticker_import_as_before(home, tmp_path):
    raw = pd.read_csv(DAILY, dtype=str)
    path = tmp_path / "one.csv"
    raw[raw.ts_code == "600519.SH"].to_csv(path, index=False)
    result = fetch("--file", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("600519.SH: 56 rows")  # the single-ticker report line, not a summary


def test_a_strict_long_import_refuses_exactly_the_tickers_with_findings(home):
    result = fetch("--file", str(US), "--strict", "--json")
    out = json.loads(result.stdout)
    findings = {f["ticker"] for f in out["failures"]}
    stored = set(MarketStore(home).tickers())
    assert stored | findings == {"AAL", "AAPL", "ZTS"} and not stored & findings
    assert result.exit_code == (0 if not findings else ExitCode.PARTIAL if stored else ExitCode.ALL_FAILED)


def test_naming_one_ticker_of_a_long_file_imports_that_tickers_rows_only(home):
    # the refresh `run` advises after a long import (`fetch AAPL --source csv --file <the long file>`)
    assert fetch("--file", str(US)).exit_code == 0
    before = MarketStore(home).read("AAPL").frame
    result = fetch("AAPL", "--file", str(US), "--json")
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)["results"]
    assert (report["new_rows"], report["revised_rows"]) == (0, 0)
    assert any("other ticker(s) left out" in note for note in report["notes"])
    raw = pd.read_csv(US)
    after = MarketStore(home).read("AAPL").frame
    assert after["close"].tolist() == raw.loc[raw.Name == "AAPL", "close"].tolist()
    pd.testing.assert_frame_equal(after, before)
    assert sorted(MarketStore(home).tickers()) == ["AAL", "AAPL", "ZTS"]  # the others untouched, none added


def test_a_long_file_that_does_not_name_the_ticker_is_refused_and_stores_nothing(home):
    result = fetch("MSFT", "--file", str(US))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "names AAL, AAPL, ZTS, not MSFT" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert MarketStore(home).tickers() == []
