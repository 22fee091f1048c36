"""`run` deletes only what it wrote, follows a linked folder of the home only to write, and says when its outdir leaves the home.

Most runs here forecast tickers the bundled sample does not have: they fail at
once (no TensorFlow, no training) and still publish a summary, a report page and
a ``<TICKER>.failed.json`` marker, which is all the publishing code needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.errors import ExitCode
from forecast.workspace import Workspace

runner = CliRunner()
FAILING = "600036.SH"  # not in the bundled sample: its day fails fast, before any model
OTHER_FAILING = "000858.SZ"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A home one level down, so ``..`` of it is this test's own folder, not one shared with other tests."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("FORECAST_HOME", str(root))
    monkeypatch.delenv("TUSHARE_TOKEN", raising=False)
    monkeypatch.delenv("TS_TOKEN", raising=False)
    return root


@pytest.fixture
def linked_latest(home, tmp_path) -> Path:
    """``daily/latest`` is a link to a folder on another "disk" that already holds the user's keep.txt."""
    disk = tmp_path / "disk" / "published"
    disk.mkdir(parents=True)
    (disk / "keep.txt").write_text("the user's own notes\n")
    (home / "daily").mkdir()
    (home / "daily" / "latest").symlink_to(disk, target_is_directory=True)
    return disk


def configure(home: Path, extra: str = "") -> None:
    (home / "forecast.toml").write_text(f'tickers = ["{FAILING}"]\nsource = "sample"\n{extra}')


def run(*args: str):
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == ExitCode.ALL_FAILED, (result.output, result.stderr)
    return result


def manifest(folder: Path) -> dict:
    return json.loads(Workspace.manifest_file(folder).read_text())


def test_a_linked_latest_keeps_the_users_file_and_takes_the_days_files(home, linked_latest):
    configure(home)
    run("--json")
    assert (linked_latest / "keep.txt").read_text() == "the user's own notes\n"
    assert (linked_latest / "summary.json").is_file() and (linked_latest / f"{FAILING}.failed.json").is_file()
    assert (home / "daily" / "latest").is_symlink()  # followed to write, never replaced
    assert not [p.name for p in linked_latest.iterdir() if p.name.endswith((".copy", ".tmp"))]
    assert set(manifest(linked_latest)["files"]) == {"summary.json", "index.html", f"{FAILING}.failed.json"}


def test_only_files_the_last_run_wrote_are_removed_from_latest(home, linked_latest):
    configure(home)
    run()
    stale = linked_latest / f"{FAILING}.failed.json"
    assert stale.is_file()
    (linked_latest / "mine.csv").write_text("a file the user put in the published folder\n")
    (linked_latest / f"{OTHER_FAILING}.csv").write_text("named like an output, but the user's\n")
    run(OTHER_FAILING)  # today's run does not name FAILING: its marker from the last run is stale
    assert not stale.exists()  # written by the last run, so removed
    assert (linked_latest / f"{OTHER_FAILING}.failed.json").is_file()
    for name in ("keep.txt", "mine.csv", f"{OTHER_FAILING}.csv"):
        assert (linked_latest / name).is_file(), name
    assert set(manifest(linked_latest)["files"]) == {"summary.json", "index.html", f"{OTHER_FAILING}.failed.json"}


def test_a_file_the_last_run_wrote_but_the_user_changed_is_kept(home):
    configure(home)
    run()
    latest = home / "daily" / "latest"
    marker = latest / f"{FAILING}.failed.json"
    marker.write_text('{"edited": "by the user"}\n')
    run(OTHER_FAILING)
    assert marker.read_text() == '{"edited": "by the user"}\n'


def test_without_a_manifest_nothing_found_in_latest_is_deleted(home):
    """A folder whose manifest is missing or unreadable (an older version, a damaged file): nothing is removed."""
    configure(home)
    latest = home / "daily" / "latest"
    latest.mkdir(parents=True)
    (latest / f"{OTHER_FAILING}.csv").write_text("who knows who wrote this\n")
    Workspace.manifest_file(latest).write_text("{not json")
    run()
    assert (latest / f"{OTHER_FAILING}.csv").is_file()
    assert set(manifest(latest)["files"]) == {"summary.json", "index.html", f"{FAILING}.failed.json"}


