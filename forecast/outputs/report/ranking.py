"""The universe's ranking: tickers ordered by the expected change of their stored forecasts (no model is run)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forecast.errors import ForecastError
from forecast.maths.intervals import level_key
from forecast.models.results import ForecastResult
from forecast.outputs.report.summary import BAND_LEVEL
from forecast.outputs.report.ticker import TickerReport
from forecast.outputs.report.verdicts import Verdict, verdict_for
from forecast.workspace import Workspace


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

