"""The cross-sectional backtest: schedules, no leakage, and what it reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.errors import BadInputError
from forecast.evaluation.cross_backtest import CrossSettings, FixedSplit, cross_backtest
from forecast.models.pooled.data import min_bars
from forecast.models.pooled.model import GlobalSettings
from tests.models.pooled.test_data import make_panel

NET = GlobalSettings(lookback=10, horizon=3, units=4, head_units=4, members=1, epochs=1, patience=0, validation_days=30)


def settings(models, **kw) -> CrossSettings:
    return CrossSettings(models=tuple(models), horizon=3, test_days=40, refit_every=20, validation_days=30, network=NET, **kw)


def test_changing_the_future_leaves_every_past_forecast_unchanged_for_every_ticker():
    panel = make_panel({f"T{i}": 330 for i in range(8)}, seed=11)
    days = panel.index.get_level_values("date").unique()
    cut = days[-15]  # inside the second refit block
    changed = panel.copy()
    future = changed.index.get_level_values("date") > cut
    changed.loc[future, ["open", "high", "low", "close"]] *= np.random.default_rng(1).uniform(0.5, 2, (int(future.sum()), 1))
    captured = {}
    for name, frame in (("before", panel), ("after", changed)):
        result = cross_backtest(frame, settings(["linear", "momentum", "reversal"]))
        captured[name] = result
    for model in ("linear", "momentum", "reversal"):
        before = captured["before"].rank_ic[model]
        after = captured["after"].rank_ic[model]
        # a day's Rank IC needs its realised H-day return, so compare days whose labels end before the cut
        settled = before.index[before.index <= days[days.get_loc(cut) - 3]]
        pd.testing.assert_series_equal(before.loc[settled], after.loc[settled])
    assert captured["before"].refits[0]["origin"] < captured["before"].refits[1]["origin"]


def test_walk_forward_refits_once_per_block_on_labels_that_end_before_it():
    panel = make_panel({f"T{i}": 300 for i in range(6)}, seed=12)
    result = cross_backtest(panel, settings(["linear", "naive"]))
    assert [r["origin"] for r in result.refits] == sorted({r["origin"] for r in result.refits})
    assert len(result.refits) == 2  # 40 test days, a refit every 20
    assert result.report.models["naive"].days == 0  # a constant forecast ranks nothing: no IC, not an IC of 0
    assert result.report.models["linear"].days == 40
    daily = result.daily_frame()
    np.testing.assert_allclose(daily["linear_cumulative_rank_ic"].iloc[-1], daily["linear_rank_ic"].sum())
    assert set(result.to_dict()["models"]) == {"linear", "naive"}
    skill = result.to_dict()["price_skill"]["linear"]  # per ticker, against naive's zero return
    assert skill["tickers"] == 6 and -1.0 < skill["median"] < 1.0 and 0.0 <= skill["share_positive"] <= 1.0


def test_price_skill_is_one_minus_the_rmse_ratio_against_a_zero_forecast():
    from forecast.evaluation.cross_backtest import price_skill
    from forecast.models.pooled.data import pool

    data = pool(make_panel({"AAA": 40, "BBB": 40}, seed=16), horizon=2)
    rows = np.flatnonzero(np.isfinite(data.labels[:, 1]))
    index = pd.MultiIndex.from_arrays([pd.DatetimeIndex(data.dates[rows]), data.tickers[rows]])
    truth = data.labels[rows, 1].astype("float64")
    perfect = price_skill(pd.Series(truth, index=index), data, 2)
    assert perfect["median"] == pytest.approx(1.0) and perfect["share_positive"] == 1.0
    half = price_skill(pd.Series(truth / 2, index=index), data, 2)  # half the move: RMSE halves, skill 0.5
    assert half["median"] == pytest.approx(0.5)
    zero = price_skill(pd.Series(0.0, index=index), data, 2)
    assert zero["median"] == pytest.approx(0.0) and zero["share_positive"] == 0.0


def test_fixed_split_scores_only_the_named_test_period():
    panel = make_panel({f"T{i}": 300 for i in range(6)}, seed=13)
    days = panel.index.get_level_values("date").unique()
    fixed = FixedSplit(str(days[150].date()), str(days[155].date()), str(days[220].date()), str(days[226].date()),
                       str(days[280].date()))
    result = cross_backtest(panel, settings(["linear", "momentum_20"], fixed=fixed))
    assert result.test_range == (str(days[226].date()), str(days[280].date()))
    assert len(result.refits) == 1 and result.refits[0]["validation_rows"] > 0
    assert result.rank_ic.index.min() >= days[226] and result.rank_ic.index.max() <= days[280]


def test_point_in_time_membership_scores_only_the_members_of_each_day():
    panel = make_panel({f"T{i}": 300 for i in range(10)}, seed=14)
    days = panel.index.get_level_values("date").unique()
    late = days[-20]

    def members(day):  # T9 joins the index late: before that it must not count
        return [f"T{i}" for i in range(9)] + (["T9"] if pd.Timestamp(day) >= late else [])

    with_all = cross_backtest(panel, settings(["momentum_20"]))
    masked = cross_backtest(panel, settings(["momentum_20"]), membership=members)
    early = with_all.rank_ic.index < late
    assert not np.allclose(with_all.rank_ic["momentum_20"][early], masked.rank_ic["momentum_20"][early])
    np.testing.assert_allclose(with_all.rank_ic["momentum_20"][~early], masked.rank_ic["momentum_20"][~early])


def test_too_little_history_or_an_empty_split_is_a_one_line_error_not_a_crash():
    panel = make_panel({f"T{i}": 200 for i in range(6)}, seed=17)
    with pytest.raises(BadInputError, match="trading days before it"):
        cross_backtest(panel, CrossSettings(models=("linear",), horizon=3, test_days=150, refit_every=50, validation_days=30,
                                            network=NET))
    days = panel.index.get_level_values("date").unique()
    early = FixedSplit(str(days[5].date()), str(days[6].date()), str(days[10].date()), str(days[150].date()),
                       str(days[190].date()))
    with pytest.raises(BadInputError, match="no complete 3-day labels to train"):
        cross_backtest(panel, settings(["linear"], fixed=early))
    with pytest.raises(BadInputError, match="'soon' is not one"):
        FixedSplit("2020-01-01", "soon", "2020-06-01", "2020-07-01", "2020-12-31")


def test_bad_settings_are_one_line_errors():
    with pytest.raises(BadInputError, match="choose from"):
        CrossSettings(models=("global", "crystal_ball"))
    with pytest.raises(BadInputError, match="refit-every"):
        CrossSettings(refit_every=0)
    with pytest.raises(BadInputError, match="fixed split needs"):
        FixedSplit("2020-01-01", "2019-01-01", "2020-06-01", "2020-07-01", "2020-12-31")


@pytest.mark.slow
def test_the_global_network_takes_part_like_any_other_learner():
    panel = make_panel({f"T{i}": 260 for i in range(6)}, seed=15)
    result = cross_backtest(panel, CrossSettings(models=("global",), horizon=3, test_days=20, refit_every=20,
                                                 validation_days=30, network=NET))
    assert result.report.models["global"].days == 20
    assert result.refits[0]["model"] == "global" and "validation_rank_ic" in result.refits[0]


def test_a_chart_with_no_scored_day_says_so_instead_of_an_empty_legend(tmp_path):
    import warnings

    import matplotlib.image

    from forecast.outputs.cross_charts import render_cross_backtest

    days = pd.date_range("2020-01-02", periods=4, freq="B")
    unscored = pd.DataFrame({"linear_rank_ic": np.nan, "linear_cumulative_rank_ic": np.nan, "linear_spread": np.nan}, index=days)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns about a legend with nothing in it
        path = render_cross_backtest(unscored, "nothing scored", tmp_path / "empty.png")
    assert matplotlib.image.imread(path).shape[0] > 100
    scored = unscored.assign(linear_rank_ic=[0.1, 0.0, 0.2, 0.1], linear_cumulative_rank_ic=[0.1, 0.1, 0.3, 0.4],
                             linear_spread=[0.01, 0.0, 0.02, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        render_cross_backtest(scored, "scored", tmp_path / "scored.png")


def test_what_the_backtest_cannot_score_is_said_in_its_notes():
    small = cross_backtest(make_panel({f"T{i}": 330 for i in range(3)}, seed=2), settings(["momentum"]))
    assert small.report.models["momentum"].days == 0
    assert any("3 ticker(s): a day's IC needs at least 5 tickers" in n for n in small.notes)
    # a member listed too late for the learned models' windows is named, with the bars they need
    late = cross_backtest(make_panel({**{f"T{i}": 330 for i in range(6)}, "NEWCO": 30}, seed=2), settings(["linear"]))
    named = [n for n in late.notes if n.startswith("NEWCO:")]
    assert len(named) == 1 and "too little history" in named[0] and f"needs {min_bars(NET.lookback)} bars" in named[0]
    assert not any("ticker(s): a day's IC" in n for n in late.notes)
    full = cross_backtest(make_panel({f"T{i}": 330 for i in range(6)}, seed=2), settings(["linear"]))
    assert full.notes == []
    days = make_panel({"T0": 330}).index.get_level_values("date").unique()
    split = FixedSplit(str(days[150].date()), str(days[170].date()), str(days[230].date()), str(days[260].date()), "2031-01-01")
    cut = cross_backtest(make_panel({f"T{i}": 330 for i in range(6)}, seed=2), settings(["momentum"], fixed=split))
    assert any(n.startswith(f"the test period ends on {cut.test_range[1]}") for n in cut.notes)
    exact = FixedSplit(split.train_end, split.validation_start, split.validation_end, split.test_start, cut.test_range[1])
    five = cross_backtest(make_panel({f"T{i}": 330 for i in range(5)}, seed=2), settings(["momentum"], fixed=exact))
    assert five.notes == [] and five.report.models["momentum"].days > 0  # five tickers rank; a test end on the data is not cut
