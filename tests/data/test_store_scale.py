"""The store at market scale: the whole-universe read, the batched nightly update and its kill safety.

Small sizes (a dozen tickers) keep these fast; benchmarks/run_benchmarks.py
(sections universe_update, backfill, panel) measures the 5,400-ticker figures.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import SAMPLE_FILE, subprocess_env
from synthetic_market import synthetic_bars, write_store

from forecast.data import fetching
from forecast.data.fetching import import_csv, update_from_tushare
from forecast.data.panel import load_panel
from forecast.data.series_writes import FetchReport, save_series
from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
from forecast.data.store import MarketStore
from forecast.data.tickers import parse_ticker
from forecast.data.tushare_updates import TUSHARE_CALENDAR

NOW = dt.datetime(2020, 12, 24, 20)  # Thursday evening: the synthetic market's last session (Thursday 24th) is published


def client_for(fake) -> TushareClient:
    return TushareClient(fake.valid_token, timeout=5.0, retry=RetryPolicy(sleep=lambda s: None))


@pytest.fixture
def bars():
    return synthetic_bars(12, 80, seed=7)


def by_check(validation: dict) -> dict:
    return {f["check"]: (f["count"], f["examples"]) for f in validation["findings"]}


# --- the whole-universe read ---------------------------------------------------------------------------

def test_load_panel_equals_each_tickers_read_bars_stacked_including_an_imported_qfq_series(home, bars):
    store = MarketStore(home)
    write_store(store, bars, codes=bars.codes[:4])
    import_csv(store, "600519.SH", SAMPLE_FILE)  # price_basis qfq: served on its own basis
    panel = load_panel(store).frame
    assert list(panel.index.names) == ["date", "ticker"] and panel.index.is_monotonic_increasing
    assert sorted(panel.index.get_level_values("ticker").unique()) == sorted([*bars.codes[:4], "600519.SH"])
    for ticker in store.tickers():
        expected = store.read_bars(ticker, "qfq").frame.set_index("date")
        got = panel.xs(ticker, level="ticker")
        pd.testing.assert_frame_equal(got, expected, check_names=False, check_freq=False)


def test_load_panel_filters_dates_and_reads_hfq_where_the_basis_allows(home, bars, caplog):
    store = MarketStore(home)
    write_store(store, bars, codes=bars.codes[:3])
    import_csv(store, "600519.SH", SAMPLE_FILE)
    start, end = bars.dates[10], bars.dates[30]
    with caplog.at_level(logging.WARNING):
        result = load_panel(store, [*bars.codes[:3], "600519.SH"], start=start, end=end, adjust="hfq")
    dates = result.frame.index.get_level_values("date")
    assert dates.min() == start and dates.max() == end
    assert len(result.frame) == 3 * 21  # the qfq import cannot be served as hfq: skipped, and said
    assert [p.split(":")[0] for p in result.problems] == ["600519.SH"] and "skipped 1 of 4" in caplog.text
    expected = store.read_bars(bars.codes[1], "hfq").frame.set_index("date").loc[start:end]
    pd.testing.assert_frame_equal(result.frame.xs(bars.codes[1], level="ticker"), expected, check_names=False, check_freq=False)


@pytest.mark.parametrize("dense_keys", [4, 0])  # a counting sort, and the stable argsort it falls back to
def test_the_panel_is_every_read_bars_stacked_and_sorted_with_one_string_per_ticker(home, bars, monkeypatch, dense_keys):
    monkeypatch.setattr("forecast.data.panel.DENSE_KEYS", dense_keys)
    store = MarketStore(home)
    write_store(store, bars, codes=bars.codes[:5], end=bars.dates[-10])
    write_store(store, synthetic_bars(3, 30, seed=8, end="2021-06-30"))  # other tickers over later, partly new dates
    repeated = pd.concat([bars.stored_frame(6, end=bars.dates[20]), bars.stored_frame(6, start=bars.dates[20])], ignore_index=True)
    with store.writing():  # a file an older version stored with a date twice: both rows come back, in their order
        store.write_table(bars.codes[6], pa.Table.from_pandas(repeated),
                          {"source": "tushare", "price_basis": "raw", "calendar": "XSHG", "validation": {"rows": 0, "findings": []}})
    names = list(reversed(store.tickers()))  # asked for in any order, the panel comes sorted
    panel = load_panel(store, names).frame
    expected = pd.concat([store.read_bars(t).frame.assign(ticker=t) for t in names], ignore_index=True)
    expected = expected.sort_values(["date", "ticker"], kind="stable").set_index(["date", "ticker"])
    pd.testing.assert_frame_equal(panel, expected)
    assert list(panel.index.levels[1]) == sorted(names)  # one string per ticker; each row holds an integer code
    assert all(np.issubdtype(codes.dtype, np.integer) for codes in panel.index.codes)


def test_a_corrupt_file_among_good_ones_is_skipped_and_named(home, bars, caplog):
    store = MarketStore(home)
    write_store(store, bars, codes=bars.codes[:3])
    store.path_for(bars.codes[1]).write_bytes(b"PAR1 not really parquet")
    with caplog.at_level(logging.WARNING):
        result = load_panel(store)
    assert sorted(result.frame.index.get_level_values("ticker").unique()) == [bars.codes[0], bars.codes[2]]
    assert len(result.problems) == 1 and result.problems[0].startswith(bars.codes[1]) and "unreadable" in result.problems[0]
    assert bars.codes[1] in caplog.text


# --- the nightly update, batched ----------------------------------------------------------------------

def serve_days(fake, bars, first_day):
    market = bars.fake_market(start=first_day)
    fake.market.daily, fake.market.factors = market.daily, market.factors


def test_a_batched_nightly_update_writes_what_the_market_holds_in_two_calls(home, fake_tushare, bars, monkeypatch):
    monkeypatch.setattr("forecast.data.series_writes.BATCH_TICKERS", 5)  # three batches: the lock is let go between them
    store = MarketStore(home)
    write_store(store, bars, end=bars.dates[-2])
    serve_days(fake_tushare, bars, bars.dates[-5])
    reports, failures = update_from_tushare(store, bars.codes, client_for(fake_tushare), now=NOW)
    assert not failures and len(reports) == len(bars.codes)
    assert fake_tushare.calls() == 2 and fake_tushare.calls("daily") == 1
    for j, code in enumerate(bars.codes):
        stored = store.read(code)
        pd.testing.assert_frame_equal(stored.frame, bars.stored_frame(j))  # the reference: the market's own rows
        assert stored.validation.rows == len(bars.dates)


def test_the_batched_update_stores_what_the_per_ticker_path_stores_findings_included(tmp_path, fake_tushare, bars, monkeypatch):
    bars.close[-1, 2] *= 1.6  # a 60 % jump on the new day: a finding only the new row raises
    bars.high[-1, 2] = bars.close[-1, 2] * 1.01
    bars.low[-1, 3] = bars.high[-1, 3] * 1.1  # high below low on the new day
    bars.high[5, 3] = bars.low[5, 3] * 0.9  # and one stored long ago, carried over
    bars.open[-1, 4] = 0.0  # a non-positive open on the new day
    bars.vol[-1, 5] = np.nan  # a missing volume on the new day
    bars.close[-1, 6] *= 0.66  # a 34 % drop: just inside the threshold, no finding on either path
    bars.low[-1, 6] = bars.close[-1, 6] * 0.99
    serve_days(fake_tushare, bars, bars.dates[0])
    homes = {"batched": tmp_path / "batched", "per-ticker": tmp_path / "per-ticker"}
    for root in homes.values():
        store = MarketStore(root)
        with store.writing():  # the stored history, validated in full as a fetch would have
            for j, code in enumerate(bars.codes):
                save_series(store, parse_ticker(code), bars.stored_frame(j, end=bars.dates[-2]), "tushare",
                            "raw", FetchReport(code, "tushare"), False, TUSHARE_CALENDAR)
    update_from_tushare(MarketStore(homes["batched"]), bars.codes, client_for(fake_tushare), now=NOW)
    monkeypatch.setattr(fetching, "BY_DATE_MIN_TICKERS", 10**6)  # the per-ticker path: merge and validate in full
    update_from_tushare(MarketStore(homes["per-ticker"]), bars.codes, client_for(fake_tushare), now=NOW)
    batched, per_ticker = MarketStore(homes["batched"]), MarketStore(homes["per-ticker"])
    for code in bars.codes:
        a, b = batched.read(code), per_ticker.read(code)
        pd.testing.assert_frame_equal(a.frame, b.frame)
        assert by_check(a.validation.to_dict()) == by_check(b.validation.to_dict()) and a.validation.rows == b.validation.rows
    assert "one-day moves over 35%" in by_check(batched.read(bars.codes[2]).validation.to_dict())
    assert by_check(batched.read(bars.codes[3]).validation.to_dict())["high below low"][0] == 2
    assert "other non-positive prices (open/high/low)" in by_check(batched.read(bars.codes[4]).validation.to_dict())
    assert "missing values" in by_check(batched.read(bars.codes[5]).validation.to_dict())
    assert by_check(batched.read(bars.codes[6]).validation.to_dict()) == {}


def test_first_series_written_in_a_batch_equal_the_per_ticker_writes_findings_included(tmp_path, bars):
    from forecast.data.series_writes import Incoming, commit_many

    bars.close[40, 1] *= 1.6  # a jump
    bars.high[40, 1] = bars.close[40, 1] * 1.01
    bars.low[30, 2] = bars.high[30, 2] * 1.1  # high below low
    bars.vol[10, 3] = np.nan  # a missing volume
    bars.factor[:5, 4] = np.nan  # factors not yet published at the start: stored as they come, back-filled on read
    bars.factor[50:53, 5] = np.nan  # and a gap: the last published factor holds
    frames = {code: bars.stored_frame(j) for j, code in enumerate(bars.codes)}
    batched, per_ticker = MarketStore(tmp_path / "batched"), MarketStore(tmp_path / "per-ticker")
    items = [Incoming(parse_ticker(code), frame, FetchReport(code, "tushare")) for code, frame in frames.items()]
    reports, failures = commit_many(batched, items, strict=False, calendar=TUSHARE_CALENDAR)
    assert not failures and [r.new_rows for r in reports] == [len(bars.dates)] * len(bars.codes)
    with per_ticker.writing():
        for code, frame in frames.items():
            frame = frame.assign(adj_factor=frame["adj_factor"].ffill())  # as the merge path stores factors
            save_series(per_ticker, parse_ticker(code), frame, "tushare", "raw",
                        FetchReport(code, "tushare"), False, TUSHARE_CALENDAR)
    for code in bars.codes:
        a, b = batched.read(code), per_ticker.read(code)
        pd.testing.assert_frame_equal(a.frame, b.frame)
        assert a.validation == b.validation and (a.calendar, a.source, a.price_basis) == (b.calendar, b.source, b.price_basis)
        for adjust in ("qfq", "hfq"):
            pd.testing.assert_frame_equal(batched.read_bars(code, adjust).frame, per_ticker.read_bars(code, adjust).frame)
    found = {code: by_check(batched.read(code).validation.to_dict()) for code in bars.codes[1:4]}
    assert [next(iter(f)) for f in found.values()] == ["one-day moves over 35%", "high below low", "missing values"]


def test_a_ticker_given_twice_is_committed_twice_in_turn_not_in_one_batch(home, bars):
    from forecast.data.series_writes import Incoming, commit_many

    store = MarketStore(home)
    write_store(store, bars, codes=bars.codes[:2], end=bars.dates[-3])
    code = bars.codes[0]
    items = [Incoming(parse_ticker(code), bars.stored_frame(0, start=day, end=day), FetchReport(code, "tushare"))
             for day in bars.dates[-2:]]  # the same ticker, one new day each
    reports, failures = commit_many(store, items, strict=False, calendar=TUSHARE_CALENDAR)
    assert not failures and [r.new_rows for r in reports] == [1, 1]
    pd.testing.assert_frame_equal(store.read(code).frame, bars.stored_frame(0))


def test_a_revised_stored_day_goes_through_the_full_merge(home, fake_tushare, bars):
    store = MarketStore(home)
    write_store(store, bars, end=bars.dates[-2])
    serve_days(fake_tushare, bars, bars.dates[-5])
    with store.writing():  # one ticker is a day behind: its gap holds a stored day of the others
        store.write_table(bars.codes[0], pa.Table.from_pandas(bars.stored_frame(0, end=bars.dates[-3])),
                          {"source": "tushare", "price_basis": "raw", "calendar": "XSHG", "validation": {"rows": 0, "findings": []}})
    reports, failures = update_from_tushare(store, bars.codes, client_for(fake_tushare), now=NOW)
    assert not failures
    for j, code in enumerate(bars.codes):
        pd.testing.assert_frame_equal(store.read(code).frame, bars.stored_frame(j))


KILLED_UPDATE = textwrap.dedent(
    """
    import sys, time, datetime as dt
    sys.path.insert(0, sys.argv[3])
    from tushare.pro.client import DataApi
    DataApi._DataApi__http_url = sys.argv[1]
    from forecast.data.store import MarketStore
    from forecast.data.fetching import update_from_tushare
    from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
    import os
    replace = os.replace
    def slow(source, target):  # the batched commit renames a whole batch's fsynced files: pause between renames
        replace(source, target)
        if str(target).endswith(".parquet"):
            print("wrote", flush=True)
            time.sleep(0.05)
    os.replace = slow
    client = TushareClient(sys.argv[2], retry=RetryPolicy(sleep=lambda s: None))
    update_from_tushare(MarketStore(sys.argv[4]), sys.argv[5].split(","), client, now=dt.datetime(2020, 12, 24, 20))
    """
)


def test_a_nightly_commit_killed_midway_leaves_each_file_old_or_new_and_a_rerun_finishes(home, fake_tushare, bars):
    from tushare.pro.client import DataApi

    store = MarketStore(home)
    write_store(store, bars, end=bars.dates[-2])
    serve_days(fake_tushare, bars, bars.dates[-5])
    proc = subprocess.Popen([sys.executable, "-c", KILLED_UPDATE, DataApi._DataApi__http_url, fake_tushare.valid_token,
                             str(SAMPLE_FILE.parents[2] / "tests"), str(home), ",".join(bars.codes)],
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    written, deadline = 0, time.time() + 60
    while written < 5 and time.time() < deadline:  # mid-batch: five of twelve files replaced
        if proc.stdout.readline().startswith("wrote"):
            written += 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last_days = []
    for j, code in enumerate(bars.codes):
        frame = store.read(code).frame  # every file readable: none torn
        last_days.append(frame["date"].iloc[-1])
        end = bars.dates[-1] if frame["date"].iloc[-1] == bars.dates[-1] else bars.dates[-2]
        pd.testing.assert_frame_equal(frame, bars.stored_frame(j, end=end))  # wholly old or wholly new
    assert bars.dates[-1] in last_days and bars.dates[-2] in last_days  # the kill landed mid-commit
    reports, failures = update_from_tushare(store, bars.codes, client_for(fake_tushare), now=NOW)
    assert not failures
    for j, code in enumerate(bars.codes):
        pd.testing.assert_frame_equal(store.read(code).frame, bars.stored_frame(j))
    assert np.all([store.head(c).last_date == bars.dates[-1] for c in bars.codes])
