"""The chart of a cross-sectional backtest: cumulative Rank IC and cumulative quintile spread, per model, over the test days.

A flat or falling cumulative Rank IC is a model that ranks nothing; a line
that climbs steadily is skill that held; one that climbs in a single month
and drifts after is a regime, not a signal. The lower panel says what that
ranking earned: the running sum of the daily top-minus-bottom quintile spread.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecast.choices import UNIVERSE_MODEL
from forecast.models.backtest_records import CUMULATIVE_RANK_IC_COLUMN, RANK_IC_COLUMN, SPREAD_COLUMN, cross_columns
from forecast.outputs.figures import new_figure, percent_formatter, save_figure, trading_day_ticks


def render_cross_backtest(daily: pd.DataFrame, title: str, path: Path) -> Path:
    """Draw ``CrossBacktestResult.daily_frame()`` (columns ``<model>_cumulative_rank_ic`` and ``<model>_spread``) to ``path``."""
    fig, (top, bottom) = new_figure(rows=2, ratios=(3, 2))
    dates = [str(pd.Timestamp(d).date()) for d in daily.index]
    x = range(len(dates))
    curves, daily_ic, spreads = (cross_columns(daily, s) for s in (CUMULATIVE_RANK_IC_COLUMN, RANK_IC_COLUMN, SPREAD_COLUMN))
    for model in curves.columns:
        if daily_ic[model].notna().any():  # naive ranks nothing: no line rather than a flat zero
            top.plot(x, curves[model], label=model, linewidth=1.4 if model == UNIVERSE_MODEL else 1.0)
            bottom.plot(x, spreads[model].fillna(0.0).cumsum(), label=model,
                        linewidth=1.4 if model == UNIVERSE_MODEL else 1.0)
    top.axhline(0.0, color="grey", linewidth=0.6)
    bottom.axhline(0.0, color="grey", linewidth=0.6)
    top.set_title(title)
    top.set_ylabel("cumulative Rank IC")
    bottom.set_ylabel("cumulative Q5-Q1")
    bottom.yaxis.set_major_formatter(percent_formatter(1))
    if top.get_legend_handles_labels()[1]:
        top.legend(loc="upper left", fontsize="small", ncol=3)
    else:  # a test window too short for any outcome to be known yet: say so rather than draw an empty legend
        top.text(0.5, 0.5, "no day scored yet: no outcome in the test window is known", transform=top.transAxes,
                 ha="center", va="center", color="grey")
    trading_day_ticks(bottom, dates)
    fig.tight_layout()
    return save_figure(fig, path)
