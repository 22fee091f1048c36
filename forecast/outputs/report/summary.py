"""The summary table's cells, one row per ticker: text for people, a number to sort by, a tooltip for the detail.

Built here so the template only lays them out. A cell's text stays short (the
table must fit the window without sideways scrolling); what would make it long
goes in its tooltip.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from forecast.formatting import MISSING, format_number, format_percent
from forecast.maths.intervals import level_key, level_label
from forecast.outputs.report.ticker import TickerReport
from forecast.outputs.report.verdicts import finite_or_none, verdict_for

BAND_LEVEL = 0.8  # the range the table (and the ranking) shows


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, the value a click on its header sorts by, an optional CSS class and tooltip, and an
    optional second line (a change beside its price: two short lines keep the column narrow where one would not)."""

    text: str
    sort: float | str | None = None
    css: str = ""
    title: str = ""
    sub: str = ""


def _age_days(later: str, earlier: str) -> int | None:
    try:
        return (dt.date.fromisoformat(later[:10]) - dt.date.fromisoformat(earlier[:10])).days
    except (TypeError, ValueError):
        return None


def summary_cells(t: TickerReport, today: dt.date) -> list[Cell]:
    """Return the summary table's cells for one ticker (failure rows carry the error in the last cell)."""
    head = [Cell(t.ticker, t.ticker, "code"), Cell(t.name or MISSING, t.name, "name", t.name)]
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
        return Cell(format_number(point.value), fraction, move(fraction), f"forecast for {point.date}",
                    format_percent(fraction, 2, sign=True))

    day = None
    if t.bars is not None and len(t.bars) >= 2:
        prev, close = float(t.bars[f.target].iloc[-2]), float(t.bars[f.target].iloc[-1])
        day = close / prev - 1 if prev else None
    band = last.intervals.get(level_key(BAND_LEVEL))
    band_cell = Cell(f"{format_number(band[0])} –", (band[1] - band[0]) / f.last_value if f.last_value else None,
                     title=f"{level_label(BAND_LEVEL)} range on {last.date}; sorts by its width relative to the last close",
                     sub=format_number(band[1])) if band else Cell(MISSING)
    score = t.backtest.models.get(f.family) if t.backtest else None
    skill = finite_or_none(score.get("skill_vs_naive")) if isinstance(score, dict) else None
    coverage = finite_or_none((score.get("coverage") or {}).get(level_key(BAND_LEVEL))) if isinstance(score, dict) else None
    p_value = finite_or_none(score.get("dm_p_value")) if isinstance(score, dict) else None
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
        Cell(verdict.brief, verdict.key, f"verdict {verdict.key}", verdict.label),
        Cell(format_percent(coverage), coverage, title=f"share of backtest actuals inside the {level_label(BAND_LEVEL)} interval"),
        Cell(f.family, f.family, title=f.model_id),
        Cell(MISSING if model_age is None else f"{model_age} d", model_age, title=f"trained on data up to {trained_to}"),
        Cell(MISSING if data_age is None else f"{data_age} d", data_age, "stale" if data_age is not None and data_age > 7 else "",
             f"days from the last bar to {today.isoformat()}"),
        Cell("; ".join(t.notes), "; ".join(t.notes), "note"),
    ]


SUMMARY_HEADERS = ["Ticker", "Name", "Last close", "Date", "Day", "Step 1", "Step H", f"{level_label(BAND_LEVEL)} range",
                   "Skill vs naive", "Verdict", f"Coverage {level_label(BAND_LEVEL)}", "Model", "Model age", "Data age", "Note"]
