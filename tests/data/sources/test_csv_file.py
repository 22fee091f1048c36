"""CSV import of real files in every supported layout, and of broken ones."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import COURSE_FILE, COURSE_POSITIVE, SAMPLE_FILE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecast.data.fetching import import_csv
from forecast.data.sources.csv_file import infer_date_format, read_bars_csv
from forecast.data.store import MarketStore
from forecast.errors import BadInputError, DateFormatError, ForecastError


def rows_and_date_range(path) -> tuple[int, str, str]:
    """Count a legacy file's data lines and read its first and last date from the text (oldest first)."""
    lines = [line for line in path.read_text().splitlines()[1:] if line.strip()]
    return len(lines), lines[0].split(",")[1], lines[-1].split(",")[1]


# the third course file, SH600519_2010-12-27_2020-12-25_qfq.csv, is the bundled sample byte for byte
@pytest.mark.parametrize("path", [COURSE_FILE, COURSE_POSITIVE, SAMPLE_FILE], ids=lambda p: p.name)
def test_imports_the_moutai_course_files(home, path):
    rows, first, last = rows_and_date_range(path)
    report = import_csv(MarketStore(home), None, path)
    assert (report.ticker, report.rows, report.first_date, report.last_date) == ("600519.SH", rows, first, last)
    original = pd.read_csv(path)
    bars = MarketStore(home).read_bars("600519.SH").frame
    assert bars["volume"].tolist() == pytest.approx((original["volume"] * 100).tolist())  # lots -> shares
    assert bars["open"].tolist() == pytest.approx(original["open"].tolist())


def test_reports_the_course_files_non_positive_prices(home):
    report = import_csv(MarketStore(home), None, COURSE_FILE)
    findings = {f["check"]: f for f in report.validation["findings"]}
    original = pd.read_csv(COURSE_FILE)
    expected = sum(float(line.split(",")[3]) <= 0 for line in COURSE_FILE.read_text().splitlines()[1:] if line.strip())
    assert expected > 0  # the fixture keeps the course file's negative prices
    assert findings["non-positive close prices"]["count"] == int((original["close"] <= 0).sum()) == expected
    assert findings["non-positive close prices"]["examples"][0] == "2010-04-26"


def test_imports_a_tushare_pro_daily_dump_newest_first(home, tmp_path):
    sample = pd.read_csv(SAMPLE_FILE).tail(30)
    dump = pd.DataFrame({
        "ts_code": "600519.SH",
        "trade_date": pd.to_datetime(sample["date"]).dt.strftime("%Y%m%d"),
        "open": sample["open"], "high": sample["high"], "low": sample["low"], "close": sample["close"],
        "pre_close": sample["close"].shift(), "change": 0.0, "pct_chg": 0.0,
        "vol": sample["volume"], "amount": sample["volume"] * sample["close"] / 10,
    }).iloc[::-1]
    dump.to_csv(tmp_path / "dump.csv", index=False)
    imported = read_bars_csv(tmp_path / "dump.csv")
    assert imported.layout == "pro" and imported.code_in_file == "600519.SH" and imported.price_basis == "none"
    assert imported.frame["date"].is_monotonic_increasing
    assert imported.frame["date"].iloc[-1] == pd.Timestamp(sample["date"].iloc[-1])
    assert imported.frame["volume"].iloc[-1] == pytest.approx(sample["volume"].iloc[-1] * 100)
    assert imported.frame["amount"].iloc[-1] == pytest.approx(dump["amount"].iloc[0] * 1000)


def test_imports_a_yahoo_file_with_adjusted_close_as_factors(home, tmp_path):
    sample = pd.read_csv(SAMPLE_FILE).tail(50)
    factor = np.linspace(0.9, 1.0, len(sample))  # Yahoo's Adj Close meets Close on the newest bar
    yahoo = pd.DataFrame({"Date": sample["date"], "Open": sample["open"], "High": sample["high"], "Low": sample["low"],
                          "Close": sample["close"], "Adj Close": sample["close"] * factor, "Volume": sample["volume"]})
    yahoo.to_csv(tmp_path / "AAPL.csv", index=False)
    report = import_csv(MarketStore(home), "aapl", tmp_path / "AAPL.csv")
    assert report.ticker == "AAPL"
    qfq = MarketStore(home).read_bars("AAPL", "qfq").frame
    none = MarketStore(home).read_bars("AAPL", "none").frame
    assert qfq["close"].tolist() == pytest.approx((sample["close"] * factor).tolist())
    assert none["close"].tolist() == pytest.approx(sample["close"].tolist())


def test_a_generic_file_with_a_column_mapping(home, tmp_path):
    sample = pd.read_csv(SAMPLE_FILE).tail(20)
    pd.DataFrame({"Day": sample["date"], "Last": sample["close"], "Shares": sample["volume"]}).to_csv(tmp_path / "x.csv", index=False)
    report = import_csv(MarketStore(home), "SPX", tmp_path / "x.csv", column_map="date=Day,close=Last,volume=Shares")
    assert report.rows == 20
    assert MarketStore(home).read_bars("SPX").frame["close"].tolist() == pytest.approx(sample["close"].tolist())
    with pytest.raises(BadInputError, match="Nope"):
        import_csv(MarketStore(home), "SPX", tmp_path / "x.csv", column_map="date=Day,close=Nope")


