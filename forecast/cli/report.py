"""The daily report on the command line: ``report``, one self-contained HTML page (no TensorFlow, no forecasting)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import ColorConvention, PlotlySource
from forecast.cli._options import JsonFlag, emit_json, out_option, resolve_targets, universe_option
from forecast.cli._state import state


def report(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers to report (default: forecast.toml's tickers, else every stored forecast), or --universe NAME.")] = None,
    universe: Annotated[Optional[str], universe_option("Report every member of a universe today, with its ranking and cross-sectional backtest.")] = None,
    out: Annotated[Optional[Path], out_option("HTML file to write (default: <home>/report.html).")] = None,
    colors: Annotated[Optional[ColorConvention], typer.Option("--colors", help="Rising prices red (cn) or green (us) on the whole page; default: the colors setting of forecast.toml, else the convention of most of the page's tickers (cn for China tickers, us for others; cn on a tie).")] = None,
    days: Annotated[int, typer.Option(min=5, help="Trading days of candlesticks per chart (each opens on the last few times the horizon).")] = 120,
    plotly: Annotated[PlotlySource, typer.Option("--plotly", help="inline: plotly.js inside the page, which opens offline (4.8 MB and up); cdn: a page of about 15 kB per ticker that loads plotly.js from cdn.plot.ly when opened, pinned to the installed version by its hash.")] = PlotlySource.INLINE,
    as_json: JsonFlag = False,
) -> None:
    """Write one HTML page of the stored forecasts, backtests and failures (opens with no network unless --plotly cdn)."""
    from forecast.atomic import is_stdout
    from forecast.workflow.housekeeping import write_report_page

    targets = resolve_targets(tickers, universe, required=False)
    info = write_report_page(state.workspace(), state.app_config(None), targets.tickers, targets.universe, out,
                             colors.value if colors else None, days,
                             plotly.value)
    if is_stdout(out):
        return  # the page itself went to stdout
    if as_json:
        emit_json({"path": str(info.path), "tickers": info.tickers, "failed": info.failed, "bytes": info.bytes,
                   "plotly": info.plotly, "seconds": round(info.seconds, 3)})
    else:
        typer.echo(f"wrote {info.path} ({info.describe()})")
