"""The chart of a portfolio backtest: each model's NAV against the benchmark (and the index), and its drawdown.

The upper panel is what the money did, on one scale from the starting
capital: a line above the benchmark's is a ranking that paid after costs.
The lower panel is how deep each model's NAV fell below its running peak, the
loss a holder would have sat through.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecast.choices import UNIVERSE_MODEL
from forecast.errors import NotFoundError
from forecast.evaluation.portfolio_records import BENCHMARK, INDEX, drawdown_columns, load_portfolio, nav_columns
from forecast.outputs.figures import new_figure, percent_formatter, save_figure, trading_day_ticks
from forecast.workspace import Workspace


def _growth(values: pd.Series) -> pd.Series:
    """A value series as the growth of 1 invested at its first value: every line starts at 1, whatever the capital."""
    first = values.dropna()
    return values / first.iloc[0] if len(first) and first.iloc[0] else values


def render_portfolio(daily: pd.DataFrame, title: str, path: Path) -> Path:
    """Draw a stored portfolio backtest's daily frame (``portfolio_records.daily_frame``) to ``path``."""
    fig, (top, bottom) = new_figure(rows=2, ratios=(3, 2))
    dates = [str(pd.Timestamp(d).date()) for d in daily.index]
    x = range(len(dates))
    for model, nav in nav_columns(daily).items():
        top.plot(x, _growth(nav), label=str(model), linewidth=1.4 if model == UNIVERSE_MODEL else 1.0)
    top.plot(x, _growth(daily[BENCHMARK]), label="equal-weight universe", color="black", linewidth=1.0, linestyle="--")
    if INDEX in daily and daily[INDEX].notna().any():
        top.plot(x, _growth(daily[INDEX]), label="index", color="grey", linewidth=1.0, linestyle=":")
    for model, drawdown in drawdown_columns(daily).items():
        bottom.plot(x, drawdown, label=str(model), linewidth=1.0)
    top.set_title(title)
    top.set_ylabel("growth of 1, after costs")
    bottom.set_ylabel("drawdown")
    bottom.yaxis.set_major_formatter(percent_formatter(0))
    bottom.axhline(0.0, color="grey", linewidth=0.6)
    top.legend(loc="upper left", fontsize="small", ncol=3)
    trading_day_ticks(bottom, dates)
    fig.tight_layout()
    return save_figure(fig, path)


def render_stored_portfolio(home: Workspace | Path | str | None, universe: str, out: Path | None = None) -> Path:
    """Draw the stored portfolio backtest of ``universe`` to ``out`` (default: beside it, ``portfolio.png``)."""
    workspace = Workspace.at(home)
    stored = load_portfolio(workspace, universe)
    if stored is None:
        raise NotFoundError(f"no portfolio backtest stored for {universe}; run: forecast backtest --universe {universe} --portfolio")
    record, daily = stored
    first, last = record.get("test_range", ["?", "?"])[:2]
    return render_portfolio(daily, f"{universe}: top-k portfolio, {record.get('schedule', '')}, test {first}..{last}",
                            out or workspace.portfolio_chart(universe))
