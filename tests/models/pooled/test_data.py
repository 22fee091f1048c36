"""Pooled inputs for the global model: labels, time splits across tickers, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.models.pooled.data import latest_rows, pool, rows_by_day, targets, time_split, window_batch

LOOKBACK = 10


def make_panel(tickers: dict[str, int], seed: int = 0, start: str = "2020-01-01") -> pd.DataFrame:
    """Random-walk bars; each ticker has its own number of rows ending on the same last day (late listings)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, periods=max(tickers.values()))
    parts = []
    for name, rows in tickers.items():
        dates = days[-rows:]
        close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, rows)))
        opens = close * np.exp(rng.normal(0, 0.005, rows))
        parts.append(pd.DataFrame({"date": dates, "ticker": name, "open": opens, "high": np.maximum(opens, close) * 1.01,
                                   "low": np.minimum(opens, close) * 0.99, "close": close,
                                   "volume": rng.integers(1_000, 9_000, rows).astype(float)}))
    return pd.concat(parts).set_index(["date", "ticker"]).sort_index()


def test_labels_are_each_tickers_own_next_rows_cumulated():
    panel = make_panel({"AAA": 120, "BBB": 90})
    data = pool(panel, horizon=3)
    for name in ("AAA", "BBB"):
        close = panel.xs(name, level="ticker")["close"].to_numpy()
        mine = data.tickers == name
        expected = np.full((len(close), 3), np.nan)
        for t in range(len(close)):
            for h in range(1, 4):
                if t + h < len(close):
                    expected[t, h - 1] = np.log(close[t + h] / close[t])
        np.testing.assert_allclose(data.labels[mine], expected, rtol=1e-5, equal_nan=True)
        assert np.isnat(data.label_dates[mine][-3:]).all()


def test_every_validation_origin_is_later_than_every_training_label_for_every_ticker():
    panel = make_panel({"AAA": 300, "BBB": 250, "CCC": 200}, seed=1)
    data = pool(panel, horizon=5)
    days = np.unique(data.dates)
    split = time_split(data, LOOKBACK, train_end=days[200], validation_end=days[260])
    assert len(split.train) and len(split.validation)
    assert data.label_dates[split.train].max() <= split.cut
    assert data.dates[split.validation].min() > data.label_dates[split.train].max()  # the H-day gap holds
    assert data.label_dates[split.validation].max() <= split.validation_end
    for name in ("AAA", "BBB", "CCC"):  # time, never ticker: each ticker is on both sides
        assert (data.tickers[split.train] == name).any() and (data.tickers[split.validation] == name).any()


def test_windows_never_cross_from_one_ticker_into_another():
    panel = make_panel({"AAA": 80, "BBB": 80}, seed=2)
    data = pool(panel, horizon=2)
    split = time_split(data, LOOKBACK, train_end=np.unique(data.dates)[-1], validation_days=10)
    rows = np.concatenate([split.train, split.validation])
    offsets = rows[:, None] + np.arange(-LOOKBACK + 1, 1)
    assert (data.tickers[offsets] == data.tickers[rows][:, None]).all()
    window, static = window_batch(data, rows[:4], LOOKBACK)
    assert window.shape == (4, LOOKBACK, data.sequence.shape[1]) and static.shape == (4, data.static.shape[1])
    np.testing.assert_array_equal(window[:, -1, :], data.sequence[rows[:4]])


@settings(max_examples=15, deadline=None)
@given(cut=st.integers(min_value=70, max_value=280), seed=st.integers(0, 1000))
def test_changing_the_future_leaves_every_past_input_unchanged(cut, seed):
    panel = make_panel({"AAA": 300, "BBB": 300, "CCC": 260}, seed=seed)
    changed = panel.copy()
    days = panel.index.get_level_values("date").unique()
    future = changed.index.get_level_values("date") > days[cut]
    rng = np.random.default_rng(seed + 1)
    changed.loc[future, ["open", "high", "low", "close"]] *= rng.uniform(0.5, 2.0, (int(future.sum()), 1))
    changed.loc[future, "volume"] *= 3
    before, after = pool(panel, 5), pool(changed, 5)
    past = before.dates <= np.datetime64(days[cut])
    np.testing.assert_array_equal(before.sequence[past], after.sequence[past])
    np.testing.assert_array_equal(before.static[past], after.static[past])
    # labels look ahead by design; those whose whole horizon is past are unchanged too
    settled = past & (before.label_dates <= np.datetime64(days[cut]))
    np.testing.assert_array_equal(before.labels[settled], after.labels[settled])


