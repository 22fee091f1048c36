"""The course exercise's split, scored for every model side by side.

    python benchmarks/course_split.py [--models default,tutorial,tutorial-gru,naive,drift,ma,linear]

Train on the first 2126 rows of the course file, forecast the `open` of the
last 240 rows one step ahead (the 60 rows before them only seed the windows),
exactly as the exercise does, but with validation carved from the training
rows instead of the test rows. Models whose target transform cannot take the
course file's non-positive early prices (log-returns: `default` and the
baselines) use its all-positive twin with the same dates; on the scored window
both give the same naive RMSE, which the script checks and prints.

The course files live in ../shared/datasets/moutai (FORECAST_SHARED overrides
../shared); without them the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("FORECAST_SHARED") or REPO.parent / "shared")
MOUTAI = SHARED / "datasets" / "moutai"
COURSE = MOUTAI / "SH600519_2010-04-26_2020-04-24_qfq_with_negative_prices.csv"
TWIN = MOUTAI / "SH600519_2010-04-26_2020-04-24_qfq.csv"
TRAIN_ROWS, SCORED = 2126, 240


def main() -> None:
    from forecast.data.sources.csv_file import read_bars_csv
    from forecast.evaluation.backtest import format_table, walk_forward
    from forecast.maths import metrics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,tutorial,tutorial-gru,naive,drift,ma,linear")
    parser.add_argument("--json", type=Path, help="also write the full result here")
    args = parser.parse_args()
    for path in (COURSE, TWIN):
        if not path.exists():
            shown = os.path.relpath(path, REPO) if path.is_relative_to(REPO.parent) else str(path)
            print(f"needs {shown}; skipped")
            return
    frames = {"course": read_bars_csv(COURSE).frame, "twin": read_bars_csv(TWIN).frame}
    T = len(frames["course"])
    origins = np.arange(T - SCORED - 1, T - 1)  # the last origin predicts the last row
    assert origins[0] - 60 + 1 == TRAIN_ROWS, "the first scored window must start right after the training rows"
    rows, full = [], {}
    for name in args.models.split(","):
        file_key = "course" if name.startswith("tutorial") else "twin"
        started = time.perf_counter()
        # One fit on exactly the first 2126 rows, then 240 one-step forecasts.
        result = walk_forward(frames[file_key], "600519.SH", models=(name,), horizon=1, target="open",
                              refit_every=len(origins), origins=origins, first_fit_rows=TRAIN_ROWS)
        seconds = time.perf_counter() - started
        score = result.scores[name]
        opens = frames[file_key]["open"].to_numpy()
        naive_rmse = metrics.rmse(opens[origins + 1], opens[origins])
        rows.append((name, file_key, score["rmse"], score["mae"], score["skill_vs_naive"], naive_rmse, seconds))
        full[name] = {"file": (COURSE if file_key == "course" else TWIN).name, **result.to_dict()}
        print(format_table(result), file=sys.stderr)
    print(f"\n{'model':<14}{'file':<8}{'RMSE':>8}{'MAE':>8}{'skill':>9}{'naive RMSE':>12}{'seconds':>9}")
    for name, file_key, r, m, s, n, secs in rows:
        print(f"{name:<14}{file_key:<8}{r:8.2f}{m:8.2f}{s * 100:8.1f}%{n:12.2f}{secs:9.1f}")
    if args.json:
        args.json.write_text(json.dumps(full, indent=2, default=str))


if __name__ == "__main__":
    main()
