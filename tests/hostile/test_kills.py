"""Hostile events, kill -9: ``forecast run`` and ``forecast doctor --repair`` killed at several moments.

Each case runs the real CLI as cron does (a subprocess, the bundled sample as
the source, a tiny network), kills its process group with SIGKILL at a moment
found by polling its log file or the home (or after a fixed delay), and then
asserts: nothing stored was lost (the bars and the good model are byte-identical,
or an equal newer state), ``doctor`` names only what ``--repair`` can fix,
after ``doctor --repair`` the home is healthy, and the next ``run`` exits 0 with
every expected output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # real Keras fits in subprocesses: tens of seconds each
# Every moment costs a subprocess with TensorFlow (7-35 s on 2 cores): the suite kills at the moments most likely to
# lose something (mid-fit, while publishing, mid-move); FORECAST_HEAVY=1 runs every moment (about 3 minutes more).
HEAVY = os.environ.get("FORECAST_HEAVY") == "1"


def moments(every: list[str], suite: list[str]) -> list[str]:
    return every if HEAVY else suite

TICKER = "600519.SH"
TINY_TRAIN = "[train]\nepochs = 1\nunits = [4]\nlookback = 10\nhorizon = 3\n"
OUTPUTS = (f"{TICKER}.csv", f"{TICKER}.json", f"{TICKER}.png", "summary.json", "index.html")
BARS = Path("data") / "bars" / f"{TICKER}.parquet"


def write_config(home: Path) -> None:
    (home / "forecast.toml").write_text(f'tickers = ["{TICKER}"]\nsource = "sample"\nretrain_after_days = 30\n{TINY_TRAIN}')


def cron_env(home: Path) -> dict:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "FORECAST_HOME": str(home)}


def forecast(home: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forecast", *args], env=cron_env(home), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def start(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "forecast", *args], env=cron_env(home), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def kill_when(proc: subprocess.Popen, moment: Callable[[], bool], timeout: float = 240, extra_s: float = 0.0) -> float:
    """SIGKILL the process group as soon as ``moment()`` holds (then ``extra_s`` more); return when it was killed.

    Fails the test when the process ended before the moment came: then nothing was attacked.
    """
    began = time.monotonic()
    while not moment():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended (exit {proc.returncode}) before the moment came: {err[-1500:]}")
        if time.monotonic() - began > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail("the moment never came")
        time.sleep(0.02)
    if extra_s:
        time.sleep(extra_s)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.returncode  # it was killed, it did not end on its own
    return time.monotonic() - began


def log_says(log: Path, text: str) -> Callable[[], bool]:
    return lambda: log.is_file() and text in log.read_text(errors="replace")


def after(seconds: float) -> Callable[[], bool]:
    until = time.monotonic() + seconds
    return lambda: time.monotonic() >= until


def exists(path: Path) -> Callable[[], bool]:
    return path.exists


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def doctor(home: Path, *args: str) -> tuple[int, dict]:
    result = forecast(home, "doctor", "--json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def repair_to_healthy(home: Path, protected: list[Path]) -> list[dict]:
    """``doctor`` names only repairable things, ``--repair`` leaves the home healthy and moves nothing in ``protected``."""
    code, report = doctor(home)
    assert code in (0, 3), report
    named = [os.path.relpath(f["path"], home) for f in report["findings"]]
    for path in protected:
        assert not any(n == str(path) or n.startswith(f"{path}/") for n in named), f"{path} was damaged by the kill: {report}"
    code, repaired = doctor(home, "--repair")
    assert code == 0 and repaired["healthy"], repaired  # nothing unrepairable
    for finding in repaired["findings"]:
        assert finding["moved_to"] is not None, finding
        assert not any(Path(finding["path"]).is_relative_to(home / p) for p in protected), finding
    code, again = doctor(home)
    assert code == 0 and again == {"findings": [], "healthy": True}, again
    return report["findings"]


def assert_a_good_run(home: Path) -> dict:
    result = forecast(home, "run", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert [(t["ticker"], t["ok"]) for t in summary["tickers"]] == [(TICKER, True)]
    for name in OUTPUTS:
        assert (home / "daily" / summary["run_date"] / name).is_file(), name
        assert (home / "daily" / "latest" / name).is_file(), name
    assert json.loads((home / "daily" / "latest" / "summary.json").read_text())["exit_code"] == 0
    return summary


@pytest.fixture(scope="module")
def ran_home(tmp_path_factory) -> Path:
    """A home after one good daily run: bars, a model, a forecast, the day's outputs. Copy it; never change it."""
    home = tmp_path_factory.mktemp("ran")
    write_config(home)
    assert_a_good_run(home)
    return home


