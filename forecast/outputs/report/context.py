"""What the daily report shows, as typed values read from stored artefacts; no HTML here.

``load_context`` reads each ticker's forecast of record (made by the model in use
for it: its own file or a global model's batch, ``results.stored_forecast``;
forecasts by other models, kept apart, are never shown as a ticker's),
its backtest where one exists, its recent bars and the cached company names,
and the failure markers the daily job left. It never forecasts: a ticker with
nothing stored becomes a failure row that says which command would store it.
The summary table's cells are built here (text for people, a number to sort
by), so the template only lays them out.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecast.choices import ColorConvention, ModelKind
from forecast.data.store import MarketStore
from forecast.data.tickers import parse_ticker
from forecast.errors import BadInputError, ForecastError
from forecast.formatting import MISSING, format_number, format_percent
from forecast.maths.intervals import level_key, level_label
from forecast.models.backtest_records import (
    BacktestRecord,
    load_backtest,
    load_cross_backtest,
    load_cross_curves,
)
from forecast.models.results import (
    ForecastResult,
    forecast_time,
    stored_forecast,
)
from forecast.redact import redact
from forecast.workspace import Workspace

COLOR_CONVENTIONS = tuple(ColorConvention.values())  # cn: red up, green down (China's convention); us: green up, red down
SIGNIFICANCE = 0.05  # a Diebold-Mariano p-value below this separates a model from naive
BAND_LEVEL = 0.8  # the range the table shows
FAILED_MARKER = ".failed.json"  # <TICKER>.failed.json: what `forecast run` leaves for a ticker that failed today


def check_colors(colors: str | None) -> str | None:
    """Return ``colors`` ("cn", "us" or None for each ticker's own convention); BadInputError for anything else."""
    if colors is None or colors == "":
        return None
    text = str(colors).strip().lower()
    if text not in COLOR_CONVENTIONS:
        raise BadInputError(f"unknown colors {colors!r}; use one of {', '.join(COLOR_CONVENTIONS)}")
    return text


def colors_for(ticker: str, setting: str | None) -> str:
    """The ticker's colour convention: the setting when there is one, else cn for China tickers and us otherwise."""
    if setting:
        return setting
    try:
        return "cn" if parse_ticker(ticker).is_china else "us"
    except ForecastError:
        return "us"


@dataclass(frozen=True)
class Verdict:
    """How a forecast compares with naive in its walk-forward backtest."""

    key: str  # beats | tied | worse | naive | unmeasured
    label: str
    is_signal: bool  # only a forecast that beat naive significantly says anything about direction


RANK_T = 2.0  # a Newey-West t of the daily Rank IC beyond this separates a universe model's ranking from chance


def verdict_for(forecast: ForecastResult, backtest: BacktestRecord | None, cross: dict | None = None) -> Verdict:
    """Return the verdict on ``forecast``'s model from its step-1 skill and Diebold-Mariano p-value in ``backtest``; a
    universe (global) model's forecast from its universe's cross-sectional backtest (``cross``, as stored), when that
    scored it: its daily Rank IC and Newey-West t."""
    family = forecast.family
    if forecast.summary.kind == ModelKind.GLOBAL and isinstance(cross, dict):
        score = (cross.get("models") or {}).get(family)
        if isinstance(score, dict):
            ic, t = _number(score.get("rank_ic")), _number(score.get("t_newey_west"))
            said = (f"Rank IC {MISSING if ic is None else f'{ic:+.3f}'}, t {format_number(t, 1)} "
                    "in the cross-sectional backtest")
            if ic is None or t is None or abs(t) < RANK_T:
                return Verdict("ranks", f"ranks no better than chance ({said}): a range", False)
            if ic > 0:
                return Verdict("ranks", f"ranks the universe ({said}): a range for the price", False)
            return Verdict("ranks", f"ranks worse than chance ({said})", False)
    if family == "naive":
        return Verdict("naive", "naive itself: a range", False)
    score = backtest.models.get(family) if backtest else None
    if not isinstance(score, dict):
        return Verdict("unmeasured", "not backtested: a range", False)
    skill, p_value = _number(score.get("skill_vs_naive")), _number(score.get("dm_p_value"))
    if skill is None or p_value is None or p_value >= SIGNIFICANCE:
        return Verdict("tied", "tied with naive: a range", False)
    return Verdict("beats", "beats naive", True) if skill > 0 else Verdict("worse", "worse than naive", False)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, the value a click on its header sorts by, and an optional CSS class and tooltip."""

    text: str
    sort: float | str | None = None
    css: str = ""
    title: str = ""


@dataclass
class TickerReport:
    """One ticker's part of the page: its forecast, backtest and recent bars, or why it has none."""

    ticker: str
    name: str
    colors: str
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


def _age_days(later: str, earlier: str) -> int | None:
    try:
        return (dt.date.fromisoformat(later[:10]) - dt.date.fromisoformat(earlier[:10])).days
    except (TypeError, ValueError):
        return None


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
        if stored is None:
            report.error = f"no forecast stored; run: forecast predict {ticker}"
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


def summary_cells(t: TickerReport, today: dt.date) -> list[Cell]:
    """Return the summary table's cells for one ticker (failure rows carry the error in the last cell)."""
    head = [Cell(t.ticker, t.ticker, "code"), Cell(t.name or MISSING, t.name)]
    if t.forecast is None:
        # the failure sits in the Verdict column and the error in the Note column, so sorting keeps columns aligned
        blank = Cell(MISSING)
        return [*head, *[blank] * 7, Cell("failed", "failed", "verdict failed"), *[blank] * 4, Cell(t.error or "", t.error or "", "note")]
    f = t.forecast
    first, last = f.points[0], f.points[-1]

    def change(value: float) -> float | None:
        return value / f.last_value - 1 if f.last_value else None

    def move(fraction: float | None) -> str:
        return "" if fraction is None or abs(fraction) < 5e-5 else "rise" if fraction > 0 else "fall"

    def step(point, fraction) -> Cell:
        return Cell(f"{format_number(point.value)} ({format_percent(fraction, 2, sign=True)})", fraction, move(fraction),
                    f"forecast for {point.date}")

    day = None
    if t.bars is not None and len(t.bars) >= 2:
        prev, close = float(t.bars[f.target].iloc[-2]), float(t.bars[f.target].iloc[-1])
        day = close / prev - 1 if prev else None
    band = last.intervals.get(level_key(BAND_LEVEL))
    band_cell = Cell(f"{format_number(band[0])} – {format_number(band[1])}", (band[1] - band[0]) / f.last_value if f.last_value else None,
                     title=f"{level_label(BAND_LEVEL)} range on {last.date}; sorts by its width relative to the last close") \
        if band else Cell(MISSING)
    score = t.backtest.models.get(f.family) if t.backtest else None
    skill = _number(score.get("skill_vs_naive")) if isinstance(score, dict) else None
    coverage = _number((score.get("coverage") or {}).get(level_key(BAND_LEVEL))) if isinstance(score, dict) else None
    p_value = _number(score.get("dm_p_value")) if isinstance(score, dict) else None
    verdict = t.verdict or verdict_for(f, t.backtest)
    if verdict.key == "ranks":  # a universe model's: scored by the cross-sectional backtest, not against naive per ticker
        skill = coverage = None
    trained_to = (f.summary.data_range or (None, None))[-1]
    model_age = _age_days(f.last_date, str(trained_to)) if trained_to else None
    data_age = _age_days(today.isoformat(), f.last_date)
    return [
        *head,
        Cell(format_number(f.last_close), f.last_close),
        Cell(f.last_date, f.last_date),
        Cell(format_percent(day, 2, sign=True), day, move(day), "change of the last bar against the one before"),
        step(first, change(first.value)),
        step(last, change(last.value)),
        band_cell,
        Cell(format_percent(skill, sign=True), skill, title=f"walk-forward step-1 skill against naive; DM p {format_number(p_value, 3)}"),
        Cell(verdict.label, verdict.key, f"verdict {verdict.key}"),
        Cell(format_percent(coverage), coverage, title=f"share of backtest actuals inside the {level_label(BAND_LEVEL)} interval"),
        Cell(f.family, f.family, title=f.model_id),
        Cell(MISSING if model_age is None else f"{model_age} d", model_age, title=f"trained on data up to {trained_to}"),
        Cell(MISSING if data_age is None else f"{data_age} d", data_age, "stale" if data_age is not None and data_age > 7 else "",
             f"days from the last bar to {today.isoformat()}"),
        Cell("; ".join(t.notes), "; ".join(t.notes), "note"),
    ]


SUMMARY_HEADERS = ["Ticker", "Name", "Last close", "Date", "Day", "Step 1", "Step H", f"{level_label(BAND_LEVEL)} range",
                   "Skill vs naive", "Verdict", f"Coverage {level_label(BAND_LEVEL)}", "Model", "Model age", "Data age", "Note"]


@dataclass(frozen=True)
class RankRow:
    """One ticker in the ranking: its expected change over the horizon from its stored forecast, with the 80 % range."""

    ticker: str
    name: str
    expected: float
    low: float | None
    high: float | None
    model: str
    verdict: Verdict | None


def ranking(tickers: list[TickerReport]) -> list[RankRow]:
    """Return the forecasts of record ranked by expected change at their last step, best first (stored forecasts only:
    no model is run). With a universe model, the page ranks by ``universe_ranking`` instead, as ``rank`` does."""
    return _ranked([(t.ticker, t.name, t.forecast, t.verdict) for t in tickers])


def _ranked(entries: Sequence[tuple[str, str, ForecastResult | None, Verdict | None]], steps: int | None = None) -> list[RankRow]:
    rows = []
    for ticker, name, f, verdict in entries:
        if f is None or not f.points or not f.last_value:
            continue
        point = f.points[min(steps or len(f.points), len(f.points)) - 1]
        band = point.intervals.get(level_key(BAND_LEVEL))
        base = f.last_value  # the last price of what it forecasts (a global model's: the close, as rank divides by)
        rows.append(RankRow(ticker, name, point.value / base - 1,
                            band[0] / base - 1 if band else None, band[1] / base - 1 if band else None,
                            f.family, verdict))
    return sorted(rows, key=lambda r: (-r.expected, r.ticker))  # rank's order: ties by ticker


def universe_ranking(workspace: Workspace, universe: str, tickers: list[TickerReport], cross: dict | None) -> tuple[list[RankRow], str | None]:
    """The universe's ranking as ``forecast rank --universe`` made it: every ticker's stored forecast by the universe's
    latest global model (of record or kept apart), by expected return over the model's horizon; and that model's id.
    ([], None) when the universe has no global model or it forecast none of ``tickers``."""
    from forecast.models.pooled.card import GlobalRegistry
    from forecast.models.results import universe_forecasts

    try:
        model_id = GlobalRegistry(workspace).latest_id(universe)
        if model_id is None:
            return [], None
        horizon = GlobalRegistry(workspace).card(model_id).horizon
        stored = universe_forecasts(workspace, universe, model_id)
    except ForecastError:  # a damaged card or batch: the ranking of the forecasts of record stands in
        return [], None
    entries = []
    for t in tickers:
        f = stored.get(t.ticker)
        if f is not None and len(f.points) >= horizon:
            entries.append((t.ticker, t.name, f, verdict_for(f, None, cross)))
    rows = _ranked(entries, horizon)
    return (rows, model_id) if rows else ([], None)


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
    colors = check_colors(colors)
    names = cached_names(workspace) if names is None else names
    today = today or dt.date.today()
    markers = read_failures(failures_dir) if failures_dir is not None else {}
    for ticker, error in (failures or {}).items():
        markers[ticker] = (error, math.inf)
    store = MarketStore(workspace)
    cross, curves = load_cross_section(workspace, universe) if universe else (None, None)
    reports = [load_ticker(workspace, store, t, names.get(t, ""), colors, days, markers.get(t), cross)
               for t in dict.fromkeys(map(_normal, tickers))]
    portfolio, daily = load_portfolio_section(workspace, universe) if universe else (None, None)
    ranked, ranked_by = universe_ranking(workspace, universe, reports, cross) if universe else ([], None)
    if universe and ranked_by is None:
        ranked = ranking([t for t in reports if not t.failed])
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return ReportContext(title or (f"Forecast report: {universe}" if universe else "Forecast report"), now, today, reports,
                         universe, cross, curves, portfolio, daily, ranked, ranked_by)
