"""Issue 26's speed figure for the portfolio backtest's engine on a synthetic A-share market (no ../shared needed).

    python benchmarks/portfolio_speed.py [--tickers 300] [--days 2520] [--repeat 3]

300 tickers x 10 years (2,520 trading days) of random-walk prices, about 1 % of
days flagged limit-up and 1 % limit-down, a few suspensions (with no bar) and
ex-dividend days; random scores every day; top 20, a rebalance every 5 days,
at most 5 names replaced, A-share costs. Times ``simulate`` (best of
``--repeat``) and prints its peak traced memory. The bar: 10 s on 2 cores.
Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synthetic_market(n_tickers: int, n_days: int, seed: int = 0):
    """(scores, Market) on business days from 2014-01-01: random walks, limit flags, suspensions, dividends."""
    from forecast.evaluation.portfolio_inputs import Market

    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2014-01-01", periods=n_days)
    tickers = [f"{600000 + i:06d}.SH" for i in range(n_tickers)]
    close = np.exp(np.log(rng.uniform(3, 80, n_tickers)) + np.cumsum(rng.normal(0, 0.02, (n_days, n_tickers)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, (n_days, n_tickers)))
    suspended = np.zeros((n_days, n_tickers), dtype=bool)
    for ticker in rng.choice(n_tickers, size=n_tickers // 10, replace=False):  # one stretch of 1-20 days for a tenth of the names
        first = rng.integers(0, n_days - 20)
        suspended[first: first + rng.integers(1, 21), ticker] = True
    open_[suspended], close[suspended] = np.nan, np.nan
    dividend = rng.random((n_days, n_tickers)) < 1 / 250  # about one ex-day a year per name
    adjustment = np.cumprod(np.where(dividend, 1.02, 1.0), axis=0)
    frame = lambda values: pd.DataFrame(values, index=dates, columns=tickers)  # noqa: E731
    market = Market(open=frame(open_), close=frame(close), adjustment=frame(adjustment),
                    can_buy=frame(rng.random((n_days, n_tickers)) >= 0.01), can_sell=frame(rng.random((n_days, n_tickers)) >= 0.01),
                    suspended=frame(suspended))
    return frame(rng.normal(size=(n_days, n_tickers))), market


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=300)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_portfolio(args.tickers, args.days, args.repeat)


def bench_portfolio(n_tickers: int = 300, n_days: int = 2520, repeat: int = 3) -> None:
    from forecast.evaluation.costs import A_SHARE as costs
    from forecast.evaluation.portfolio import Strategy, simulate

    strategy = Strategy(top_k=20, rebalance_every=5, max_drop=5)
    scores, market = synthetic_market(n_tickers, n_days)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = simulate(scores, market, strategy, costs)
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    simulate(scores, market, strategy, costs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    metrics = result.metrics
    print(f"== portfolio backtest, {n_tickers} tickers x {n_days} days, top {strategy.top_k}, every {strategy.rebalance_every} days "
          f"(best of {repeat}): {min(times):.2f} s ({'within' if min(times) <= 10 else 'OVER'} the 10 s bar), "
          f"peak traced memory {peak / 2**20:.0f} MiB")
    print(f"   {int(metrics['trades'])} trades, blocked {result.blocked}, annual turnover {metrics['annual_turnover']:.1f}, "
          f"cost drag {metrics['cost_drag']:.2%}")


if __name__ == "__main__":
    main()
