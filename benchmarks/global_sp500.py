"""Issue 17's skill benchmark: the global model against the cross-sectional baselines on ../shared's S&P 500 half.

    python benchmarks/global_sp500.py [--configs all|default] [--skip-walk-forward]
    python benchmarks/global_sp500.py --protocol long [--tickers N]

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

``--protocol long`` (issue 25's second protocol, more statistical power): the
shipped ``global`` preset (``GlobalSettings()``, no configuration search: nothing
is chosen on test days) and every baseline in one walk-forward, scored on the
same days: train on the first two calendar years, then refit every 60 days
over every later day with a complete label (~750 days), the last 250 days
before each refit as validation. Prints the table over the whole span, each
refit's validation Rank IC (and, for ``global``, the nested ridge's and whether
it was kept), and the table per calendar year of the test span.
``--tickers N`` keeps the first N tickers (a quick check of the script only).

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


HEADER = f"{'model':<28}{'RankIC':>8}{'RkICIR':>8}{'t naive':>8}{'t NW(4)':>8}{'Q5-Q1':>9}{'turnover':>9}{'days':>6}"


def long_test_days(panel, horizon: int = 5) -> tuple[int, str]:
    """Complete-label days on or after the first date + two calendar years: their count and the first of them."""
    import numpy as np
    import pandas as pd

    from forecast.models.pooled.data import pool

    data = pool(panel, horizon)
    complete = np.unique(data.dates[~np.isnat(data.label_dates)])
    start = pd.Timestamp(panel.index.get_level_values(0).min()) + pd.DateOffset(years=2)
    days = complete[complete >= np.datetime64(start, "ns")]
    return len(days), str(pd.Timestamp(days[0]).date())


def long_protocol(panel, models: tuple[str, ...] = ("global", *BASELINES)) -> None:
    """Issue 25's long walk-forward: the shipped preset and every baseline, refit every 60 days after two years."""
    import numpy as np
    import pandas as pd

    from forecast.evaluation import cross_backtest as module
    from forecast.evaluation.cross_backtest import CrossSettings, cross_backtest
    from forecast.maths.cross_section import summary
    from forecast.models.pooled.model import GlobalSettings

    learners = []  # every learner the backtest fits, in order: the nested ridge's figures are on the global one
    make = module.make_learner

    def recording(name, settings):
        learner = make(name, settings)
        learners.append(learner)
        return learner

    module.make_learner = recording
    network = GlobalSettings()  # the shipped preset, as it is: no search
    dates = panel.index.get_level_values(0)
    n, first = long_test_days(panel, network.horizon)
    settings = CrossSettings(models=models, horizon=5, test_days=n, refit_every=60,
                             validation_days=250, network=network)
    needed = settings.validation_days + settings.horizon + max(network.lookback, module.VOL_WINDOW + 1) + module.MIN_TRAIN_DAYS
    before = int((pd.DatetimeIndex(dates.unique()) < pd.Timestamp(first)).sum())
    print(f"long walk-forward: data {dates.min().date()}..{dates.max().date()}; test days N = {n} "
          f"(complete-label days from {first}, the first date + 2 calendar years); refit every 60 days "
          f"({-(-n // 60)} refits per learned model); {before} trading days before the first refit, "
          f"at least {needed} needed (validation 250, lookback {network.lookback})")
    if before < needed:
        raise SystemExit(f"too little history before {first}: {before} trading days, {needed} needed")
    print(f"global preset: {network.to_dict()}", flush=True)
    started = time.perf_counter()

    def progress(text: str) -> None:
        print(f"  [{time.perf_counter() - started:6.0f} s] {text}", flush=True)

    walk = cross_backtest(panel, settings, progress=progress)
    print(f"\nlong walk-forward, test {walk.test_range[0]}..{walk.test_range[1]} "
          f"({time.perf_counter() - started:.0f} s)")
    for note in walk.notes:
        print(f"note: {note}")
    print(HEADER)
    for name, m in walk.report.models.items():
        print(row(name, m))
    print("\nrefits (validation Rank IC of the chosen fit; global: the nested ridge alone and whether it was kept)")
    learned = [r for r in walk.refits]
    for record, learner in zip(learned, learners):
        extra = ""
        if record["model"] == "global":
            ridge = getattr(learner, "linear_rank_ic", float("nan"))
            epoch = getattr(learner, "best_epoch", -1)
            extra = f"  ridge alone {ridge:+.4f}  best epoch {epoch} ({'ridge kept' if epoch == 0 else 'trained network'})"
        elif "alpha" in record:
            extra = f"  alpha {record['alpha']:g}"
        elif "rounds" in record:
            extra = f"  rounds {record['rounds']:g}"
        validation = f"  validation Rank IC {record['validation_rank_ic']:+.4f}" if "validation_rank_ic" in record else ""
        print(f"  {record['model']:<9} {record['origin']}  train rows {record['train_rows']:>7}{validation}{extra}")
    print("\nper calendar year of the test span (turnover: not per year)")
    years = walk.rank_ic.index.year
    for year in np.unique(years):
        ic = walk.rank_ic[years == year]
        spread = walk.spread[years == year]
        print(f"{year}: {ic.index.min().date()}..{ic.index.max().date()}")
        print(HEADER)
        for name in ic.columns:
            s = summary(ic[name], settings.horizon)
            print(f"{name:<28}{s.mean:8.4f}{s.icir:8.3f}{s.t_naive:8.2f}{s.t_newey_west:8.2f}"
                  f"{float(spread[name].mean()):9.3%}{'-':>9}{s.days:6d}")


def row(name, m) -> str:
    return (f"{name:<28}{m.rank_ic:8.4f}{m.rank_icir:8.3f}{m.t_naive:8.2f}{m.t_newey_west:8.2f}{m.spread:9.3%}"
            f"{m.turnover:9.1%}{m.days:6d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="all", help="all, or comma-separated names of CONFIGS")
    parser.add_argument("--skip-walk-forward", action="store_true")
    parser.add_argument("--protocol", default="fixed", choices=("fixed", "long"),
                        help="fixed: the fixed split and the test-year walk-forward (default); long: issue 25's long walk-forward")
    parser.add_argument("--models", default="", help="long protocol: comma-separated models instead of all (a quick check)")
    parser.add_argument("--tickers", type=int, default=0, help="keep only the first N tickers (a quick check)")
    args = parser.parse_args()
    if not SP500.exists():
        print(f"needs {SP500}; skipped")
        return
    if args.protocol == "long":
        panel = load_panel()
        if args.tickers:
            keep = sorted(panel.index.get_level_values(1).unique())[: args.tickers]
            panel = panel[panel.index.get_level_values(1).isin(keep)]
        print(f"{panel.index.get_level_values(1).nunique()} tickers", flush=True)
        long_protocol(panel, tuple(args.models.split(",")) if args.models else ("global", *BASELINES))
        return
    from forecast.evaluation.cross_backtest import CrossSettings, FixedSplit, cross_backtest

    panel = load_panel()
    fixed = FixedSplit(*SPLIT)
    header = HEADER
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
