"""Issue 27: the recalibrated (adaptive) bands are shown where the backtest's output is read: its per-origin CSV has
their columns, and the calibration chart draws their coverage beside the fixed bands'. Old backtests still chart."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES
from typer.testing import CliRunner

from forecast.cli import app
from forecast.evaluation.backtest import save_backtest, walk_forward
from forecast.maths.adaptive_state import DEFAULT_METHOD
from forecast.maths.intervals import band_columns
from forecast.models.backtest_records import adaptive_band_columns, load_backtest, load_backtest_forecasts
from tests.outputs.test_backtest_and_forecast_charts import _captured_figure, _overlaps
from tests.workflow.test_adaptive_recalibration import doubling_frame

runner = CliRunner()
OLD_HOME = FIXTURES / "home_before_relayout"  # a backtest stored before the adaptive bands
MODELS, HORIZON = ("naive", "drift"), 3


@pytest.fixture
def stored(home):
    """A walk-forward backtest of a series whose volatility doubles, stored as ``backtest`` stores it; and its frame."""
    frame = doubling_frame(n=500, after=150, seed=4)
    save_backtest(home, walk_forward(frame, "VOL", models=MODELS, test_days=120, refit_every=40, horizon=HORIZON))
    return home, frame


def test_the_backtest_csv_holds_the_adaptive_bands_the_record_scored(stored):
    home, frame = stored
    record, rows = load_backtest(home, "VOL"), load_backtest_forecasts(home, "VOL")
    realised = frame.set_index(frame["date"].dt.date.astype(str))["close"]  # the prices, from the series itself
    levels = record.settings["levels"]
    for level in levels:
        assert adaptive_band_columns(level) == tuple("adaptive_" + column for column in band_columns(level))
        assert set(adaptive_band_columns(level)) <= set(rows.columns)
    for model in MODELS:
        for step in record.models[model]["by_step"]:
            these = rows[(rows["model"] == model) & (rows["step"] == step["step"]) & rows["target_date"].notna()]
            actual = realised.loc[these["target_date"]].to_numpy()
            assert len(actual) == step["n"] > 0
            for level in map(str, levels):
                lower, upper = (these[c].to_numpy(dtype=float) for c in adaptive_band_columns(level))
                inside = np.mean((actual >= lower) & (actual <= upper))  # coverage: the share of outcomes in the band
                assert inside == pytest.approx(step["adaptive"]["coverage"][level]), (model, step["step"], level)
                fixed_lower, fixed_upper = (these[c].to_numpy(dtype=float) for c in band_columns(level))
                assert np.mean((actual >= fixed_lower) & (actual <= fixed_upper)) == pytest.approx(step["coverage"][level])
                assert not np.allclose(lower, fixed_lower)  # the recalibrated band, not a copy of the fixed one


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def test_the_calibration_chart_draws_the_adaptive_coverage_beside_the_fixed_and_keeps_its_legend_off_the_points(
        stored, monkeypatch, tmp_path):
    from forecast.outputs.charts import calibration_chart

    home, _ = stored
    record = load_backtest(home, "VOL")
    seen = _captured_figure(monkeypatch)
    calibration_chart(record, "VOL", tmp_path / "c.png")
    axes = seen["fig"].axes
    assert len(axes) == len(record.settings["levels"])
    for ax, level in zip(axes, map(str, record.settings["levels"])):
        texts = _legend_texts(ax)
        for model in MODELS:
            assert model in texts and f"{model} adaptive ({DEFAULT_METHOD})" in texts
            [line] = [line for line in ax.get_lines() if line.get_label() == f"{model} adaptive ({DEFAULT_METHOD})"]
            drawn = list(line.get_ydata())
            assert drawn == pytest.approx([s["adaptive"]["coverage"][level] for s in record.models[model]["by_step"]])
        assert not _overlaps(ax.get_legend().get_window_extent(), ax.get_window_extent()), "the legend sits beside the panel"


def test_a_backtest_stored_before_the_adaptive_bands_still_loads_and_charts(home, monkeypatch, tmp_path):
    for part in OLD_HOME.iterdir():
        shutil.copytree(part, home / part.name)
    record = load_backtest(home, "600519.SH")
    assert all("adaptive" not in step for score in record.models.values() for step in score["by_step"])
    rows = load_backtest_forecasts(home, "600519.SH")
    assert not [c for c in rows.columns if c.startswith("adaptive_")]
    drawn = runner.invoke(app, ["plot", "600519.SH", "--kind", "calibration", "--out", str(tmp_path / "old.png")])
    assert drawn.exit_code == 0, drawn.output
    assert (tmp_path / "old.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert runner.invoke(app, ["plot", "600519.SH", "--kind", "backtest", "--out", str(tmp_path / "b.png")]).exit_code == 0
    from forecast.outputs.charts import calibration_chart

    seen = _captured_figure(monkeypatch)
    calibration_chart(record, "600519.SH", tmp_path / "c.png")
    texts = [text for ax in seen["fig"].axes for text in _legend_texts(ax)]
    assert "naive" in texts and not [t for t in texts if "adaptive" in t]  # the fixed bands only: nothing made up


def test_the_cli_backtest_writes_the_adaptive_columns(home):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    done = runner.invoke(app, ["backtest", "600519.SH", "--models", "drift", "--test-days", "30", "--horizon", "2"])
    assert done.exit_code == 0, done.output
    header = pd.read_csv(home / "backtests" / "600519.SH" / "latest.csv", nrows=1).columns
    record = load_backtest(home, "600519.SH")
    assert all(column in header for level in record.settings["levels"] for column in adaptive_band_columns(level))
