"""Labels and baseline signals on (date, ticker) panels: by hand, on each ticker's own rows, and blind to the future."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.errors import BadInputError
from forecast.maths import signals

DAYS = pd.bdate_range("2024-01-01", periods=7)


def panel(rows: dict[str, dict[int, float]]) -> pd.Series:
    """A close Series from ``{ticker: {day number: close}}``, sorted like qlib's (date, ticker) layout."""
    index, values = [], []
    for ticker, closes in rows.items():
        for day, close in closes.items():
            index.append((DAYS[day], ticker))
            values.append(close)
    frame = pd.Series(values, index=pd.MultiIndex.from_tuples(index, names=["date", "ticker"]), name="close")
    return frame.sort_index()


# B has no rows on days 2 and 3 (a suspension): its "next" rows are its own, not the calendar's.
GAPPY = panel({"A": {d: 10.0 + d for d in range(7)}, "B": {0: 20.0, 1: 22.0, 4: 18.0, 5: 24.0, 6: 30.0}})


def by_ticker_loop(close: pd.Series, step: int) -> dict[tuple, float]:
    """close[row + step] / close[row] - 1 along each ticker's own list of rows, by explicit loop."""
    out = {}
    for ticker in close.index.get_level_values(1).unique():
        rows = close.xs(ticker, level=1)
        for i, day in enumerate(rows.index):
            j = i + step
            out[(day, ticker)] = rows.iloc[j] / rows.iloc[i] - 1 if 0 <= j < len(rows) else math.nan
    return out


def assert_matches(result: pd.Series, expected: dict[tuple, float]) -> None:
    assert len(result) == len(expected)
    for key, value in expected.items():
        got = result.loc[key]
        assert (math.isnan(got) and math.isnan(value)) or got == pytest.approx(value), key


# --- labels ---------------------------------------------------------------------------------------

def test_forward_returns_use_each_tickers_own_next_rows_and_leave_the_last_h_rows_nan():
    result = signals.forward_returns(GAPPY, 2)
    assert_matches(result, by_ticker_loop(GAPPY, 2))
    # B's label on day 1 reads its 2nd next row, day 5 (18 -> 24 skipped over the gap): 24 / 22 - 1.
    assert result.loc[(DAYS[1], "B")] == pytest.approx(24 / 22 - 1)
    for ticker in ("A", "B"):
        last = result.xs(ticker, level=1).iloc[-2:]
        assert last.isna().all()
    assert result.xs("A", level=1).iloc[:-2].notna().all()


def test_log_forward_returns_are_the_log_of_the_price_ratio():
    result = signals.forward_returns(GAPPY, 1, kind="log")
    assert result.loc[(DAYS[1], "B")] == pytest.approx(math.log(18 / 22))


# --- signals by hand ------------------------------------------------------------------------------

def test_momentum_and_reversal_by_hand_on_own_rows():
    mom = signals.momentum(GAPPY, window=2)
    assert_matches(mom, {key: value for key, value in _past(GAPPY, 2).items()})
    rev = signals.reversal(GAPPY, window=1)
    # B on day 4: its previous row is day 1 (22), so reversal is -(18 / 22 - 1).
    assert rev.loc[(DAYS[4], "B")] == pytest.approx(-(18 / 22 - 1))
    assert math.isnan(rev.loc[(DAYS[0], "A")])


def _past(close: pd.Series, window: int) -> dict[tuple, float]:
    """close[row] / close[row - window] - 1 by explicit loop."""
    out = {}
    for ticker in close.index.get_level_values(1).unique():
        rows = close.xs(ticker, level=1)
        for i, day in enumerate(rows.index):
            out[(day, ticker)] = rows.iloc[i] / rows.iloc[i - window] - 1 if i >= window else math.nan
    return out


def test_momentum_12_1_is_the_return_from_252_to_21_rows_back():
    days = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(3)
    closes = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    close = pd.Series(closes, index=pd.MultiIndex.from_product([days, ["X"]], names=["date", "ticker"]))
    result = signals.momentum_12_1(close).to_numpy()
    assert np.isnan(result[:252]).all()
    for t in (252, 270, 299):
        assert result[t] == pytest.approx(closes[t - 21] / closes[t - 252] - 1)


