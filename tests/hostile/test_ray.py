"""Hostile events, Ray: a worker process killed (SIGKILL) in the middle of a job over several tickers.

Each case runs in a subprocess (its own local Ray of 2 CPUs, started by the
executor and shut down after it) under a wall-clock timeout, so a hang fails
the test instead of stalling the suite. The job kills its own worker process
for one item, every time Ray retries it: that item must come back as one
failed line, the other items must finish, the exit code is 8 (partial, as the
README's table says for several tickers), and nothing hangs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import subprocess_env
from synthetic_market import synthetic_bars, write_store

from forecast.data.store import MarketStore
from forecast.errors import ExitCode
from forecast.workspace import Workspace

pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'forecast[ray]'")

TIMEOUT_S = 240  # the whole subprocess, Ray's start and its retries of the killed task included

DRIVER = r'''
import json, os, signal, sys

from forecast.workflow import executors


class KillsItsWorker:
    """Runs ``job`` for every item but ``victim``, for which it SIGKILLs the worker process running it."""

    def __init__(self, job, victim):
        self.job, self.victim = job, victim

    def __call__(self, item):
        if item == self.victim:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.job(item)


mode, victim, *rest = sys.argv[1:]
if mode == "executor":
    from forecast.data.tickers import parse_ticker

    seen = []
    outcomes = executors.RayExecutor(num_cpus=2).map(KillsItsWorker(parse_ticker, victim), rest,
                                                     on_done=lambda o: seen.append(o.item))
    print(json.dumps({"outcomes": [{"item": o.item, "ok": o.ok, "value": None if o.value is None else str(o.value),
                                    "error": o.error, "exit_code": o.exit_code} for o in outcomes],
                      "seen": seen, "exit_code": executors.exit_code_for(outcomes)}))
else:
    original = executors.RayExecutor.map

    def map(self, job, items, on_done=None):
        return original(self, KillsItsWorker(job, victim), items, on_done)

    executors.RayExecutor.map = map
    from forecast.cli import app

    app(rest)
'''

TICKERS = ["600519.SH", "600036.SH", "000001.SZ", "600000.SH"]
VICTIM = "600036.SH"


def drive(tmp_path: Path, *args: str, home: Path | None = None) -> tuple[subprocess.CompletedProcess, float]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = subprocess_env(FORECAST_HOME=home or tmp_path / "home", RAY_USAGE_STATS_ENABLED="0")
    began = time.monotonic()
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=TIMEOUT_S,
                            env=env, stdin=subprocess.DEVNULL, cwd=tmp_path)
    return result, time.monotonic() - began


@pytest.mark.slow  # a local Ray starts: about 15 s on 2 cores
def test_a_ray_worker_killed_mid_job_is_that_items_one_line_failure_and_the_others_finish(tmp_path):
    result, seconds = drive(tmp_path, "executor", VICTIM, *TICKERS)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    outcomes = {o["item"]: o for o in out["outcomes"]}
    assert [o["item"] for o in out["outcomes"]] == TICKERS  # every item answered, in order
    assert sorted(out["seen"]) == sorted(TICKERS)  # each reported once as it ended
    assert [t for t in TICKERS if outcomes[t]["ok"]] == [t for t in TICKERS if t != VICTIM]
    assert [outcomes[t]["value"] for t in TICKERS if t != VICTIM] == [t for t in TICKERS if t != VICTIM]
    lost = outcomes[VICTIM]
    assert not lost["ok"] and "worker" in lost["error"] and "lost" in lost["error"], lost
    assert "\n" not in lost["error"] and len(lost["error"]) < 400, lost["error"]  # one line
    assert lost["exit_code"] == ExitCode.WORKER_LOST and "internal error" not in lost["error"]  # the machine's doing, not a bug
    assert out["exit_code"] == 8  # partial: some items worked
    print(f"ray worker killed: {seconds:.1f} s")


@pytest.mark.slow  # a local Ray starts: about 15 s on 2 cores
def test_a_command_on_ray_whose_worker_is_killed_exits_8_and_names_the_ticker_in_one_line(tmp_path):
    home = tmp_path / "home"
    bars = synthetic_bars(4, 300, seed=3)
    write_store(MarketStore(Workspace.at(home)), bars)
    victim = bars.codes[1]
    result, seconds = drive(tmp_path, "cli", victim, "predict", *bars.codes, "--model", "naive", "--executor", "ray",
                            "--workers", "2", "--json", home=home)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 8, (result.returncode, result.stderr[-3000:])
    out = json.loads(result.stdout)
    assert [r["ticker"] for r in out["results"]] == [c for c in bars.codes if c != victim]
    [failure] = out["failures"]
    assert failure["ticker"] == victim and "worker" in failure["error"], failure
    lines = [line for line in result.stderr.splitlines() if victim in line]
    assert len(lines) == 1 and "lost" in lines[0], result.stderr  # the killed ticker: one line on stderr
    for code in bars.codes:
        assert Workspace.at(home).forecast_file(code).is_file() == (code != victim), code
    print(f"ray command with a killed worker: {seconds:.1f} s")


def test_the_raylets_worker_died_message_goes_to_the_log_not_to_stdout(monkeypatch, capsys):
    """Ray's driver prints the raylet's messages on stdout from a thread; that broke ``--json`` after a worker died."""
    import ray
    from ray._private import worker as ray_worker

    from forecast.workflow.executors import _raylet_messages_to_log

    monkeypatch.setattr(ray_worker, "print_to_stdstream", ray_worker.print_to_stdstream)  # restored after the test
    _raylet_messages_to_log(ray)
    _raylet_messages_to_log(ray)  # once per process: a second call wraps nothing twice
    ray_worker.print_to_stdstream({"lines": ["A worker died or was killed while executing a task"], "pid": "raylet",
                                   "is_err": False}, ignore_prefix=False)
    assert capsys.readouterr().out == ""
    ray_worker.print_to_stdstream({"lines": ["hello from a task"], "pid": 4242, "is_err": False, "ip": "127.0.0.1",
                                   "task_name": "t", "actor_name": "", "job": "01000000"}, ignore_prefix=True)
    assert "hello from a task" in capsys.readouterr().out  # the tasks' own output (log_to_driver) is left as it was
