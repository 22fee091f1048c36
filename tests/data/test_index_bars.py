"""Index bars: index codes are known by rule and fetched from ``index_daily``, through the real client and the fake."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.fetching import update_from_tushare
from forecast.data.sources import tushare_pro
from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
from forecast.data.store import MarketStore
from forecast.data.tickers import parse_ticker
from forecast.errors import AmbiguousTickerError

runner = CliRunner()
AFTER_CLOSE_SAT = dt.datetime(2020, 12, 26, 10, 0)


def client_for(fake) -> TushareClient:
    return TushareClient(fake.valid_token, timeout=2.0, retry=RetryPolicy(attempts=2, sleep=lambda s: None))


@pytest.fixture
def indexed(fake_tushare):
    """The fake, also serving CSI 300 and SZSE Component bars (Moutai's bars scaled, in index_daily's own columns)."""
    m = fake_tushare.market
    moutai = m.daily[m.daily.ts_code == "600519.SH"]
    m.index_daily = pd.concat([moutai.assign(ts_code="000300.SH", close=moutai["close"] * 3),
                               moutai.assign(ts_code="399001.SZ", close=moutai["close"] * 7)], ignore_index=True)
    return fake_tushare


@pytest.mark.parametrize("code, is_index", [
    ("000300.SH", True), ("000001.SH", True), ("000905.SH", True), ("399001.SZ", True), ("399006.SZ", True),
    ("930050.CSI", True), ("000922.csi", True), ("899050.BJ", True),
    ("600519.SH", False), ("688981.SH", False), ("510300.SH", False), ("000001.SZ", False), ("300750.SZ", False),
    ("920118.BJ", False), ("430047.BJ", False), ("AAPL", False), ("^GSPC", False),
])
def test_index_codes_are_known_by_rule(code, is_index):
    assert parse_ticker(code).is_index is is_index


def test_a_bare_index_number_is_the_index_when_the_listing_has_no_such_stock_and_ambiguous_when_it_has():
    listed = {"000001.SZ": "平安银行", "600519.SH": "贵州茅台"}
    assert str(parse_ticker("000300", listed)) == "000300.SH"
    with pytest.raises(AmbiguousTickerError, match="平安银行"):
        parse_ticker("000001", listed)
    with pytest.raises(AmbiguousTickerError, match="CSI 300"):
        parse_ticker("000300")  # no listing: both readings, as before
    assert str(parse_ticker("000858", listed)) == "000858.SZ"  # any other 000xxx: the stock


def test_an_index_is_fetched_from_index_daily_with_unit_factors_in_stock_units(home, indexed):
    store = MarketStore(home)
    reports, failures = update_from_tushare(store, ["000300.SH"], client_for(indexed), now=AFTER_CLOSE_SAT)
    assert failures == [] and reports[0].new_rows == len(indexed.market.index_daily) // 2
    assert indexed.calls("daily") == indexed.calls("adj_factor") == 0 and indexed.calls("index_daily") >= 1
    stored = store.read("000300.SH").frame
    raw = indexed.market.index_daily.query("ts_code == '000300.SH'").sort_values("trade_date")
    assert (stored["adj_factor"] == 1.0).all()
    np.testing.assert_allclose(stored["close"], raw["close"])
    np.testing.assert_allclose(stored["volume"], raw["vol"] * 100)  # lots -> shares, as for a stock
    np.testing.assert_allclose(stored["amount"], raw["amount"] * 1000)  # thousands of CNY -> CNY
    again, _ = update_from_tushare(store, ["000300.SH"], client_for(indexed), now=AFTER_CLOSE_SAT + dt.timedelta(days=3))
    assert again[0].new_rows == 0 and indexed.calls("daily") == 0  # the incremental path asks index_daily too


def test_factors_of_an_index_are_ones_on_its_days(indexed):
    factors = tushare_pro.fetch_factors(client_for(indexed), "399001.SZ", "2020-12-01", "2020-12-25")
    assert len(factors) > 10 and (factors["adj_factor"] == 1.0).all()
    assert indexed.calls("adj_factor") == 0


def test_a_market_day_serves_stocks_whole_market_and_each_index_by_its_code(indexed):
    day = tushare_pro.fetch_market_day(client_for(indexed), "2020-12-25", {"600519.SH", "000300.SH", "399001.SZ"})
    assert sorted(day["ts_code"]) == ["000300.SH", "399001.SZ", "600519.SH"]
    assert day.set_index("ts_code").loc[["000300.SH", "399001.SZ"], "adj_factor"].eq(1.0).all()
    assert (indexed.calls("daily"), indexed.calls("adj_factor"), indexed.calls("index_daily")) == (1, 1, 2)


def test_forecast_fetch_of_an_index_code_and_of_its_bare_number_once_the_listing_is_cached(home, indexed):
    result = runner.invoke(app, ["fetch", "000300.SH", "--end", "2020-12-25", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["results"][0]
    assert report["ticker"] == "000300.SH" and report["rows"] == len(indexed.market.index_daily) // 2
    bare = runner.invoke(app, ["fetch", "000300", "--end", "2020-12-25"])
    assert bare.exit_code == int(AmbiguousTickerError.exit_code)
    assert "ambiguous" in bare.output and "Traceback" not in bare.output
    from fake_tushare import listings_frame

    from forecast.data.universe_cache import load_listings
    from forecast.workspace import Workspace

    indexed.market.stock_basic = listings_frame([("000001.SZ", "平安银行", "银行", "主板", "L", "19910403", None)])
    load_listings(Workspace.at(home), client_for(indexed))  # caches the listing the real way
    settled = runner.invoke(app, ["fetch", "000300", "--end", "2020-12-25", "--json"])
    assert settled.exit_code == 0, settled.output
    assert json.loads(settled.stdout)["results"][0]["ticker"] == "000300.SH"


# --- company names in `data list` (the listing cached by the real path) --------------------------------

def test_data_list_shows_the_cached_company_name_next_to_the_code_and_null_when_unknown(home, indexed):
    from fake_tushare import listings_frame

    from forecast.data.universe_cache import load_listings
    from forecast.workspace import Workspace

    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH", "000300.SH"], client_for(indexed), now=AFTER_CLOSE_SAT)
    before = runner.invoke(app, ["data", "list", "--json"])
    assert [(s["ticker"], s["name"]) for s in json.loads(before.stdout)] == [("000300.SH", None), ("600519.SH", None)]
    indexed.market.stock_basic = listings_frame([("600519.SH", "贵州茅台", "白酒", "主板", "L", "20010827", None)])
    load_listings(Workspace.at(home), client_for(indexed))
    listed = runner.invoke(app, ["data", "list", "--json"])
    assert {s["ticker"]: s["name"] for s in json.loads(listed.stdout)} == {"000300.SH": None, "600519.SH": "贵州茅台"}
    lines = runner.invoke(app, ["data", "list"]).stdout.splitlines()
    moutai = next(line for line in lines if line.startswith("600519.SH"))
    assert moutai.split()[1] == "贵州茅台"
    index_line = next(line for line in lines if line.startswith("000300.SH"))
    import unicodedata

    def columns(text: str) -> int:  # terminal columns: a CJK character takes two
        return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)

    assert columns(moutai[:moutai.index(" rows")]) == columns(index_line[:index_line.index(" rows")])  # aligned on screen
