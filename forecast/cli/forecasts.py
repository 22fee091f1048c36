"""Forecasts: ``predict`` the next trading days from each ticker's model, with intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.cli._options import JsonFlag, emit_json, model_option, out_option
from forecast.cli._state import state


def predict(
    tickers: Annotated[list[str], typer.Argument(help="Tickers to forecast.")],
    model: Annotated[Optional[str], model_option("Model id (default: the ticker's latest).")] = None,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Trading days to show (at most the model's horizon).")] = None,
    out: Annotated[Optional[Path], out_option("Write the forecast rows to this CSV file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Forecast the next trading days after the last stored bar, with prediction intervals."""
    from forecast.predicting import LoadedModels, predict_ticker, save_forecast

    store, registry = state.store(), state.registry()
    loaded = LoadedModels(registry)
    results = [predict_ticker(store, registry, t, model, horizon, loaded) for t in tickers]
    for result in results:
        save_forecast(state.home, result)
    if out is not None:
        import pandas as pd

        from forecast.atomic import atomic_write_text

        atomic_write_text(out, pd.concat([r.to_frame() for r in results]).to_csv(index=False))
    if as_json:
        emit_json([r.to_dict() for r in results] if len(results) > 1 else results[0].to_dict())
        return
    for r in results:
        typer.echo(f"{r.ticker} ({r.model_id}): last {r.target} {r.last_value:.2f} on {r.last_date}")
        for p in r.points:
            bands = "  ".join(f"{int(float(l) * 100)}% [{lo:.2f}, {hi:.2f}]" for l, (lo, hi) in p.intervals.items())
            typer.echo(f"  {p.date}  {p.value:10.2f}  {bands}")
