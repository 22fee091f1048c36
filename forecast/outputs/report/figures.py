"""Plotly figures of the daily report, as plain ``{"data": [...], "layout": {...}}`` dicts.

Built as dicts rather than ``plotly.graph_objects`` figures: validating 300
figures through graph_objects costs seconds, and the page only needs the JSON
that plotly.js reads (a test checks that graph_objects accepts every figure
built here). Numbers are rounded and non-finite values become null, so the
page stays small and is strict JSON.

The x axis is a category axis of trading days: no weekend or holiday gaps, and
the forecast's dates (from the exchange calendar) follow the last bar. A
ticker's chart holds all its recent bars (``days``) but opens on the last few
times the horizon (``initial_view``), so the forecast fills a fair share of the
width rather than 4 % of it; two buttons (and plotly's zoom) switch between that
view and the whole history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from forecast.choices import adjust_words
from forecast.maths.intervals import level_key, level_label
from forecast.outputs.report.ticker import TickerReport

# (up, down) colours of each convention: China's red up and green down, and the Western opposite
PALETTES = {"cn": ("#d62728", "#2ca02c"), "us": ("#2ca02c", "#d62728")}
FORECAST_COLOR = "#d9822b"
NAIVE_COLOR = "#1f5fa8"
IC_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
HISTORY_PER_STEP = 3  # the opening view shows this many trading days of history per forecast day...
MIN_HISTORY = 15  # ...and at least three weeks, so a one-day forecast still has its context
Y_PAD = 0.05  # of the visible price span, above and below, in the opening view
DIGITS = 4  # as results.to_frame: a price is not worth more, and it keeps the page small


def _round(values: Iterable, digits: int = DIGITS) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        x = float(v)
        out.append(round(x, digits) if math.isfinite(x) else None)
    return out


def _band_traces(x: list[str], lower: list[float | None], upper: list[float | None], label: str, alpha: float) -> list[dict]:
    """Two scatter traces, the upper one filled down to the lower: one band, one legend entry."""
    fill = f"rgba(217,130,43,{alpha})"
    return [
        {"type": "scatter", "x": x, "y": lower, "mode": "lines", "line": {"width": 0}, "name": f"{label} lower",
         "legendgroup": label, "showlegend": False, "hovertemplate": f"{label} low %{{y:.2f}}<extra></extra>"},
        {"type": "scatter", "x": x, "y": upper, "mode": "lines", "line": {"width": 0}, "fill": "tonexty", "fillcolor": fill,
         "name": label, "legendgroup": label, "hovertemplate": f"{label} high %{{y:.2f}}<extra></extra>"},
    ]


def ticker_figure(t: TickerReport) -> dict:
    """Candlesticks and volume of the recent bars, the forecast with its bands, and naive's flat line, for one ticker."""
    forecast = t.forecast
    if forecast is None:
        raise ValueError(f"{t.ticker} has no forecast to draw")
    up, down = PALETTES[t.colors]
    data: list[dict] = []
    last_x = forecast.last_date
    if t.bars is not None and len(t.bars):
        bars = t.bars
        x = [d.date().isoformat() for d in pd.to_datetime(bars["date"])]
        last_x = x[-1]
        if _has_range(bars):
            data.append({"type": "candlestick", "name": "history", "x": x, "open": _round(bars["open"]), "high": _round(bars["high"]),
                         "low": _round(bars["low"]), "close": _round(bars["close"]),
                         "increasing": {"line": {"color": up}, "fillcolor": up}, "decreasing": {"line": {"color": down}, "fillcolor": down}})
        else:  # a close-only file (stored as one price all day): candles would be flat dashes, so the closes as a line
            data.append({"type": "scatter", "mode": "lines", "name": "history (close)", "x": x, "y": _round(bars["close"]),
                         "line": {"color": "#555555", "width": 1.2}, "hovertemplate": "close %{y:.2f}<extra></extra>"})
        if _known(bars, "volume"):
            rising = (bars["close"] >= bars["open"]).tolist()
            data.append({"type": "bar", "name": "volume", "x": x, "y": _round(bars["volume"], 0), "yaxis": "y2",
                         "marker": {"color": [up if r else down for r in rising]}, "opacity": 0.6, "showlegend": False,
                         "hovertemplate": "volume %{y:,.0f}<extra></extra>"})
    points = forecast.points
    fx = [last_x, *(p.date for p in points)]
    for level, alpha in zip(reversed(forecast.levels), (0.18, 0.3, 0.4, 0.5)):  # widest band first, lightest
        key = level_key(level)
        lower = _round([forecast.last_value, *(p.intervals[key][0] for p in points)])
        upper = _round([forecast.last_value, *(p.intervals[key][1] for p in points)])
        data.extend(_band_traces(fx, lower, upper, f"{level_label(level)} band", alpha))
    data.append({"type": "scatter", "x": fx, "y": _round([forecast.last_value, *(p.value for p in points)]), "mode": "lines+markers",
                 "name": f"forecast ({forecast.family})", "line": {"color": FORECAST_COLOR, "width": 2}, "marker": {"size": 5},
                 "hovertemplate": "forecast %{y:.2f}<extra></extra>"})
    data.append({"type": "scatter", "x": fx, "y": _round([forecast.last_value] * len(fx)), "mode": "lines",
                 "name": "naive (tomorrow = today)", "line": {"color": NAIVE_COLOR, "width": 1.2, "dash": "dash"},
                 "hovertemplate": "naive %{y:.2f}<extra></extra>"})
    layout: dict[str, Any] = {
        "height": 430, "margin": {"l": 55, "r": 10, "t": 10, "b": 40}, "hovermode": "x unified",
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        "xaxis": {"type": "category", "rangeslider": {"visible": False}, "nticks": 10, "showspikes": True},
        "yaxis": {"domain": [0.28, 1.0], "title": {"text": f"price ({forecast.target}, {adjust_words(forecast.adjust)})"}},
        "yaxis2": {"domain": [0.0, 0.2], "title": {"text": "volume"}, "showgrid": False},
        "plot_bgcolor": "#ffffff", "paper_bgcolor": "#ffffff",
    }
    if t.bars is not None and len(t.bars) > 1:
        view = initial_view(t.bars, data, len(points))
        for axis, bounds in view.items():
            layout[axis] = {**layout[axis], "range": bounds}
        whole = {f"{axis}.autorange": True for axis in view}
        layout["updatemenus"] = [{
            "type": "buttons", "direction": "left", "showactive": True, "active": 0,
            "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom", "pad": {"r": 0, "t": 0},
            "font": {"size": 11}, "bgcolor": "#f5f7fa", "bordercolor": "#d8dee6",
            "buttons": [
                {"label": "Forecast view", "method": "relayout", "args": [{f"{a}.range": b for a, b in view.items()}]},
                {"label": f"All {len(t.bars)} days", "method": "relayout", "args": [whole]},
            ]}]
    return {"data": data, "layout": layout}


