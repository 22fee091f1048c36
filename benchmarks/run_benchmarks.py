"""Speed and memory figures for the data layer and the models. Prints, asserts nothing.

    python benchmarks/run_benchmarks.py [--only startup,fasterrors,store,update,windows,train,predict,universe_update,backfill,panel]

Sections that need the course files in ../shared/datasets (FORECAST_SHARED
overrides ../shared) say so and are skipped when those files are missing, as in
a fresh clone; the others use only the bundled sample.

The market-scale sections (universe_update, backfill, panel) live in
benchmarks/market_scale.py. Also see benchmarks/course_split.py (accuracy on the course split) and
benchmarks/walk_forward_500.py (backtest cost and interval coverage).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from global_speed import bench_backtest as bench_global_backtest
from global_speed import bench_band_scale as bench_global_band_scale
from global_speed import bench_predict as bench_global_predict
from global_speed import bench_train as bench_global_train
from global_speed import bench_universe_bands as bench_global_universe_bands
from market_scale import bench_backfill, bench_panel, bench_universe_update
from portfolio_speed import bench_portfolio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
SHARED = Path(os.environ.get("FORECAST_SHARED") or REPO.parent / "shared")
MOUTAI = SHARED / "datasets" / "moutai"
COURSE = MOUTAI / "SH600519_2010-04-26_2020-04-24_qfq_with_negative_prices.csv"
TWIN = MOUTAI / "SH600519_2010-04-26_2020-04-24_qfq.csv"
PY = sys.executable


def missing(*paths: Path) -> bool:
    """Print ``needs <path>; skipped`` for the first path that is not there, and say whether one was missing."""
    for path in paths:
        if not path.exists():
            shown = os.path.relpath(path, REPO) if path.is_relative_to(REPO.parent) else str(path)
            print(f"   needs {shown}; skipped")
            return True
    return False


def wall(cmd: list[str], repeat: int = 3, env=None, expect: int = 0) -> float:
    """Best wall time of ``repeat`` runs of ``cmd``; each must exit ``expect`` (a timed error exits non-zero)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
        if out.returncode != expect:
            raise SystemExit(f"{' '.join(cmd)} exited {out.returncode}, not {expect}: {out.stderr.decode()[-300:]}")
    return min(times)


def bench_startup() -> None:
    print("== start-up (best of 3, wall seconds)")
    help_s = wall([PY, "-m", "forecast", "--help"])
    tf_s = wall([PY, "-c", "import tensorflow"])
    ratio = help_s / tf_s
    print(f"forecast --help: {help_s:.2f} s;  python -c 'import tensorflow': {tf_s:.2f} s;  ratio {ratio:.2f} "
          f"({'within' if ratio <= 0.2 else 'OVER'} the 0.2 bar)")


def bench_fast_errors() -> None:
    """Errors that need no model load must come back in under 0.3x the time of a bare ``import tensorflow``."""
    import pandas as pd

    from forecast.errors import ExitCode

    print("== fast errors (best of 3, wall seconds, whole process)")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FORECAST_HOME": home}
        subprocess.run([PY, "-m", "forecast", "fetch", "--source", "sample"], check=True, capture_output=True, env=env)
        ten = Path(home) / "ten.csv"
        pd.read_csv(REPO / "forecast" / "sample" / "600519.SH.csv").head(10).to_csv(ten, index=False)
        subprocess.run([PY, "-m", "forecast", "fetch", "TEN", "--source", "csv", "--file", str(ten)], check=True,
                       capture_output=True, env=env)
        cases = {
            "forecast predict 600519.SH (no model)": wall([PY, "-m", "forecast", "predict", "600519.SH"], env=env,
                                                          expect=ExitCode.NOT_FOUND),
            "forecast train TEN (10 rows)": wall([PY, "-m", "forecast", "train", "TEN"], env=env, expect=ExitCode.BAD_INPUT),
        }
    tf_s = wall([PY, "-c", "import tensorflow"])
    print(f"python -c 'import tensorflow': {tf_s:.2f} s")
    for name, seconds in cases.items():
        ratio = seconds / tf_s
        print(f"{name}: {seconds:.2f} s = {ratio:.2f}x the import ({'under' if ratio < 0.3 else 'OVER'} the 0.3x bar)")


