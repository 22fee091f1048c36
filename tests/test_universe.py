"""The whole market: tushare's reference endpoints, universes, the cached exchange calendar, resumable backfill.

Everything runs against the loopback fake (tests/fake_tushare.py) with the real
tushare client; nothing reads ../shared.
"""

from __future__ import annotations

import pandas as pd
import pytest

from forecast.errors import AuthError, RateLimitError, SourceError
from forecast.sources import reference, tushare_pro
from forecast.sources.tushare_pro import RetryPolicy, TushareClient

LISTINGS = [
    ("600519.SH", "贵州茅台", "白酒", "主板", "L", "20010827", None),
    ("600036.SH", "招商银行", "银行", "主板", "L", "20020409", None),
    ("000001.SZ", "平安银行", "银行", "主板", "L", "19910403", None),
    ("600087.SH", "退市长油", "水运", "主板", "D", "19970610", "20140605"),
    ("300999.SZ", "暂停上市", "食品", "创业板", "P", "20201016", None),
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
    bars = reference.fetch_index_bars(make_client(market), "000300.SH", "2020-12-01", "2020-12-25")
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
    ("index_daily", lambda c: reference.fetch_index_bars(c, "000300.SH", "2020-01-01", "2020-02-01")),
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
