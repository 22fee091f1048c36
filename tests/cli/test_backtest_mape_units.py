"""Issue 16 item 9: backtest JSON gives MAPE as a fraction like every other share; the table still prints percent."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from forecast.cli import app

runner = CliRunner()


def test_backtest_json_gives_mape_as_a_fraction_like_every_other_share(sample_home):
    result = runner.invoke(app, ["backtest", "600519.SH", "--models", "drift", "--test-days", "40", "--horizon", "2",
                                 "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["models"]["drift"]
    price = 1800.0  # the sample's last 40 closes are all near it
    assert 0 < scores["mape"] < 0.1, "a fraction, not percent"
    assert scores["mape"] == pytest.approx(scores["mae"] / price, rel=0.15)
    assert all(0 <= step["mape"] < 0.1 for step in scores["by_step"])


def test_the_backtest_table_still_prints_mape_in_percent(sample_home):
    result = runner.invoke(app, ["backtest", "600519.SH", "--models", "drift", "--test-days", "40", "--horizon", "1"])
    assert result.exit_code == 0, result.output
    drift = next(line for line in result.stdout.splitlines() if line.strip().startswith("drift"))
    mape_cell = drift.split()[3]
    assert mape_cell.endswith("%") and 0.1 < float(mape_cell.rstrip("%")) < 10
    assert np.isfinite(float(mape_cell.rstrip("%")))