def bench_store() -> None:
    from forecast.data.fetching import import_sample
    from forecast.data.store import MarketStore

    with tempfile.TemporaryDirectory() as home:
        store = MarketStore(home)
        import_sample(store)
        runs = []
        for _ in range(50):
            started = time.perf_counter()
            store.read_bars("600519.SH", "qfq")
            runs.append(time.perf_counter() - started)
        print(f"== store read of one ticker (2429 bars, qfq): median {statistics.median(runs) * 1000:.1f} ms over 50 reads")


def bench_update_300() -> None:
    import datetime as dt

    import pandas as pd
    from fake_tushare import FakeTushare, market_from_sample, serve
    from tushare.pro.client import DataApi

    from forecast.data.fetching import update_from_tushare
    from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
    from forecast.data.store import MarketStore
    from forecast.data.validation import ValidationReport

    codes = tuple(f"{600000 + i:06d}.SH" for i in range(300))
    market = market_from_sample(REPO / "forecast" / "sample" / "600519.SH.csv", codes=codes)
    fake = FakeTushare(market)
    server, url = serve(fake)
    DataApi._DataApi__http_url = url
    with tempfile.TemporaryDirectory() as home:
        store = MarketStore(home)
        daily = market.daily.merge(market.factors, on=["ts_code", "trade_date"])
        daily = daily[daily.trade_date <= "20201224"]
        with store.writing():
            for code, rows in daily.groupby("ts_code"):
                frame = pd.DataFrame({"date": pd.to_datetime(rows.trade_date), "open": rows.open, "high": rows.high,
                                      "low": rows.low, "close": rows.close, "volume": rows.vol * 100,
                                      "amount": rows.amount * 1000, "adj_factor": rows.adj_factor})
                store.write(code, frame, "tushare", "raw", ValidationReport(len(frame), []))
        client = TushareClient(fake.valid_token, retry=RetryPolicy(sleep=lambda s: None))
        started = time.perf_counter()
        reports, failures = update_from_tushare(store, list(codes), client, now=dt.datetime(2020, 12, 26, 10))
        seconds = time.perf_counter() - started
        new = sum(r.new_rows for r in reports)
        print(f"== update 300 stored tickers by one new day: {fake.calls()} calls to the fake server "
              f"({fake.calls('daily')} daily + {fake.calls('adj_factor')} adj_factor), {new} new rows, "
              f"{len(failures)} failures, {seconds:.1f} s (validation and 300 atomic writes included)")
        fake.requests.clear()
        update_from_tushare(store, list(codes), client, now=dt.datetime(2020, 12, 26, 10))
        print(f"   re-run with nothing new: {fake.calls()} calls")
    server.shutdown()


def course_loop_windows(values: np.ndarray, lookback: int = 60):
    """The course exercise's windowing, verbatim in spirit: a Python loop and lists."""
    x, y = [], []
    for i in range(lookback, len(values)):
        x.append(values[i - lookback:i, 0])
        y.append(values[i, 0])
    x, y = np.array(x), np.array(y)
    return np.reshape(x, (x.shape[0], 60, 1)), y


def bench_windows() -> None:
    from forecast.maths.windows import make_windows, target_matrix

    print("== windows, lookback 60, 1 feature, horizon 1 (time best of 3; peak traced memory)")
    for rows in (2_000, 1_000_000):
        values = np.random.default_rng(0).normal(size=(rows, 1))
        results = {}
        for name, fn in (("course loop", lambda: course_loop_windows(values)),
                         ("make_windows", lambda: make_windows(values, target_matrix(values[:, 0] + 10, 1, "level"), 60, 1))):
            best = min(_timed(fn) for _ in range(3))
            tracemalloc.start()
            fn()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            results[name] = (best, peak)
        loop, ours = results["course loop"], results["make_windows"]
        print(f"{rows:>9} rows: course loop {loop[0] * 1000:9.1f} ms, {loop[1] / 2**20:8.1f} MiB | "
              f"make_windows {ours[0] * 1000:7.2f} ms, {ours[1] / 2**20:7.1f} MiB | {loop[0] / ours[0]:,.0f}x faster")


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


TRAIN_SCRIPT = """
import sys, time, resource, json
sys.path.insert(0, {repo!r})
started = time.perf_counter()
# VmHWM is this process's own high-water mark; getrusage's ru_maxrss in a child inherits its parent's
vm_hwm_mb = lambda: next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
from forecast.data.sources.csv_file import read_bars_csv
from forecast.models.train_config import preset_config, TrainConfig
from forecast.models.training import fit_model
frame = read_bars_csv({path!r}).frame.iloc[:2126].reset_index(drop=True)
cfg = preset_config({preset!r})
fitted = fit_model(frame, cfg, "600519.SH")
print(json.dumps({{"seconds": time.perf_counter() - started, "peak_rss_mb": vm_hwm_mb(),
                  "epochs_run": len(fitted.card.history["loss"]), "best_epoch": fitted.card.validation["best_epoch"]}}))
"""


