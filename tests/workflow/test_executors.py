"""Per-ticker work on a local Ray and in a local process pool gives what the serial run gives; without Ray, one clear line.

The Ray tests start a local Ray of 2 CPUs once for the module (about 4 s)
and train tiny networks (2 epochs of 4 units) on a synthetic market. Model
ids carry the time and a random suffix, so two runs never share ids: the
tests compare what the ids name, the weights and the forecasts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from synthetic_market import synthetic_bars, write_store
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.store import MarketStore
from forecast.errors import ExitCode
from forecast.models.registry import ModelRegistry
from forecast.workflow.executors import Outcome
from forecast.workspace import Workspace

runner = CliRunner()
TINY = ["--epochs", "2", "--units", "4", "--lookback", "10", "--horizon", "3", "--quiet"]
TINY_TRAIN = "[train]\nepochs = 2\nunits = [4]\nlookback = 10\nhorizon = 3\n"


def cli(home: Path, *args: str):
    return runner.invoke(app, list(args), env={"FORECAST_HOME": str(home)})


def market_homes(root: Path, names: list[str], n_tickers: int) -> tuple[list[Path], list[str]]:
    """One home per name, each holding the same synthetic market; returns (homes, tickers)."""
    bars = synthetic_bars(n_tickers, 400, seed=11)
    homes = []
    for name in names:
        home = root / name
        write_store(MarketStore(Workspace.at(home)), bars)
        homes.append(home)
    return homes, bars.codes


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs for the module; the executor uses it as it is and leaves it running."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'forecast[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("command", [["train", "600519.SH"], ["predict", "600519.SH"], ["backtest", "600519.SH"], ["run", "600519.SH"]])
def test_executor_ray_without_the_extra_is_one_line_naming_it(home, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where the extra is not installed
    result = cli(home, *command, "--executor", "ray")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert "pip install 'forecast[ray]'" in result.stderr
    assert not (home / "models").exists()  # nothing ran


def test_ray_address_without_executor_ray_is_a_usage_error(home):
    result = cli(home, "train", "600519.SH", "--ray-address", "ray://head:10001")
    assert result.exit_code == ExitCode.USAGE
    assert "--executor ray" in result.stderr


ITEMS = ["600519.SH", "not a ticker", "sz000001", "600036.SH"]


def check_isolated_and_in_order(outcomes) -> None:
    """parse_ticker over ITEMS: every item answered, in the order given, the bad one alone failing with its own code."""
    from forecast.workflow.executors import exit_code_for

    assert [o.item for o in outcomes] == ITEMS
    assert [o.ok for o in outcomes] == [True, False, True, True]
    assert [str(o.value) for o in outcomes if o.ok] == ["600519.SH", "000001.SZ", "600036.SH"]
    assert outcomes[1].exit_code == ExitCode.BAD_INPUT and "not a ticker" in outcomes[1].error
    assert exit_code_for(outcomes) == ExitCode.PARTIAL


def test_the_process_pool_isolates_failures_and_keeps_the_order():
    from forecast.data.tickers import parse_ticker
    from forecast.workflow.executors import PoolExecutor

    seen = []
    outcomes = PoolExecutor(2).map(parse_ticker, ITEMS, on_done=lambda o: seen.append(o.item))
    check_isolated_and_in_order(outcomes)
    assert sorted(seen) == sorted(ITEMS)  # each reported once, in the order they ended


def die_on_victim(item: str) -> str:
    """A job whose process the machine kills (as the OOM killer would) when it reaches the victim."""
    import os
    import signal

    if item == "victim":
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def test_a_pool_worker_killed_by_the_machine_is_exit_10_not_a_bug():
    from forecast.workflow.executors import PoolExecutor, exit_code_for

    [lost] = PoolExecutor(2).map(die_on_victim, ["victim"])
    assert not lost.ok and lost.exit_code == ExitCode.WORKER_LOST, lost
    assert "lost" in lost.error and "internal error" not in lost.error and "\n" not in lost.error
    assert exit_code_for([lost]) == ExitCode.WORKER_LOST  # one item keeps its own code
    assert exit_code_for([lost, Outcome("other", value="other")]) == ExitCode.PARTIAL  # several: run's 8


def test_a_job_whose_value_cannot_travel_back_is_still_an_internal_error():
    from forecast.workflow.executors import PoolExecutor

    [failed] = PoolExecutor(2).map(unpicklable_value, ["600519.SH"])
    assert failed.exit_code == ExitCode.INTERNAL and "internal error" in failed.error, failed


def unpicklable_value(item: str):
    return lambda: item  # a lambda does not pickle: the bug is ours, not the machine's


@pytest.mark.slow
def test_ray_tasks_isolate_failures_and_keep_the_order(local_ray):
    from forecast.data.tickers import parse_ticker
    from forecast.workflow.executors import RayExecutor

    seen = []
    check_isolated_and_in_order(RayExecutor().map(parse_ticker, ITEMS, on_done=lambda o: seen.append(o.item)))
    assert sorted(seen) == sorted(ITEMS)
    assert local_ray.is_initialized()  # a Ray the caller started is left running


def weights(home: Path, model_id: str) -> list[np.ndarray]:
    from forecast.models.network import load_model

    return load_model(Workspace.at(home).model_file(model_id)).get_weights()


@pytest.mark.slow
def test_local_ray_and_the_pool_train_and_forecast_what_serial_does(tmp_path, local_ray):
    (serial, on_ray, pooled), tickers = market_homes(tmp_path, ["serial", "ray", "pool"], 3)
    runs = {serial: [], on_ray: ["--executor", "ray"], pooled: ["--workers", "2"]}
    for home, how in runs.items():
        trained = cli(home, "train", *tickers, *TINY, *how, "--json")
        assert trained.exit_code == 0, (how, trained.output)
        forecast = cli(home, "predict", *tickers, "--quiet", *how, "--json")
        assert forecast.exit_code == 0, (how, forecast.output)
        assert [row["ticker"] for row in json.loads(forecast.stdout)["results"]] == tickers  # in the order named, whatever ended first
    for ticker in tickers:
        ids = {home: ModelRegistry(home).latest_id(ticker) for home in runs}
        assert len(set(ids.values())) == 3  # time and random suffix differ ...
        assert len({i.rsplit("-", 2)[0] for i in ids.values()}) == 1  # ... ticker, preset and arch do not
        reference = weights(serial, ids[serial])
        for home in (on_ray, pooled):
            assert all(np.array_equal(a, b) for a, b in zip(reference, weights(home, ids[home]), strict=True)), (home, ticker)
        points = {home: json.loads(Workspace.at(home).forecast_file(ticker).read_text())["points"] for home in runs}
        assert points[on_ray] == points[serial] and points[pooled] == points[serial], ticker


@pytest.mark.slow
def test_a_failing_ticker_under_ray_is_reported_and_the_others_are_trained(tmp_path, local_ray):
    (home,), tickers = market_homes(tmp_path, ["home"], 2)
    result = cli(home, "train", *tickers, "600999.SH", *TINY, "--executor", "ray")
    assert result.exit_code == ExitCode.PARTIAL, result.output
    assert "600999.SH: no stored data" in result.stderr
    assert all(ModelRegistry(home).latest_id(t) for t in tickers)


@pytest.mark.slow
def test_run_on_ray_gives_the_serial_run_s_partial_exit_code_and_outputs(tmp_path, local_ray):
    summaries = {}
    for how in ([], ["--executor", "ray"]):
        home = tmp_path / ("ray" if how else "serial")
        home.mkdir()
        (home / "forecast.toml").write_text(f'tickers = ["600519.SH", "600036.SH"]\nsource = "sample"\n{TINY_TRAIN}')
        result = cli(home, "run", "--json", *how)
        assert result.exit_code == ExitCode.PARTIAL, result.output  # 600036.SH is not in the bundled sample
        summaries[bool(how)] = json.loads((home / "daily" / "latest" / "summary.json").read_text())
        assert (home / "daily" / "latest" / "600519.SH.png").is_file()
        assert (home / "daily" / "latest" / "600036.SH.failed.json").is_file()
    serial, on_ray = (summaries[False]["tickers"], summaries[True]["tickers"])
    assert [(t["ticker"], t["ok"], t["retrained"], t["exit_code"]) for t in on_ray] == \
        [(t["ticker"], t["ok"], t["retrained"], t["exit_code"]) for t in serial]
    assert on_ray[1]["error"] == serial[1]["error"]


def test_an_os_error_in_one_item_is_that_items_bad_input_not_an_internal_error(tmp_path):
    from forecast.workflow.executors import run_job

    def write(item: str) -> str:
        raise PermissionError(13, "Permission denied", str(tmp_path / f"{item}.json"))

    outcome = run_job(write, "600519.SH")
    assert not outcome.ok and outcome.exit_code == ExitCode.BAD_INPUT
    assert outcome.error == f"{tmp_path / '600519.SH.json'}: Permission denied"


def test_ray_saying_its_worker_died_is_exit_10_but_a_tasks_own_error_stays_a_bug():
    import pickle

    ray_errors = pytest.importorskip("ray.exceptions", reason="the ray extra is not installed: pip install 'forecast[ray]'")
    from forecast.workflow.executors import _lost

    assert _lost("a", ray_errors.WorkerCrashedError()).exit_code == ExitCode.WORKER_LOST
    own = ray_errors.RayTaskError("job", "traceback", pickle.PicklingError("cannot pickle")).as_instanceof_cause()
    assert _lost("a", own).exit_code == ExitCode.INTERNAL  # a value that would not travel: our bug, not the machine