@pytest.mark.parametrize(
    "values, expected",
    [
        (["2020-01-02", "2020-01-03"], "%Y-%m-%d"),
        (["20200102", "20200103"], "%Y%m%d"),
        (["13/01/2020", "02/01/2020"], "%d/%m/%Y"),  # 13 can only be a day
        (["01/13/2020", "01/02/2020"], "%m/%d/%Y"),
    ],
)
def test_date_order_is_inferred_from_the_whole_column(values, expected):
    assert infer_date_format(pd.Series(values)) == expected


def test_truly_ambiguous_dates_are_refused_never_guessed():
    with pytest.raises(DateFormatError, match="--date-format"):
        infer_date_format(pd.Series(["01/02/2020", "03/04/2020"]))


def test_ambiguous_dates_import_with_an_explicit_format(home, tmp_path):
    (tmp_path / "d.csv").write_text("date,close\n01/02/2020,10\n03/02/2020,11\n")
    with pytest.raises(DateFormatError):
        read_bars_csv(tmp_path / "d.csv")
    frame = read_bars_csv(tmp_path / "d.csv", date_format="%d/%m/%Y").frame
    assert frame["date"].tolist() == [pd.Timestamp("2020-02-01"), pd.Timestamp("2020-02-03")]


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01\x02\xff\xfe", b"date,close\n", b"foo,bar\n1,2\n", b"date,close\n2020-01-02,abc\n",
     b"date,close\n2020-13-45,10\n", b'date,close\n"2020-01-02,10\n'],
)
def test_malformed_files_give_a_clear_error(tmp_path, content):
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(ForecastError) as info:
        read_bars_csv(tmp_path / "bad.csv")
    assert "\n" not in str(info.value) and str(info.value)


SAMPLE_LINES = SAMPLE_FILE.read_text().splitlines()[:40]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cuts=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 80), st.text(max_size=6)), max_size=6),
    drop=st.sets(st.integers(0, 39), max_size=5),
)
def test_mutated_files_never_crash_the_importer(tmp_path, cuts, drop):
    lines = [line for i, line in enumerate(SAMPLE_LINES) if i not in drop]
    for row, col, text in cuts:
        if lines:
            row %= len(lines)
            lines[row] = lines[row][:col] + text + lines[row][col + len(text):]
    path = tmp_path / "mutated.csv"
    path.write_bytes("\n".join(lines).encode("utf-8", "replace"))
    try:
        result = read_bars_csv(path)
    except ForecastError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert result.frame["date"].is_monotonic_increasing
        assert list(result.frame.columns)[:6] == ["date", "open", "high", "low", "close", "volume"]


def test_a_utf16_file_reads_and_a_latin1_one_gets_advice(home, tmp_path):
    from forecast.data.sources.csv_file import read_csv_rows
    from forecast.errors import CorruptFileError

    text = "Date,Close\n2021-01-04,10.5\n2021-01-05,10.7\n"
    utf16 = tmp_path / "excel.csv"
    utf16.write_text(text, encoding="utf-16")  # with its byte-order mark, as Excel writes "Unicode text"
    assert read_csv_rows(utf16)["Close"].tolist() == ["10.5", "10.7"]
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("Date,Close,Börse\n2021-01-04,10.5,Zürich\n".encode("latin-1") + bytes([0x81, 0xff, 0x30]) + b"\n")
    with pytest.raises(CorruptFileError, match="save it as UTF-8"):
        read_csv_rows(latin1)


def test_rows_with_more_fields_than_the_header_are_refused_not_shifted(home, tmp_path):
    from forecast.data.sources.csv_file import read_csv_rows
    from forecast.errors import CorruptFileError

    shifted = tmp_path / "extra.csv"
    shifted.write_text("date,close\n2021-01-04,10.5,122.379\n2021-01-05,10.7,122.4\n")
    with pytest.raises(CorruptFileError, match="1 field\\(s\\) more than its header names \\(2\\)"):
        read_csv_rows(shifted)


def test_an_imported_series_without_factors_reports_its_last_close_as_imported(home, tmp_path):
    from typer.testing import CliRunner

    from forecast.cli import app

    path = tmp_path / "plain.csv"
    path.write_text("Date,Close\n2021-01-04,10.5\n2021-01-05,10.7\n" + "".join(
        f"2021-{m:02d}-{d:02d},11.0\n" for m in range(2, 5) for d in (3, 10, 17, 24)))
    result = CliRunner().invoke(app, ["fetch", "PLAIN", "--source", "csv", "--file", str(path), "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)["results"]
    assert report["last_close"] == 11.0 and report["adjust"] == "none"
    assert not any("not available" in note for note in report["notes"])  # no apology on every import
