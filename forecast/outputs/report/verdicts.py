"""The verdict on a forecast's model: whether its walk-forward backtest separates it from naive.

A per-ticker model is judged by its step-1 skill against naive and the
Diebold-Mariano p-value of that skill; a universe (global) model by its daily
Rank IC and Newey-West t in its universe's cross-sectional backtest. Only a
forecast that beat naive significantly says anything about direction; every
other verdict tells the reader to read the range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from forecast.choices import ModelKind
from forecast.formatting import MISSING, format_number
from forecast.models.backtest_records import BacktestRecord
from forecast.models.results import ForecastResult

SIGNIFICANCE = 0.05  # a Diebold-Mariano p-value below this separates a model from naive
RANK_T = 2.0  # a Newey-West t of the daily Rank IC beyond this separates a universe model's ranking from chance


@dataclass(frozen=True)
class Verdict:
    """How a forecast compares with naive in its walk-forward backtest."""

    key: str  # beats | tied | worse | naive | unmeasured | ranks
    label: str
    is_signal: bool  # only a forecast that beat naive significantly says anything about direction
    short: str = ""  # the label without its numbers, for the summary table's narrow column (the label goes in its tooltip)

    @property
    def brief(self) -> str:
        return self.short or self.label


def verdict_for(forecast: ForecastResult, backtest: BacktestRecord | None, cross: dict | None = None) -> Verdict:
    """Return the verdict on ``forecast``'s model from its step-1 skill and Diebold-Mariano p-value in ``backtest``; a
    universe (global) model's forecast from its universe's cross-sectional backtest (``cross``, as stored), when that
    scored it: its daily Rank IC and Newey-West t."""
    family = forecast.family
    if forecast.summary.kind == ModelKind.GLOBAL and isinstance(cross, dict):
        score = (cross.get("models") or {}).get(family)
        if isinstance(score, dict):
            ic, t = finite_or_none(score.get("rank_ic")), finite_or_none(score.get("t_newey_west"))
            said = (f"Rank IC {MISSING if ic is None else f'{ic:+.3f}'}, t {format_number(t, 1)} "
                    "in the cross-sectional backtest")
            if ic is None or t is None or abs(t) < RANK_T:
                return Verdict("ranks", f"ranks no better than chance ({said}): a range", False, "ranks no better than chance: a range")
            if ic > 0:
                return Verdict("ranks", f"ranks the universe ({said}): a range for the price", False, "ranks the universe: a range")
            return Verdict("ranks", f"ranks worse than chance ({said})", False, "ranks worse than chance")
    if family == "naive":
        return Verdict("naive", "naive itself: a range", False)
    score = backtest.models.get(family) if backtest else None
    if not isinstance(score, dict):
        return Verdict("unmeasured", "not backtested: a range", False)
    skill, p_value = finite_or_none(score.get("skill_vs_naive")), finite_or_none(score.get("dm_p_value"))
    if skill is None or p_value is None or p_value >= SIGNIFICANCE:
        return Verdict("tied", "tied with naive: a range", False)
    return Verdict("beats", "beats naive", True) if skill > 0 else Verdict("worse", "worse than naive", False)


def finite_or_none(value: object) -> float | None:
    """A stored score as a float, or None when it is missing, not a number (a bool is none) or not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
