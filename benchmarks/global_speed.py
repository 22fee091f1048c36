"""Issue 17's speed figures for the global model on synthetic bars (no ../shared needed).

    python benchmarks/global_speed.py [--only train,predict,backtest]

- train: ``forecast train --universe stored --preset global`` on 300 tickers x
  2,500 days (10 years); wall time, windows per second, peak RSS (bar: 5 min);
- predict: ``forecast predict --universe stored --model global`` and ``forecast
  rank`` on 5,400 tickers x 400 days, start included (the global model predicts in numpy; bar: 10 s with TensorFlow's start);
- band_scale: in-process, the bands' volatility (long_scale.long_origin_scale)
  for 5,400 tickers x 2,500 bars, at training's validation rows and at
  predict's latest rows: seconds and peak memory above the inputs;
- universe_bands: in-process, scoring a universe backtest's bands
  (evaluation/universe_bands.score_bands) for 5,400 tickers x 250 test days,
  fixed and recalibrated: seconds and peak memory above the inputs;
- backtest: ``forecast backtest --universe stored --models
  global,linear,momentum,reversal,naive`` on 100 tickers x 250 test days,
  refit every 60 (bar: 30 min).

Each command runs in a child process, as a user runs it; peak RSS is the
child's own VmHWM, printed by the child at exit. Predict and rank are also
timed through the installed ``forecast`` console script (the real CLI, start
included). Every figure carries the machine's load average (1, 5, 15 min)
before and after its command and the CPU count, so that a figure taken on a
shared machine says so. The train figure names the preset it trained (the
issue-25 ``global`` preset nests the ridge: ``linear``) and whether the ridge
alone was kept (best epoch 0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

CHILD = """
import atexit, sys
def peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            print('PEAK_RSS_KB', line.split()[1], file=sys.stderr)
atexit.register(peak)
from forecast.cli import app
sys.argv = ['forecast'] + sys.argv[1:]
app()
"""


LOAD: dict[str, tuple[float, ...]] = {}
CONSOLE = Path(sys.executable).parent / "forecast"  # the installed CLI entry point


def load() -> str:
    """The load average around the last command, and the CPU count: a shared machine's figures say so."""
    before, after = LOAD.get("before"), LOAD.get("after")
    shown = lambda t: "/".join(f"{x:.2f}" for x in t) if t else "?"  # noqa: E731
    cpu = LOAD.get("cpu", (float("nan"),))[0]
    return (f"[child CPU {cpu:.1f} s user+sys; load avg 1/5/15 min {shown(before)} before, {shown(after)} after; "
            f"{os.cpu_count()} CPUs]")


