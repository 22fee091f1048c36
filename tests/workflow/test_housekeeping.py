"""``workflow.housekeeping``: the home's small commands, in an empty home with real stored series and model cards.

``data list`` (every series' summary with its company name from the cached listing, and the files that cannot
be read, without one hiding the others), ``data show`` (a series' summary and its last bars, NaN as None),
``models rm`` (either family, saying which ticker it was pinned for) and ``report`` (whose tickers: the ones
named, else forecast.toml's; NotFoundError when there are none).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import SAMPLE_FILE
from synthetic_market import synthetic_bars, write_store

from forecast.data import fetching
from forecast.data.store import MarketStore
from forecast.errors import ModelNotFoundError, NotFoundError
from forecast.models.pooled.card import GlobalRegistry
from forecast.models.registry import ModelRegistry
from forecast.workflow.housekeeping import describe_series, remove_model, stored_series, write_report_page
from forecast.workflow.settings import AppConfig
from forecast.workspace import Workspace
from tests.workflow.test_serving import no_weights, ticker_card, universe_card

OWN = "600519.SH"


@pytest.fixture
def workspace(home) -> Workspace:
    return Workspace.at(home)


@pytest.fixture
def stored(workspace):
    """Three synthetic series as a tushare fetch leaves them."""
    bars = synthetic_bars(3, 30, seed=1)
    write_store(MarketStore(workspace), bars)
    return bars


# ---------------------------------------------------------------- data list


def test_an_empty_home_stores_nothing(workspace):
    assert stored_series(workspace) == ([], [])


def test_every_stored_series_is_summarised_without_a_name_until_the_listing_is_cached(workspace, stored):
    summaries, unreadable = stored_series(workspace)
    assert unreadable == []
    assert sorted(s["ticker"] for s in summaries) == sorted(stored.codes)
    for summary in summaries:
        assert summary["rows"] == len(stored.dates)
        assert summary["first_date"] == stored.dates[0].date().isoformat()
        assert summary["last_date"] == stored.dates[-1].date().isoformat()
        assert summary["name"] is None


def test_names_come_from_the_cached_listing(workspace, stored, fake_tushare):
    from fake_tushare import listings_frame

    from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
    from forecast.data.universe_cache import load_listings

    first = stored.codes[0]
    fake_tushare.market.stock_basic = listings_frame([(first, "第一股份", "银行", "主板", "L", "20010827", None)])
    load_listings(workspace, TushareClient(fake_tushare.valid_token, timeout=2.0, retry=RetryPolicy(attempts=2, sleep=lambda s: None)))
    names = {s["ticker"]: s["name"] for s in stored_series(workspace)[0]}
    assert names[first] == "第一股份"
    assert all(names[code] is None for code in stored.codes[1:])


def test_a_damaged_file_is_listed_apart_and_hides_no_other_series(workspace, stored):
    damaged = stored.codes[1]
    MarketStore(workspace).path_for(damaged).write_bytes(b"this is no parquet file")
    summaries, unreadable = stored_series(workspace)
    assert sorted(s["ticker"] for s in summaries) == sorted(c for c in stored.codes if c != damaged)
    assert [u["ticker"] for u in unreadable] == [damaged]
    assert unreadable[0]["error"]


# ---------------------------------------------------------------- data show


def test_a_series_is_described_with_its_last_bars_on_the_basis_asked(workspace):
    fetching.import_sample(MarketStore(workspace))
    summary, bars, columns = describe_series(workspace, "600519", "qfq", 3)
    sample = pd.read_csv(SAMPLE_FILE).sort_values("date").tail(3)
    assert summary["ticker"] == OWN and summary["rows"] == len(pd.read_csv(SAMPLE_FILE))
    assert [b["date"] for b in bars] == list(sample["date"])  # ISO text
    assert [b["close"] for b in bars] == pytest.approx(list(sample["close"]))
    assert columns == ["open", "high", "low", "close", "volume", "amount"]  # every column but the date
    assert all(b["amount"] is None for b in bars)  # the sample has no amount: NaN is None, never NaN
    assert not any(isinstance(v, float) and math.isnan(v) for b in bars for v in b.values())


def test_a_raw_series_is_shown_on_each_basis(workspace, stored):
    code = stored.codes[0]
    raw_close = stored.close[-1, 0]
    factor, latest = stored.factor[-2, 0], stored.factor[-1, 0]
    _, none, _ = describe_series(workspace, code, "none", 2)
    _, hfq, _ = describe_series(workspace, code, "hfq", 2)
    assert none[-1]["close"] == pytest.approx(raw_close)
    assert hfq[-1]["close"] == pytest.approx(raw_close * latest)
    assert hfq[0]["close"] == pytest.approx(stored.close[-2, 0] * factor)


def test_asking_for_more_bars_than_stored_gives_them_all(workspace, stored):
    _, bars, _ = describe_series(workspace, stored.codes[0], "qfq", 1000)
    assert len(bars) == len(stored.dates)


# ---------------------------------------------------------------- models rm


def test_removing_a_pinned_model_says_which_ticker_it_was_pinned_for(workspace):
    registry = ModelRegistry(workspace)
    registry.save(ticker_card("m-1", OWN), no_weights)
    registry.save(ticker_card("m-2", OWN, "2026-02-01T00:00:00+00:00"), no_weights)
    registry.pin("m-1")
    assert remove_model(workspace, "m-1") == OWN
    assert registry.ids() == ["m-2"]
    assert registry.pinned_id(OWN) is None
    assert registry.in_use(OWN).model_id == "m-2"


def test_removing_a_model_that_was_not_pinned_says_none(workspace):
    registry = ModelRegistry(workspace)
    registry.save(ticker_card("m-1", OWN), no_weights)
    registry.save(ticker_card("m-2", OWN, "2026-02-01T00:00:00+00:00"), no_weights)
    registry.pin("m-1")
    assert remove_model(workspace, "m-2") is None
    assert registry.ids() == ["m-1"] and registry.pinned_id(OWN) == "m-1"


def test_a_universe_model_is_removed_from_its_own_registry(workspace):
    universe = GlobalRegistry(workspace)
    universe.save(universe_card("u-1", "csi300", (OWN,), "2026-01-01T00:00:00+00:00"), no_weights)
    ModelRegistry(workspace).save(ticker_card("m-1", OWN), no_weights)
    assert remove_model(workspace, "u-1") is None
    assert universe.ids() == [] and ModelRegistry(workspace).ids() == ["m-1"]


def test_removing_a_model_that_is_not_there_is_not_found(workspace):
    with pytest.raises(ModelNotFoundError):
        remove_model(workspace, "no-such-model")


# ---------------------------------------------------------------- report


def test_a_report_with_no_tickers_anywhere_says_how_to_make_one(workspace):
    with pytest.raises(NotFoundError, match=r"nothing to report.*forecast predict TICKER"):
        write_report_page(workspace, AppConfig(), [], None, None, None, 60)


@pytest.mark.parametrize(("named", "configured"), [([OWN], ()), ([], (OWN,))], ids=["named", "from-forecast-toml"])
def test_a_report_covers_the_tickers_named_else_forecast_tomls(workspace, tmp_path, named, configured):
    out = tmp_path / "report.html"
    info = write_report_page(workspace, AppConfig(tickers=configured), named, None, out, None, 60, plotly="cdn")
    assert info.tickers == 1 and info.path == out
    page = out.read_text(encoding="utf-8")
    assert info.bytes == len(page.encode("utf-8"))
    assert page.lstrip().lower().startswith("<!doctype html")
    assert OWN in page
