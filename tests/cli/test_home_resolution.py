"""A command resolves its home once and passes the workspace on: every part of a `run` works in one home.

A home given as a path is resolved (``Path.resolve``, links followed) by
``workspace.resolve_home``; the tests count those calls over a whole command.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import forecast.workspace as workspace_module
from forecast.cli import app

runner = CliRunner()
TINY_DAILY = 'tickers = ["600519.SH"]\nsource = "sample"\nstale_after_days = 100000\n' \
             "[train]\nepochs = 1\nunits = [4]\nlookback = 10\nhorizon = 3\n"


@pytest.fixture
def resolutions(monkeypatch) -> list[object]:
    """Every home ``resolve_home`` is asked to resolve during the test, in order."""
    asked: list[object] = []
    resolve = workspace_module.resolve_home

    def counting(home=None):
        asked.append(home)
        return resolve(home)

    monkeypatch.setattr(workspace_module, "resolve_home", counting)
    return asked


@pytest.mark.slow  # run fetches the sample and trains a tiny network: about 10 s
def test_the_daily_run_resolves_its_home_once(home, resolutions):
    (home / "forecast.toml").write_text(TINY_DAILY)
    result = runner.invoke(app, ["run", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (home / "daily" / "latest").is_dir()  # the run did its whole walk: fetch, train, predict, publish
    assert len(resolutions) == 1, resolutions


def test_plot_resolves_its_home_once(home, resolutions):
    assert runner.invoke(app, ["fetch", "600519.SH", "--source", "sample"]).exit_code == 0
    resolutions.clear()
    result = runner.invoke(app, ["plot", "600519.SH", "--kind", "history", "--out", str(home / "h.png")])
    assert result.exit_code == 0, result.output
    assert len(resolutions) == 1, resolutions
