"""``data.bars``: the canonical bar frame (``conform``), the last-row-wins rule for a repeated date, and the
qfq/hfq/none price adjustment worked out by hand on a few raw bars with their factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.data.bars import (
    ADJUSTMENTS,
    BAR_COLUMNS,
    STORED_COLUMNS,
    Bars,
    adjust_prices,
    collapse_duplicate_dates,
    conform,
)
from forecast.errors import BadInputError


def raw_frame(factors=(1.0, 1.0, 2.0)) -> pd.DataFrame:
    """Three raw bars; the factor doubles on the third day (an ex-day: the raw price halves)."""
    return conform(pd.DataFrame({
        "date": ["2024-01-02", "2024-01-03", "2024-01-04"],
        "open": [10.0, 11.0, 6.0], "high": [12.0, 12.0, 7.0], "low": [9.0, 10.0, 5.0], "close": [11.0, 12.0, 6.5],
        "volume": [100.0, 200.0, 300.0], "amount": [1e3, 2e3, 3e3], "adj_factor": list(factors),
    }))


def test_conform_gives_exactly_the_stored_columns_with_canonical_dtypes_sorted_by_date():
    messy = pd.DataFrame({
        "close": ["12.5", "11"], "extra": ["x", "y"], "date": pd.to_datetime(["2024-01-03 15:00", "2024-01-02 00:00"]),
        "open": [12, 10], "high": [13, 12], "low": [11, 9], "volume": [5, 6],
    }, index=[7, 3])
    out = conform(messy)
    assert list(out.columns) == STORED_COLUMNS
    assert out["date"].dtype == "datetime64[ns]"
    assert all(out[c].dtype == "float64" for c in STORED_COLUMNS[1:])
    assert list(out["date"]) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]  # sorted, time of day dropped
    assert list(out["close"]) == [11.0, 12.5]  # the rows moved with their dates
    assert list(out.index) == [0, 1]
    assert out["amount"].isna().all() and out["adj_factor"].isna().all()  # columns the source lacks are NaN


def test_conform_turns_text_that_is_no_number_into_nan():
    out = conform(pd.DataFrame({"date": ["2024-01-02"], "open": ["n/a"], "high": [1], "low": [1], "close": [1], "volume": [1]}))
    assert np.isnan(out["open"].iloc[0])


def test_a_conformed_frame_is_returned_as_it_is():
    frame = raw_frame()
    assert conform(frame) is frame


def test_the_last_row_given_for_a_date_wins():
    frame = pd.DataFrame({"date": ["2024-01-02", "2024-01-03", "2024-01-02", "2024-01-02"],
                          "open": [1.0, 2.0, 3.0, 4.0], "high": 1.0, "low": 1.0, "close": [1.0, 2.0, 3.0, 4.0], "volume": 1.0})
    out, dropped = collapse_duplicate_dates(frame)
    assert dropped == 2
    assert list(out["date"]) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    assert list(out["close"]) == [4.0, 2.0]
    assert list(out.index) == [0, 1]


def test_a_frame_without_repeated_dates_loses_no_row():
    out, dropped = collapse_duplicate_dates(raw_frame())
    assert dropped == 0
    assert len(out) == 3


def test_none_reads_the_raw_prices():
    bars = adjust_prices(raw_frame(), "raw", "none")
    assert list(bars.columns) == BAR_COLUMNS
    assert list(bars["close"]) == [11.0, 12.0, 6.5]


def test_hfq_multiplies_each_price_by_its_days_factor():
    bars = adjust_prices(raw_frame(), "raw", "hfq")
    assert list(bars["close"]) == [11.0 * 1, 12.0 * 1, 6.5 * 2]
    assert list(bars["open"]) == [10.0, 11.0, 12.0]
    assert list(bars["volume"]) == [100.0, 200.0, 300.0]  # volumes are not prices


def test_qfq_scales_by_the_factor_over_the_latest_factor_so_the_last_price_is_raw():
    bars = adjust_prices(raw_frame(), "raw", "qfq")
    assert list(bars["close"]) == pytest.approx([11.0 / 2, 12.0 / 2, 6.5])
    assert list(bars["low"]) == pytest.approx([9.0 / 2, 10.0 / 2, 5.0])


def test_missing_factors_are_filled_from_their_neighbours():
    # first unknown: taken from the next known (1.0); last unknown: carried from the one before (2.0)
    bars = adjust_prices(raw_frame((np.nan, 2.0, np.nan)), "raw", "hfq")
    assert list(bars["close"]) == [11.0 * 2, 12.0 * 2, 6.5 * 2]


def test_a_raw_series_without_any_factor_reads_only_unadjusted():
    frame = raw_frame((np.nan, np.nan, np.nan))
    assert list(adjust_prices(frame, "raw", "none")["close"]) == [11.0, 12.0, 6.5]
    for adjust in ("qfq", "hfq"):
        with pytest.raises(BadInputError, match="--adjust none"):
            adjust_prices(frame, "raw", adjust)


def test_an_imported_series_reads_only_on_its_own_basis():
    frame = raw_frame()
    assert list(adjust_prices(frame, "qfq", "qfq")["close"]) == [11.0, 12.0, 6.5]  # as imported, factors ignored
    with pytest.raises(BadInputError, match="--adjust qfq"):
        adjust_prices(frame, "qfq", "hfq")


def test_an_unknown_adjustment_is_refused():
    assert ADJUSTMENTS == ("qfq", "hfq", "none")
    with pytest.raises(BadInputError, match="unknown adjustment"):
        adjust_prices(raw_frame(), "raw", "bfq")


def test_adjusting_leaves_the_stored_frame_untouched():
    frame = raw_frame()
    before = frame.copy()
    adjust_prices(frame, "raw", "hfq")
    pd.testing.assert_frame_equal(frame, before)


def test_bars_know_their_first_and_last_dates_and_length():
    bars = Bars("600519.SH", "qfq", "csv", adjust_prices(raw_frame(), "raw", "qfq"))
    assert bars.first_date == pd.Timestamp("2024-01-02")
    assert bars.last_date == pd.Timestamp("2024-01-04")
    assert len(bars) == 3