def test_naive_is_zero_everywhere():
    result = signals.naive(GAPPY)
    assert result.index.equals(GAPPY.index) and (result == 0).all()


# --- the future stays out -------------------------------------------------------------------------

SIGNALS = {
    "momentum_12_1": signals.momentum_12_1,
    "momentum_20": lambda c: signals.momentum(c, 20),
    "reversal_5": lambda c: signals.reversal(c, 5),
    "naive": signals.naive,
}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cutoff=st.integers(253, 318), drop=st.floats(0.0, 0.2))
def test_changing_prices_after_t_leaves_every_signal_up_to_t_unchanged(seed, cutoff, drop):
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2019-01-01", periods=320)
    index = pd.MultiIndex.from_product([days, ["A", "B", "C"]], names=["date", "ticker"])
    close = pd.Series(20 * np.exp(np.cumsum(rng.normal(0, 0.02, (320, 3)), axis=0)).ravel(), index=index)
    # Gaps in B and C (suspensions, late listings); A keeps every row so that
    # 12-1 momentum has values before the cutoff and the check is not vacuous.
    keep = (rng.random(len(close)) >= drop) | (close.index.get_level_values(1) == "A")
    close = close[keep]
    later = close.index.get_level_values(0) > days[cutoff]
    changed = close.copy()
    changed[later] *= np.exp(rng.normal(0, 0.3, int(later.sum())))
    changed = changed[~later | (rng.random(len(changed)) >= 0.3)]  # the future may also lose rows
    for name, make in SIGNALS.items():
        before = make(close)[~later]
        after = make(changed)
        after = after[after.index.get_level_values(0) <= days[cutoff]]
        pd.testing.assert_series_equal(before, after, obj=name)
    assert signals.momentum_12_1(close)[~later].notna().any()


# --- cross-sectional targets and the universe -----------------------------------------------------

def test_demean_and_rank_within_each_date_by_hand():
    values = panel({"A": {0: 1.0, 1: 5.0}, "B": {0: 3.0, 1: 5.0}, "C": {0: 8.0, 1: math.nan}})
    demeaned = signals.demean_by_date(values)
    assert demeaned.loc[(DAYS[0], "A")] == pytest.approx(1 - 4)
    assert demeaned.loc[(DAYS[1], "B")] == pytest.approx(0.0)
    assert math.isnan(demeaned.loc[(DAYS[1], "C")])
    ranked = signals.rank_by_date(values)
    assert [ranked.loc[(DAYS[0], t)] for t in "ABC"] == [-0.5, 0.0, 0.5]
    # Day 1: A and B tie (average rank 1.5 of 2): both in the middle.
    assert [ranked.loc[(DAYS[1], t)] for t in "AB"] == [0.0, 0.0]


def test_universe_mask_keeps_point_in_time_members_only():
    members = {DAYS[0].date(): {"A"}, DAYS[1].date(): {"A", "B"}}
    values = panel({"A": {0: 1.0, 1: 2.0, 2: 3.0}, "B": {0: 4.0, 1: 5.0, 2: 6.0}})
    expected = [(DAYS[0], "A"), (DAYS[1], "A"), (DAYS[1], "B")]
    by_callable = signals.universe_mask(values, lambda day: members.get(day, set()))
    assert list(by_callable.index) == expected
    flags = pd.Series([True, True, True, False], index=pd.MultiIndex.from_tuples(
        [(DAYS[0], "A"), (DAYS[1], "A"), (DAYS[1], "B"), (DAYS[0], "B")]))
    assert list(signals.universe_mask(values, flags).index) == expected
    wide = pd.DataFrame({"A": [True, True], "B": [False, True]}, index=DAYS[:2])
    assert list(signals.universe_mask(values, wide).index) == expected


def test_bad_panels_get_one_line_errors():
    with pytest.raises(BadInputError, match="sorted"):
        signals.momentum(GAPPY.iloc[::-1])
    with pytest.raises(BadInputError, match="MultiIndex"):
        signals.forward_returns(pd.Series([1.0, 2.0]), 1)
    with pytest.raises(BadInputError, match="positive"):
        signals.momentum(panel({"A": {0: 1.0, 1: 0.0}}))
    with pytest.raises(BadInputError, match="horizon"):
        signals.forward_returns(GAPPY, 0)
