"""Per-ticker training of 4 tickers: serial, then on a local Ray started here, then in a local process pool.

    python benchmarks/ray_bench.py [--tickers 4] [--days 2400] [--epochs N] [--cpus 2] [--workers 2] [--no-pool] [--root DIR]

Prints, asserts nothing: the Ray start time, the per-task overhead (a
trivial task's round trip on warm workers, and the first task's extra time
in a fresh worker, which imports TensorFlow), the memory of the Ray
processes (resident, and each worker's peak), the wall times, whether
every executor trained the same weights and forecast the same numbers as
the serial run, and how long one model's commit holds the registry lock. The market is synthetic (tests/synthetic_market.py), 4
tickers of 2,400 days; the default preset trains as ``forecast train`` does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def ray_processes(workers_only: bool = False) -> list[tuple[int, str, int, int]]:
    """(pid, name, VmRSS kB, VmHWM kB) of Ray's processes: its daemons (under site-packages/ray/) and its workers (ray::...)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not (cmd.startswith("ray::") or (not workers_only and "site-packages/ray/" in cmd)):
                continue
            status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
            found.append((int(pid), cmd.split()[0][-40:], int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])))
        except (OSError, KeyError, ValueError):
            continue
    return found


def same_weights(a: Path, b: Path, ticker: str) -> bool:
    import numpy as np

    from forecast.models.network import load_model
    from forecast.models.registry import ModelRegistry
    from forecast.workspace import Workspace

    wa, wb = (load_model(Workspace.at(h).model_file(ModelRegistry(h).latest_id(ticker))).get_weights() for h in (a, b))
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


def registry_commit_hold(root: Path, commits: int = 200) -> list[float]:
    """Seconds the registry lock is held per model, doing what ModelRegistry.save does under it: rename the staged folder, write the pointer."""
    from forecast.atomic import atomic_write_text
    from forecast.locks import hold_lock

    held = []
    for i in range(commits):
        staging = root / f".staging-{i}"
        staging.mkdir(parents=True)
        (staging / "model.keras").write_bytes(b"\0" * 71_104)  # a default model's size
        (staging / "metadata.json").write_text("{}")
        with hold_lock(root / ".lock", 10, "busy"):
            started = time.perf_counter()
            os.replace(staging, root / f"model-{i}")
            atomic_write_text(root / "latest" / f"T{i % 50}", f"model-{i}\n")
            held.append(time.perf_counter() - started)
    return held


def timed_map(executor, job, tickers):
    started = time.perf_counter()
    outcomes = executor.map(job, tickers)
    wall = time.perf_counter() - started
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print("  failures:", [(o.item, o.error) for o in failed])
    return outcomes, wall


