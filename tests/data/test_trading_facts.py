"""The trading rules' facts: tushare's stk_limit, suspend_d and namechange through the real client and the
fake server, and their store under <home>/data/trading/."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_FILE
from fake_tushare import market_from_sample

from forecast.data import trading_facts
from forecast.data.fetching import update_from_tushare
from forecast.data.sources import tushare_pro
from forecast.data.sources.tushare_pro import NoPointsError, RetryPolicy, TushareClient
from forecast.data.store import MarketStore
from forecast.data.trading_facts import load_facts, refresh_facts
from forecast.data.trading_status import trading_status
from forecast.errors import AuthError, CorruptFileError
from forecast.workspace import Workspace

AFTER_CLOSE_SAT = dt.datetime(2020, 12, 26, 10, 0)  # Saturday after the sample's last bar


def client_for(fake) -> TushareClient:
    return TushareClient(fake.valid_token, timeout=2.0, retry=RetryPolicy(attempts=2, sleep=lambda s: None))


def stk_limit_rows(codes, days) -> pd.DataFrame:
    """One row per code and day: pre_close 100.00, limits 110.00 / 90.00 (numbers the test can read back)."""
    return pd.DataFrame([(day, code, 100.0, 110.0, 90.0) for code in codes for day in days],
                        columns=["trade_date", "ts_code", "pre_close", "up_limit", "down_limit"])


SUSPENSIONS = pd.DataFrame([("600519.SH", "20201215", None, "S"), ("600519.SH", "20201216", "09:30-10:30", "S"),
                            ("600519.SH", "20201217", None, "R"), ("600000.SH", "20201201", None, "S")],
                           columns=["ts_code", "trade_date", "suspend_timing", "suspend_type"])
NAMES = pd.DataFrame([("600519.SH", "贵州茅台", "20010827", None, "20010820", "其他"),
                      ("600000.SH", "浦发银行", "19991110", "20201209", "19991101", "其他"),
                      ("600000.SH", "ST浦发", "20201210", None, "20201207", "ST")],
                     columns=["ts_code", "name", "start_date", "end_date", "ann_date", "change_reason"])
DECEMBER = ["20201214", "20201215", "20201216", "20201217", "20201218", "20201221", "20201222", "20201223",
            "20201224", "20201225"]


@pytest.fixture
def facts_market(fake_tushare):
    fake_tushare.market.stk_limit = stk_limit_rows(["600519.SH", "600000.SH"], DECEMBER)
    fake_tushare.market.suspend_d = SUSPENSIONS.copy()
    fake_tushare.market.namechange = NAMES.copy()
    return fake_tushare


def params_of(request: dict) -> dict:
    return {k: v for k, v in request["params"].items() if k != "ts_type_name"}


# --- the source ----------------------------------------------------------------------------------

def test_stk_limit_sends_its_real_fields_and_comes_back_dated(facts_market):
    rows = tushare_pro.fetch_stk_limit(client_for(facts_market), "600519.SH", "2020-12-21", "2020-12-25")
    body = facts_market.requests[-1]
    assert body["api_name"] == "stk_limit" and body["fields"] == "trade_date,ts_code,pre_close,up_limit,down_limit"
    assert params_of(body) == {"ts_code": "600519.SH", "start_date": "20201221", "end_date": "20201225", "limit": 5800}
    assert list(rows.columns) == ["trade_date", "ts_code", "pre_close", "up_limit", "down_limit"]
    assert rows["trade_date"].tolist() == list(pd.to_datetime(DECEMBER[5:]))  # oldest first, Timestamps
    assert rows["up_limit"].tolist() == [110.0] * 5 and rows["down_limit"].tolist() == [90.0] * 5


def test_stk_limit_pages_by_offset_at_its_own_row_limit(facts_market, monkeypatch):
    monkeypatch.setitem(tushare_pro.ENDPOINT_PAGE_LIMITS, "stk_limit", 4)
    facts_market.page_limit = 4
    rows = tushare_pro.fetch_stk_limit(client_for(facts_market), "600519.SH", "2020-12-01", "2020-12-31")
    assert len(rows) == 10 and rows["trade_date"].is_unique
    assert facts_market.calls("stk_limit") == 3  # 4 + 4 + 2 rows
    assert [params_of(r).get("offset", 0) for r in facts_market.requests] == [0, 4, 8]


def test_a_whole_market_day_of_stk_limit(facts_market):
    rows = tushare_pro.fetch_stk_limit(client_for(facts_market), None, "2020-12-25", "2020-12-25")
    assert sorted(rows["ts_code"]) == ["600000.SH", "600519.SH"]
    assert params_of(facts_market.requests[-1]) == {"trade_date": "20201225", "limit": 5800}


def test_suspensions_keep_the_intraday_timing_and_take_several_codes(facts_market):
    rows = tushare_pro.fetch_suspensions(client_for(facts_market), "600519.SH,600000.SH", "2020-12-01", "2020-12-31")
    assert params_of(facts_market.requests[-1])["ts_code"] == "600519.SH,600000.SH"
    assert rows["trade_date"].tolist() == list(pd.to_datetime(["20201201", "20201215", "20201216", "20201217"]))
    assert rows["suspend_timing"].tolist() == [None, None, "09:30-10:30", None]
    assert rows["suspend_type"].tolist() == ["S", "S", "S", "R"]
    none = tushare_pro.fetch_suspensions(client_for(facts_market), "600519.SH", "2021-01-01", "2021-01-31")
    assert len(none) == 0 and list(none.columns) == ["ts_code", "trade_date", "suspend_timing", "suspend_type"]


def test_name_changes_of_one_ticker_and_announced_in_a_window(facts_market):
    rows = tushare_pro.fetch_name_changes(client_for(facts_market), "600000.SH")
    assert rows["name"].tolist() == ["浦发银行", "ST浦发"]  # oldest first
    assert rows["start_date"].tolist() == [pd.Timestamp("1999-11-10"), pd.Timestamp("2020-12-10")]
    assert rows["end_date"].iloc[0] == pd.Timestamp("2020-12-09") and pd.isna(rows["end_date"].iloc[1])
    window = tushare_pro.fetch_name_changes(client_for(facts_market), None, announced_from="2020-12-01",
                                            announced_to="2020-12-31")
    assert window["name"].tolist() == ["ST浦发"]  # by announcement date, 2020-12-07
    assert params_of(facts_market.requests[-1]) == {"start_date": "20201201", "end_date": "20201231", "limit": 6000}


def test_no_points_for_an_endpoint_is_its_own_auth_error(facts_market):
    facts_market.restricted = {"stk_limit"}
    with pytest.raises(NoPointsError, match="stk_limit") as info:
        tushare_pro.fetch_stk_limit(client_for(facts_market), "600519.SH", "2020-12-01", "2020-12-31")
    assert isinstance(info.value, AuthError) and info.value.api_name == "stk_limit"


# --- the store -----------------------------------------------------------------------------------

def test_refresh_stores_every_kind_and_load_gives_it_back(home, facts_market):
    workspace = Workspace.at(home)
    assert load_facts(workspace) == trading_facts.TradingFacts(None, None, None)  # nothing stored yet
    notes = refresh_facts(client_for(facts_market), workspace, ["600519.SH", "600000.SH"], "2020-12-01", "2020-12-31")
    assert notes == ["stk_limit: 20 rows for 2 ticker(s)", "suspend_d: 4 rows for 2 ticker(s)",
                     "namechange: 3 rows for 2 ticker(s)"]
    for kind in ("stk_limit", "suspend_d", "namechange"):
        assert workspace.trading_file(kind).is_file()
    facts = load_facts(workspace)
    assert facts.stk_limit is not None and len(facts.stk_limit) == 20
    assert facts.suspensions is not None and len(facts.suspensions) == 4
    assert facts.names is not None and len(facts.names) == 3
    only = load_facts(workspace, ["600519.SH"])
    assert only.stk_limit is not None and set(only.stk_limit["ts_code"]) == {"600519.SH"}
    assert only.names is not None and only.names["name"].tolist() == ["贵州茅台"]
    assert load_facts(workspace, ["000001.SZ"]) == trading_facts.TradingFacts(None, None, None)
    assert load_facts(workspace, []) == trading_facts.TradingFacts(None, None, None)
    assert trading_facts.known_tickers(workspace) == {"600519.SH", "600000.SH"}


def test_stored_facts_drive_the_trading_status(home, facts_market):
    workspace = Workspace.at(home)
    refresh_facts(client_for(facts_market), workspace, ["600519.SH", "600000.SH"], "2020-12-01", "2020-12-31")
    facts = load_facts(workspace)
    days = pd.to_datetime(["2020-12-08", "2020-12-09", "2020-12-10", "2020-12-11", "2020-12-14", "2020-12-15"])
    close = pd.DataFrame({"600000.SH": [10.0] * 6, "600519.SH": [100.0, 100.0, 100.0, 100.0, 100.0, np.nan]}, index=days)
    status = trading_status(close, close, stk_limit=facts.stk_limit, suspensions=facts.suspensions, names=facts.names)
    # 600000.SH is ST from 10 December: 10.00 x 1.05 = 10.50 (by rule), then stk_limit's 110.00 from 14 December
    assert status.up_limit["600000.SH"].tolist()[1:] == [11.00, 10.50, 10.50, 110.0, 110.0]
    assert status.suspended["600519.SH"].tolist() == [False] * 5 + [True]


def test_a_second_refresh_merges_and_replaces_its_span(home, facts_market):
    workspace = Workspace.at(home)
    client = client_for(facts_market)
    refresh_facts(client, workspace, ["600519.SH"], "2020-12-01", "2020-12-18")
    # tushare withdraws the suspension of 15 December; the next refresh's span covers it
    facts_market.market.suspend_d = SUSPENSIONS[SUSPENSIONS["trade_date"] != "20201215"].reset_index(drop=True)
    refresh_facts(client, workspace, ["600519.SH"], "2020-12-15", "2020-12-25")
    facts = load_facts(workspace)
    assert facts.stk_limit is not None and len(facts.stk_limit) == 10  # 5 days from the first, 5 more from the second
    assert facts.suspensions is not None
    assert facts.suspensions["trade_date"].tolist() == list(pd.to_datetime(["20201216", "20201217"]))


def test_names_are_asked_once_per_ticker_then_by_announcement(home, facts_market):
    workspace = Workspace.at(home)
    refresh_facts(client_for(facts_market), workspace, ["600519.SH", "600000.SH"], "2020-12-01", "2020-12-31")
    assert sorted(params_of(r)["ts_code"] for r in facts_market.requests if r["api_name"] == "namechange") == [
        "600000.SH", "600519.SH"]
    facts_market.requests.clear()
    facts_market.market.namechange = pd.concat([NAMES, pd.DataFrame(
        [("600000.SH", "浦发银行", "20201228", None, "20201224", "撤销ST")], columns=NAMES.columns)], ignore_index=True)
    refresh_facts(client_for(facts_market), workspace, ["600519.SH", "600000.SH"], "2020-12-28", "2020-12-31")
    asked = [params_of(r) for r in facts_market.requests if r["api_name"] == "namechange"]
    # one window call: announced from 31 days before the span's start (2020-11-27) to its end
    assert asked == [{"start_date": "20201127", "end_date": "20201231", "limit": 6000}]
    names = load_facts(workspace, ["600000.SH"]).names
    assert names is not None and names["name"].tolist() == ["浦发银行", "ST浦发", "浦发银行"]


def test_a_token_without_the_points_skips_that_kind_once(home, facts_market):
    facts_market.restricted = {"stk_limit"}
    workspace = Workspace.at(home)
    notes = refresh_facts(client_for(facts_market), workspace, ["600519.SH", "600000.SH"], "2020-12-01", "2020-12-31")
    assert notes[0] == "stk_limit: this token cannot read it; limits by rule"
    assert facts_market.calls("stk_limit") == 1  # skipped for the second ticker, not asked again
    facts = load_facts(workspace)
    assert facts.stk_limit is None and facts.suspensions is not None and facts.names is not None


def test_a_damaged_file_is_one_line_and_a_refresh_replaces_it(home, facts_market):
    workspace = Workspace.at(home)
    refresh_facts(client_for(facts_market), workspace, ["600519.SH"], "2020-12-01", "2020-12-31")
    workspace.trading_file("suspend_d").write_bytes(b"not parquet")
    with pytest.raises(CorruptFileError) as info:
        load_facts(workspace)
    assert "suspend_d.parquet" in str(info.value) and "\n" not in str(info.value)
    notes = refresh_facts(client_for(facts_market), workspace, ["600519.SH"], "2020-12-01", "2020-12-31")
    assert any("unreadable" in n for n in notes)
    facts = load_facts(workspace)
    assert facts.suspensions is not None and len(facts.suspensions) == 3


def test_many_tickers_over_few_days_use_whole_market_days(home, fake_tushare):
    codes = [f"6000{i:02d}.SH" for i in range(10)]
    fake_tushare.market.stk_limit = stk_limit_rows(codes + ["601111.SH"], DECEMBER)
    refresh_facts(client_for(fake_tushare), Workspace.at(home), codes, "2020-12-24", "2020-12-25")
    asked = [params_of(r) for r in fake_tushare.requests if r["api_name"] == "stk_limit"]
    assert [a["trade_date"] for a in asked] == ["20201224", "20201225"]
    assert all("ts_code" not in a for a in asked)
    stored = load_facts(Workspace.at(home)).stk_limit
    assert stored is not None and len(stored) == 20 and "601111.SH" not in set(stored["ts_code"])
    assert fake_tushare.calls("suspend_d") == 1  # ten codes in one call


def test_a_kind_with_no_rows_is_stored_and_read_back_empty(home, fake_tushare):
    workspace = Workspace.at(home)  # the fake serves no facts at all: every kind answers zero rows
    notes = refresh_facts(client_for(fake_tushare), workspace, ["600519.SH"], "2020-12-01", "2020-12-31")
    assert notes == ["stk_limit: 0 rows for 1 ticker(s)", "suspend_d: 0 rows for 1 ticker(s)",
                     "namechange: 0 rows for 1 ticker(s)"]
    assert workspace.trading_file("namechange").is_file()  # it records that the ticker's names were asked
    assert load_facts(workspace, ["600519.SH"]) == trading_facts.TradingFacts(None, None, None)
    fake_tushare.requests.clear()
    refresh_facts(client_for(fake_tushare), workspace, ["600519.SH"], "2020-12-01", "2020-12-31")
    assert "ts_code" not in params_of(next(r for r in fake_tushare.requests if r["api_name"] == "namechange"))


def test_indices_and_other_tickers_have_no_facts(home, fake_tushare):
    assert refresh_facts(client_for(fake_tushare), Workspace.at(home), ["000300.SH", "AAPL"], "2020-12-01",
                         "2020-12-31") == []
    assert fake_tushare.calls() == 0


# --- fetch ---------------------------------------------------------------------------------------

def test_fetch_refreshes_the_facts_of_what_it_fetched_when_asked(home, facts_market):
    store = MarketStore(home)
    reports, failures = update_from_tushare(store, ["600519.SH"], client_for(facts_market), now=AFTER_CLOSE_SAT,
                                            trading_facts=True)
    assert failures == []
    assert "trading facts: stk_limit: 10 rows for 1 ticker(s)" in reports[0].notes
    asked = params_of(next(r for r in facts_market.requests if r["api_name"] == "stk_limit"))
    assert (asked["start_date"], asked["end_date"]) == ("20050101", "20201225")  # the span the bars came from
    facts = load_facts(store.workspace)
    assert facts.stk_limit is not None and facts.suspensions is not None and facts.names is not None


def test_an_update_refreshes_only_the_new_days_facts(home, facts_market):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(facts_market), end="2020-12-18", now=AFTER_CLOSE_SAT,
                        trading_facts=True)
    facts_market.requests.clear()
    reports, _ = update_from_tushare(store, ["600519.SH"], client_for(facts_market), now=AFTER_CLOSE_SAT,
                                     trading_facts=True)
    asked = params_of(next(r for r in facts_market.requests if r["api_name"] == "stk_limit"))
    assert (asked["start_date"], asked["end_date"]) == ("20201221", "20201225")  # the sessions after the stored bars
    assert reports[0].calls == 2 + 3  # daily, adj_factor; stk_limit, suspend_d, one namechange window
    facts = load_facts(store.workspace)
    assert facts.stk_limit is not None and len(facts.stk_limit) == 10  # 14..18 from the first fetch, 21..25 now


def test_facts_asked_after_the_bars_cover_the_stored_history(home, facts_market):
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(facts_market), end="2020-12-18", now=AFTER_CLOSE_SAT)
    facts_market.requests.clear()
    update_from_tushare(store, ["600519.SH"], client_for(facts_market), now=AFTER_CLOSE_SAT, trading_facts=True)
    asked = params_of(next(r for r in facts_market.requests if r["api_name"] == "stk_limit"))
    first_bar = store.read("600519.SH").frame["date"].iloc[0].strftime("%Y%m%d")
    assert (asked["start_date"], asked["end_date"]) == (first_bar, "20201225")  # never fetched: the whole history


def test_fetch_without_facts_asks_only_for_bars(home, facts_market):
    update_from_tushare(MarketStore(home), ["600519.SH"], client_for(facts_market), now=AFTER_CLOSE_SAT)
    assert {r["api_name"] for r in facts_market.requests} == {"daily", "adj_factor"}
    assert not Workspace.at(home).trading_dir.exists()


def test_fetch_goes_on_when_the_facts_fail(home, facts_market):
    facts_market.market.stk_limit = None
    store = MarketStore(home)
    update_from_tushare(store, ["600519.SH"], client_for(facts_market), end="2020-12-18", now=AFTER_CLOSE_SAT)
    facts_market.failures = [None, None, "http500", "http500"]  # daily, adj_factor, then stk_limit fails twice
    reports, failures = update_from_tushare(store, ["600519.SH"], client_for(facts_market), now=AFTER_CLOSE_SAT,
                                            trading_facts=True)
    assert failures == [] and reports[0].new_rows == 5
    assert any(n.startswith("trading facts: not refreshed") for n in reports[0].notes)


def test_many_stored_tickers_missing_a_day_refresh_their_facts_by_day(home, fake_tushare):
    codes = tuple(f"6000{i:02d}.SH" for i in range(10))
    fake_tushare.market = market_from_sample(SAMPLE_FILE, codes=codes)
    fake_tushare.market.stk_limit = stk_limit_rows(codes, DECEMBER)
    store = MarketStore(home)
    update_from_tushare(store, list(codes), client_for(fake_tushare), end="2020-12-24", now=AFTER_CLOSE_SAT,
                        trading_facts=True)
    assert fake_tushare.calls("stk_limit") == fake_tushare.calls("namechange") == 10  # new: each one's history
    fake_tushare.requests.clear()
    reports, failures = update_from_tushare(store, list(codes), client_for(fake_tushare), now=AFTER_CLOSE_SAT,
                                            trading_facts=True)
    assert failures == [] and (fake_tushare.calls("daily"), fake_tushare.calls("adj_factor")) == (1, 1)
    # stk_limit for 25 December, whole market: one call; suspend_d: one call for the ten; names: one window call
    assert (fake_tushare.calls("stk_limit"), fake_tushare.calls("suspend_d"), fake_tushare.calls("namechange")) == (1, 1, 1)
    assert params_of(next(r for r in fake_tushare.requests if r["api_name"] == "stk_limit"))["trade_date"] == "20201225"
    stored = load_facts(store.workspace).stk_limit
    assert stored is not None and len(stored) == 10 * len(DECEMBER)  # 14..24 December from the first fetch, 25 now