def test_rank_target_is_centred_within_each_day_and_demeaned_sums_to_zero():
    data = pool(make_panel({f"T{i}": 100 for i in range(7)}, seed=3), horizon=2)
    ranked, demeaned = targets(data, "rank"), targets(data, "demeaned")
    known = np.isfinite(data.labels[:, 1])
    frame = pd.DataFrame({"d": data.dates[known], "r": ranked[known, 1], "m": demeaned[known, 1]})
    by_day = frame.groupby("d")
    np.testing.assert_allclose(by_day["r"].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(by_day["r"].max(), 0.5, atol=1e-6)
    np.testing.assert_allclose(by_day["m"].sum(), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="choose from"):
        targets(data, "median")


def test_latest_rows_give_one_origin_per_ticker_and_days_group_cross_sections():
    data = pool(make_panel({"AAA": 100, "BBB": 70, "CCC": 5}, seed=4), horizon=2)
    rows = latest_rows(data, LOOKBACK)
    assert sorted(data.tickers[rows]) == ["AAA", "BBB"]  # CCC has too little history for a window
    assert (data.dates[rows] == data.dates.max()).all()
    groups = rows_by_day(np.arange(len(data)), data)
    assert all(len(set(data.dates[g])) == 1 for g in groups)
    assert [data.dates[g][0] for g in groups] == sorted(set(data.dates))


def test_every_nth_day_thins_whole_days_and_keeps_every_ticker():
    from forecast.models.pooled.data import every_nth_day

    data = pool(make_panel({"AAA": 60, "BBB": 60}, seed=5), horizon=2)
    rows = np.arange(len(data))
    kept = every_nth_day(rows, data, 3)
    days = np.unique(data.dates)
    assert set(data.dates[kept]) == set(days[::3])
    assert (data.tickers[kept] == "AAA").sum() == (data.tickers[kept] == "BBB").sum() == len(days[::3])
    assert every_nth_day(rows, data, 1) is rows


def test_a_training_target_never_depends_on_a_label_that_ends_after_the_cut():
    # BBB is suspended for 30 days around the cut: its label "3 rows ahead" ends weeks later. Ranked or demeaned
    # within the day, such a label would leak its future into AAA's and CCC's targets unless the cut hides it.
    panel = make_panel({"AAA": 200, "BBB": 200, "CCC": 200}, seed=8)
    days = panel.index.get_level_values("date").unique()
    cut = days[150]
    suspended = (panel.index.get_level_values("ticker") == "BBB") & panel.index.get_level_values("date").isin(days[148:178])
    panel = panel[~suspended]
    changed = panel.copy()
    later = changed.index.get_level_values("date") > cut
    changed.loc[later, ["open", "high", "low", "close"]] *= np.random.default_rng(3).uniform(0.5, 2.0, (int(later.sum()), 1))
    for kind in ("rank", "demeaned", "return"):
        before, after = pool(panel, 3), pool(changed, 3)
        known = before.label_dates <= np.datetime64(cut)
        np.testing.assert_array_equal(targets(before, kind, known_until=cut)[known], targets(after, kind, known_until=cut)[known])
        assert np.isnan(targets(before, kind, known_until=cut)[~known]).all()
    # without the cut the leak is real: the same comparison differs (the test can fail)
    before, after = pool(panel, 3), pool(changed, 3)
    known = before.label_dates <= np.datetime64(cut)
    assert not np.array_equal(targets(before, "rank")[known], targets(after, "rank")[known])


def expected_slow_signals(close: pd.Series) -> pd.DataFrame:
    """The five slow signals of one ticker, straight from their definitions (STATIC_FEATURES order)."""
    log_close = np.log(close)
    returns = log_close.diff()
    return pd.DataFrame({
        "momentum_12_1": log_close.shift(21) - log_close.shift(252),
        "momentum_60": log_close - log_close.shift(60),
        "momentum_20": log_close - log_close.shift(20),
        "reversal_5": log_close.shift(5) - log_close,
        # 60 rows of the ticker (its first return unknown), of which at least two thirds known
        "volatility_60": np.log(returns.rolling(60, min_periods=40).std().where(np.arange(len(close)) >= 59)),
    })


def test_training_and_prediction_rank_the_same_slow_signals_each_tickers_own():
    from forecast.models.pooled.data import STATIC_FEATURES
    from forecast.models.pooled.model import pooled_against

    panel = make_panel({"AAA": 320, "BBB": 300, "CCC": 290, "NEW": 280}, seed=11)
    raw = pd.concat({name: expected_slow_signals(panel.xs(name, level="ticker")["close"]) for name in ("AAA", "BBB", "CCC", "NEW")},
                    names=["ticker", "date"])
    assert list(raw.columns) == list(STATIC_FEATURES)

    def centred_rank(frame: pd.DataFrame) -> pd.DataFrame:  # within each day; unknown: the day's middle, 0
        by_day = frame.groupby(level="date")
        ranks = (by_day.rank(method="average") - 1).div(by_day.transform("count") - 1) - 0.5
        return ranks.where(by_day.transform("count") > 1, 0.0).fillna(0.0)

    trained = pool(panel, horizon=3)  # training: every ticker of the panel compared with every other
    expected = centred_rank(raw).sort_index()
    np.testing.assert_allclose(trained.static, expected.to_numpy(), atol=1e-6)
    cut = panel.index.get_level_values("date").unique()[-10]
    recent = pool(panel, horizon=3, static_from=cut)  # a forecast ranks its recent days alone; the rest: the day's middle
    late = recent.dates >= np.datetime64(cut)
    np.testing.assert_allclose(recent.static[late], expected.to_numpy()[late], atol=1e-6)
    assert late.any() and (recent.static[~late] == 0).all()

    served = pooled_against(panel, 3, reference={"AAA", "BBB", "CCC"})  # prediction: NEW compared with the universe
    for name in ("AAA", "BBB", "NEW"):
        mine = served.tickers == name
        against = raw.loc[["AAA", "BBB", "CCC"] + (["NEW"] if name == "NEW" else [])]
        np.testing.assert_allclose(served.static[mine], centred_rank(against).loc[name].to_numpy(), atol=1e-6)


def test_long_order_is_ticker_then_date_whatever_order_the_panel_and_its_levels_are_in():
    from forecast.models.pooled.inputs import long_order

    panel = make_panel({"BBB": 30, "AAA": 25, "CCC": 28}, seed=4)
    shuffled = panel.sample(frac=1.0, random_state=1)  # rows in no order; levels built from them: unsorted too
    shuffled.index = pd.MultiIndex.from_arrays([shuffled.index.get_level_values(0).to_numpy(),
                                                shuffled.index.get_level_values(1).to_numpy()], names=["date", "ticker"])
    expected = shuffled.swaplevel().sort_index().index
    order, _ = long_order(shuffled)
    assert list(zip(shuffled.index.get_level_values(1)[order], shuffled.index.get_level_values(0)[order])) == list(expected)
    order, inside = long_order(shuffled, first={"CCC"})  # a reference's rows first, then the others, each in long order
    tickers = shuffled.index.get_level_values(1)[order]
    assert inside == 28 and list(tickers[:inside].unique()) == ["CCC"] and list(tickers[inside:].unique()) == ["AAA", "BBB"]