def bench_train() -> None:
    print("== training on the course file's first 2126 rows, whole process (import, data, fit)")
    if missing(COURSE, TWIN):
        return
    for preset, path in (("tutorial", COURSE), ("default", TWIN)):
        out = subprocess.run([PY, "-c", TRAIN_SCRIPT.format(repo=str(REPO), path=str(path), preset=preset)],
                             capture_output=True, text=True, check=True)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"--preset {preset:<8}: {figures['seconds']:6.1f} s wall, peak RSS {figures['peak_rss_mb']:6.0f} MB, "
              f"{figures['epochs_run']} epochs run (best {figures['best_epoch']})")
    print("   course script (shared/reference/seed-tutorial.md): LSTM 115 s / 812 MB, GRU 123 s / 823 MB")
    print("   test RMSE on the course split: python benchmarks/course_split.py")


def bench_predict() -> None:
    from forecast.data.fetching import import_csv, sample_path
    from forecast.data.store import MarketStore
    from forecast.models.registry import ModelRegistry
    from forecast.models.train_config import build_train_config
    from forecast.models.training import train_ticker

    with tempfile.TemporaryDirectory() as home:
        store, registry = MarketStore(home), ModelRegistry(home)
        names = ["600519.SH"] + [f"COPY{i:02d}" for i in range(1, 50)]
        for name in names:
            import_csv(store, name, sample_path())
        cfg = build_train_config("default", overrides={"epochs": 2})
        base = train_ticker(store, registry, "600519.SH", cfg)
        for name in names[1:]:  # the same network registered under 49 more names
            card = dataclasses.replace(registry.card(base.model_id), ticker=name, id=f"{name}-copy")
            registry.save(card, lambda p: shutil.copyfile(registry.model_file(base.model_id), p))
        for count in (1, 50):
            script = (
                f"import sys, time; sys.path.insert(0, {str(REPO)!r}); t = time.perf_counter()\n"
                "from forecast.data.store import MarketStore; from forecast.models.registry import ModelRegistry\n"
                "from forecast.models.predicting import LoadedModels, predict_ticker, save_forecast\n"
                f"store, reg = MarketStore({home!r}), ModelRegistry({home!r}); loaded = LoadedModels(reg)\n"
                f"names = {names[:count]!r}\n"
                "t1 = time.perf_counter()\n"
                "for n in names: save_forecast(store.home, predict_ticker(store, reg, n, models=loaded))\n"
                "print(time.perf_counter() - t, time.perf_counter() - t1)\n"
            )
            out = subprocess.run([PY, "-c", script], capture_output=True, text=True, check=True)
            total, loop = (float(v) for v in out.stdout.split())
            print(f"== predict {count:2d} ticker(s) in one process: {total:5.1f} s wall in all "
                  f"({total / count:.2f} s per ticker; {loop / count * 1000:.0f} ms per ticker after start-up)")


SECTIONS = {"startup": bench_startup, "fasterrors": bench_fast_errors, "store": bench_store, "update": bench_update_300, "windows": bench_windows,
            "train": bench_train, "predict": bench_predict, "universe_update": bench_universe_update,
            "backfill": bench_backfill, "panel": bench_panel,
            # the global model (benchmarks/global_speed.py): 300 x 10 years trained, 5,400 predicted, 100 backtested
            "global_train": lambda: bench_global_train(_GLOBAL), "global_predict": lambda: bench_global_predict(_GLOBAL),
            "global_backtest": lambda: bench_global_backtest(_GLOBAL), "global_band_scale": lambda: bench_global_band_scale(_GLOBAL),
            "global_universe_bands": lambda: bench_global_universe_bands(_GLOBAL),
            # the portfolio backtest's engine (benchmarks/portfolio_speed.py): 300 tickers x 2,520 days, bar 10 s
            "portfolio": bench_portfolio}
_GLOBAL: dict = {}  # the trained global model, handed from global_train to global_predict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {','.join(SECTIONS)}")
    args = parser.parse_args()
    unknown = [name for name in args.only.split(",") if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {','.join(SECTIONS)}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for name in args.only.split(","):
        SECTIONS[name]()


if __name__ == "__main__":
    main()
