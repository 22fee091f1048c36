"""A portfolio's performance figures from its daily value: returns, excess over a benchmark, drawdown, turnover, costs.

Pure numpy/pandas; ``evaluation.portfolio`` computes the NAV, this module what
an investor reads off it. Annualised over 252 trading days.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

YEAR = 252  # trading days in a year


def portfolio_metrics(nav: pd.Series, benchmark: pd.Series, index: pd.Series | None, traded: np.ndarray, costs: np.ndarray,
                      rebalance_rows: list[int]) -> dict[str, float]:
    """A portfolio's figures from its daily NAV, its benchmark's (and an index's), each trade's value and cost, and the
    rows its rebalances fell on. NaN where a figure is undefined (one day, no spread).

    annual_turnover is one-way: (bought + sold) / 2 over the average NAV, per year; cost_drag is the costs over the
    average NAV, per year; hit_rate the share of rebalance periods that beat the benchmark.
    """
    periods = len(nav) - 1
    per_year = YEAR / periods if periods else math.nan
    average_nav = float(nav.mean())
    returns = nav.pct_change().to_numpy()[1:]
    metrics = {
        "total_return": _total(nav), "annual_return": _annual(nav, per_year),
        "benchmark_total_return": _total(benchmark), "benchmark_annual_return": _annual(benchmark, per_year),
        **_excess(returns, benchmark.pct_change().to_numpy()[1:], ""),
        "max_drawdown": float((nav / nav.cummax() - 1).min()),
        "annual_turnover": float(traded.sum()) / 2 / average_nav * per_year,
        "cost_drag": float(costs.sum()) / average_nav * per_year,
        "total_cost": float(costs.sum()),
        "hit_rate": _hit_rate(nav.to_numpy(), benchmark.to_numpy(), rebalance_rows),
        "days": float(len(nav)), "trades": float(len(traded)),
        "index_annual_return": math.nan,
        **_excess(returns, np.full(len(returns), np.nan), "_over_index"),
    }
    if index is not None:
        valid = index.dropna()
        metrics["index_annual_return"] = _annual(valid, YEAR / (len(valid) - 1) if len(valid) > 1 else math.nan)
        metrics.update(_excess(returns, index.pct_change().to_numpy()[1:], "_over_index"))
    return metrics


def _total(values: pd.Series) -> float:
    return float(values.iloc[-1] / values.iloc[0] - 1)


def _annual(values: pd.Series, per_year: float) -> float:
    return float((values.iloc[-1] / values.iloc[0]) ** per_year - 1) if math.isfinite(per_year) else math.nan


def _excess(returns: np.ndarray, reference: np.ndarray, suffix: str) -> dict[str, float]:
    excess = returns - reference
    excess = excess[np.isfinite(excess)]
    mean = float(excess.mean()) if len(excess) else math.nan
    spread = float(excess.std(ddof=1)) if len(excess) > 1 else math.nan
    ratio = mean / spread * math.sqrt(YEAR) if spread and math.isfinite(spread) else math.nan
    return {f"excess_annual_return{suffix}": mean * YEAR, f"information_ratio{suffix}": ratio}


def _hit_rate(nav: np.ndarray, benchmark: np.ndarray, rebalance_rows: list[int]) -> float:
    """The share of rebalance periods (close of a rebalance day to close of the next, or of the last day) that beat the benchmark."""
    edges = sorted({r for r in rebalance_rows if r < len(nav) - 1} | {len(nav) - 1})
    beats = [nav[b] / nav[a] > benchmark[b] / benchmark[a] for a, b in itertools.pairwise(edges)]
    return float(np.mean(beats)) if beats else math.nan
