"""Issue 26's figures: the portfolio backtest of momentum, lightgbm and global on ../shared's S&P 500 half.

    python benchmarks/portfolio_sp500.py [--models momentum,lightgbm,global] [--schedule both|fixed|walk]

Scores: the cross-sectional backtest's, on the split of ``global_sp500.py``
(train to 2016-01-22, validation 2016-02-01..2017-01-26, test
2017-02-03..2018-01-31), once with the fixed split and once walk-forward over
the same test year (refit every 60 days). Each model's scores are traded as
the product trades them (``evaluation.portfolio.simulate``): top 20 of 253,
equal weight, rebalanced every 5 days, at most 5 names replaced, the next
day's open, single shares from 1,000,000, US costs (1 bp commission, no
minimum, no stamp duty), no price limits; against the equal-weight universe.
Prices are the file's (mostly split-adjusted, no dividends). Prints annual
return, excess, information ratio, maximum drawdown, turnover and cost drag
beside the Rank IC of the same run. Needs ../shared/datasets/us_sp500/
(FORECAST_SHARED overrides ../shared); says so and exits 0 when it is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.global_sp500 import SP500, SPLIT, load_panel  # noqa: E402


def market_of(panel):
    from forecast.evaluation.portfolio_inputs import Market

    open_, close = (panel[c].unstack("ticker").sort_index() for c in ("open", "close"))
    return Market(open_, close)


def report(schedule: str, result, market, benchmark) -> None:
    from forecast.evaluation.costs import costs_for
    from forecast.evaluation.portfolio import Strategy, simulate
    from forecast.workflow.portfolio_plans import ranks_something, wide_scores

    strategy, costs = Strategy(lot=1), costs_for(["AAPL"])
    print(f"\n{schedule}: test {result.test_range[0]}..{result.test_range[1]}")
    print(f"{'model':<12}{'RankIC':>8}{'NW t':>7}{'annual':>9}{'bench':>9}{'excess':>9}{'IR':>7}{'maxDD':>8}{'turn/yr':>9}{'cost/yr':>9}{'hit':>6}")
    for model, series in result.scores.items():
        scores = wide_scores(series).reindex(columns=market.close.columns)
        if not ranks_something(scores):
            continue
        m = simulate(scores, market, strategy, costs, benchmark).metrics
        ic = result.report.models[model]
        print(f"{model:<12}{ic.rank_ic:8.4f}{ic.t_newey_west:7.2f}{m['annual_return']:9.1%}{m['benchmark_annual_return']:9.1%}"
              f"{m['excess_annual_return']:9.1%}{m['information_ratio']:7.2f}{m['max_drawdown']:8.1%}{m['annual_turnover']:8.1f}x"
              f"{m['cost_drag']:9.2%}{m['hit_rate']:6.0%}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="momentum,lightgbm,global")
    parser.add_argument("--schedule", default="both", choices=("both", "fixed", "walk"))
    args = parser.parse_args()
    if not SP500.exists():
        print(f"needs {SP500}; skipped")
        return
    from forecast.evaluation.cross_backtest import CrossSettings, FixedSplit, cross_backtest
    from forecast.workflow.portfolio_plans import benchmark_returns

    panel = load_panel()
    market = market_of(panel)
    benchmark = benchmark_returns(market.close, None)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    print(f"{panel.index.get_level_values(1).nunique()} tickers; models {', '.join(models)}; top 20, every 5 days, at most 5 replaced")
    if args.schedule in ("both", "fixed"):
        started = time.perf_counter()
        fixed = cross_backtest(panel, CrossSettings(models=models, horizon=5, fixed=FixedSplit(*SPLIT)))
        report(f"fixed split ({time.perf_counter() - started:.0f} s)", fixed, market, benchmark)
    if args.schedule in ("both", "walk"):
        started = time.perf_counter()
        walk = cross_backtest(panel, CrossSettings(models=models, horizon=5, test_days=250, refit_every=60))
        report(f"walk-forward, refit every 60 days ({time.perf_counter() - started:.0f} s)", walk, market, benchmark)


if __name__ == "__main__":
    main()
