"""One ticker's part of the report, read from what ``predict`` and ``backtest`` stored, or the reason it has none.

``load_ticker`` reads the ticker's forecast of record (made by the model in use
for it: its own file or a global model's batch, ``results.stored_forecast``;
forecasts by other models, kept apart, are never shown as a ticker's), its
backtest where one exists and its recent bars. It never forecasts: a ticker
with nothing stored, or whose failure marker is newer than its forecast,
becomes a failure row that says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecast.data.store import MarketStore
from forecast.data.tickers import parse_ticker
from forecast.errors import BadInputError, ForecastError
from forecast.models.backtest_records import BacktestRecord, load_backtest
from forecast.models.results import ForecastResult, forecast_time, stored_forecast
from forecast.outputs.report.colors import colors_for
from forecast.outputs.report.verdicts import Verdict, verdict_for
from forecast.redact import redact
from forecast.workspace import Workspace

FAILED_MARKER = ".failed.json"  # <TICKER>.failed.json: what `forecast run` leaves for a ticker that failed today


@dataclass
class TickerReport:
    """One ticker's part of the page: its forecast, backtest and recent bars, or why it has none."""

    ticker: str
    name: str
    colors: str  # cn | us: the page's one convention (``colors.page_colors``), or the ticker's own outside a page
    forecast: ForecastResult | None = None
    backtest: BacktestRecord | None = None
    bars: pd.DataFrame | None = None  # the recent bars on the forecast's basis, oldest first
    error: str | None = None  # set: a failure row, no chart
    notes: list[str] = field(default_factory=list)
    verdict: Verdict | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def anchor(self) -> str:
        """The id of the ticker's section (tickers hold letters, digits, ``.``, ``-``, ``=``, ``^``: all valid in an id)."""
        return f"t-{self.ticker}"



def read_failures(folder: Path) -> dict[str, tuple[str, float]]:
    """Return {ticker: (error, the marker's mtime)} from the ``<TICKER>.failed.json`` files in ``folder`` ({} without any)."""
    found: dict[str, tuple[str, float]] = {}
    if not folder.is_dir():
        return found
    for path in folder.glob(f"*{FAILED_MARKER}"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found[str(data.get("ticker") or path.name[: -len(FAILED_MARKER)])] = (str(data.get("error") or "failed"), path.stat().st_mtime)
        except (OSError, ValueError, AttributeError):  # an unreadable marker still says the ticker failed
            found[path.name[: -len(FAILED_MARKER)]] = ("failed (its failure record is unreadable)", 0.0)
    return found



def load_ticker(workspace: Workspace, store: MarketStore, ticker: str, name: str, colors: str | None,
                days: int, failure: tuple[str, float] | None = None, cross: dict | None = None) -> TickerReport:
    """Return one ticker's report: its stored forecast and what goes with it, or a failure row saying why there is none."""
    report = TickerReport(ticker, name, colors_for(ticker, colors))
    try:
        if str(parse_ticker(ticker)) != ticker:
            raise BadInputError(f"{ticker!r} is not a ticker as stored; name it {parse_ticker(ticker)}")
        stored = stored_forecast(workspace, ticker)
        # the forecast's own time, not its file's: a batch file is rewritten when any of its tickers is forecast
        newer_than_failure = failure is not None and stored is not None and forecast_time(stored[0]) > failure[1]
        if failure is not None and not newer_than_failure:  # yesterday's forecast must not pass for today's
            report.error = redact(failure[0])
            return report
        if stored is None:  # the command that makes one: predict, or first fetch where there are no bars to predict from
            report.error = (f"no forecast stored; run: forecast predict {ticker}" if store.has(ticker)
                            else f"no data stored; run: forecast fetch {ticker}, then forecast predict {ticker}")
            return report
        forecast = stored[0]
        report.forecast = forecast
        report.backtest = load_backtest(workspace, ticker)
    except ForecastError as exc:  # a damaged file, a name that is no ticker: its own row, not the whole page
        report.error = redact(str(exc))
        return report
    report.verdict = verdict_for(forecast, report.backtest, cross if forecast.summary.universe == _universe_of(cross) else None)
    try:
        frame = store.read_bars(ticker, forecast.adjust).frame
        shown = frame[frame["date"] <= pd.Timestamp(forecast.last_date)].tail(days).reset_index(drop=True)
        report.bars = shown
        newest = frame["date"].iloc[-1].date().isoformat() if len(frame) else None
        if newest and newest > forecast.last_date:
            report.notes.append(f"the store has bars up to {newest}, after this forecast's last bar; run forecast predict {ticker}")
    except ForecastError as exc:
        report.notes.append(f"no chart history: {redact(str(exc))}")
    return report


def _universe_of(cross: dict | None) -> str | None:
    return str(cross.get("universe") or "") or None if isinstance(cross, dict) else None

