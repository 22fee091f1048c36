"""Issue 17's skill benchmark: the global model against the cross-sectional baselines on ../shared's S&P 500 half.

    python benchmarks/global_sp500.py [--configs all|default] [--skip-walk-forward]

Protocol (the issue's): 253 tickers, label = 5-day forward return close to
close; train 2013-02-08..2016-01-22, validation 2016-02-01..2017-01-26, test
2017-02-03..2018-01-31 (250 days), 5-day gaps between the segments.

1. Each global configuration of ``CONFIGS`` is trained on the training period
   and scored on the validation period only (daily Rank IC at step 5); the
   best one is chosen there. Test-period figures of the configurations not
   chosen are never printed.
2. The chosen configuration and every baseline are scored once on the test
   period (the fixed split), then walk-forward over the same test year with a
   refit every 60 days (training on everything whose labels end before each
   refit, the last 250 days of it as validation).

Needs ../shared/datasets/us_sp500/ (FORECAST_SHARED overrides ../shared);
says so and exits 0 when it is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("FORECAST_SHARED", REPO.parent / "shared"))
SP500 = SHARED / "datasets" / "us_sp500" / "sp500_5yr_half_A.csv.gz"
SPLIT = ("2016-01-22", "2016-02-01", "2017-01-26", "2017-02-03", "2018-01-31")
BASELINES = ("linear", "lightgbm", "momentum", "momentum_20", "reversal", "naive")


def configs():
    from forecast.models.pooled.model import GlobalSettings

    # the five tried in stop 20, written out in full so that the list does not move with GlobalSettings' defaults
    base = GlobalSettings(horizon=5, units=32, train_every=1)
    return {
        "gru32-ic-rank": base,
        "gru32-mse-rank": replace(base, loss="mse"),
        "gru32-ic-rank-lookback20": replace(base, lookback=20),
        "gru64-ic-rank-every3": replace(base, units=64, train_every=3),  # chosen: GlobalSettings' default since
        "lstm32-ic-demeaned": replace(base, arch="lstm", target="demeaned"),
        # issue 25: the same network with the ridge nested (benchmarks/global_nested_tune.py searched these on validation)
        **{name: settings for name, settings in nested_configs().items()},
    }


def nested_configs():
    from benchmarks.global_nested_tune import configs as nested

    return nested()


def load_panel():
    import pandas as pd

    frame = pd.read_csv(SP500, parse_dates=["date"])
    return frame.rename(columns={"Name": "ticker"}).set_index(["date", "ticker"]).sort_index()


def row(name, m) -> str:
    return (f"{name:<28}{m.rank_ic:8.4f}{m.rank_icir:8.3f}{m.t_naive:8.2f}{m.t_newey_west:8.2f}{m.spread:9.3%}"
            f"{m.turnover:9.1%}{m.days:6d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="all", help="all, or comma-separated names of CONFIGS")
    parser.add_argument("--skip-walk-forward", action="store_true")
    args = parser.parse_args()
    if not SP500.exists():
        print(f"needs {SP500}; skipped")
        return
    from forecast.evaluation.cross_backtest import CrossSettings, FixedSplit, cross_backtest

    panel = load_panel()
    fixed = FixedSplit(*SPLIT)
    header = f"{'model':<28}{'RankIC':>8}{'RkICIR':>8}{'t naive':>8}{'t NW(4)':>8}{'Q5-Q1':>9}{'turnover':>9}{'days':>6}"
    candidates = configs() if args.configs == "all" else {k: configs()[k] for k in args.configs.split(",")}
    print(f"{panel.index.get_level_values(1).nunique()} tickers; split {SPLIT}; {len(candidates)} global configurations")
    chosen_name, chosen_score, chosen_result = None, float("-inf"), None
    for name, settings in candidates.items():
        started = time.perf_counter()
        result = cross_backtest(panel, CrossSettings(models=("global",), horizon=5, fixed=fixed, network=settings))
        validation = result.refits[0]["validation_rank_ic"]
        print(f"  {name:<28} validation Rank IC {validation:+.4f}  ({time.perf_counter() - started:.0f} s)", flush=True)
        if validation > chosen_score:
            chosen_name, chosen_score, chosen_result = name, validation, result
    assert chosen_result is not None
    print(f"chosen on validation: {chosen_name}\n\nfixed split, test {SPLIT[3]}..{SPLIT[4]}")
    baselines = cross_backtest(panel, CrossSettings(models=BASELINES, horizon=5, fixed=fixed))
    print(header)
    print(row(f"global ({chosen_name})", chosen_result.report.models["global"]))
    for name, m in baselines.report.models.items():
        print(row(name, m))
    if args.skip_walk_forward:
        return
    print("\nwalk-forward over the same test year, refit every 60 days")
    settings = candidates[chosen_name]
    started = time.perf_counter()
    walk = cross_backtest(panel, CrossSettings(models=("global", *BASELINES), horizon=5, test_days=250, refit_every=60,
                                               network=settings))
    print(f"test {walk.test_range[0]}..{walk.test_range[1]} ({time.perf_counter() - started:.0f} s)")
    print(header)
    for name, m in walk.report.models.items():
        print(row(name, m))


if __name__ == "__main__":
    main()
