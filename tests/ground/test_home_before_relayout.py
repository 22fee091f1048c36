"""A home written before the package was laid out in subpackages still works after it.

``fixtures/home_before_relayout/`` was written by the flat layout (commit 52060d4):
the bundled sample, a small GRU trained on it (its ``model.keras`` and card), its
stored forecast, and a naive backtest. No stored artefact names a module path
(models load with ``compile=False``; cards and results are JSON), so every
command reads it as it reads a home of today's layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES
from typer.testing import CliRunner

from forecast.cli import app

BEFORE = FIXTURES / "home_before_relayout"
TICKER = "600519.SH"
runner = CliRunner()


@pytest.fixture
def old_home(home: Path) -> Path:
    for part in BEFORE.iterdir():
        shutil.copytree(part, home / part.name)
    return home


def test_doctor_finds_an_old_home_healthy(old_home):
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"] == []


def test_the_old_model_is_listed_and_its_backtest_and_forecast_draw(old_home, tmp_path):
    [model_dir] = [p for p in (BEFORE / "models").iterdir() if p.name.startswith(TICKER)]
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert model_dir.name in json.dumps(listed)
    for kind in ("backtest", "forecast"):
        chart = tmp_path / f"{kind}.png"
        drawn = runner.invoke(app, ["plot", TICKER, "--kind", kind, "--out", str(chart)])
        assert drawn.exit_code == 0, drawn.output
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_old_model_loads_and_forecasts_what_it_forecast_before(old_home):
    stored = json.loads((BEFORE / "forecasts" / TICKER / "latest.json").read_text())
    result = runner.invoke(app, ["predict", TICKER, "--json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["model_id"] == stored["model_id"]
    assert [p["date"] for p in again["points"]] == [p["date"] for p in stored["points"]]
    assert [p["value"] for p in again["points"]] == pytest.approx([p["value"] for p in stored["points"]], rel=1e-6)
