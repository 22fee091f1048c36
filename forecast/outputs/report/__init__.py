"""The daily report: one self-contained HTML page of stored forecasts, backtests and failures.

``write_report`` reads what ``predict``, ``backtest`` and ``run`` stored (it
never forecasts and never imports TensorFlow) and writes one file. By default
it opens from an email attachment or a file share with no network: plotly.js,
the figures, the style and the script are all inside it (4.8 MB of it is
plotly.js). ``plotly="cdn"`` leaves plotly.js out (about 15 kB per ticker is
left) and the page loads it from plotly's CDN when opened (``render``).

- ``context``: everything the page shows, read from the stored artefacts, made of
  ``ticker`` (one ticker's forecast, backtest and bars, or its failure),
  ``verdicts`` (each model against naive), ``colors`` (the page's one colour
  convention) and ``ranking`` (a universe's);
- ``summary``: the summary table's cells;
- ``figures``: the plotly figures, as plain dicts;
- ``render``: the Jinja2 templates (autoescape on) around them.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from forecast.choices import PlotlySource
from forecast.workspace import Workspace

DEFAULT_REPORT_NAME = "report.html"  # `forecast report` writes <home>/report.html unless told --out


@dataclass(frozen=True)
class ReportInfo:
    path: Path
    tickers: int
    failed: int
    bytes: int
    seconds: float  # reading the stored results and rendering the page, not forecasting
    plotly: str = PlotlySource.INLINE.value  # inline | cdn: where the page gets plotly.js

    def describe(self) -> str:
        """The page's size and what that means for opening it: "4.9 MB, plotly inlined for offline viewing"."""
        how = ("plotly inlined for offline viewing" if self.plotly == PlotlySource.INLINE
               else "loads plotly.js from cdn.plot.ly when opened")
        return f"{page_size(self.bytes)}, {how}"


def page_size(size: int) -> str:
    """A page's size as mail clients and their limits count it: decimal kB up to a megabyte, then MB to one decimal."""
    return f"{size / 1e6:.1f} MB" if size >= 1_000_000 else f"{max(1, round(size / 1e3))} kB"


def default_report_path(workspace: Workspace) -> Path:
    return workspace.root / DEFAULT_REPORT_NAME


def build_report(workspace: Workspace | Path | str | None, tickers: list[str], plotly: str = PlotlySource.INLINE.value,
                 **options) -> str:
    """Return the page for ``tickers`` as an HTML string; ``options`` as ``forecast.outputs.report.context.load_context``."""
    from forecast.outputs.report.context import load_context
    from forecast.outputs.report.render import render_page

    return render_page(load_context(Workspace.at(workspace), tickers, **options), plotly)


def write_report(workspace: Workspace | Path | str | None, tickers: list[str], out_path: Path | str | None = None, *,
                 failures: dict[str, str] | None = None, failures_dir: Path | None = None, colors: str | None = None,
                 universe: str | None = None, names: dict[str, str] | None = None, days: int = 120,
                 today: dt.date | None = None, title: str | None = None, named_by_user: bool = False,
                 plotly: str = PlotlySource.INLINE.value) -> ReportInfo:
    """Write the report of ``tickers`` to ``out_path`` (default ``<home>/report.html``) atomically; return what was written.

    ``failures``: {ticker: error} of the run that calls this; without it, the
    ``<TICKER>.failed.json`` markers in ``failures_dir`` that are newer than the
    ticker's stored forecast make failure rows. ``colors``: "cn" or "us" for
    the page; None: the convention of most of its tickers (``colors.page_colors``).
    ``universe``: adds the ranking and the universe's cross-sectional backtest.
    ``days``: trading days of candlesticks per chart. ``named_by_user``:
    ``out_path`` is report's ``--out``, written by ``atomic.write_user_output``
    (``-`` is stdout; a link is followed; a FIFO or a device is written in place).
    ``plotly``: "inline" (the default: the page opens offline) or "cdn" (a small
    page that loads plotly.js from its CDN); BadInputError for anything else.
    """
    from forecast.atomic import atomic_write_text, write_user_output
    from forecast.outputs.report.context import load_context
    from forecast.outputs.report.render import render_page
    from forecast.redact import redact

    source = PlotlySource.parse(plotly, "plotly source")  # before any reading: a typo fails at once
    started = time.perf_counter()
    space = Workspace.at(workspace)
    context = load_context(space, tickers, names=names, failures=failures, failures_dir=failures_dir, colors=colors,
                           universe=universe, days=days, today=today, title=title)
    page = redact(render_page(context, source))  # an error message quoting a server's reply must not carry the token
    path = Path(out_path) if out_path else default_report_path(space)
    if out_path and named_by_user:
        write_user_output(path, page.encode("utf-8"))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, page)
    return ReportInfo(path, len(context.tickers), len(context.failures), len(page.encode("utf-8")), time.perf_counter() - started,
                      source.value)
