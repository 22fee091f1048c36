"""Cross-sectional evaluation against hand computations: IC, Rank IC, quintile spread, turnover, both t statistics."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from scipy import stats

from forecast.errors import BadInputError
from forecast.jsonio import dumps
from forecast.maths import cross_section as xs

DAYS = pd.bdate_range("2024-03-04", periods=3)
TICKERS = ["A", "B", "C", "D", "E"]

# 3 days x 5 tickers. Day 1 has a tie in the signal (B, C) and in the label
# (D, E); day 2 lacks E's label, so only 4 pairs remain.
SIGNAL_ROWS = [[0.5, -1.0, 2.0, 0.1, -0.3],
               [1.0, 2.0, 2.0, -1.0, 0.0],
               [0.2, 0.4, -0.6, 0.9, -0.1]]
LABEL_ROWS = [[0.01, -0.02, 0.03, 0.00, -0.01],
              [-0.01, 0.02, 0.05, 0.01, 0.01],
              [0.02, 0.00, -0.03, 0.04, math.nan]]


def panel(rows: list[list[float]], tickers: list[str] = TICKERS, days: pd.DatetimeIndex = DAYS) -> pd.Series:
    index = pd.MultiIndex.from_product([days, tickers], names=["date", "ticker"])
    return pd.Series(np.ravel(rows), index=index, dtype="float64")


SIGNAL, LABEL = panel(SIGNAL_ROWS), panel(LABEL_ROWS)


def valid_pairs(day: int) -> tuple[np.ndarray, np.ndarray]:
    s, r = np.array(SIGNAL_ROWS[day]), np.array(LABEL_ROWS[day])
    ok = ~np.isnan(s) & ~np.isnan(r)
    return s[ok], r[ok]


# --- daily IC -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "reference"), [("pearson", stats.pearsonr), ("spearman", stats.spearmanr)])
def test_daily_ic_matches_scipy_day_by_day(method, reference):
    expected = [reference(*valid_pairs(day))[0] for day in range(3)]
    result = xs.daily_ic(SIGNAL, LABEL, method, min_tickers=4)
    assert list(result.index) == list(DAYS)
    assert result.to_numpy() == pytest.approx(expected)


def test_a_day_below_min_tickers_or_with_a_constant_side_is_nan():
    result = xs.daily_ic(SIGNAL, LABEL, "spearman", min_tickers=5)
    assert result.iloc[:2].notna().all() and math.isnan(result.iloc[2])  # day 2 has 4 pairs
    constant = panel([SIGNAL_ROWS[0], [0.3] * 5, SIGNAL_ROWS[2]])
    assert math.isnan(xs.daily_ic(constant, LABEL, "pearson", min_tickers=4).iloc[1])
    flat_label = panel([LABEL_ROWS[0], [0.01] * 5, LABEL_ROWS[2]])
    assert math.isnan(xs.daily_ic(SIGNAL, flat_label, "spearman", min_tickers=4).iloc[1])
    zeros = panel([[0.0] * 5] * 3)
    assert xs.daily_ic(zeros, LABEL, "pearson").isna().all()


def test_ic_scores_only_the_pairs_the_panels_share():
    fewer = SIGNAL.drop(index=(DAYS[0], "A"))
    s, r = valid_pairs(0)
    assert xs.daily_ic(fewer, LABEL, "pearson", min_tickers=4).iloc[0] == pytest.approx(stats.pearsonr(s[1:], r[1:])[0])


# --- quintiles ------------------------------------------------------------------------------------

def test_quintile_spread_with_five_names_is_best_minus_worst_by_hand():
    expected = []
    for day in range(3):
        s, r = valid_pairs(day)
        if len(s) < 5:
            expected.append(math.nan)
            continue
        # Ties: the first in ticker order ranks lower, so of B and C (2.0 each) C is on top.
        top = max(range(5), key=lambda i: (s[i], i))
        bottom = min(range(5), key=lambda i: (s[i], i))
        expected.append(r[top] - r[bottom])
    assert xs.quantile_spread(SIGNAL, LABEL).to_numpy() == pytest.approx(expected, nan_ok=True)


def test_quintiles_are_pandas_qcut_of_the_ranks_on_uneven_counts():
    rng = np.random.default_rng(7)
    tickers = [f"T{i:02d}" for i in range(23)]  # 23 names: quintiles of 5 and 4
    days = pd.bdate_range("2024-01-01", periods=4)
    signal = panel(rng.normal(size=(4, 23)), tickers, days)
    label = panel(rng.normal(size=(4, 23)), tickers, days)
    expected = []
    for day in days:
        s, r = signal.xs(day, level=0), label.xs(day, level=0)
        bucket = pd.qcut(s.rank(method="first"), 5, labels=False)
        expected.append(r[bucket == 4].mean() - r[bucket == 0].mean())
    assert xs.quantile_spread(signal, label).to_numpy() == pytest.approx(expected)


def test_top_turnover_by_hand():
    # 10 names, top quintile = 2 names. Day 0: I, J. Day 1: J, A (1 of 2 new). Day 2: J, A (none new).
    tickers = list("ABCDEFGHIJ")
    base = np.arange(10, dtype=float)
    day1 = base.copy()
    day1[0] = 20.0
    day2 = day1 * 2.0
    result = xs.top_turnover(panel([base, day1, day2], tickers))
    assert math.isnan(result.iloc[0])
    assert result.iloc[1:].tolist() == [0.5, 0.0]


# --- t statistics ---------------------------------------------------------------------------------

def test_newey_west_with_no_lags_is_the_naive_t():
    rng = np.random.default_rng(1)
    ic = pd.Series(rng.normal(0.02, 0.1, 60))
    s = xs.summary(ic, horizon=1)
    naive = ic.mean() / ic.std(ddof=0) * math.sqrt(60)  # the 1/n convention, stated in the module
    assert s.t_naive == pytest.approx(naive)
    assert s.t_newey_west == pytest.approx(naive) and s.lags == 0


def test_newey_west_by_hand_on_a_short_series():
    x = [0.3, -0.1, 0.2, 0.4, 0.0]
    n, lags, mean = 5, 2, sum(x) / 5
    d = [v - mean for v in x]
    gamma = [sum(d[t] * d[t - lag] for t in range(lag, n)) / n for lag in range(lags + 1)]
    long_run = gamma[0] + 2 * (2 / 3) * gamma[1] + 2 * (1 / 3) * gamma[2]
    assert xs.newey_west_t(np.array(x), lags) == pytest.approx(mean / math.sqrt(long_run / n))
    assert xs.summary(pd.Series(x), horizon=3).t_newey_west == pytest.approx(mean / math.sqrt(long_run / n))


def test_newey_west_agrees_with_statsmodels_plain_hac():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(5)
    x = rng.normal(0.01, 0.1, 120)
    fit = sm.OLS(x, np.ones_like(x)).fit(cov_type="HAC", cov_kwds={"maxlags": 4})
    assert xs.newey_west_t(x, 4) == pytest.approx(fit.tvalues[0])


def test_positive_autocorrelation_shrinks_the_newey_west_t():
    rng = np.random.default_rng(11)
    x = np.empty(500)
    x[0] = 0.0
    for t in range(1, 500):  # AR(1), phi 0.6, around a positive mean
        x[t] = 0.6 * x[t - 1] + rng.normal(0, 0.1)
    x += 0.03
    s = xs.summary(pd.Series(x), horizon=5)
    assert 0 < s.t_newey_west < s.t_naive


def test_summary_by_hand_ignores_skipped_days():
    ic = pd.Series([0.1, math.nan, -0.05, 0.2, 0.0])
    kept = np.array([0.1, -0.05, 0.2, 0.0])
    s = xs.summary(ic, horizon=1)
    assert s.days == 4 and s.positive_share == 0.5
    assert s.mean == pytest.approx(kept.mean()) and s.std == pytest.approx(kept.std())
    assert s.icir == pytest.approx(kept.mean() / kept.std())
    assert math.isnan(xs.summary(pd.Series([math.nan, math.nan]), 5).mean)


def test_cumulative_ic_is_flat_on_skipped_days():
    assert xs.cumulative_ic(pd.Series([0.1, math.nan, 0.2])).tolist() == pytest.approx([0.1, 0.1, 0.3])


# --- the report -----------------------------------------------------------------------------------

def test_report_round_trips_through_json_and_names_both_t():
    report = xs.evaluate({"sig": SIGNAL, "naive": SIGNAL * 0.0}, LABEL, horizon=5, min_tickers=4)
    data = json.loads(dumps(report.to_dict()))
    assert {"t_naive", "t_newey_west"} <= set(data["models"]["sig"])
    assert data["models"]["naive"]["rank_ic"] is None and data["models"]["naive"]["days"] == 0
    assert data["newey_west_lags"] == 4
    back = xs.CrossSectionReport.from_dict(data)
    assert back.models["sig"] == report.models["sig"]
    assert back.models["sig"].rank_ic == pytest.approx(np.mean([stats.spearmanr(*valid_pairs(d))[0] for d in range(3)]))


def test_bad_input_gets_one_line_errors():
    with pytest.raises(BadInputError, match="method"):
        xs.daily_ic(SIGNAL, LABEL, "kendall")
    with pytest.raises(BadInputError, match="sorted"):
        xs.daily_ic(SIGNAL.iloc[::-1], LABEL)
    with pytest.raises(BadInputError, match="min_tickers"):
        xs.daily_ic(SIGNAL, LABEL, min_tickers=1)


def test_anchor_script_without_the_shared_datasets_says_so_and_exits_0(tmp_path):
    env = {**os.environ, "FORECAST_SHARED": str(tmp_path / "no-shared")}
    out = subprocess.run([sys.executable, "benchmarks/cross_section_anchors.py"], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "no-shared/datasets/us_sp500/sp500_5yr_half_A.csv.gz; skipped" in out.stdout
