"""The daily report on the command line: ``report``, one self-contained HTML page (no TensorFlow, no forecasting)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.cli._options import JsonFlag, emit_json, out_option, resolve_targets, universe_option
from forecast.cli._state import state


def report(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers to report (default: forecast.toml's tickers, else every stored forecast), or --universe NAME.")] = None,
    universe: Annotated[Optional[str], universe_option("Report every member of a universe today, with its ranking and cross-sectional backtest.")] = None,
    out: Annotated[Optional[Path], out_option("HTML file to write (default: <home>/report.html).")] = None,
    colors: Annotated[Optional[str], typer.Option("--colors", metavar="cn|us", help="Rising prices red (cn) or green (us) for every ticker; default: the colors setting of forecast.toml, else cn for China tickers and us for others.")] = None,
    days: Annotated[int, typer.Option(min=5, help="Trading days of candlesticks per chart.")] = 120,
    as_json: JsonFlag = False,
) -> None:
    """Write one self-contained HTML page of the stored forecasts, backtests and failures (opens with no network)."""
    from forecast.atomic import is_stdout
    from forecast.workflow.housekeeping import write_report_page

    targets = resolve_targets(tickers, universe, required=False)
    info = write_report_page(state.workspace(), state.app_config(None), targets.tickers, targets.universe, out, colors, days)
    if is_stdout(out):
        return  # the page itself went to stdout
    if as_json:
        emit_json({"path": str(info.path), "tickers": info.tickers, "failed": info.failed, "bytes": info.bytes,
                   "seconds": round(info.seconds, 3)})
    else:
        typer.echo(str(info.path))
