"""Incremental tushare updates into the store, end to end against the fake server."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_FILE
from fake_tushare import market_from_sample

from forecast.data.fetching import update_from_tushare
from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
from forecast.data.store import MarketStore
from forecast.errors import SourceError, UnknownTickerError

AFTER_CLOSE_SAT = dt.datetime(2020, 12, 26, 10, 0)  # Saturday after the sample's last bar


def client_for(fake) -> TushareClient:
    return TushareClient(fake.valid_token, timeout=2.0, retry=RetryPolicy(attempts=2, sleep=lambda s: None))


def test_first_fetch_stores_raw_bars_and_factors_and_adjusts_on_read(home, fake_tushare):
    store = MarketStore(home)
    reports, failures = update_from_tushare(store, ["600519"], client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    assert failures == [] and reports[0].new_rows == len(fake_tushare.market.daily)
    stored = store.read("600519.SH")
    assert stored.price_basis == "raw" and stored.source == "tushare"
    raw = fake_tushare.market.daily.sort_values("trade_date").reset_index(drop=True)
    factors = fake_tushare.market.factors.sort_values("trade_date")["adj_factor"].to_numpy()
    hfq = store.read_bars("600519.SH", "hfq").frame
    qfq = store.read_bars("600519.SH", "qfq").frame
    none = store.read_bars("600519.SH", "none").frame
    np.testing.assert_allclose(none["close"], raw["close"])
    np.testing.assert_allclose(hfq["close"], raw["close"] * factors)
    np.testing.assert_allclose(qfq["close"], raw["close"] * factors / factors[-1])
    assert qfq["close"].iloc[-1] == pytest.approx(none["close"].iloc[-1])  # qfq's base is the newest bar


def test_a_rerun_with_nothing_new_makes_no_call_and_stores_nothing(home, fake_tushare):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    before = store.path_for("600519.SH").stat().st_mtime_ns
    calls = fake_tushare.calls()
    reports, _ = update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    assert fake_tushare.calls() == calls
    assert reports[0].new_rows == 0 and "up to date" in reports[0].notes[0]
    assert store.path_for("600519.SH").stat().st_mtime_ns == before


def test_monday_morning_before_publication_makes_no_call(home, fake_tushare):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    calls = fake_tushare.calls()
    update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), now=dt.datetime(2020, 12, 28, 9, 0))
    assert fake_tushare.calls() == calls


def test_an_update_fetches_only_the_missing_days_with_a_small_overlap(home, fake_tushare):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), end="2020-12-18", now=AFTER_CLOSE_SAT)
    assert store.read("600519.SH").frame["date"].iloc[-1] == pd.Timestamp("2020-12-18")
    fake_tushare.requests.clear()
    reports, _ = update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    assert reports[0].new_rows == 5  # 21..25 December
    assert reports[0].revised_rows == 0
    assert fake_tushare.calls() == 2  # daily + adj_factor
    assert fake_tushare.requests[0]["params"]["start_date"] < "20201218"  # overlap re-reads stored days
    assert len(store.read("600519.SH").frame) == len(fake_tushare.market.daily)


def test_a_revised_row_in_the_overlap_is_detected_and_replaced(home, fake_tushare):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), end="2020-12-18", now=AFTER_CLOSE_SAT)
    daily = fake_tushare.market.daily
    daily.loc[daily.trade_date == "20201217", "close"] += 1.5
    reports, _ = update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    assert reports[0].revised_rows == 1
    frame = store.read_bars("600519.SH", "none").frame.set_index("date")
    assert frame.loc["2020-12-17", "close"] == pytest.approx(daily.loc[daily.trade_date == "20201217", "close"].iloc[0])


def test_rebased_factors_are_refreshed_so_one_series_keeps_one_base(home, fake_tushare):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), end="2020-12-18", now=AFTER_CLOSE_SAT)
    qfq_before = store.read_bars("600519.SH", "qfq").frame.set_index("date")["close"]
    fake_tushare.market.factors["adj_factor"] *= 3.0
    reports, _ = update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    assert any("rebased" in n for n in reports[0].notes)
    stored = store.read("600519.SH").frame
    np.testing.assert_allclose(stored["adj_factor"], fake_tushare.market.factors.sort_values("trade_date")["adj_factor"])
    qfq_after = store.read_bars("600519.SH", "qfq").frame.set_index("date")["close"]
    np.testing.assert_allclose(qfq_after.loc[qfq_before.index], qfq_before)


def test_an_unknown_ticker_is_reported_and_others_still_update(home, fake_tushare):
    store = MarketStore(home)
    reports, failures = update_from_tushare(store, ["600519.SH", "600000.SH"], client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    assert [r.ticker for r in reports] == ["600519.SH"]
    assert failures[0].ticker == "600000.SH" and isinstance(failures[0].error, UnknownTickerError)
    assert not store.has("600000.SH")


def test_a_failure_midway_stores_nothing_partial(home, fake_tushare):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), end="2020-12-18", now=AFTER_CLOSE_SAT)
    before = store.path_for("600519.SH").read_bytes()
    # daily answers, then adj_factor keeps failing: the new daily rows must not be stored alone
    fake_tushare.failures = [None, "http500", "http500"]
    reports, failures = update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    assert isinstance(failures[0].error, SourceError)
    assert store.path_for("600519.SH").read_bytes() == before


def test_many_tickers_missing_one_day_use_whole_market_calls(home, fake_tushare):
    codes = tuple(f"6000{i:02d}.SH" for i in range(10))
    fake_tushare.market = market_from_sample(SAMPLE_FILE, codes=codes)
    store = MarketStore(home)
    client = client_for(fake_tushare)
    update_from_tushare(store, list(codes), client, end="2020-12-24", now=AFTER_CLOSE_SAT)
    fake_tushare.requests.clear()
    reports, failures = update_from_tushare(store, list(codes), client_for(fake_tushare), now=AFTER_CLOSE_SAT)
    assert failures == []
    assert fake_tushare.calls() == 2  # daily + adj_factor for 2020-12-25, for all ten
    assert all(r.new_rows == 1 for r in reports)
    assert {r["params"].get("trade_date") for r in fake_tushare.requests} == {"20201225"}
    for code in codes:
        assert store.read(code).frame["date"].iloc[-1] == pd.Timestamp("2020-12-25")


def test_the_cli_reads_the_token_from_forecast_toml_and_reports_the_adjusted_close(home, fake_tushare, monkeypatch):
    import json

    from typer.testing import CliRunner

    from forecast.cli import app

    monkeypatch.delenv("TUSHARE_TOKEN")
    (home / "forecast.toml").write_text(f'[tushare]\ntoken = "{fake_tushare.valid_token}"\n')
    result = CliRunner().invoke(app, ["fetch", "600519.SH", "--end", "2020-12-25", "--adjust", "none", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["results"][0]
    raw_last = fake_tushare.market.daily.sort_values("trade_date")["close"].iloc[-1]
    assert report["adjust"] == "none" and report["last_close"] == pytest.approx(raw_last)
    assert fake_tushare.valid_token not in result.output


def test_a_whole_market_day_larger_than_a_page_is_paged_by_offset(home, fake_tushare, monkeypatch):
    from forecast.data.sources import tushare_pro

    codes = tuple(f"6000{i:02d}.SH" for i in range(10))
    fake_tushare.market = market_from_sample(SAMPLE_FILE, codes=codes)
    monkeypatch.setattr(tushare_pro, "PAGE_LIMIT", 4)
    fake_tushare.page_limit = 4
    day = tushare_pro.fetch_market_day(client_for(fake_tushare), "2020-12-25", set(codes))
    assert sorted(day["ts_code"]) == sorted(codes)
    assert fake_tushare.calls("daily") == 3  # 4 + 4 + 2 rows


def test_an_earlier_start_backfills_older_history(home, fake_tushare):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), start="2019-01-01", now=AFTER_CLOSE_SAT)
    assert store.read("600519.SH").frame["date"].iloc[0] >= pd.Timestamp("2019-01-01")
    reports, failures = update_from_tushare(store, ["600519.SH"], client_for(fake_tushare), start="2015-01-01",
                                            now=AFTER_CLOSE_SAT)
    frame = store.read("600519.SH").frame
    assert failures == [] and any("backfilled" in n for n in reports[0].notes)
    assert frame["date"].iloc[0] == pd.Timestamp("2015-01-05")  # the first session of 2015
    assert frame["date"].is_unique and frame["date"].is_monotonic_increasing
    assert reports[0].new_rows == int(((frame["date"] >= "2015-01-01") & (frame["date"] < "2019-01-01")).sum())
