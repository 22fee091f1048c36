"""Outputs drawn from stored results: ``plot`` (PNG or SVG charts; never imports TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import ChartKind
from forecast.cli._options import JsonFlag, emit_json, fail, model_option, out_option
from forecast.cli._state import state
from forecast.errors import ExitCode


def plot(
    ticker: Annotated[Optional[str], typer.Argument(help="Ticker to chart (or --universe NAME with --kind portfolio).")] = None,
    universe: Annotated[Optional[str], typer.Option(help="--kind portfolio: the universe whose stored portfolio backtest is drawn.")] = None,
    kind: Annotated[ChartKind, typer.Option(help="forecast, backtest, history, training, calibration, or portfolio (with --universe).")] = ChartKind.FORECAST,
    model: Annotated[Optional[str], model_option("Model id (training), or model name in the backtest.")] = None,
    days: Annotated[Optional[int], typer.Option(min=5, help="Trading days of history shown (default: 60 for forecast, 120 otherwise).")] = None,
    out: Annotated[Optional[Path], out_option("Chart file, .png or .svg (default: <home>/charts/<TICKER>-<kind>.png).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Draw a chart from stored data, forecasts, backtests or training history (no TensorFlow)."""
    from forecast.atomic import is_stdout
    from forecast.outputs.plotting import render

    if (kind is ChartKind.PORTFOLIO) != (universe is not None) or (universe is not None and ticker is not None):
        fail("--kind portfolio draws a universe's portfolio backtest: forecast plot --universe NAME --kind portfolio; "
             "every other kind draws one ticker", ExitCode.USAGE)
    if ticker is None and universe is None:
        fail("name a ticker to chart (or --universe NAME --kind portfolio)", ExitCode.USAGE)
    info = render(state.workspace(), universe or ticker or "", kind.value, model, days or (60 if kind is ChartKind.FORECAST else 120), out,
                  named_by_user=True)
    if is_stdout(out):
        return  # the chart itself went to stdout
    if as_json:
        emit_json({"path": str(info.path), "kind": info.kind, "width": info.width, "height": info.height})
    else:
        typer.echo(str(info.path))