@pytest.fixture
def own_home(ran_home, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(ran_home, copy, symlinks=True)
    return copy


def the_model(home: Path) -> Path:
    [model] = [p for p in (home / "models").iterdir() if p.is_dir() and p.name.startswith(TICKER)]
    return model


# ---- kill -9 in the middle of a run that retrains over a good home ------------------------------------------------

RERUN_MOMENTS = {
    "starting": lambda home, log, day: after(1.5),  # still importing: nothing written yet
    "after the fetch": lambda home, log, day: log_says(log, f"{TICKER}: training"),
    "mid-fit": lambda home, log, day: log_says(log, "training default-gru"),  # plus 3 s below: Keras is fitting
    "just registered": lambda home, log, day: log_says(log, "registered"),  # the new model is written
    "publishing": lambda home, log, day: exists(home / "daily" / day),  # the day's folder is being written
}


@pytest.mark.parametrize("moment", moments(["starting", "after the fetch", "mid-fit", "just registered", "publishing"], ["mid-fit", "publishing"]))
def test_kill_9_in_the_middle_of_a_retraining_run_loses_nothing_and_repair_makes_the_next_run_work(own_home, tmp_path,
                                                                                                     moment):
    home = own_home
    log = tmp_path / "run.log"
    bars_before = (home / BARS).read_bytes()
    frame_before = pd.read_parquet(home / BARS)
    old_model = the_model(home)
    model_before = files(old_model)
    day = json.loads((home / "daily" / "latest" / "summary.json").read_text())["run_date"]
    shutil.rmtree(home / "daily" / day)  # so that "publishing" sees the day's folder come back
    when = RERUN_MOMENTS[moment](home, log, day)
    proc = start(home, "run", "--retrain-after", "0", "--log-file", str(log), "--json")
    kill_when(proc, when, extra_s=3.0 if moment == "mid-fit" else 0.0)

    # nothing stored was lost: the bars are the same bytes or the same rows, the good model is untouched
    if (home / BARS).read_bytes() != bars_before:
        pd.testing.assert_frame_equal(pd.read_parquet(home / BARS), frame_before)
    assert files(old_model) == model_before
    repair_to_healthy(home, protected=[BARS, old_model.relative_to(home)])
    assert (home / BARS).is_file() and files(old_model) == model_before
    assert_a_good_run(home)
    assert len(pd.read_parquet(home / BARS)) == len(frame_before)


# ---- kill -9 in the middle of the very first run (an empty home) ---------------------------------------------------

@pytest.mark.parametrize("moment", moments(["just stored", "mid-fit"], ["mid-fit"]))
def test_kill_9_in_the_middle_of_a_first_run_leaves_a_home_the_next_run_completes(tmp_path, moment):
    home = tmp_path / "home"
    home.mkdir()
    write_config(home)
    log = tmp_path / "run.log"
    proc = start(home, "run", "--log-file", str(log))
    kill_when(proc, log_says(log, "stored" if moment == "just stored" else "training default-gru"),
              extra_s=3.0 if moment == "mid-fit" else 0.0)
    frame = pd.read_parquet(home / BARS)  # the fetch ended before the kill: its bars are whole
    assert len(frame) == 2429
    repair_to_healthy(home, protected=[BARS])
    summary = assert_a_good_run(home)
    assert summary["tickers"][0]["retrained"]  # no half-written model was taken for a finished one


# ---- kill -9 in the middle of doctor --repair -----------------------------------------------------------------------

def damage(home: Path) -> dict[str, bytes]:
    """Four repairable problems; returns {relative path: bytes} of each damaged file."""
    bars = home / BARS
    truncated = home / "data" / "bars" / "000001.SZ.parquet"
    truncated.write_bytes(bars.read_bytes()[: bars.stat().st_size // 2])
    forecast_file = home / "forecasts" / TICKER / "latest.json"
    forecast_file.write_bytes(b'{"ticker": "600519.SH", "points": [')
    debris = home / "data" / "bars" / f".{TICKER}.parquet.999999.tmp"
    debris.write_bytes(b"half a parquet file")
    garbage_model = home / "models" / f"{TICKER}-default-gru-20250101T000000-dead"
    garbage_model.mkdir()
    (garbage_model / "metadata.json").write_bytes(b"{ not json")
    (garbage_model / "model.keras").write_bytes(b"PK\x03\x04 not a zip")
    return {str(p.relative_to(home)): p.read_bytes()
            for p in (truncated, forecast_file, debris, garbage_model / "metadata.json", garbage_model / "model.keras")}


def moved_into_quarantine(home: Path, part: str) -> Callable[[], bool]:
    """True once something under ``part`` (data, forecasts, models) has been moved into quarantine."""
    return lambda: any((day / part).exists() for day in (home / "quarantine").glob("*")) if (home / "quarantine").exists() else False


@pytest.mark.parametrize("moment", moments(["early", "quarantine appears", "forecast moved", "model moved"], ["quarantine appears", "model moved"]))
def test_kill_9_in_the_middle_of_doctor_repair_moves_or_keeps_every_byte_and_a_second_repair_finishes(own_home, moment):
    home = own_home
    model = the_model(home).relative_to(home)
    damaged = damage(home)
    good = {k: v for k, v in files(home).items() if k not in damaged and not k.startswith("quarantine")}
    code, report = doctor(home)
    assert code == 3 and len(report["findings"]) >= len(damaged) - 1, report  # the model's two files may be one finding
    when = {"early": after(0.5), "quarantine appears": exists(home / "quarantine"),
            "forecast moved": moved_into_quarantine(home, "forecasts"), "model moved": moved_into_quarantine(home, "models")}[moment]
    proc = start(home, "doctor", "--repair")
    kill_when(proc, when, timeout=60)

    # every good file is where it was, byte for byte; every damaged one is where it was or in quarantine, whole
    after_kill = files(home)
    for path, sha in good.items():
        if path.startswith(("models/.lock", "data/.lock", "models/latest/")) or path == ".run.lock":
            continue  # locks and the latest pointer: rewritten by design
        assert after_kill.get(path) == sha, f"{path} changed or vanished"
    quarantined = {sha for path, sha in after_kill.items() if path.startswith("quarantine/")}
    for path, data in damaged.items():
        sha = hashlib.sha256(data).hexdigest()
        assert after_kill.get(path) == sha or sha in quarantined, f"{path} lost by the killed repair"
    repair_to_healthy(home, protected=[BARS, model])
    assert_a_good_run(home)