def main() -> None:
    from synthetic_market import synthetic_bars, write_store

    from forecast.data.store import MarketStore
    from forecast.data.tickers import parse_ticker
    from forecast.models.train_config import TrainConfig
    from forecast.workflow.executors import PoolExecutor, RayExecutor, SerialExecutor, import_ray
    from forecast.workflow.jobs import PredictJob, TrainJob
    from forecast.workspace import Workspace

    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=4)
    parser.add_argument("--days", type=int, default=2400, help="bars per ticker (2400: about ten years, like the sample)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's (60, early stopping)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--workers", type=int, default=2, help="processes of the local pool")
    parser.add_argument("--no-pool", action="store_true")
    parser.add_argument("--root", type=Path, default=None, help="make the homes here (e.g. on the shared filesystem); default: a temporary folder")
    args = parser.parse_args()
    import_ray()  # the extra's error before any work
    print(f"machine: {os.cpu_count()} CPUs; {args.tickers} tickers x {args.days} days; local Ray with {args.cpus} CPUs, one per task; pool of {args.workers}")

    root = Path(tempfile.mkdtemp(prefix="ray-bench-", dir=args.root))
    bars = synthetic_bars(args.tickers, args.days, seed=5)
    homes = {name: Workspace.at(root / name) for name in ("serial", "ray", "pool")}
    for workspace in homes.values():
        write_store(MarketStore(workspace), bars)
    tickers = bars.codes
    cfg = TrainConfig() if args.epochs is None else TrainConfig(epochs=args.epochs)

    cpu = time.process_time()
    serial, serial_wall = timed_map(SerialExecutor(), TrainJob(homes["serial"], cfg), tickers)
    cpu = time.process_time() - cpu
    SerialExecutor().map(PredictJob(homes["serial"]), tickers)
    print(f"serial: {serial_wall:.1f} s wall for {len(tickers)} tickers; per ticker "
          + ", ".join(f"{o.seconds:.1f}" for o in serial) + " s (the first imports TensorFlow); "
          f"{cpu:.1f} CPU-s in all, {cpu / len(tickers):.1f} per ticker, TensorFlow's import included")

    ray = import_ray()
    executor = RayExecutor(num_cpus=args.cpus)
    started = time.perf_counter()
    executor.start()  # as the commands start it; the maps below find it running and leave it so
    print(f"ray start: {time.perf_counter() - started:.2f} s (ray.init, local, {args.cpus} CPUs; import ray not counted)")
    idle = ray_processes()
    print(f"ray idle memory: {sum(p[2] for p in idle) / 1024:.0f} MiB resident in {len(idle)} processes "
          f"(gcs, raylet, agents, log monitor, idle workers)")
    trivial = [f"{600000 + i:06d}.SH" for i in range(200)]
    executor.map(parse_ticker, trivial[:20])  # warm the workers
    _, trivial_wall = timed_map(executor, parse_ticker, trivial)
    print(f"ray per-task overhead: {1000 * trivial_wall / len(trivial):.1f} ms per trivial task on warm workers "
          f"({len(trivial)} tasks, {args.cpus} at a time)")
    on_ray, ray_wall = timed_map(executor, TrainJob(homes["ray"], cfg), tickers)
    executor.map(PredictJob(homes["ray"]), tickers)
    print(f"ray: {ray_wall:.1f} s wall for {len(tickers)} tickers; per task "
          + ", ".join(f"{o.seconds:.1f}" for o in on_ray) + " s inside the worker (a fresh worker imports TensorFlow first)")
    workers = ray_processes(workers_only=True)
    if workers:
        print("ray workers after training: " + ", ".join(f"pid {pid} {rss / 1024:.0f} MiB (peak {hwm / 1024:.0f} MiB)"
                                                        for pid, _, rss, hwm in workers))
    ray.shutdown()
    check = {"ray": homes["ray"]}

    if not args.no_pool:
        pooled, pool_wall = timed_map(PoolExecutor(args.workers), TrainJob(homes["pool"], cfg), tickers)
        PoolExecutor(args.workers).map(PredictJob(homes["pool"]), tickers)
        print(f"pool: {pool_wall:.1f} s wall for {len(tickers)} tickers with {args.workers} spawned processes; per ticker "
              + ", ".join(f"{o.seconds:.1f}" for o in pooled) + " s")
        check["pool"] = homes["pool"]

    import json

    for name, workspace in check.items():
        weights = all(same_weights(homes["serial"].root, workspace.root, t) for t in tickers)
        forecasts = all(json.loads(homes["serial"].forecast_file(t).read_text())["points"]
                        == json.loads(workspace.forecast_file(t).read_text())["points"] for t in tickers)
        print(f"{name} vs serial: weights identical: {weights}; forecasts identical: {forecasts} "
              "(model ids differ by their time stamp and random suffix only)")
    held = sorted(registry_commit_hold(root / "lock-bench"))
    print(f"registry lock held per model (rename + pointer, fsynced; this disk): median {1000 * held[len(held) // 2]:.1f} ms, "
          f"p95 {1000 * held[int(len(held) * 0.95)]:.1f} ms over {len(held)}: at most ~{1 / held[len(held) // 2]:.0f} models a second per home")
    print(f"homes left in {root}")


if __name__ == "__main__":
    main()
