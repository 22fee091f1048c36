"""The A-share trading rules, each expectation worked out by hand in the test."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from forecast.data.trading_rules import (
    LIMIT_RULES,
    board_of,
    cap_band,
    is_china,
    limit_band,
    limit_price,
    limit_rate,
)
from forecast.data.trading_status import trading_status


def frame(days: list[str], **columns: list[float]) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.DatetimeIndex(days), dtype=float)


# --- boards and dated rules ------------------------------------------------------------------------

def test_boards_by_code():
    assert board_of("600519.SH") == "main" and board_of("000001.SZ") == "main"
    assert board_of("300750.SZ") == board_of("301001.SZ") == "chinext"
    assert board_of("688981.SH") == board_of("689009.SH") == "star"
    assert board_of("430047.BJ") == board_of("830799.BJ") == board_of("920001.BJ") == "bse"
    assert board_of("000300.SH") == board_of("399001.SZ") == ""  # indices: no board, no limit
    assert board_of("AAPL") == "" and not is_china("AAPL") and is_china("000300.SH")


def test_the_rules_are_dated_rows_that_do_not_overlap():
    for board in ("main", "chinext", "star", "bse"):
        rules = sorted((r for r in LIMIT_RULES if r.board == board), key=lambda r: r.first_day)
        for before, after in itertools.pairwise(rules):
            assert before.last_day is not None and before.last_day < after.first_day


def test_main_board_limit_price_rounds_half_up_to_the_cent():
    # 10.05 x 1.10 = 11.055 -> 11.06 (half up); 10.05 x 0.90 = 9.045 -> 9.05
    assert limit_price(10.05, 0.10, up=True) == 11.06
    assert limit_price(10.05, 0.10, up=False) == 9.05
    # 3.33 x 1.1 = 3.663 -> 3.66; 3.33 x 0.9 = 2.997 -> 3.00; 10 x 1.1 = 11.00
    np.testing.assert_array_equal(limit_price(np.array([10.0, 3.33]), 0.10, up=True), [11.00, 3.66])
    np.testing.assert_array_equal(limit_price(np.array([10.0, 3.33]), 0.10, up=False), [9.00, 3.00])


def test_chinext_before_and_after_the_2020_08_24_reform():
    assert limit_rate("300750.SZ", "2020-08-21") == 0.10
    assert limit_rate("300750.SZ", "2020-08-21", st=True) == 0.05
    assert limit_rate("300750.SZ", "2020-08-24") == 0.20
    assert limit_rate("300750.SZ", "2020-08-24", st=True) == 0.20
    # the same close of 10.00 gives 11.00 / 9.00 on Friday 21 August, 12.00 / 8.00 on Monday 24 August
    close = frame(["2020-08-20", "2020-08-21", "2020-08-24"], **{"300750.SZ": [10.0, 10.0, 10.0]})
    status = trading_status(close, close)
    assert status.up_limit.loc["2020-08-21", "300750.SZ"] == 11.00
    assert status.down_limit.loc["2020-08-21", "300750.SZ"] == 9.00
    assert status.up_limit.loc["2020-08-24", "300750.SZ"] == 12.00
    assert status.down_limit.loc["2020-08-24", "300750.SZ"] == 8.00
    assert np.isnan(status.up_limit.iloc[0, 0])  # no previous close in the frame


def test_star_board_twenty_percent_and_five_free_days():
    assert limit_rate("688981.SH", "2019-07-19") is None  # before the board opened
    assert limit_rate("688981.SH", "2021-03-01") == 0.20
    assert limit_rate("688981.SH", "2021-03-01", st=True) == 0.20
    assert limit_rate("688981.SH", "2021-03-01", session_number=5) is None
    assert limit_rate("688981.SH", "2021-03-01", session_number=6) == 0.20
    # 25.00 x 1.2 = 30.00, 25.00 x 0.8 = 20.00
    assert (limit_price(25.0, 0.20, up=True), limit_price(25.0, 0.20, up=False)) == (30.00, 20.00)


def test_bse_thirty_percent_and_a_free_listing_day():
    assert limit_rate("430047.BJ", "2022-06-01") == 0.30
    assert limit_rate("920001.BJ", "2026-01-05", st=True) == 0.30
    assert limit_rate("430047.BJ", "2022-06-01", session_number=1) is None
    assert limit_rate("430047.BJ", "2022-06-01", session_number=2) == 0.30
    # 7.77 x 1.3 = 10.101 -> 10.10; 7.77 x 0.7 = 5.439 -> 5.44
    assert (limit_price(7.77, 0.30, up=True), limit_price(7.77, 0.30, up=False)) == (10.10, 5.44)


def test_main_board_new_listings_before_and_after_the_registration_reform():
    assert limit_band("601999.SH", "2020-01-02", session_number=1) == (0.44, 0.36)  # of the issue price
    assert limit_rate("601999.SH", "2020-01-02", session_number=1) is None  # not a +-rate day
    assert limit_rate("601999.SH", "2020-01-03", session_number=2) == 0.10
    assert limit_rate("601999.SH", "2023-04-14", session_number=5) is None
    assert limit_rate("601999.SH", "2023-04-17", session_number=6) == 0.10


def test_unlimited_first_days_from_the_list_date():
    days = ["2023-04-10", "2023-04-11", "2023-04-12", "2023-04-13", "2023-04-14", "2023-04-17", "2023-04-18"]
    close = frame(days, **{"603000.SH": [20.0, 24.0, 30.0, 28.0, 26.0, 25.0, 27.5]})
    status = trading_status(close, close, listed={"603000.SH": pd.Timestamp("2023-04-10")})
    assert status.up_limit["603000.SH"].iloc[:5].isna().all()  # sessions 1..5: no limit
    # session 6 (17 April): 26.00 x 1.1 = 28.60 and 26.00 x 0.9 = 23.40; session 7: 25.00 -> 27.50 / 22.50
    assert status.up_limit.loc["2023-04-17", "603000.SH"] == 28.60
    assert status.down_limit.loc["2023-04-17", "603000.SH"] == 23.40
    assert status.up_limit.loc["2023-04-18", "603000.SH"] == 27.50
    assert bool(status.closed_at_up.loc["2023-04-18", "603000.SH"])  # 27.50 is the limit
    assert status.closed_at_up["603000.SH"].sum() == 1  # +20 % on day 2 and +25 % on day 3 were no limit hits


def test_st_days_come_from_namechange():
    days = ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"]
    close = frame(days, **{"600001.SH": [10.0, 10.0, 10.0, 10.50]})
    names = pd.DataFrame({
        "ts_code": ["600001.SH", "600001.SH"], "name": ["浦东实业", "*ST浦东"],
        "start_date": ["19990101", "20200106"], "end_date": [None, None],
        "ann_date": ["19981230", "20200103"], "change_reason": ["其他", "*ST"],
    })
    status = trading_status(close, close, names=names)
    # 3 January, not ST: 10.00 x 1.1 = 11.00; from 6 January *ST: 10.00 x 1.05 = 10.50, 10.00 x 0.95 = 9.50
    assert status.up_limit.loc["2020-01-03", "600001.SH"] == 11.00
    assert status.up_limit.loc["2020-01-06", "600001.SH"] == 10.50
    assert status.down_limit.loc["2020-01-06", "600001.SH"] == 9.50
    assert bool(status.closed_at_up.loc["2020-01-07", "600001.SH"])  # closed at 10.50 = 10.00 x 1.05


def test_stk_limit_rows_win_over_the_rule():
    days = ["2021-06-01", "2021-06-02", "2021-06-03"]
    close = frame(days, **{"600519.SH": [100.0, 110.0, 105.0]})
    stk = pd.DataFrame({"trade_date": ["20210602"], "ts_code": ["600519.SH"], "pre_close": [100.0],
                        "up_limit": [109.99], "down_limit": [90.01]})
    status = trading_status(close, close, stk_limit=stk)
    assert status.up_limit.loc["2021-06-02", "600519.SH"] == 109.99  # the exchange's price, not 100 x 1.1
    assert status.down_limit.loc["2021-06-02", "600519.SH"] == 90.01
    # no row on 3 June: by rule from 110.00: 121.00 / 99.00
    assert status.up_limit.loc["2021-06-03", "600519.SH"] == 121.00
    assert status.down_limit.loc["2021-06-03", "600519.SH"] == 99.00


def test_suspension_from_suspend_d_and_from_a_missing_bar():
    days = ["2021-06-01", "2021-06-02", "2021-06-03", "2021-06-04"]
    close = frame(days, **{"600000.SH": [10.0, np.nan, 10.5, 10.6], "000002.SZ": [20.0, 20.2, 20.4, 20.6],
                           "300001.SZ": [np.nan, 5.0, 5.1, 5.2]})
    suspend = pd.DataFrame({"ts_code": ["000002.SZ", "000002.SZ"], "trade_date": ["20210603", "20210604"],
                            "suspend_timing": [None, "09:30-10:30"], "suspend_type": ["S", "S"]})
    status = trading_status(close, close, suspensions=suspend)
    assert status.suspended["600000.SH"].tolist() == [False, True, False, False]  # no bar on 2 June
    assert status.suspended["000002.SZ"].tolist() == [False, False, True, False]  # an intraday halt trades
    assert status.suspended["300001.SZ"].tolist() == [False] * 4  # before its first bar: not yet listed
    assert not status.can_buy().loc["2021-06-02", "600000.SH"]
    assert not status.can_sell().loc["2021-06-03", "000002.SZ"]
    # the resumption's limit comes from the last close before the suspension: 10.00 x 1.1 = 11.00
    assert status.up_limit.loc["2021-06-03", "600000.SH"] == 11.00
    listed = trading_status(close, close, listed={"300001.SZ": pd.Timestamp("2020-01-02")})
    assert bool(listed.suspended.loc["2021-06-01", "300001.SZ"])  # listed long before, no bar: suspended


def test_opening_at_the_limit_blocks_the_trade_at_the_open():
    days = ["2021-06-01", "2021-06-02", "2021-06-03"]
    close = frame(days, **{"600000.SH": [10.0, 10.8, 9.72]})
    opens = frame(days, **{"600000.SH": [10.0, 11.0, 9.72]})
    status = trading_status(opens, close)
    # 2 June: limit 10.00 x 1.1 = 11.00, opened there (no buy), closed below it at 10.80
    assert bool(status.opened_at_up.loc["2021-06-02", "600000.SH"])
    assert not status.closed_at_up.loc["2021-06-02", "600000.SH"]
    assert not status.can_buy().loc["2021-06-02", "600000.SH"] and status.can_sell().loc["2021-06-02", "600000.SH"]
    # 3 June: limit down 10.80 x 0.9 = 9.72, opened and closed there: no sell, a buy is possible
    assert bool(status.opened_at_down.loc["2021-06-03", "600000.SH"])
    assert bool(status.closed_at_down.loc["2021-06-03", "600000.SH"])
    assert not status.can_sell().loc["2021-06-03", "600000.SH"] and status.can_buy().loc["2021-06-03", "600000.SH"]
    assert status.counts() == {"closed_at_up": 0, "closed_at_down": 1, "opened_at_up": 1, "opened_at_down": 1,
                               "suspended": 0}


def test_at_the_limit_allows_half_a_cent():
    days = ["2021-06-01", "2021-06-02"]
    close = frame(days, **{"600000.SH": [10.0, 10.996]})  # 11.00 - 0.004
    assert bool(trading_status(close, close).closed_at_up.iloc[1, 0])
    close = frame(days, **{"600000.SH": [10.0, 10.994]})  # 11.00 - 0.006
    assert not trading_status(close, close).closed_at_up.iloc[1, 0]


def test_non_china_and_index_columns_have_no_limits():
    days = ["2021-06-01", "2021-06-02"]
    close = frame(days, AAPL=[100.0, 150.0], **{"000300.SH": [5000.0, 6000.0]})
    status = trading_status(close, close)
    assert status.up_limit.isna().all().all() and status.down_limit.isna().all().all()
    assert not status.closed_at_up.any().any() and status.can_buy().all().all()
    assert limit_rate("AAPL", "2021-06-01") is None and limit_rate("000300.SH", "2021-06-01") is None


# --- bands ---------------------------------------------------------------------------------------

def test_cap_band_cuts_steps_one_to_three_compounded():
    cut = cap_band("600000.SH", 10.00, [9.50, 8.00, 7.00], [11.50, 12.00, 13.50], day="2024-01-02")
    # ceilings: 10 x 1.1 = 11.00, 11 x 1.1 = 12.10, 12.1 x 1.1 = 13.31
    # floors:   10 x 0.9 = 9.00,  9 x 0.9 = 8.10,  8.1 x 0.9 = 7.29
    assert cut.upper == pytest.approx([11.00, 12.00, 13.31])
    assert cut.lower == pytest.approx([9.50, 8.10, 7.29])
    assert cut.cut == ["upper", "lower", "both"]


def test_cap_band_rounds_at_each_session():
    cut = cap_band("600000.SH", 10.05, [0.0, 0.0], [99.0, 99.0], day="2024-01-02")
    # step 1: 10.05 x 1.1 = 11.055 -> 11.06; step 2: 11.06 x 1.1 = 12.166 -> 12.17 (unrounded 10.05 x 1.21 = 12.1605)
    # floors: 10.05 x 0.9 = 9.045 -> 9.05; 9.05 x 0.9 = 8.145 -> 8.15
    assert cut.upper == pytest.approx([11.06, 12.17])
    assert cut.lower == pytest.approx([9.05, 8.15])
    assert cut.cut == ["both", "both"]


def test_cap_band_on_chinext_st_and_star():
    # ChiNext from 2020-08-24: +-20 %: 50 x 1.2 = 60.00, 50 x 0.8 = 40.00
    cut = cap_band("300750.SZ", 50.0, [35.0], [65.0], day="2021-01-04")
    assert (cut.lower, cut.upper, cut.cut) == ([40.0], [60.0], ["both"])
    # an ST main-board name: +-5 %: 10 x 1.05 = 10.50
    cut = cap_band("600000.SH", 10.0, [9.8], [10.8], day="2021-01-04", st=True)
    assert (cut.lower, cut.upper, cut.cut) == ([9.8], [10.5], ["upper"])


def test_cap_band_of_a_point_names_the_limit_it_hit():
    # a point forecast passed as both bounds: 12.00 > 11.00 is cut at the ceiling, 8.50 < 9.00 at the floor
    cut = cap_band("600000.SH", 10.0, [12.0, 8.5], [12.0, 8.5], day="2024-01-02")
    assert cut.lower == cut.upper == [11.0, 8.5]  # step 2's floor is 9.00 x 0.9 = 8.10: 8.50 stands
    assert cut.cut == ["upper", ""]
    cut = cap_band("600000.SH", 10.0, [8.5], [8.5], day="2024-01-02")
    assert (cut.lower, cut.cut) == ([9.0], ["lower"])


def test_cap_band_leaves_non_china_and_unlimited_days_alone():
    cut = cap_band("AAPL", 100.0, [50.0, 40.0], [150.0, 200.0], day="2024-01-02")
    assert (cut.lower, cut.upper, cut.cut) == ([50.0, 40.0], [150.0, 200.0], ["", ""])
    cut = cap_band("000300.SH", 4000.0, [3000.0], [5000.0], day="2024-01-02")
    assert cut.cut == [""] and cut.upper == [5000.0]
