"""The real tushare client against the loopback fake: protocol, paging, error classes."""

from __future__ import annotations

import math

import pytest

from forecast.data.sources import tushare_pro
from forecast.data.sources.tushare_pro import DAILY_FIELDS, RetryPolicy, TushareClient
from forecast.data.sources.tushare_wire import to_canonical
from forecast.errors import AuthError, RateLimitError, SourceError


def make_client(fake, **retry) -> tuple[TushareClient, list[float]]:
    slept: list[float] = []
    policy = RetryPolicy(sleep=slept.append, **retry)
    return TushareClient(fake.valid_token, timeout=2.0, retry=policy), slept


def test_sends_the_exact_request_body_and_reads_the_answer(fake_tushare):
    client, _ = make_client(fake_tushare)
    frame = client.query("daily", DAILY_FIELDS, ts_code="600519.SH", start_date="20201201", end_date="20201225")
    body = fake_tushare.requests[-1]
    params = {k: v for k, v in body["params"].items() if k != "ts_type_name"}
    assert body["api_name"] == "daily"
    assert body["token"] == fake_tushare.valid_token
    assert body["fields"] == DAILY_FIELDS
    assert params == {"ts_code": "600519.SH", "start_date": "20201201", "end_date": "20201225"}
    market = fake_tushare.market.daily
    expected = market[(market.trade_date >= "20201201") & (market.trade_date <= "20201225")]
    assert len(frame) == len(expected) > 0
    assert list(frame.columns) == DAILY_FIELDS.split(",")
    assert frame["trade_date"].iloc[0] > frame["trade_date"].iloc[-1]  # newest first, as the real service


def test_pages_past_the_row_limit(fake_tushare, monkeypatch):
    monkeypatch.setattr(tushare_pro, "PAGE_LIMIT", 500)
    fake_tushare.page_limit = 500
    client, _ = make_client(fake_tushare)
    bars = tushare_pro.fetch_ticker_range(client, "600519.SH", "2005-01-01", "2020-12-31")
    total = len(fake_tushare.market.daily)
    assert len(bars) == total
    assert bars["date"].is_unique and bars["date"].is_monotonic_increasing
    assert fake_tushare.calls("daily") == math.ceil(total / 500)
    # units: lots -> shares, thousands of CNY -> CNY
    first = fake_tushare.market.daily.sort_values("trade_date").iloc[0]
    assert bars["volume"].iloc[0] == pytest.approx(first["vol"] * 100)
    assert bars["amount"].iloc[0] == pytest.approx(first["amount"] * 1000)


def test_an_empty_answer_is_zero_rows_not_an_error(fake_tushare):
    client, _ = make_client(fake_tushare)
    frame = client.query("daily", DAILY_FIELDS, ts_code="600000.SH", start_date="20201201", end_date="20201225")
    assert len(frame) == 0
    assert list(frame.columns) == DAILY_FIELDS.split(",")


def test_a_wrong_token_fails_at_once_without_echoing_it(fake_tushare):
    client = TushareClient("wrong-secret-token-xyz", retry=RetryPolicy(sleep=lambda s: None))
    with pytest.raises(AuthError) as info:
        client.query("daily", DAILY_FIELDS, trade_date="20201225")
    assert "TUSHARE_TOKEN" in str(info.value)
    assert "wrong-secret-token-xyz" not in str(info.value) + repr(client)
    assert fake_tushare.calls() == 1


def test_missing_points_name_the_endpoint(fake_tushare):
    fake_tushare.failures = ["points"]
    client, slept = make_client(fake_tushare)
    with pytest.raises(AuthError, match="adj_factor"):
        client.query("adj_factor", "ts_code,trade_date,adj_factor", trade_date="20201225")
    assert slept == [] and fake_tushare.calls() == 1


def test_a_per_minute_rate_limit_waits_then_succeeds(fake_tushare):
    fake_tushare.failures = ["rate_minute"]
    client, slept = make_client(fake_tushare)
    frame = client.query("daily", DAILY_FIELDS, trade_date="20201225")
    assert len(frame) == 1
    assert slept == [RetryPolicy().rate_limit_wait_s]


def test_a_rate_limit_that_persists_gives_up_after_bounded_tries(fake_tushare):
    fake_tushare.failures = ["rate_minute"] * 10
    client, slept = make_client(fake_tushare, attempts=3)
    with pytest.raises(RateLimitError, match="3 tries"):
        client.query("daily", DAILY_FIELDS, trade_date="20201225")
    assert fake_tushare.calls() == 3 and len(slept) == 2


def test_a_daily_quota_is_not_retried(fake_tushare):
    fake_tushare.failures = ["rate_day"]
    client, slept = make_client(fake_tushare)
    with pytest.raises(RateLimitError):
        client.query("daily", DAILY_FIELDS, trade_date="20201225")
    assert slept == [] and fake_tushare.calls() == 1


@pytest.mark.parametrize("failure", ["http500", "nonjson", "shapeless", "slow"])
def test_transient_failures_back_off_then_fail_clearly(fake_tushare, failure):
    fake_tushare.failures = [failure] * 3
    fake_tushare.slow_seconds = 0.6
    slept: list[float] = []
    client = TushareClient(fake_tushare.valid_token, timeout=0.2, retry=RetryPolicy(attempts=3, backoff_s=1.0, sleep=slept.append))
    with pytest.raises(SourceError, match="after 3 tries"):
        client.query("daily", DAILY_FIELDS, trade_date="20201225")
    assert slept == [1.0, 2.0]  # exponential backoff, injected
    assert fake_tushare.calls() == 3


