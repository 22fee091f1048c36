"""``maths.performance.portfolio_metrics``: each figure worked out by hand on a NAV of a few days.

Returns, excess over the benchmark and the index, drawdown, one-way turnover, cost drag and the hit rate per
rebalance period, and NaN wherever a figure is undefined (one day, no spread, no index).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from forecast.maths.performance import YEAR, portfolio_metrics

NAV = [100.0, 200.0, 100.0, 300.0]  # returns +100 %, -50 %, +200 %
FLAT = [100.0, 100.0, 100.0, 100.0]


def metrics(nav=NAV, benchmark=FLAT, index=None, traded=(), costs=(), rebalance_rows=(0,)):
    return portfolio_metrics(pd.Series(nav, dtype=float), pd.Series(benchmark, dtype=float),
                             None if index is None else pd.Series(index, dtype=float),
                             np.asarray(traded, dtype=float), np.asarray(costs, dtype=float), list(rebalance_rows))


def test_the_year_has_252_trading_days():
    assert YEAR == 252


def test_total_and_annual_returns_compound_over_the_periods():
    m = metrics(nav=[100.0, 110.0, 121.0], benchmark=[50.0, 50.0, 55.0])
    assert m["total_return"] == pytest.approx(0.21)
    assert m["annual_return"] == pytest.approx(1.21 ** (252 / 2) - 1)  # two periods, 126 of them a year
    assert m["benchmark_total_return"] == pytest.approx(0.10)
    assert m["benchmark_annual_return"] == pytest.approx(1.10 ** 126 - 1)


def test_max_drawdown_is_the_deepest_fall_from_a_running_peak():
    assert metrics(nav=[1.0, 2.0, 1.0, 3.0], benchmark=[1.0] * 4)["max_drawdown"] == pytest.approx(1 / 2 - 1)
    # the fall from 4 to 3 is shallower (-25 %) than the fall from 10 to 6 (-40 %) that comes after a new peak
    assert metrics(nav=[4.0, 3.0, 10.0, 6.0, 8.0], benchmark=[1.0] * 5)["max_drawdown"] == pytest.approx(-0.4)


def test_a_nav_that_never_falls_has_no_drawdown():
    assert metrics(nav=[1.0, 1.5, 2.0], benchmark=[1.0] * 3)["max_drawdown"] == 0.0


def test_excess_return_and_information_ratio_come_from_the_daily_excess_returns():
    bench = [100.0, 110.0, 99.0, 99.0]  # returns +10 %, -10 %, 0
    m = metrics(benchmark=bench)
    excess = [1.0 - 0.1, -0.5 + 0.1, 2.0 - 0.0]
    mean, spread = statistics.mean(excess), statistics.stdev(excess)  # stdev: the sample spread (n - 1)
    assert m["excess_annual_return"] == pytest.approx(mean * 252)
    assert m["information_ratio"] == pytest.approx(mean / spread * math.sqrt(252))


def test_an_excess_without_spread_has_no_information_ratio():
    nav = [100.0, 110.0, 121.0]
    m = metrics(nav=nav, benchmark=[100.0, 100.0, 100.0])  # excess +10 % every day: no spread
    assert m["excess_annual_return"] == pytest.approx(0.10 * 252)
    assert math.isnan(m["information_ratio"])


def test_turnover_is_one_way_and_cost_drag_is_costs_over_the_average_nav_per_year():
    m = metrics(traded=[100.0, 60.0, 40.0], costs=[1.0, 0.5, 0.5])
    average = sum(NAV) / 4  # 175
    per_year = 252 / 3
    assert m["annual_turnover"] == pytest.approx((100 + 60 + 40) / 2 / average * per_year)
    assert m["cost_drag"] == pytest.approx(2.0 / average * per_year)
    assert m["total_cost"] == pytest.approx(2.0)
    assert m["trades"] == 3.0
    assert m["days"] == 4.0


def test_hit_rate_is_the_share_of_rebalance_periods_that_beat_the_benchmark():
    # periods close 0 -> close 2 (100 -> 100 vs flat: a tie is no beat) and close 2 -> the last close (100 -> 300: a beat)
    assert metrics(rebalance_rows=[0, 2])["hit_rate"] == pytest.approx(0.5)
    # one period over the whole run: 100 -> 300 beats the flat benchmark
    assert metrics(rebalance_rows=[0])["hit_rate"] == 1.0
    # against a benchmark that trebles too and then some: no period beats it
    assert metrics(benchmark=[100.0, 100.0, 100.0, 400.0], rebalance_rows=[0])["hit_rate"] == 0.0


def test_rebalances_on_or_after_the_last_day_start_no_period():
    # rows 3 and 9 are the last day and beyond it: only the period 1 -> 3 (200 -> 300, beats flat) counts
    assert metrics(rebalance_rows=[1, 3, 9])["hit_rate"] == 1.0
    assert math.isnan(metrics(rebalance_rows=[3, 9])["hit_rate"])  # no period at all


def test_without_an_index_the_index_figures_are_nan():
    m = metrics()
    for key in ("index_annual_return", "excess_annual_return_over_index", "information_ratio_over_index"):
        assert math.isnan(m[key]), key


def test_the_index_figures_use_its_own_valid_days():
    index = [math.nan, 100.0, 110.0, 121.0]  # known from the second day on: two periods of +10 %
    m = metrics(index=index)
    assert m["index_annual_return"] == pytest.approx(1.21 ** (252 / 2) - 1)
    # the excess over the index exists only where both returns do: days 2 -> 3 (-50 % vs +10 %), 3 -> 4 (+200 % vs +10 %)
    excess = [-0.5 - 0.1, 2.0 - 0.1]
    assert m["excess_annual_return_over_index"] == pytest.approx(statistics.mean(excess) * 252)
    assert m["information_ratio_over_index"] == pytest.approx(statistics.mean(excess) / statistics.stdev(excess) * math.sqrt(252))


def test_a_single_day_has_no_rates_and_no_periods():
    m = metrics(nav=[100.0], benchmark=[100.0], traded=[50.0], costs=[1.0], rebalance_rows=[0])
    assert m["total_return"] == 0.0
    assert m["max_drawdown"] == 0.0
    for key in ("annual_return", "benchmark_annual_return", "annual_turnover", "cost_drag", "hit_rate",
                "excess_annual_return", "information_ratio"):
        assert math.isnan(m[key]), key
    assert m["total_cost"] == 1.0
