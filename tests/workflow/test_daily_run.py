"""The daily job as cron runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLE_FILE
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.store import MarketStore
from forecast.errors import ExitCode
from forecast.models.registry import ModelRegistry
from tests.outputs.test_chart_files import png_size

runner = CliRunner()
pytestmark = pytest.mark.slow  # real Keras fits and subprocesses: seconds each; all of them run in CI
TINY_TRAIN = "[train]\nepochs = 1\nunits = [4]\nlookback = 10\nhorizon = 3\n"


def cron(home: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `forecast` the way cron does: empty environment, minimal PATH, no TTY, no stdin."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "FORECAST_HOME": str(home)}
    return subprocess.run(["env", "-i", *[f"{k}={v}" for k, v in env.items()], sys.executable, "-m", "forecast", *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def write_config(home: Path, tickers: list[str]) -> None:
    quoted = ", ".join(f'"{t}"' for t in tickers)
    (home / "forecast.toml").write_text(f'tickers = [{quoted}]\nsource = "sample"\nretrain_after_days = 30\n{TINY_TRAIN}')


def test_run_under_cron_then_again_without_retraining(tmp_path):
    write_config(tmp_path, ["600519.SH"])
    first = cron(tmp_path, "run", "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    outcome = summary["tickers"][0]
    assert outcome["ok"] and outcome["retrained"]
    day = tmp_path / "daily" / summary["run_date"]
    for name in ("600519.SH.csv", "600519.SH.json", "600519.SH.png", "summary.json", "index.html"):
        assert (day / name).is_file() and (tmp_path / "daily" / "latest" / name).is_file(), name
    page = (day / "index.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<tr class="colors-\w+" data-ticker="600519\.SH"', page)) == 1  # the day's report: its row
    assert json.loads((day / "summary.json").read_text())["exit_code"] == 0
    assert png_size(day / "600519.SH.png") == (1200, 700)
    assert "\x1b[" not in first.stderr  # no colours or progress bars without a terminal
    second = cron(tmp_path, "run", "--json")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)["tickers"][0]
    assert not again["retrained"] and again["model_id"] == outcome["model_id"]
    assert len(ModelRegistry(tmp_path).ids()) == 1
    assert sorted(p.name for p in (tmp_path / "daily").iterdir()) == sorted([summary["run_date"], "latest"])


def test_one_bad_ticker_gives_a_partial_exit_code_and_the_good_outputs(tmp_path):
    write_config(tmp_path, ["600519.SH", "600036.SH", "not a ticker"])
    result = cron(tmp_path, "run", "--json")
    assert result.returncode == ExitCode.PARTIAL, result.stderr
    summary = json.loads((tmp_path / "daily" / "latest" / "summary.json").read_text())
    status = {t["ticker"]: t["ok"] for t in summary["tickers"]}
    assert status == {"600519.SH": True, "600036.SH": False, "not a ticker": False}
    assert (tmp_path / "daily" / "latest" / "600519.SH.png").is_file()
    assert summary["exit_code"] == ExitCode.PARTIAL
    page = (tmp_path / "daily" / "latest" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<tr class="colors-\w+ failed" data-ticker="600036\.SH"', page)  # the failed ticker has its row too


def test_every_ticker_failing_gives_its_own_exit_code(tmp_path):
    write_config(tmp_path, ["600036.SH"])
    assert cron(tmp_path, "run").returncode == ExitCode.ALL_FAILED


def test_two_overlapping_runs_both_end_cleanly(tmp_path):
    write_config(tmp_path, ["600519.SH"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FORECAST_HOME": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-m", "forecast", "run", "--json"], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    retrained = [json.loads(out)["tickers"][0]["retrained"] for out, _ in results]
    assert sorted(retrained) == [False, True]  # the second waited, then found a fresh model
    assert len(ModelRegistry(tmp_path).ids()) == 1
    assert len(MarketStore(tmp_path).read("600519.SH").frame) == len(pd.read_csv(SAMPLE_FILE))  # the sample, once


def test_a_run_that_cannot_get_the_lock_exits_busy(tmp_path):
    from forecast.workflow.pipeline import run_lock

    write_config(tmp_path, ["600519.SH"])
    with run_lock(tmp_path, 1):
        result = cron(tmp_path, "run", "--wait", "0.5")
    assert result.returncode == ExitCode.BUSY
    assert result.stderr.strip().splitlines()[-1].startswith("Error: another forecast run")


def test_run_logs_with_timestamps_to_a_file_and_never_the_token(tmp_path):
    import re

    write_config(tmp_path, ["600519.SH"])
    log = tmp_path / "run.log"
    env = {"PATH": "/usr/bin:/bin", "FORECAST_HOME": str(tmp_path), "TUSHARE_TOKEN": "secret-token-777"}
    result = subprocess.run(["env", "-i", *[f"{k}={v}" for k, v in env.items()], sys.executable, "-m", "forecast",
                             "run", "--quiet", "--log-file", str(log)], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # --quiet
    lines = log.read_text().splitlines()
    assert lines and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING|ERROR) ", line) for line in lines)
    assert any("600519.SH" in line for line in lines)
    assert "secret-token-777" not in log.read_text() + result.stderr


def test_a_failed_fetch_still_forecasts_from_stored_data_and_says_so(home, fake_tushare, monkeypatch):
    """An outage (the server answers HTTP 500 to every try) is ridden out on the stored data, and said: stale, exit 9."""
    import functools

    from forecast.data.sources import tushare_pro
    from forecast.workflow.pipeline import run_daily
    from forecast.workflow.settings import AppConfig

    monkeypatch.setattr(tushare_pro, "RetryPolicy", functools.partial(tushare_pro.RetryPolicy, sleep=lambda s: None))
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    fake_tushare.failures = ["http500"] * 20
    config = AppConfig(tickers=("600519.SH",), source="tushare", tushare_token=fake_tushare.valid_token,
                       train={"epochs": 1, "units": [4], "lookback": 10, "horizon": 3})
    summary = run_daily(home, config)
    outcome = summary.tickers[0]
    assert summary.exit_code == ExitCode.ALL_FAILED and not outcome.ok and outcome.stale  # cron mails on it
    assert "its fetch failed" in outcome.error and "HTTP" in outcome.error
    assert "fetch failed" in outcome.outputs["fetch_warning"] and "csv" in outcome.outputs  # forecast all the same
    assert fake_tushare.calls() >= 1  # it did try the (fake) network first


def test_a_rejected_token_fails_the_run_instead_of_forecasting_from_stale_data(home, fake_tushare):
    """Issue 13: a wrong token made run exit 0 on stale data; cron must see it (exit 9, the ticker's code 6)."""
    from forecast.workflow.pipeline import run_daily
    from forecast.workflow.settings import AppConfig

    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    config = AppConfig(tickers=("600519.SH",), source="tushare", tushare_token="a-wrong-token-123")
    summary = run_daily(home, config)
    outcome = summary.tickers[0]
    assert summary.exit_code == ExitCode.ALL_FAILED and not outcome.ok and outcome.exit_code == ExitCode.AUTH_FAILED
    assert "token" in outcome.error
    assert "a-wrong-token-123" not in json.dumps(summary.to_dict())
    assert fake_tushare.calls() >= 1  # it did try the (fake) network first
