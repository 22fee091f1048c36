"""The home's small commands: what is stored (``data list``), removing a model (``models rm``), the HTML ``report``.

The CLI calls these and prints what they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forecast.workspace import Workspace


def stored_series(workspace: Workspace) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every stored ticker's summary with its company name from the cached listing (no network), and the files that
    cannot be read ({"ticker", "error"}): one damaged file must not hide the others."""
    from forecast.data.store import MarketStore
    from forecast.data.universe_cache import cached_names
    from forecast.errors import CorruptFileError

    store = MarketStore(workspace)
    names = cached_names(workspace)  # a name is known once `forecast universe show all` cached them
    summaries: list[dict[str, Any]] = []
    unreadable: list[dict[str, str]] = []
    for ticker in store.tickers():
        try:
            summaries.append({**store.read(ticker).summary(), "name": names.get(ticker)})
        except CorruptFileError as exc:
            unreadable.append({"ticker": ticker, "error": str(exc)})
    return summaries, unreadable


def remove_model(workspace: Workspace, model_id: str) -> str | None:
    """Delete a model, universe-wide or per-ticker (and its pin); return the ticker it was pinned for, else None."""
    from forecast.errors import ForecastError
    from forecast.models.pooled.card import GlobalRegistry
    from forecast.models.registry import ModelRegistry

    universe_models = GlobalRegistry(workspace)
    if model_id in universe_models.ids():
        universe_models.remove(model_id)
        return None
    registry = ModelRegistry(workspace)
    try:
        card = registry.card(model_id)
        pinned_for = card.ticker if registry.pinned_id(card.ticker) == model_id else None
    except ForecastError:
        pinned_for = None
    registry.remove(model_id)
    return pinned_for


def write_report_page(workspace: Workspace, config: Any, tickers: Sequence[str], universe: str | None, out: Path | None,
                      colors: str | None, days: int, plotly: str = "inline") -> Any:
    """Write the HTML report of ``tickers`` (else forecast.toml's, else every stored forecast's); NotFoundError when
    there are none. Returns the report's info (path, tickers, failed, bytes, seconds)."""
    from forecast.errors import NotFoundError
    from forecast.models.results import forecast_tickers
    from forecast.outputs.report import write_report

    names = list(tickers) or list(config.tickers) or forecast_tickers(workspace)
    if not names:
        raise NotFoundError("nothing to report: no tickers named, none in forecast.toml and no stored forecasts; run: forecast predict TICKER")
    return write_report(workspace, names, out, colors=colors or getattr(config, "colors", None),
                        failures_dir=workspace.published_dir(workspace.outdir(config.outdir)),
                        universe=universe, days=days, named_by_user=True, plotly=plotly)


def describe_series(workspace: Workspace, ticker: str, adjust: str,
                    last: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """One stored ticker's summary (rows, range, source, validation), its last ``last`` bars, one dict per bar
    (dates as ISO text, NaN as None), and the bars' columns other than the date."""
    from forecast.data.store import MarketStore
    from forecast.data.tickers import parse_ticker
    from forecast.jsonio import finite

    store = MarketStore(workspace)
    name = parse_ticker(ticker)
    summary = store.describe(name, adjust)
    tail = store.read_bars(name, adjust).frame.tail(last)
    bars = [{k: (row[k].date().isoformat() if k == "date" else finite(float(row[k]))) for k in tail.columns}
            for row in tail.to_dict("records")]  # per column dtypes: iterrows would turn a NaN row into NaT
    return summary, bars, [str(c) for c in tail.columns if c != "date"]
