"""Walk-forward over the last 500 days of the sample, refit every 20: cost and coverage.

    python benchmarks/walk_forward_500.py [--models default,naive,drift,ma,linear] [--horizon 5]

Prints the table, the empirical coverage of the 80 % and 95 % intervals
(the bar: within 5 points of nominal), and where the time goes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from forecast.data.fetching import sample_path
    from forecast.data.sources.csv_file import read_bars_csv
    from forecast.evaluation.backtest import format_table, walk_forward

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="default,naive,drift,ma,linear")
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--test-days", type=int, default=500)
    parser.add_argument("--refit-every", type=int, default=20)
    args = parser.parse_args()
    frame = read_bars_csv(sample_path()).frame
    started = time.perf_counter()
    result = walk_forward(frame, "600519.SH", models=args.models.split(","), test_days=args.test_days,
                          refit_every=args.refit_every, horizon=args.horizon)
    total = time.perf_counter() - started
    print(format_table(result))
    print(f"\nwall time {total:.1f} s for {args.test_days} origins, refit every {args.refit_every}")
    for name, path in result.paths.items():
        cov = result.scores[name]["coverage"]
        print(f"  {name:<8} fits {path.fits:3d}  fit {path.fit_seconds:7.1f} s  predict {path.predict_seconds:5.1f} s  "
              f"coverage step 1: 80% -> {cov['0.8']:.1%}, 95% -> {cov['0.95']:.1%}; "
              f"step {args.horizon}: 80% -> {result.scores[name]['by_step'][-1]['coverage']['0.8']:.1%}, "
              f"95% -> {result.scores[name]['by_step'][-1]['coverage']['0.95']:.1%}")


if __name__ == "__main__":
    main()
