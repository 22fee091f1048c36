"""The issue's cross-sectional anchors, recomputed: Rank IC, ICIR, both t and the quintile spread of the simple signals.

    python benchmarks/cross_section_anchors.py [--horizon 5] [--start 2017-02-03] [--end 2018-01-31] [--min-tickers 5]

On ../shared/datasets/us_sp500/ (FORECAST_SHARED overrides ../shared): the
label is the 5-day forward return, close to close, on each ticker's own rows;
the signals are 12-1 momentum, 20-day momentum, 5-day reversal and naive,
scored on every day of the test period (2017-02-03 to 2018-01-31, 250 days).
Signals use the whole file before each day, so 12-1 momentum has its year of
history from the first test day. Prints a table beside the issue's figures,
asserts nothing; without the data it says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("FORECAST_SHARED") or REPO.parent / "shared")
SP500 = SHARED / "datasets" / "us_sp500" / "sp500_5yr_half_A.csv.gz"

# Issue 17, "Where the bar is": Rank IC, Rank ICIR, naive t, Newey–West t (4 lags), top − bottom spread (%).
ISSUE = {
    "momentum_12_1": (0.0327, 0.153, 2.42, 1.38, 0.167),
    "momentum_20": (0.0010, 0.006, 0.10, 0.06, 0.015),
    "reversal_5": (0.0016, 0.011, 0.17, 0.10, 0.028),
}


def close_panel(path: Path):
    """The file's closes as a Series on a sorted (date, ticker) index."""
    import pandas as pd

    table = pd.read_csv(path, usecols=["date", "close", "Name"], parse_dates=["date"])
    return table.rename(columns={"Name": "ticker"}).set_index(["date", "ticker"])["close"].sort_index()


def main() -> None:
    from forecast.maths import cross_section as xs
    from forecast.maths import signals

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--start", default="2017-02-03")
    parser.add_argument("--end", default="2018-01-31")
    parser.add_argument("--min-tickers", type=int, default=xs.MIN_TICKERS)
    args = parser.parse_args()
    if not SP500.exists():
        shown = os.path.relpath(SP500, REPO) if SP500.is_relative_to(REPO.parent) else str(SP500)
        print(f"needs {shown}; skipped")
        return
    started = time.perf_counter()
    close = close_panel(SP500)
    candidates = {"momentum_12_1": signals.momentum_12_1(close), "momentum_20": signals.momentum(close, 20),
                  "reversal_5": signals.reversal(close, 5), "naive": signals.naive(close)}
    dates = close.index.get_level_values(0)
    in_test = (dates >= args.start) & (dates <= args.end)
    print(f"{close.index.get_level_values(1).nunique()} tickers, test {args.start}..{args.end}: "
          f"{dates[in_test].nunique()} days, horizon {args.horizon}, min {args.min_tickers} tickers a day\n")
    header = f"{'signal':<15}{'label':<8}{'IC':>8}{'RankIC':>8}{'RkICIR':>8}{'t naive':>8}{'t NW':>8}{'spread':>9}{'turnover':>9}{'days':>6}"
    print(header)
    for kind in ("simple", "log"):
        label = signals.forward_returns(close, args.horizon, kind=kind)[in_test]
        for name, signal in candidates.items():
            s = xs.score(signal[in_test], label, args.horizon, min_tickers=args.min_tickers)
            if not s.days:  # a constant signal ranks nothing: no scored day (see forecast.maths.cross_section)
                print(f"{name:<15}{kind:<8}{'no scored day: a constant signal has no IC':>66}{0:6d}")
                continue
            print(f"{name:<15}{kind:<8}{s.ic:8.4f}{s.rank_ic:8.4f}{s.rank_icir:8.3f}{s.t_naive:8.2f}{s.t_newey_west:8.2f}"
                  f"{s.spread:9.3%}{s.turnover:9.1%}{s.days:6d}")
    print("\nissue 17's table (label: 5-day forward return, close to close):")
    for name, (ric, ricir, tn, tnw, spread) in ISSUE.items():
        print(f"{name:<15}{'issue':<8}{'':>8}{ric:8.4f}{ricir:8.3f}{tn:8.2f}{tnw:8.2f}{spread / 100:9.3%}")
    print(f"\nt NW: Newey–West with {args.horizon - 1} lags, Bartlett weights; naive: mean/std × √days. "
          f"Wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