def forecast(home: Path, *args: str, console: bool = False) -> tuple[float, int, str]:
    """Run ``forecast ARGS`` in a child; return (wall seconds, peak RSS in MB, stdout).

    With ``console`` the child is the installed ``forecast`` script itself (its RSS is not reported: -1).
    """
    env = {**os.environ, "FORECAST_HOME": str(home)}
    env.pop("TUSHARE_TOKEN", None)
    command = [str(CONSOLE), *args] if console else [sys.executable, "-c", CHILD, *args]
    LOAD["before"] = os.getloadavg()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    LOAD["after"] = os.getloadavg()
    now = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU time is less sensitive than wall time to a shared machine
    LOAD["cpu"] = (now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime,)
    if done.returncode != 0:
        raise SystemExit(f"forecast {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    peak = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB")]
    return seconds, (peak[-1] // 1024 if peak else -1), done.stdout


def stored_home(n_tickers: int, n_days: int, seed: int) -> Path:
    from synthetic_market import synthetic_bars, write_store

    from forecast.data.store import MarketStore

    home = Path(tempfile.mkdtemp(prefix="forecast-global-"))
    started = time.perf_counter()
    write_store(MarketStore(home), synthetic_bars(n_tickers, n_days, seed))
    print(f"   (stored {n_tickers} x {n_days} synthetic bars in {time.perf_counter() - started:.0f} s)", flush=True)
    return home


def bench_train(keep: dict) -> None:
    home = stored_home(300, 2500, seed=1)
    seconds, peak, out = forecast(home, "train", "--universe", "stored", "--preset", "global", "--quiet", "--json")
    card = json.loads(out)
    shown = load()
    print(f"== train the global model on 300 tickers x 2,500 days: {seconds:.0f} s wall (bar 300 s), "
          f"{card['windows_per_second']:,.0f} windows/s, {card['data'].get('windows_per_epoch', 0):,} an epoch of {card['data']['windows_train']:,} training windows, "
          f"best epoch {card['validation']['best_epoch']}, peak RSS {peak} MB {shown}", flush=True)
    config = trained_config(home / "models")
    if config:
        best = card["validation"]["best_epoch"]
        print(f"   preset trained: {', '.join(f'{k}={config[k]}' for k in ('arch', 'units', 'members', 'epochs', 'train_every', 'linear', 'linear_trainable') if k in config)}"
              f"; validation Rank IC {card['validation'].get('rank_ic', float('nan')):+.4f} "
              f"({'the nested ridge alone kept' if best == 0 and config.get('linear') else 'a trained epoch kept'})", flush=True)
    keep["models"] = home / "models"
    keep["home"] = home


def trained_config(models: Path) -> dict:
    """The ``config`` of the global model saved under ``models`` (its metadata file), {} when none is found."""
    for path in sorted(models.rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("config"), dict) and "units" in data["config"]:
            return data["config"]
    return {}


def bench_predict(keep: dict) -> None:
    if "models" not in keep:
        bench_train(keep)
    home = stored_home(5400, 400, seed=2)
    shutil.copytree(keep["models"], home / "models")
    seconds, peak, out = forecast(home, "predict", "--universe", "stored", "--model", "global", "--quiet", "--json")
    rows = json.loads(out)
    count = len(rows) if isinstance(rows, list) else len(rows.get("results", []))
    print(f"== predict 5,400 tickers with the global model, one batched call: {seconds:.1f} s wall, start included "
          f"(numpy, no TensorFlow; bar 10 s including TensorFlow's start), {count} forecasts stored, peak RSS {peak} MB {load()}", flush=True)
    seconds, peak, out = forecast(home, "rank", "--universe", "stored", "--top", "20", "--json")
    print(f"   rank 5,400 tickers: {seconds:.1f} s wall, {len(json.loads(out)['ranking'])} shown, peak RSS {peak} MB {load()}", flush=True)
    if CONSOLE.exists():  # the same two commands through the installed script, as a user types them
        seconds, _, out = forecast(home, "predict", "--universe", "stored", "--model", "global", "--quiet", "--json", console=True)
        rows = json.loads(out)
        count = len(rows) if isinstance(rows, list) else len(rows.get("results", []))
        print(f"   `{CONSOLE.name} predict --universe stored --model global` (console script): {seconds:.1f} s wall, "
              f"start included, {count} forecasts {load()}", flush=True)
        seconds, _, out = forecast(home, "rank", "--universe", "stored", "--top", "20", "--json", console=True)
        print(f"   `{CONSOLE.name} rank --universe stored --top 20` (console script): {seconds:.1f} s wall, start included, "
              f"{len(json.loads(out)['ranking'])} shown {load()}", flush=True)
    shutil.rmtree(home, ignore_errors=True)


def bench_backtest(keep: dict) -> None:
    home = stored_home(100, 1500, seed=3)
    seconds, peak, out = forecast(home, "backtest", "--universe", "stored", "--models", "global,linear,momentum,reversal,naive",
                                  "--test-days", "250", "--refit-every", "60", "--quiet", "--json")
    report = json.loads(out)
    print(f"== cross-sectional backtest of 100 tickers over 250 days, refit every 60: {seconds / 60:.1f} min wall "
          f"(bar 30 min), {len(report['refits'])} refits, peak RSS {peak} MB {load()}", flush=True)
    shutil.rmtree(home, ignore_errors=True)


def bench_band_scale(keep: dict) -> None:
    """In-process: the bands' volatility (long_scale.long_origin_scale) for a universe's rows, time and peak memory."""
    import tracemalloc

    import numpy as np

    from forecast.maths.intervals import DEFAULT_SCALE
    from forecast.maths.long_scale import long_origin_scale
    from forecast.models.pooled.model import GlobalSettings

    tickers = 5_400
    cases = (("training: 2,500 bars each, the validation rows (the last 250 of each)", 2_500, 250),
             (f"predict: the {GlobalSettings().history_rows()} bars it reads, the latest row of each",
              GlobalSettings().history_rows(), 1))
    for label, bars, asked in cases:
        rng = np.random.default_rng(0)
        close = np.exp(np.cumsum(rng.normal(0, 0.02, tickers * bars)))
        log_range = np.abs(rng.normal(0.02, 0.01, tickers * bars))
        start = np.repeat(np.arange(tickers) * bars, bars)
        rows = ((np.arange(tickers) * bars)[:, None] + np.arange(bars - asked, bars)[None, :]).ravel()
        tracemalloc.start()
        began = time.perf_counter()
        long_origin_scale(close, log_range, start, rows, DEFAULT_SCALE)
        seconds, peak = time.perf_counter() - began, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"== band scale ({DEFAULT_SCALE}) of {tickers:,} tickers, {label}: {seconds:.2f} s, "
              f"peak {peak / 2**20:.0f} MiB above its inputs [load avg 1/5/15 min {os.getloadavg()}]", flush=True)