def test_http_500_then_success_recovers(fake_tushare):
    fake_tushare.failures = ["http500"]
    client, slept = make_client(fake_tushare)
    frame = client.query("daily", DAILY_FIELDS, trade_date="20201225")
    assert len(frame) == 1 and len(slept) == 1


def test_an_answer_not_in_tushares_shape_is_named_in_one_line_and_retried(fake_tushare):
    fake_tushare.failures = ["shapeless"] * 4
    client, _ = make_client(fake_tushare)
    with pytest.raises(SourceError) as raised:
        client.query("daily", DAILY_FIELDS, trade_date="20201225")
    assert "not in tushare's format" in str(raised.value) and "\n" not in str(raised.value)
    fake_tushare.failures = ["shapeless"]
    assert len(client.query("daily", DAILY_FIELDS, trade_date="20201225")) == 1


def test_a_row_dated_9999_is_one_line_without_pandas_advice():
    import pandas as pd

    daily = pd.DataFrame({"ts_code": ["600519.SH"], "trade_date": ["99991231"], "open": [1.0], "high": [1.0], "low": [1.0],
                          "close": [1.0], "vol": [1.0], "amount": [1.0]})
    factors = pd.DataFrame({"ts_code": ["600519.SH"], "trade_date": ["99991231"], "adj_factor": [1.0]})
    with pytest.raises(SourceError) as raised:
        to_canonical(daily, factors)  # what a hostile server's row becomes on its way in
    assert "cannot read" in str(raised.value) and "\n" not in str(raised.value)


def test_no_token_is_an_auth_error():
    with pytest.raises(AuthError, match="TUSHARE_TOKEN"):
        TushareClient(None)


# --- a page holding exactly the row limit is truncated: the next page is asked for -------------------

def _synthetic_market(codes: list[str], dates: list[str]):
    import pandas as pd
    from fake_tushare import FakeMarket

    rows = pd.DataFrame([(c, d) for c in codes for d in dates], columns=["ts_code", "trade_date"])
    rows = rows.assign(open=10.0, high=11.0, low=9.0, close=10.5, vol=100.0, amount=1050.0)
    return FakeMarket(rows, rows[["ts_code", "trade_date"]].assign(adj_factor=1.0))


@pytest.mark.parametrize("extra", [0, 1])
def test_a_whole_market_day_of_exactly_the_row_limit_is_paged(fake_tushare, extra):
    from fake_tushare import ENDPOINT_LIMITS

    limit = ENDPOINT_LIMITS["daily"]
    codes = [f"{600000 + i:06d}.SH" for i in range(limit + extra)]
    fake_tushare.market = _synthetic_market(codes, ["20201225"])
    client, _ = make_client(fake_tushare)
    bars = tushare_pro.fetch_market_day(client, "2020-12-25", set(codes))
    assert len(bars) == limit + extra and bars["ts_code"].is_unique
    assert bars["adj_factor"].notna().all()
    assert (fake_tushare.calls("daily"), fake_tushare.calls("adj_factor")) == (2, 2)  # a full page, then the rest (maybe none)


@pytest.mark.parametrize("extra", [0, 1])
def test_a_ticker_range_of_exactly_the_row_limit_is_paged(fake_tushare, extra):
    import pandas as pd
    from fake_tushare import ENDPOINT_LIMITS

    limit = ENDPOINT_LIMITS["daily"]
    dates = pd.bdate_range("1995-01-02", periods=limit + extra).strftime("%Y%m%d").tolist()
    fake_tushare.market = _synthetic_market(["600519.SH"], dates)
    client, _ = make_client(fake_tushare)
    bars = tushare_pro.fetch_ticker_range(client, "600519.SH", dates[0], dates[-1])
    assert len(bars) == limit + extra and bars["date"].is_unique
    assert fake_tushare.calls("daily") == 2


@pytest.mark.parametrize("extra", [0, 1])
def test_a_reference_query_of_exactly_the_row_limit_is_paged(fake_tushare, extra):
    from fake_tushare import ENDPOINT_LIMITS, listings_frame

    from forecast.data.sources import reference

    limit = ENDPOINT_LIMITS["stock_basic"]
    fake_tushare.market.stock_basic = listings_frame(
        [(f"{600000 + i:06d}.SH", f"c{i}", "", "主板", "L", "20000101", None) for i in range(limit + extra)])
    client, _ = make_client(fake_tushare)
    listings = reference.fetch_listings(client)
    assert len(listings) == limit + extra
    assert fake_tushare.calls("stock_basic") == 2 + 2  # L: a full page and the rest; D and P: one empty page each


def test_the_fake_answers_at_most_each_endpoints_real_row_limit(fake_tushare):
    from fake_tushare import ENDPOINT_LIMITS

    fake_tushare.market = _synthetic_market([f"{600000 + i:06d}.SH" for i in range(ENDPOINT_LIMITS["daily"] + 5)], ["20201225"])
    client, _ = make_client(fake_tushare)
    assert len(client.query("daily", DAILY_FIELDS, trade_date="20201225")) == ENDPOINT_LIMITS["daily"]
    assert len(client.query("daily", DAILY_FIELDS, trade_date="20201225", limit=9000)) == ENDPOINT_LIMITS["daily"]
