"""Would a GARCH scale make the conformal bands as good as GARCH's own? A selection-data experiment. Prints, asserts nothing.

    nice -n 5 python benchmarks/interval_garch_scale.py [--series N]

Data: ../shared/datasets/us_sp500/sp500_5yr_half_A.csv.gz (FORECAST_SHARED
overrides ../shared); says so and exits 0 when it is missing. The *selection*
part of benchmarks/interval_adaptive.py (the first half of the eligible
tickers by name): no series that benchmarks/interval_models.py reports.

Why: on the held-out series of benchmarks/interval_models.py the default
network's bands are naive's, near enough (its point stays near "no change",
and both are the product's split-conformal band on the ``ewma0.94+std250``
scale), and they trail GARCH(1,1)-t's in Winkler score, most at 95 %. GARCH's advantage is its term structure: after a
shock its variance forecast decays toward the long run over the five steps,
where the product's one scale per origin times a fixed quantile per step
cannot. The candidate keeps the conformal method and changes only the scale:
each step's residual is divided by the square root of the sum of GARCH's
variance forecasts up to that step (the model fitted at each refit on the
rows before the fold, as the ``garch`` anchor is), and its quantiles over
the last 500 origins before the fold give the band. Also tried, and worse:
signed (asymmetric) quantiles on either scale: the tails of 500 residuals are
too few to split.

Per series of the selection part (all 120; ``--series N``: the first N):
``naive`` (the product's band on "no change", which is the default
network's), ``garch`` and ``ets`` from ``walk_forward`` (refit every 20,
horizon 5, 80 % and 95 %, the last 750 origins), the candidate ``gscale``
on naive's point over the same origins; each band fixed and recalibrated by
the product's tracker (warmed over the first 250 origins, scored on the last
500), as benchmarks/interval_models.py scores them.

The rule, fixed before the run over the selection part: the candidate
replaces the product's scale only if, recalibrated, its mean Winkler ratio to
the product's band over the 20 cells (5 steps, 2 levels) is below 0.99 (a
gap under 1 % is a tie, resolved for the scale already shipped, as in
benchmarks/interval_scales.py) with pooled coverage within 1.5 points of
nominal in every cell.

Result (2026-12-07, 120 selection series A..JBHT, scored 2016-02-12..2018-02-06,
1,338 s on 2 busy cores): recalibrated, the candidate's mean Winkler ratio to
the product's band is **0.9915**: a tie by the rule, so the shipped scale
stays. Per cell 0.993-0.995 at 80 % and 0.987-0.990 at 95 %, its pooled
coverage 81.2-81.8 % and 95.5-95.9 % (the product's 79.7-80.8 % and
94.9-95.4 %). Fixed, it is 0.987 (0.989-0.991 at 80 %, 0.982-0.985 at
95 %). It closes about half the gap to GARCH's own bands, which score
0.974-0.992 of the product's recalibrated (0.975-0.992 fixed); ETS's score
0.981-1.012 of it, and 1.001-1.028 of GARCH's: even GARCH is nowhere 3 %
better than ETS, so issue 27's "at most 0.97 of ETS" is out of reach of
every band tried here, GARCH's included.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import interval_adaptive as pooled  # noqa: E402  (the split, the scoring, the tracker's replay)


def term_scale(garch, frame, origins: np.ndarray) -> np.ndarray:
    """Return (n, H): the root of the summed GARCH variance forecasts for steps 1..k after each origin (log-return units)."""
    from forecast.models.garch import PERCENT

    first = garch.next_variance(frame, origins)  # percent squared
    p = garch.params
    persistence = p["alpha"] + p["beta"]
    long_run = p["omega"] / max(1e-9, 1 - persistence)
    daily = np.array([long_run + persistence ** j * (first - long_run) for j in range(pooled.HORIZON)]).T
    return np.sqrt(np.cumsum(daily, axis=1)) / PERCENT


def garch_scaled_bands(frame, origins: np.ndarray) -> dict[str, np.ndarray]:
    """Return naive's point with conformal bands on the GARCH term-structure scale: {"lower_0.8": (n, H), ...}."""
    from forecast.models.garch import GarchForecaster

    def fold_scale(first: int):
        garch = GarchForecaster(pooled.HORIZON).fit(frame.iloc[: first + 1])  # the rows the anchor's refit sees
        return lambda origins: term_scale(garch, frame, origins)

    return pooled.conformal_bands(frame["close"].to_numpy(dtype="float64"), origins, fold_scale, first=80)


def main() -> None:
    opened = pooled.open_selection(argparse.ArgumentParser())
    if opened is None:
        return
    _, table, selection = opened
    from forecast.evaluation.backtest import walk_forward
    from forecast.maths.intervals import level_key, level_label

    started = time.perf_counter()
    methods = pooled.shipped_methods()
    bands = ("naive", "gscale", "garch", "ets")
    scores: dict = {name: {} for name in selection}
    for name in selection:
        frame = pooled.sp500_frame(table, name)
        result = walk_forward(frame, name, models=("garch", "ets"), test_days=pooled.WARMUP + pooled.TEST_DAYS,
                              refit_every=pooled.REFIT_EVERY, horizon=pooled.HORIZON, levels=pooled.LEVELS)
        base = {"origins": result.origins, "prices": result.prices}
        arrays = {}
        for model in ("naive", "garch", "ets"):
            paths = result.paths[model]
            arrays[model] = {**base, "point": paths.predicted,
                             **{f"{side}_{level_key(lv)}": getattr(paths, side)[level_key(lv)]
                                for side in ("lower", "upper") for lv in pooled.LEVELS}}
        arrays["gscale"] = {**base, "point": result.paths["naive"].predicted, **garch_scaled_bands(frame, result.origins)}
        scores[name] = {band: pooled.evaluate(arrays[band], methods) for band in bands}
    print(f"walk-forwards done: {time.perf_counter() - started:.0f} s")

    for method in methods:
        print(f"\n== {method}: pooled coverage per step | mean Winkler ratio to naive's (the product's) | to garch's")
        ratios = []
        for key in ("0.8", "0.95"):
            print(f"  level {level_label(key)}")
            for band in bands:
                cells = [scores[n][band][method][key] for n in selection]
                cover = [sum(c["hits"][k] for c in cells) / sum(c["known"][k] for c in cells) for k in range(pooled.HORIZON)]
                to = {ref: np.mean([[scores[n][band][method][key]["winkler"][k] / scores[n][ref][method][key]["winkler"][k]
                                     for k in range(pooled.HORIZON)] for n in selection], axis=0) for ref in ("naive", "garch")}
                if band == "gscale":
                    ratios.extend(to["naive"])
                print(f"  {band:<8}" + " ".join(f"{c:6.1%}" for c in cover) + " | " + " ".join(f"{r:.3f}" for r in to["naive"])
                      + " | " + " ".join(f"{r:.3f}" for r in to["garch"]))
        verdict = ("replaces it" if np.mean(ratios) < 0.99 else "a tie or worse: the shipped scale stays") if method == "tracker" \
            else "read only: the rule judges the recalibrated bands"
        print(f"  gscale against the product's band, mean over the 20 cells: {np.mean(ratios):.4f} ({verdict}; coverage above)")
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