def bench_universe_bands(keep: dict) -> None:
    """In-process: scoring a universe backtest's bands (evaluation/universe_bands.score_bands), time and peak memory."""
    import tracemalloc
    from types import SimpleNamespace

    import numpy as np

    from forecast.evaluation.universe_bands import BandBlock, score_bands

    tickers, days, horizon, levels = 5_400, 250, 5, (0.8, 0.95)
    rng = np.random.default_rng(0)
    n = tickers * days
    data = SimpleNamespace(labels=rng.normal(0, 0.02, (n, horizon)).cumsum(axis=1).astype("float32"),
                           tickers=np.repeat(np.array([f"T{i:04d}" for i in range(tickers)], dtype=object), days),
                           position=np.tile(np.arange(days) + 300, tickers))
    point = np.exp(rng.normal(0, 0.001, (n, horizon)))
    half = np.array([0.026, 0.04])[None, :, None] * np.sqrt(np.arange(1, horizon + 1))
    blocks = [BandBlock(np.arange(i, min(i + n // 5, n)), point[i: i + n // 5], point[i: i + n // 5, None] * np.exp(-half),
                        point[i: i + n // 5, None] * np.exp(half), "range:ewma0.94+std250") for i in range(0, n, n // 5)]
    tracemalloc.start()
    began = time.perf_counter()
    score_bands(data, blocks, levels)  # type: ignore[arg-type]  (the fields it reads)
    seconds, peak = time.perf_counter() - began, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"== universe bands scored in a backtest: {tickers:,} tickers x {days} test days x {len(levels)} levels x {horizon} steps, "
          f"fixed and recalibrated: {seconds:.2f} s, peak {peak / 2**20:.0f} MiB above its inputs "
          f"[load avg 1/5/15 min {os.getloadavg()}]", flush=True)


SECTIONS = {"train": bench_train, "predict": bench_predict, "backtest": bench_backtest, "band_scale": bench_band_scale,
            "universe_bands": bench_universe_bands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS))
    args = parser.parse_args()
    keep: dict = {}
    for name in args.only.split(","):
        SECTIONS[name](keep)
    if "home" in keep:
        shutil.rmtree(keep["home"], ignore_errors=True)


if __name__ == "__main__":
    main()