def test_a_crafted_manifest_removes_nothing_outside_its_folder(home, tmp_path):
    configure(home)
    run()
    latest = home / "daily" / "latest"
    victim = tmp_path / "victim.txt"
    victim.write_text("outside the home\n")
    (latest / "link.txt").symlink_to(victim)
    (home / "daily" / "other.txt").write_text("beside latest/\n")
    crafted = manifest(latest)
    stat = victim.stat()
    for name in ("link.txt", "../other.txt", str(victim), ".hidden"):
        crafted["files"][name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    Workspace.manifest_file(latest).write_text(json.dumps(crafted))
    run(OTHER_FAILING)
    assert victim.read_text() == "outside the home\n" and (latest / "link.txt").is_symlink()
    assert (home / "daily" / "other.txt").is_file()


def test_another_homes_manifest_removes_nothing(home, tmp_path, linked_latest):
    """Two homes publishing into one linked folder: each removes only what it wrote itself."""
    configure(home)
    other = tmp_path / "other-home"
    (other / "daily").mkdir(parents=True)
    (other / "daily" / "latest").symlink_to(linked_latest, target_is_directory=True)
    configure(other)
    assert runner.invoke(app, ["--home", str(other), "run", FAILING]).exit_code == ExitCode.ALL_FAILED
    run(OTHER_FAILING)  # this home: the manifest there is the other home's
    assert (linked_latest / f"{FAILING}.failed.json").is_file()


def test_the_day_folder_keeps_a_file_the_run_did_not_write(home):
    """A failed ticker's outputs of an earlier run today are removed from the day's folder; a user's same-named file is not."""
    configure(home)
    first = json.loads(run("--json").stdout)
    day = home / "daily" / first["run_date"]
    users = day / f"{FAILING}.csv"
    users.write_text("the user's own file\n")
    run()
    assert users.read_text() == "the user's own file\n"


def test_a_failed_tickers_outputs_from_an_earlier_run_today_are_removed(home, monkeypatch):
    """The day's folder: what an earlier run today wrote for a ticker that fails now leaves it, as before."""
    from forecast.atomic import atomic_write_text
    from forecast.workflow import pipeline
    from forecast.workflow.settings import AppConfig

    fail = {"now": False}

    def fake_day(plan, outcome, models, fetch_error=None):
        if fail["now"]:
            raise ValueError("failed this time")
        path = plan.day_dir / f"{outcome.ticker}.csv"
        atomic_write_text(path, "date,predicted\n")
        outcome.ok, outcome.outputs["csv"] = True, str(path)
        return outcome

    monkeypatch.setattr(pipeline, "daily_ticker", fake_day)
    monkeypatch.setattr(pipeline, "_fetch", lambda store, config, tickers: ({}, {}))
    config = AppConfig(tickers=("600519.SH",), source="sample")
    summary = pipeline.run_daily(home, config)
    day, latest = home / "daily" / summary.run_date, home / "daily" / "latest"
    assert (day / "600519.SH.csv").is_file() and (latest / "600519.SH.csv").is_file()
    fail["now"] = True
    pipeline.run_daily(home, config)
    assert not (day / "600519.SH.csv").exists() and not (latest / "600519.SH.csv").exists()
    assert (day / "600519.SH.failed.json").is_file() and (latest / "600519.SH.failed.json").is_file()


@pytest.mark.parametrize("where", ["../escape", "absolute"])
def test_an_outdir_outside_the_home_is_said_in_the_log_and_the_summary(home, tmp_path, where):
    escape = (tmp_path / "escape").resolve()
    configure(home, f'outdir = "{escape if where == "absolute" else where}"\n')
    log = tmp_path / "run.log"
    result = run("--log-file", str(log))
    summary = json.loads((escape / "latest" / "summary.json").read_text())
    assert summary["outdir_outside_home"] is True and summary["outdir"] == str(escape)
    for text in (log.read_text(), result.stderr):  # every run's log, and what a person at a terminal sees
        assert "outside the home" in text and str(escape) in text
    as_json = json.loads(run("--json").stdout)
    assert as_json["outdir_outside_home"] is True and as_json["outdir"] == str(escape)
    assert not (home / "daily").exists()


def test_an_outdir_inside_the_home_is_not_flagged(home, tmp_path):
    configure(home)
    log = tmp_path / "run.log"
    result = run("--log-file", str(log))
    summary = json.loads((home / "daily" / "latest" / "summary.json").read_text())
    assert summary["outdir_outside_home"] is False and summary["outdir"] == str(home / "daily")
    assert "outside the home" not in log.read_text() + result.stderr


def test_a_linked_daily_folder_is_said_to_lead_out_of_the_home(home, tmp_path):
    disk = tmp_path / "bigdisk"
    disk.mkdir()
    (home / "daily").symlink_to(disk, target_is_directory=True)
    configure(home)
    result = run()
    summary = json.loads((disk / "latest" / "summary.json").read_text())
    assert summary["outdir_outside_home"] is True and summary["outdir"] == str(disk.resolve())
    assert "outside the home" in result.stderr and "link" in result.stderr


@pytest.mark.parametrize("outdir", ["models", "data/bars", "models/latest", "./charts/../forecasts"])
def test_an_outdir_among_the_homes_own_folders_is_refused(home, outdir):
    pointer = home / "models" / "latest" / "600519.SH"
    pointer.parent.mkdir(parents=True)
    pointer.write_text("600519.SH-default-gru-x\n")
    configure(home, f'outdir = "{outdir}"\n')
    result = runner.invoke(app, ["run"])
    assert result.exit_code == ExitCode.USAGE and "outdir" in result.stderr, (result.output, result.stderr)
    assert pointer.read_text() == "600519.SH-default-gru-x\n"
    assert sorted(p.name for p in pointer.parent.iterdir()) == ["600519.SH"]


def test_linked_folders_lists_every_link_to_a_folder_in_the_home(home, tmp_path, linked_latest):
    charts = tmp_path / "charts-disk"
    charts.mkdir()
    (home / "charts").symlink_to(charts, target_is_directory=True)
    (home / "data").mkdir()
    (home / "data" / "file-link").symlink_to(home / "forecast.toml")  # a link to a file: not a folder
    (home / "dangling").symlink_to(tmp_path / "gone", target_is_directory=True)
    found = Workspace.at(home).linked_folders()
    assert found == sorted([(home / "charts", charts.resolve()), (home / "daily" / "latest", linked_latest.resolve())])


@pytest.mark.slow
def test_a_real_run_through_a_linked_latest_keeps_the_users_file(home, linked_latest):
    """The whole day (fetch, a tiny train, predict, chart) through the link: TensorFlow, a few seconds."""
    (home / "forecast.toml").write_text('tickers = ["600519.SH"]\nsource = "sample"\n'
                                        "[train]\nepochs = 1\nunits = [4]\nlookback = 10\nhorizon = 3\n")
    result = runner.invoke(app, ["run", "--json"])
    assert result.exit_code == 0, (result.output, result.stderr)
    names = {"600519.SH.csv", "600519.SH.json", "600519.SH.png", "summary.json", "index.html"}
    assert names <= {p.name for p in linked_latest.iterdir()}
    assert (linked_latest / "keep.txt").read_text() == "the user's own notes\n"
    assert set(manifest(linked_latest)["files"]) == names
    assert os.path.islink(home / "daily" / "latest")


def test_a_link_at_a_temporary_copy_is_not_written_through(home, tmp_path):
    configure(home)
    latest = home / "daily" / "latest"
    latest.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("outside the home\n")
    (latest / ".summary.json.copy").symlink_to(victim)
    result = runner.invoke(app, ["run"])
    assert result.exit_code == ExitCode.BAD_INPUT and "is a link" in result.stderr, (result.output, result.stderr)
    assert victim.read_text() == "outside the home\n"
