"""The whole market: tushare's reference endpoints, universes, the cached exchange calendar, resumable backfill.

Everything runs against the loopback fake (tests/fake_tushare.py) with the real
tushare client; nothing reads the shared datasets.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from conftest import SAMPLE_FILE, subprocess_env

from forecast.data import universe
from forecast.data.sources import reference, tushare_pro
from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
from forecast.errors import AuthError, ExitCode, RateLimitError, SourceError, UnknownUniverseError
from forecast.workspace import Workspace

LISTINGS = [
    ("600519.SH", "贵州茅台", "白酒", "主板", "L", "20010827", None),
    ("600036.SH", "招商银行", "银行", "主板", "L", "20020409", None),
    ("000001.SZ", "平安银行", "银行", "主板", "L", "19910403", None),
    ("600087.SH", "退市长油", "水运", "主板", "D", "19970610", "20140605"),
    ("300999.SZ", "暂停上市", "食品", "创业板", "P", "20200116", None),
]
CSI300_SNAPSHOTS = {  # 600036 joins in March; 000001 leaves in April
    "20200102": ["600519.SH", "000001.SZ"],
    "20200203": ["600519.SH", "000001.SZ"],
    "20200302": ["600519.SH", "000001.SZ", "600036.SH"],
    "20200401": ["600519.SH", "600036.SH"],
}


def make_client(fake) -> TushareClient:
    return TushareClient(fake.valid_token, timeout=2.0, retry=RetryPolicy(sleep=lambda s: None))


@pytest.fixture
def market(fake_tushare):
    """The fake, also serving listings, CSI 300 snapshots, CSI 300 bars and a trade_cal that reaches 2027."""
    from fake_tushare import index_weight_frame, listings_frame, trade_cal_frame

    m = fake_tushare.market
    m.stock_basic = listings_frame(LISTINGS)
    m.index_weight = index_weight_frame("000300.SH", CSI300_SNAPSHOTS)
    index_bars = m.daily[m.daily.ts_code == "600519.SH"].assign(ts_code="000300.SH")
    m.index_daily = index_bars
    m.trade_cal = trade_cal_frame("2026-12-01", "2027-01-31", closed=("2027-01-01",))
    return fake_tushare


# --- 1. the endpoints, through the real client ------------------------------------------------------

def test_stock_basic_lists_listed_delisted_and_paused_with_names(market):
    listings = reference.fetch_listings(make_client(market))
    assert list(listings.columns) == reference.LISTING_COLUMNS
    assert sorted(listings["list_status"]) == ["D", "L", "L", "L", "P"]
    moutai = listings.set_index("ts_code").loc["600519.SH"]
    assert moutai["name"] == "贵州茅台" and moutai["industry"] == "白酒"
    assert moutai["list_date"] == pd.Timestamp("2001-08-27") and pd.isna(moutai["delist_date"])
    assert listings.set_index("ts_code").loc["600087.SH", "delist_date"] == pd.Timestamp("2014-06-05")
    assert [r["params"]["list_status"] for r in market.requests] == ["L", "D", "P"]
    assert all(r["fields"] == reference.STOCK_BASIC_FIELDS for r in market.requests)


def test_index_weight_pages_by_offset_without_losing_or_repeating_a_row(market, monkeypatch):
    monkeypatch.setattr(tushare_pro, "PAGE_LIMIT", 3)
    market.page_limit = 3
    weights = reference.fetch_index_weights(make_client(market), "000300.SH", "2020-01-01", "2020-12-31")
    assert list(weights.columns) == reference.CONSTITUENT_COLUMNS
    assert len(weights) == sum(len(v) for v in CSI300_SNAPSHOTS.values()) == 9
    assert not weights.duplicated(["con_code", "trade_date"]).any()
    assert market.calls("index_weight") == 4  # pages of 3, 3, 3 and an empty one


def test_index_weight_asks_a_year_at_a_time(market):
    reference.fetch_index_weights(make_client(market), "000300.SH", "2018-06-01", "2020-12-31")
    spans = [(r["params"]["start_date"], r["params"]["end_date"]) for r in market.requests]
    assert spans == [("20180601", "20181231"), ("20190101", "20191231"), ("20200101", "20201231")]


def test_index_daily_gives_canonical_bars_with_unit_factors(market):
    bars = tushare_pro.fetch_index_bars(make_client(market), "000300.SH", "2020-12-01", "2020-12-25")
    assert len(bars) > 10 and (bars["ts_code"] == "000300.SH").all()
    assert (bars["adj_factor"] == 1.0).all()
    assert bars["date"].is_monotonic_increasing
    raw = market.market.index_daily.sort_values("trade_date").iloc[-1]
    assert bars["volume"].iloc[-1] == pytest.approx(raw["vol"] * 100)  # lots -> shares


def test_trade_cal_reads_open_and_closed_days(market):
    cal = reference.fetch_trade_calendar(make_client(market), "2026-12-28", "2027-01-05")
    assert cal["cal_date"].iloc[0] == pd.Timestamp("2026-12-28") and len(cal) == 9
    closed = cal.loc[~cal["is_open"], "cal_date"].dt.strftime("%Y-%m-%d").tolist()
    assert closed == ["2027-01-01", "2027-01-02", "2027-01-03"]
    assert market.requests[-1]["params"]["exchange"] == "SSE"


@pytest.mark.parametrize("api, call", [
    ("stock_basic", lambda c: reference.fetch_listings(c)),
    ("index_weight", lambda c: reference.fetch_index_weights(c, "000300.SH", "2020-01-01", "2020-02-01")),
    ("index_daily", lambda c: tushare_pro.fetch_index_bars(c, "000300.SH", "2020-01-01", "2020-02-01")),
    ("trade_cal", lambda c: reference.fetch_trade_calendar(c, "2026-12-01", "2027-01-05")),
])
def test_each_endpoint_classifies_the_services_errors(market, api, call):
    market.restricted = {api}
    with pytest.raises(AuthError, match=f"not enough points for '{api}'"):
        call(make_client(market))
    market.restricted = set()
    market.failures = ["rate_day"]
    with pytest.raises(RateLimitError, match="daily quota"):
        call(make_client(market))
    market.failures = ["http500"] * 4
    with pytest.raises(SourceError, match=f"'{api}' failed after 4 tries"):
        call(make_client(market))
    market.failures = ["rate_minute", "nonjson"]  # transient: retried, then answered
    assert len(call(make_client(market))) > 0


# --- 2. universes ----------------------------------------------------------------------------------

NOW = dt.datetime(2020, 6, 1, 12, tzinfo=dt.timezone.utc)


def test_index_members_are_date_spans_so_a_past_date_sees_the_members_of_then(home, market):
    client = make_client(market)
    csi300 = universe.resolve("csi300", "2020-02-15", home=home, client=client, now=NOW)
    assert csi300.tickers == ["000001.SZ", "600519.SH"]  # 600036 had not joined yet: no survivorship bias
    assert csi300.index_code == "000300.SH" and csi300.kind == "index"
    assert dict((m.ticker, m.name) for m in csi300.members)["600519.SH"] == "贵州茅台"
    today = universe.resolve("csi300", home=home, client=client, now=NOW)
    assert today.tickers == ["600036.SH", "600519.SH"] and today.as_of == dt.date(2020, 4, 1)
    membership = universe.load_index(Workspace.at(home), "000300.SH")
    spans = {m.ticker: m.spans for m in membership.members}
    assert spans["000001.SZ"] == (universe.Span(dt.date(2020, 1, 2), dt.date(2020, 3, 31)),)
    assert spans["600036.SH"] == (universe.Span(dt.date(2020, 3, 2), None),)
    assert universe.IndexMembership.from_dict(membership.to_dict()) == membership
    with pytest.raises(UnknownUniverseError, match="known from 2020-01-02"):
        universe.resolve("000300.SH", "2019-12-01", home=home, client=client, now=NOW)


def test_a_member_that_leaves_and_returns_has_two_spans():
    snapshots = pd.DataFrame({"con_code": ["A", "A", "A", "B", "B", "B"],
                              "trade_date": pd.to_datetime(["2020-01-01", "2020-03-01", "2020-04-01",
                                                            "2020-01-01", "2020-02-01", "2020-04-01"])})
    membership = universe.IndexMembership.from_snapshots("X", snapshots)
    spans = {m.ticker: m.spans for m in membership.members}
    assert spans["A"] == (universe.Span(dt.date(2020, 1, 1), dt.date(2020, 1, 31)), universe.Span(dt.date(2020, 3, 1), None))
    assert membership.on(dt.date(2020, 2, 15)) == ["B"]
    assert membership.on(dt.date(2020, 3, 15)) == ["A"]


def test_the_cache_is_refreshed_after_a_day_and_only_for_new_snapshots(home, market):
    client = make_client(market)
    universe.resolve("csi300", home=home, client=client, now=NOW)
    calls = len(market.requests)
    universe.resolve("csi300", home=home, client=client, now=NOW + dt.timedelta(hours=12))
    assert len(market.requests) == calls  # fresh: no call
    universe.resolve("csi300", home=home, client=client, now=NOW + dt.timedelta(days=2))
    weights = [r for r in market.requests[calls:] if r["api_name"] == "index_weight"]
    assert [w["params"]["start_date"] for w in weights] == ["20200402"]  # only after the last stored snapshot
    # without a client (no token) the stale cache still answers
    assert universe.resolve("csi300", home=home, now=NOW + dt.timedelta(days=30)).tickers == ["600036.SH", "600519.SH"]


def test_all_is_every_company_listed_on_the_date(home, market):
    client = make_client(market)
    now = universe.resolve("all", home=home, client=client, now=NOW)
    assert now.tickers == ["000001.SZ", "300999.SZ", "600036.SH", "600519.SH"]
    then = universe.resolve("all", "2010-01-04", home=home, client=client, now=NOW)
    assert "600087.SH" in then.tickers and "300999.SZ" not in then.tickers  # delisted 2014; listed 2020
    listing = universe.load_listings(Workspace.at(home))[0]
    assert universe.Listing.from_dict(listing.to_dict()) == listing


def test_watchlist_and_stored(home):
    from forecast.data.fetching import import_sample
    from forecast.data.store import MarketStore

    with pytest.raises(UnknownUniverseError, match="watchlist is empty"):
        universe.resolve("watchlist", home=home, watchlist=lambda: ())
    assert universe.resolve("watchlist", home=home, watchlist=lambda: ["600519.SH", "sz000001"]).tickers == ["000001.SZ", "600519.SH"]
    with pytest.raises(UnknownUniverseError, match="holds no ticker"):
        universe.resolve("stored", home=home)
    import_sample(MarketStore(home))
    assert universe.resolve("stored", home=home).tickers == ["600519.SH"]


def test_an_unresolvable_universe_is_a_not_found_error(home, market):
    with pytest.raises(UnknownUniverseError, match="unknown universe 'csi3000'") as info:
        universe.resolve("csi3000", home=home)
    assert info.value.exit_code == ExitCode.NOT_FOUND
    with pytest.raises(UnknownUniverseError, match=r"no constituents of 000905\.SH are stored"):
        universe.resolve("csi500", home=home)  # no cache, no client
    with pytest.raises(UnknownUniverseError, match="is it an index code"):
        universe.resolve("399006.SZ", home=home, client=make_client(market), now=NOW)


# --- 3. the CLI --------------------------------------------------------------------------------------

def cli(*args: str):
    from typer.testing import CliRunner

    from forecast.cli import app

    return CliRunner().invoke(app, list(args))


def test_universe_show_prints_names_next_to_codes_and_list_says_what_is_cached(home, market):
    shown = cli("universe", "show", "csi300", "--date", "2020-02-15")
    assert shown.exit_code == 0, shown.output
    assert "600519.SH" in shown.output and "贵州茅台" in shown.output and "600036.SH" not in shown.output
    as_json = json.loads(cli("universe", "show", "csi300", "--json").output)
    assert as_json["count"] == 2 and as_json["index_code"] == "000300.SH"
    listed = cli("universe", "list", "--json")
    assert listed.exit_code == 0
    by_name = {i["name"]: i for i in json.loads(listed.output)}
    assert by_name["csi300"]["cached"] and not by_name["csi500"]["cached"] and by_name["all"]["cached"]


def test_an_unknown_universe_is_one_line_with_exit_4(home):
    result = cli("universe", "show", "csi3000")
    assert result.exit_code == int(ExitCode.NOT_FOUND)
    assert "unknown universe 'csi3000'" in result.output and "Traceback" not in result.output
    result = cli("fetch", "--universe", "nifty50")
    assert result.exit_code == int(ExitCode.NOT_FOUND), result.output
    assert cli("fetch", "600519.SH", "--universe", "csi300").exit_code == int(ExitCode.USAGE)


# --- 5. resumable backfill ---------------------------------------------------------------------------

BACKFILL_ARGS = ("fetch", "--universe", "csi300", "--start", "2020-06-01", "--end", "2020-12-25", "--backfill", "by-date")


@pytest.fixture
def three_codes(market):
    from fake_tushare import market_from_sample

    sample = market_from_sample(SAMPLE_FILE, codes=("600519.SH", "600036.SH", "000001.SZ"))
    market.market.daily, market.market.factors = sample.daily, sample.factors
    return market


def stored_frames(root) -> dict[str, pd.DataFrame]:
    from forecast.data.store import MarketStore

    store = MarketStore(root)
    return {t: store.read(t).frame for t in store.tickers()}


def test_fetch_universe_backfills_new_tickers_by_trade_date_then_updates_incrementally(home, three_codes):
    result = cli(*BACKFILL_ARGS, "--json")
    assert result.exit_code == 0, result.output
    frames = stored_frames(home)
    assert sorted(frames) == ["600036.SH", "600519.SH"]  # today's CSI 300
    days = len(frames["600519.SH"])
    assert frames["600519.SH"]["date"].iloc[0] == pd.Timestamp("2020-06-01") and days > 100
    assert three_codes.calls("daily") == days and three_codes.calls("adj_factor") == days  # 2 calls a day
    assert not (home / "data" / "backfill" / "market.journal").exists()  # finished: the staging is gone
    calls = len(three_codes.requests)
    again = cli("fetch", "--universe", "csi300", "--end", "2020-12-25")
    assert again.exit_code == 0 and len(three_codes.requests) == calls  # up to date: no call


def test_auto_backfill_takes_the_plan_with_fewer_calls(home, three_codes, tmp_path, monkeypatch):
    auto = cli(*BACKFILL_ARGS[:-2], "--json")  # two members over ~140 days: ticker by ticker is cheaper
    assert auto.exit_code == 0, auto.output
    assert three_codes.calls("daily") == 2 and three_codes.calls("adj_factor") == 2  # one call per ticker and endpoint
    by_ticker = stored_frames(home)
    monkeypatch.setenv("FORECAST_HOME", str(tmp_path / "by-date"))
    assert cli(*BACKFILL_ARGS).exit_code == 0
    by_date = stored_frames(tmp_path / "by-date")
    assert sorted(by_ticker) == sorted(by_date)
    for ticker, frame in by_ticker.items():  # the same bars either way
        pd.testing.assert_frame_equal(frame, by_date[ticker])
    monkeypatch.setenv("FORECAST_HOME", str(home))
    wrong = cli(*BACKFILL_ARGS[:-1], "sideways")
    assert wrong.exit_code == 2 and "by-ticker" in wrong.output


def test_the_plan_goes_by_date_when_tickers_outnumber_days():
    from forecast.data.backfill import backfill_plan

    codes = [f"{600000 + i:06d}.SH" for i in range(30)]
    by_date, by_ticker = backfill_plan([*codes, "000300.SH"], "2020-12-01", "2020-12-25", None)
    assert by_date == codes and by_ticker == ["000300.SH"]  # 30 stocks > 19 days; the index goes by itself
    by_date, by_ticker = backfill_plan(codes[:5], "2020-12-01", "2020-12-25", None)
    assert by_date == [] and by_ticker == codes[:5]


BACKFILL_PROCESS = textwrap.dedent(
    """
    import sys
    from tushare.pro.client import DataApi
    DataApi._DataApi__http_url = sys.argv[1]
    from forecast.cli import app
    app(sys.argv[2:], standalone_mode=True)
    """
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_backfill_killed_at_a_random_point_resumes_to_the_same_store_with_no_day_fetched_twice(tmp_path, monkeypatch,
                                                                                                  three_codes, seed):
    from tushare.pro.client import DataApi

    reference_home, home = tmp_path / "reference", tmp_path / "killed"
    for root in (reference_home, home):  # the constituents, cached first, so the kill lands in the backfill
        monkeypatch.setenv("FORECAST_HOME", str(root))
        assert cli("universe", "show", "csi300").exit_code == 0
    monkeypatch.setenv("FORECAST_HOME", str(reference_home))
    assert cli(*BACKFILL_ARGS).exit_code == 0
    expected = stored_frames(reference_home)
    days = len(expected["600519.SH"])

    kill_after = random.Random(seed).randint(1, days)  # journaled days; the last seed's point may reach the commit
    journal = home / "data" / "backfill" / "market.journal"
    env = subprocess_env(FORECAST_HOME=home, TUSHARE_TOKEN=three_codes.valid_token)
    proc = subprocess.Popen([sys.executable, "-c", BACKFILL_PROCESS, DataApi._DataApi__http_url, *BACKFILL_ARGS], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        if journal.is_file() and len(journal.read_text().splitlines()) >= kill_after:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    finished = {line for line in journal.read_text().splitlines() if len(line) == 8} if journal.is_file() else set()
    before = len(three_codes.requests)
    monkeypatch.setenv("FORECAST_HOME", str(home))
    resumed = cli(*BACKFILL_ARGS)
    assert resumed.exit_code == 0, resumed.output
    again = [r["params"].get("trade_date") for r in three_codes.requests[before:] if r["api_name"] == "daily"]
    assert not finished & set(again)  # no finished day asked for again
    got = stored_frames(home)
    assert sorted(got) == sorted(expected)
    for ticker, frame in expected.items():
        pd.testing.assert_frame_equal(got[ticker], frame)


# --- 4. the exchange's own calendar ------------------------------------------------------------------

def test_a_cached_trade_cal_holding_2027_makes_a_forecast_from_2026_12_30_skip_new_year(home, market, monkeypatch):
    from forecast.data import calendar
    from forecast.data.calendar import CHINA_CALENDAR, TradingCalendar
    from forecast.data.store import MarketStore

    monkeypatch.setattr(calendar, "_TRADE_CAL_FILES", {})  # the registration of this test's home ends with it
    xshg = TradingCalendar(CHINA_CALENDAR)
    MarketStore(home)  # opening a store names its home's cache: none yet
    assert pd.Timestamp("2027-01-01") in xshg.next_sessions("2026-12-30", 3)  # exchange-calendars ends 2026-12-31: a weekday guess
    assert universe.refresh_trade_calendar(Workspace.at(home), make_client(market))
    assert market.requests[-1]["params"]["end_date"] == f"{dt.date.today().year + 1}1231"
    calls = len(market.requests)
    assert not universe.refresh_trade_calendar(Workspace.at(home), make_client(market))  # fresh: no call
    assert len(market.requests) == calls
    MarketStore(home)
    forecast_dates = xshg.next_sessions("2026-12-30", 3)  # what predicting asks for a series' next sessions
    assert list(forecast_dates.strftime("%Y-%m-%d")) == ["2026-12-31", "2027-01-04", "2027-01-05"]
    # outside the cached span exchange-calendars still answers (2026-10-01 is National Day)
    assert pd.Timestamp("2026-10-01") not in xshg.sessions_between("2026-09-28", "2026-10-09")


def test_no_token_and_no_stored_calendar_does_not_claim_a_stored_copy(home, caplog):
    import logging

    from forecast.data.universe_cache import refresh_trade_calendar

    def no_token():
        raise AuthError("no tushare token: set TUSHARE_TOKEN")

    with caplog.at_level(logging.WARNING):
        assert refresh_trade_calendar(Workspace.at(home), no_token) is False
    assert "exchange-calendars' XSHG calendar" in caplog.text and "stored copy" not in caplog.text
