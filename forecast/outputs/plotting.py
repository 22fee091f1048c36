"""What ``plot`` draws: one chart of a stored ticker (or a universe's portfolio), found in the home.

``render`` resolves the ticker, the chart kind and the output path, loads what
``predict``, ``backtest`` and ``train`` stored (a forecast, a backtest, a
model's card, the bars), says which command makes a missing one, and hands it
to the drawing functions in ``forecast.outputs.charts``. Like them it never
imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from forecast.choices import ChartKind, ModelKind
from forecast.models.results import ForecastResult
from forecast.outputs.charts import (
    ChartInfo,
    backtest_chart,
    calibration_chart,
    forecast_chart,
    history_chart,
    training_chart,
    universe_training_chart,
)
from forecast.outputs.figures import display_name
from forecast.workspace import Workspace


def render(home, ticker_text: str, kind: str, model_id: str | None = None, days: int = 60,
           out: Path | None = None, name: str | None = None, *, named_by_user: bool = False) -> ChartInfo:
    """Draw one chart of a stored ticker to ``out`` (default ``<home>/charts/<TICKER>-<kind>.png``).

    ``name``: the company's name for the title; None looks it up in the cached
    listings (no network), "" leaves it out. ``named_by_user``: ``out`` is
    plot's ``--out``, written by ``atomic.write_user_output`` (``-`` is stdout;
    a link is followed; a FIFO or a device is written in place, as PNG unless
    its name ends in .svg).
    """
    import tempfile

    from forecast.atomic import write_user_output, writes_in_place
    from forecast.data.store import MarketStore
    from forecast.data.tickers import parse_ticker
    from forecast.data.universe_cache import cached_names
    from forecast.errors import BadInputError, NotFoundError
    from forecast.models.backtest_records import load_backtest, load_backtest_forecasts
    from forecast.models.registry import ModelRegistry
    from forecast.models.results import load_forecast

    chart = ChartKind.parse(kind, "chart kind")
    workspace = Workspace.at(home)
    portfolio = chart is ChartKind.PORTFOLIO  # a universe's chart: ticker_text names the universe
    ticker = ticker_text if portfolio else str(parse_ticker(ticker_text))
    named_by_user = named_by_user and out is not None
    out = Path(out) if out else (workspace.portfolio_chart(ticker) if portfolio else workspace.chart_file(ticker, chart))
    suffix = out.suffix.lower()
    if suffix not in (".png", ".svg"):
        if not (named_by_user and writes_in_place(out)):
            raise BadInputError(f"--out must end in .png or .svg, not {out.name}")
        suffix = ".png"  # stdout, a FIFO, a device: a PNG unless the name says .svg
    if named_by_user:
        with tempfile.TemporaryDirectory(prefix="forecast-chart-") as scratch:  # drawn aside, then written once
            info = render(workspace, ticker, kind, model_id, days, Path(scratch) / f"chart{suffix}", name)
            write_user_output(out, info.path.read_bytes())
        info.path = out
        return info
    if portfolio:
        from forecast.outputs.portfolio_charts import render_stored_portfolio

        return ChartInfo(render_stored_portfolio(workspace, ticker, out), chart.value)
    name = cached_names(workspace).get(ticker, "") if name is None else name
    if chart is ChartKind.TRAINING:
        from forecast.models.pooled.card import GlobalRegistry

        universe_models = GlobalRegistry(workspace)
        if model_id and model_id in universe_models.ids():  # a universe model serves many tickers: its own training
            return universe_training_chart(universe_models.card(model_id), out)
        registry = ModelRegistry(workspace)
        if model_id is None and registry.in_use(ticker) is None and not workspace.pin_file(ticker).exists():
            stored = load_forecast(workspace, ticker)
            if stored is not None and stored.summary.kind == ModelKind.GLOBAL and stored.model_id in universe_models.ids():
                return universe_training_chart(universe_models.card(stored.model_id), out, display_name(ticker, name))
            if universe_models.ids():  # which one serves it is workflow.serving's answer, which models show prints
                raise NotFoundError(f"{ticker} has no model of its own; see the universe model that serves it with: "
                                    f"forecast models show {ticker}, then: forecast plot {ticker} --kind training --model ID")
        return training_chart(registry.card(registry.resolve(ticker, model_id)), out, name)
    if chart is ChartKind.CALIBRATION:
        record = load_backtest(workspace, ticker)
        if record is None:
            raise NotFoundError(f"no backtest stored for {ticker}; run: forecast backtest {ticker}")
        return calibration_chart(record, ticker, out, name)
    if chart is ChartKind.BACKTEST:
        forecasts = load_backtest_forecasts(workspace, ticker)
        if forecasts is None:
            raise NotFoundError(f"no backtest stored for {ticker}; run: forecast backtest {ticker}")
        chosen = model_id or next((m for m in forecasts["model"].unique() if m != "naive"), "naive")
        if chosen not in set(forecasts["model"]):
            raise NotFoundError(f"the stored backtest of {ticker} has no model {chosen!r}; it has {', '.join(forecasts['model'].unique())}")
        return backtest_chart(forecasts, ticker, chosen, out, load_backtest(workspace, ticker), name)
    store = MarketStore(workspace)
    if chart is ChartKind.HISTORY:
        return history_chart(store.read_bars(ticker).frame, ticker, days, out, name)
    forecast = load_forecast(workspace, ticker, model_id)  # of record; with --model, that model's, perhaps kept apart
    if forecast is None and model_id:
        raise NotFoundError(f"no stored forecast of {ticker} by {model_id}; run: forecast predict {ticker} --model {model_id}")
    if forecast is None:
        raise NotFoundError(f"no stored forecast for {ticker}; run: forecast predict {ticker}")
    bars = store.read_bars(ticker, forecast.adjust).frame  # the forecast's basis
    backtest = load_backtest(workspace, ticker)
    return forecast_chart(bars, forecast, days, out, backtest.skill(forecast.family) if backtest else None, name,
                          _ranking_words(workspace, forecast))


def _ranking_words(workspace: Workspace, forecast: ForecastResult) -> str | None:
    """A universe model's score in its universe's stored cross-sectional backtest, as the footer says it; else None."""
    from forecast.errors import ForecastError
    from forecast.models.backtest_records import load_cross_backtest

    summary = forecast.summary
    if summary.kind != ModelKind.GLOBAL or not summary.universe:
        return None
    try:
        record = load_cross_backtest(workspace, summary.universe)
    except ForecastError:
        return None
    score = record.models.get(forecast.family) if record else None
    if not isinstance(score, dict) or not isinstance(score.get("rank_ic"), (int, float)):
        return None
    t = score.get("t_newey_west")
    return (f"cross-sectional backtest of {summary.universe}: Rank IC {score['rank_ic']:+.3f}"
            + (f", t {t:.1f}" if isinstance(t, (int, float)) else ""))