def _known(bars: pd.DataFrame, column: str) -> bool:
    """Whether ``bars`` hold a value of ``column`` on some day (a file without volume has none)."""
    return column in bars and bool(pd.to_numeric(bars[column], errors="coerce").notna().any())


def _has_range(bars: pd.DataFrame) -> bool:
    """Whether some bar's high is above its low: a close-only file is stored as one price all day, every day."""
    return _known(bars, "high") and _known(bars, "low") and bool((bars["high"] > bars["low"]).any())


def initial_view(bars: pd.DataFrame, data: list[dict], horizon: int) -> dict[str, list[float]]:
    """The opening view's ranges: the last ``HISTORY_PER_STEP`` x ``horizon`` bars (at least ``MIN_HISTORY``, at most
    all) and the forecast on x, in category positions (bar i at i, the forecast's steps after the last bar); the prices
    and volumes in that window on y and y2, since plotly would scale y to every bar, shown or not."""
    shown = min(len(bars), max(HISTORY_PER_STEP * horizon, MIN_HISTORY))
    first = len(bars) - shown
    recent = bars.iloc[first:]
    prices = [v for column in ("low", "high", "close") if column in recent for v in _round(recent[column]) if v is not None]
    for trace in data:
        if trace["type"] == "scatter" and trace["name"] != "history (close)":  # the forecast, its bands, naive: all in view
            prices.extend(v for v in trace["y"] if v is not None)
    low, high = min(prices), max(prices)
    pad = (high - low) * Y_PAD or abs(high) * Y_PAD or 1.0
    volume = pd.to_numeric(recent["volume"], errors="coerce").max() if "volume" in recent else math.nan
    return {"xaxis": [first - 0.5, len(bars) - 1 + horizon + 0.5],
            "yaxis": [round(low - pad, DIGITS), round(high + pad, DIGITS)],
            "yaxis2": [0.0, float(volume) * 1.1 if math.isfinite(volume) and volume > 0 else 1.0]}


def cumulative_ic_figure(curves: pd.DataFrame) -> dict:
    """One line per model: the running sum of its daily Rank IC over the cross-sectional backtest's test days."""
    x = [str(d)[:10] for d in curves.index]
    data = [{"type": "scatter", "mode": "lines", "name": str(model), "x": x, "y": _round(curves[model], 5),
             "line": {"color": IC_COLORS[i % len(IC_COLORS)], "width": 1.6}}
            for i, model in enumerate(curves.columns)]
    layout = {"height": 360, "margin": {"l": 55, "r": 10, "t": 10, "b": 40}, "hovermode": "x unified",
              "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
              "xaxis": {"type": "category", "nticks": 10}, "yaxis": {"title": {"text": "cumulative Rank IC"}, "zeroline": True}}
    return {"data": data, "layout": layout}


def portfolio_figure(daily: pd.DataFrame) -> dict:
    """One line per model: its portfolio's value; the equal-weight universe (and the index) dashed, for comparison."""
    from forecast.evaluation.portfolio_records import BENCHMARK, INDEX, nav_columns

    x = [str(d)[:10] for d in daily.index]
    navs = nav_columns(daily)
    data = [{"type": "scatter", "mode": "lines", "name": str(model), "x": x, "y": _round(navs[model], 2),
             "line": {"color": IC_COLORS[i % len(IC_COLORS)], "width": 1.6}} for i, model in enumerate(navs.columns)]
    data.append({"type": "scatter", "mode": "lines", "name": "equal-weight universe", "x": x, "y": _round(daily[BENCHMARK], 2),
                 "line": {"color": "#444", "width": 1.2, "dash": "dash"}})
    if INDEX in daily and daily[INDEX].notna().any():
        data.append({"type": "scatter", "mode": "lines", "name": "index", "x": x, "y": _round(daily[INDEX], 2),
                     "line": {"color": "#999", "width": 1.2, "dash": "dot"}})
    layout = {"height": 360, "margin": {"l": 70, "r": 10, "t": 10, "b": 40}, "hovermode": "x unified",
              "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
              "xaxis": {"type": "category", "nticks": 10}, "yaxis": {"title": {"text": "portfolio value"}}}
    return {"data": data, "layout": layout}
