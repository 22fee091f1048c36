"""Charts on disk: every kind as a 1200x700 PNG (or SVG), damaged or missing inputs, no TensorFlow, Chinese names."""

from __future__ import annotations

import json
import logging
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import tree_snapshot
from typer.testing import CliRunner

from forecast.cli import app
from forecast.errors import ExitCode

runner = CliRunner()
pytestmark = pytest.mark.slow  # real Keras fits and subprocesses: seconds each; all of them run in CI


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def charted_home(tmp_path_factory):
    """A home with data, a model, a forecast and a backtest, built once per module. Read it; never change it."""
    home = tmp_path_factory.mktemp("charts")
    env = {"FORECAST_HOME": str(home)}
    for args in (["fetch", "--source", "sample"],
                 ["train", "600519.SH", "--epochs", "1", "--units", "4", "--lookback", "10", "--quiet"],
                 ["predict", "600519.SH"],
                 ["backtest", "600519.SH", "--models", "naive,drift,linear", "--test-days", "40", "--horizon", "2"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, (args, result.output)
    before = tree_snapshot(home)
    yield home
    assert tree_snapshot(home) == before, "a test changed the shared home; give it a copy"


@pytest.fixture
def own_charted_home(charted_home, tmp_path):
    """A copy of ``charted_home`` for one test, which may change it (plot without --out writes under charts/)."""
    copy = tmp_path / "home"
    shutil.copytree(charted_home, copy)
    return copy


@pytest.mark.parametrize("kind", ["forecast", "backtest", "history", "training"])
def test_every_chart_kind_writes_a_1200x700_png(charted_home, kind, tmp_path):
    out = tmp_path / f"{kind}.png"
    result = runner.invoke(app, ["plot", "600519.SH", "--kind", kind, "--out", str(out), "--json"],
                           env={"FORECAST_HOME": str(charted_home)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["path"] == str(out)
    assert png_size(out) == (1200, 700)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind


@pytest.mark.parametrize("damage", ["drop model", "text in predicted"])
def test_a_damaged_backtest_csv_is_a_one_line_error_not_a_traceback(own_charted_home, tmp_path, damage):
    csv = own_charted_home / "backtests" / "600519.SH" / "latest.csv"
    frame = pd.read_csv(csv)
    if damage == "drop model":
        frame = frame.drop(columns=["model"])
    else:
        frame["predicted"] = "x"
    frame.to_csv(csv, index=False)
    result = runner.invoke(app, ["plot", "600519.SH", "--kind", "backtest", "--out", str(tmp_path / "b.png")],
                           env={"FORECAST_HOME": str(own_charted_home)})
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "stored backtest" in result.output and "run forecast backtest again" in result.output


def test_svg_output_and_missing_inputs(charted_home, tmp_path):
    env = {"FORECAST_HOME": str(charted_home)}
    svg = tmp_path / "h.svg"
    assert runner.invoke(app, ["plot", "600519.SH", "--kind", "history", "--out", str(svg)], env=env).exit_code == 0
    assert svg.read_text().lstrip().startswith("<?xml")
    missing = runner.invoke(app, ["plot", "600036.SH", "--kind", "forecast"], env=env)
    assert missing.exit_code == ExitCode.NOT_FOUND and missing.stderr.startswith("Error: ")


def test_plot_does_not_import_tensorflow(own_charted_home):
    probe = (
        "import sys\n"
        "from forecast.cli import app\n"
        "try:\n    app(['plot', '600519.SH', '--kind', 'forecast'])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "print('HEAVY', [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env={"FORECAST_HOME": str(own_charted_home), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_chinese_names_only_with_a_cjk_font_and_no_glyph_warnings(charted_home, tmp_path, monkeypatch, recwarn, caplog):
    from forecast.outputs import figures, plotting

    monkeypatch.setattr(figures, "cjk_font", lambda: None)
    assert figures.display_name("600519.SH", "贵州茅台") == "600519.SH"
    assert figures.display_name("AAPL", "Apple") == "Apple AAPL"  # Latin letters need no CJK font
    with pytest.MonkeyPatch.context() as m:
        m.setattr(figures, "cjk_font", lambda: "Some CJK Font")
        assert figures.display_name("600519.SH", "贵州茅台") == "贵州茅台 600519.SH"
    caplog.set_level(logging.WARNING, logger="matplotlib")  # restored after the test
    info = plotting.render(charted_home, "600519.SH", "forecast", out=tmp_path / "plain.png", name="贵州茅台")
    assert info.title.startswith("600519.SH:")
    assert png_size(tmp_path / "plain.png") == (1200, 700)
    assert not [w for w in recwarn if "glyph" in str(w.message).lower()]
