"""Interval quality against the GARCH and ETS anchors: coverage and Winkler at every step and level. Prints, asserts nothing.

    python benchmarks/intervals.py [--models default,naive,garch,ets] [--tickers MSFT,BAC,GE,PG] [--skip-sp500]

Walk-forward over the last 500 days of the sample (600519.SH), refit every 20,
horizon 5, the same origins for every model; then the same on a few
us_sp500 tickers from ../shared/datasets (the conformal scale was chosen on
neither: see benchmarks/interval_scales.py). Prints, per series and model,
coverage, Winkler score (price units) and width relative to the price at
every step and level, then whether the bar holds for the first model:
coverage within 3 points of nominal at every step and level, and a Winkler
score no worse than garch's and ets's at steps 1 and 5. Needs the intervals
extra (pip install forecast[intervals]); without it garch and ets are left
out with a note. The default network costs about 4 minutes per series on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SP500 = REPO.parent / "shared" / "datasets" / "us_sp500" / "sp500_5yr_half_A.csv.gz"
COVERAGE_TOLERANCE = 0.03
ANCHORS = ("garch", "ets")


def sp500_frame(table, name: str):
    import numpy as np

    rows = table[table["Name"] == name].sort_values("date").reset_index(drop=True)
    frame = rows[["date", "open", "high", "low", "close", "volume"]].copy()
    frame["date"] = frame["date"].astype("datetime64[ns]")
    frame["amount"] = np.nan
    return frame


def report(result, wall: float) -> None:
    from forecast.evaluation.backtest import format_table
    from forecast.maths.intervals import level_label

    print(format_table(result))
    print(f"wall time {wall:.0f} s; " + ", ".join(f"{n}: {p.fits} fits {p.fit_seconds:.0f} s + predict {p.predict_seconds:.1f} s"
                                                for n, p in result.paths.items()))
    levels = result.levels
    print(f"\n  {'model':<9}{'step':>5}" + "".join(f"{'cov ' + level_label(lv):>10}{'W ' + level_label(lv):>11}{'width ' + level_label(lv):>12}"
                                               for lv in levels))
    for name, scores in result.scores.items():
        for s in scores["by_step"]:
            print(f"  {name:<9}{s['step']:>5}" + "".join(
                f"{s['coverage'][lv]:10.1%}{s['winkler'][lv]:11.4g}{s['relative_width'][lv]:12.2%}" for lv in levels))
    first = next(iter(result.scores))
    by_step = result.scores[first]["by_step"]
    misses = [f"step {s['step']} {level_label(lv)}: {s['coverage'][lv]:.1%}" for s in by_step for lv in levels
              if abs(s["coverage"][lv] - float(lv)) > COVERAGE_TOLERANCE]
    print(f"\n  bar for {first}: coverage within ±{COVERAGE_TOLERANCE:.0%} at every step and level: "
          + ("met" if not misses else "NOT met (" + "; ".join(misses) + ")"))
    for anchor in ANCHORS:
        if anchor not in result.scores or anchor == first:
            continue
        worse = []
        for step in sorted({1, result.horizon}):
            ours, theirs = by_step[step - 1]["winkler"], result.scores[anchor]["by_step"][step - 1]["winkler"]
            worse += [f"step {step} {level_label(lv)}: {ours[lv]:.2f} vs {theirs[lv]:.2f} ({ours[lv] / theirs[lv] - 1:+.1%})"
                      for lv in levels if ours[lv] > theirs[lv]]
        print(f"  bar for {first}: Winkler no worse than {anchor} at steps 1 and {result.horizon}: "
              + ("met" if not worse else "NOT met (" + "; ".join(worse) + ")"))


def main() -> None:
    from forecast.data.fetching import sample_path
    from forecast.data.sources.csv_file import read_bars_csv
    from forecast.evaluation.backtest import walk_forward

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="default,naive,garch,ets")
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--test-days", type=int, default=500)
    parser.add_argument("--refit-every", type=int, default=20)
    parser.add_argument("--tickers", default="MSFT,BAC,GE,PG", help="us_sp500 tickers (none of them chose the scale)")
    parser.add_argument("--skip-sample", action="store_true")
    parser.add_argument("--skip-sp500", action="store_true")
    parser.add_argument("--scale", help="calibrate the conformal intervals with this scale instead (std60: the method before issue 18)")
    parser.add_argument("--calibration-origins", type=int,
                        help="the calibration origins of baselines and of networks' anchored quantiles instead (250 before issue 18)")
    parser.add_argument("--network-quantiles", choices=("validation", "anchored", "blend"),
                        help="networks' quantiles from these instead (validation: the method before the blend)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # progress shows when piped to a file
    models = tuple(args.models.split(","))
    if args.scale or args.calibration_origins or args.network_quantiles:  # another method: the library's defaults, patched here only
        from forecast.maths import intervals
        from forecast.maths.intervals import check_scale
        from forecast.models import baselines

        if args.scale:
            intervals.DEFAULT_SCALE = baselines.LogReturnForecaster.scale = check_scale(args.scale)
        if args.calibration_origins:
            intervals.CALIBRATION_ORIGINS = args.calibration_origins
        if args.network_quantiles:
            intervals.NETWORK_QUANTILES = args.network_quantiles
        print(f"conformal scale {args.scale or 'default'}, calibration origins {args.calibration_origins or 'default'}, "
              f"network quantiles {args.network_quantiles or 'default'}")
    settings = {"models": models, "test_days": args.test_days, "refit_every": args.refit_every, "horizon": args.horizon}
    started = time.perf_counter()
    if not args.skip_sample:
        print(f"== 600519.SH (the sample), last {args.test_days} days, refit every {args.refit_every}, horizon {args.horizon}")
        t0 = time.perf_counter()
        result = walk_forward(read_bars_csv(sample_path()).frame, "600519.SH", **settings)
        report(result, time.perf_counter() - t0)
    if not args.skip_sp500:
        if not SP500.is_file():
            print(f"missing ../shared: {SP500} is not there; skipping the us_sp500 tickers")
            return
        import pandas as pd

        table = pd.read_csv(SP500)
        for name in args.tickers.split(","):
            print(f"\n== {name} (us_sp500), last {args.test_days} days, refit every {args.refit_every}, horizon {args.horizon}")
            t0 = time.perf_counter()
            result = walk_forward(sp500_frame(table, name), name, **settings)
            report(result, time.perf_counter() - t0)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
