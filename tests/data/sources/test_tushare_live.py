"""Opt-in checks against the real tushare service: FORECAST_LIVE=1 and TUSHARE_TOKEN set.

Skipped by default; CI has no internet.
"""

from __future__ import annotations

import os

import pytest

from forecast.data.fetching import update_from_tushare
from forecast.data.sources.tushare_pro import TushareClient
from forecast.data.store import MarketStore

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not (os.environ.get("FORECAST_LIVE") == "1" and os.environ.get("TUSHARE_TOKEN")),
                       reason="live tushare test: set FORECAST_LIVE=1 and TUSHARE_TOKEN"),
]


def test_fetches_recent_moutai_bars_from_the_real_service(tmp_path):
    store = MarketStore(tmp_path)
    reports, failures = update_from_tushare(store, ["600519.SH"], TushareClient(os.environ["TUSHARE_TOKEN"]), start="2024-01-01")
    assert failures == [] and reports[0].rows > 100
    bars = store.read_bars("600519.SH", "qfq").frame
    assert (bars["close"] > 0).all() and bars["date"].is_monotonic_increasing
