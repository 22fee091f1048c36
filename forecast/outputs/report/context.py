"""What the daily report shows, as typed values read from stored artefacts; no HTML here.

``load_context`` reads each ticker's part (``ticker.load_ticker``: its forecast
of record, backtest and recent bars, or why it has none), the cached company
names, the failure markers the daily job left, the page's one colour
convention (``colors``) and, for a universe, its ranking (``ranking``) and its
cross-sectional and portfolio backtests. It never forecasts.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecast.data.store import MarketStore
from forecast.data.tickers import parse_ticker
from forecast.errors import ForecastError
from forecast.models.backtest_records import load_cross_backtest, load_cross_curves
from forecast.outputs.report.colors import PageColors, check_colors, page_colors
from forecast.outputs.report.ranking import RankRow, ranking, universe_ranking
from forecast.outputs.report.ticker import TickerReport, load_ticker, read_failures
from forecast.workspace import Workspace


@dataclass
class ReportContext:
    """Everything the page shows."""

    title: str
    generated_at: str  # ISO time, UTC
    today: dt.date
    tickers: list[TickerReport]
    universe: str | None = None
    cross_section: dict | None = None  # backtests/@<universe>/latest.json, as stored
    cumulative_ic: pd.DataFrame | None = None  # date x model: the running sum of the daily Rank IC
    portfolio: dict | None = None  # backtests/@<universe>/portfolio.json, as stored
    portfolio_daily: pd.DataFrame | None = None  # its daily NAV per model, the benchmark, the index
    ranking: list[RankRow] = field(default_factory=list)  # the universe's ranking, as ``rank`` ranks it (``universe_ranking``)
    ranked_by: str | None = None  # the universe model that made it; None: the forecasts of record, each by its own model
    colors: PageColors = field(default_factory=lambda: PageColors("cn", ""))  # the page's one convention (``load_context`` sets it) and its legend line

    @property
    def forecasts(self) -> list[TickerReport]:
        return [t for t in self.tickers if not t.failed]

    @property
    def failures(self) -> list[TickerReport]:
        return [t for t in self.tickers if t.failed]

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.forecasts:
            if t.verdict is not None:
                counts[t.verdict.key] = counts.get(t.verdict.key, 0) + 1
        return counts


def load_cross_section(workspace: Workspace, universe: str) -> tuple[dict | None, pd.DataFrame | None]:
    """Return the universe's stored cross-sectional backtest (its record, as a dict) and its cumulative Rank IC by model, or Nones."""
    try:
        record = load_cross_backtest(workspace, universe)
    except ForecastError:  # damaged: the page still opens, without this section
        return None, None
    if record is None:
        return None, None
    return record.to_dict(), load_cross_curves(workspace, universe)


def load_portfolio_section(workspace: Workspace, universe: str) -> tuple[dict | None, pd.DataFrame | None]:
    """The universe's stored portfolio backtest (record, daily frame), or Nones: a damaged one leaves the section out."""
    from forecast.evaluation.portfolio_records import load_portfolio

    try:
        stored = load_portfolio(workspace, universe)
    except ForecastError:
        return None, None
    return stored if stored is not None else (None, None)


def _normal(text: str) -> str:
    """The ticker as stored ("600519" -> "600519.SH"); text that is no ticker stays as it is and fails on its own row."""
    try:
        return str(parse_ticker(text))
    except ForecastError:
        return str(text)


def load_context(home: Workspace | Path | str | None, tickers: list[str], *, names: dict[str, str] | None = None,
                 failures: dict[str, str] | None = None, failures_dir: Path | None = None, colors: str | None = None,
                 universe: str | None = None, days: int = 120, today: dt.date | None = None,
                 title: str | None = None) -> ReportContext:
    """Read everything the page shows for ``tickers``, in their order (duplicates merged).

    ``failures``: {ticker: error} from the run that calls this (they win over
    any stored forecast); otherwise the ``<TICKER>.failed.json`` markers in
    ``failures_dir`` count where they are newer than the stored forecast.
    """
    from forecast.data.universe_cache import cached_names

    workspace = Workspace.at(home)
    tickers = list(dict.fromkeys(map(_normal, tickers)))
    page = page_colors(tickers, check_colors(colors))  # one convention for the page: each ticker is drawn in it
    names = cached_names(workspace) if names is None else names
    today = today or dt.date.today()
    markers = read_failures(failures_dir) if failures_dir is not None else {}
    for ticker, error in (failures or {}).items():
        markers[ticker] = (error, math.inf)
    store = MarketStore(workspace)
    cross, curves = load_cross_section(workspace, universe) if universe else (None, None)
    reports = [load_ticker(workspace, store, t, names.get(t, ""), page.convention, days, markers.get(t), cross)
               for t in tickers]
    portfolio, daily = load_portfolio_section(workspace, universe) if universe else (None, None)
    ranked, ranked_by = universe_ranking(workspace, universe, reports, cross) if universe else ([], None)
    if universe and ranked_by is None:
        ranked = ranking([t for t in reports if not t.failed])
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return ReportContext(title or (f"Forecast report: {universe}" if universe else "Forecast report"), now, today, reports,
                         universe, cross, curves, portfolio, daily, ranked, ranked_by, page)
