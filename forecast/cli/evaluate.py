"""Evaluation: ``backtest`` networks and baselines walk-forward on one ticker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import DEFAULT_BACKTEST_MODELS, MIN_HISTORY_BARS, Adjust
from forecast.cli._options import JsonFlag, emit_json, fail, out_option, quiet_option
from forecast.cli._state import state
from forecast.errors import ExitCode


def backtest(
    ticker: Annotated[str, typer.Argument(help="Ticker to backtest (stored with forecast fetch).")],
    models: Annotated[str, typer.Option(help="Comma-separated: default, tutorial, tutorial-gru, default-lstm, naive, drift, ma, maK, linear, garch, ets.")] = ",".join(DEFAULT_BACKTEST_MODELS),
    test_days: Annotated[int, typer.Option(min=1, help="Walk forward through this many final trading days.")] = 250,
    refit_every: Annotated[int, typer.Option(min=1, help="Refit every model after this many origins.")] = 20,
    horizon: Annotated[int, typer.Option(min=1, help="Trading days forecast from each origin; each step is scored.")] = 5,
    rolling: Annotated[Optional[int], typer.Option(min=MIN_HISTORY_BARS, help="Train on the last W bars only (default: expanding window).")] = None,
    expanding: Annotated[bool, typer.Option("--expanding", help="Train on all bars up to each origin (the default).")] = False,
    target: Annotated[str, typer.Option(help="Price column to forecast: close or open.")] = "close",
    adjust: Annotated[Adjust, typer.Option(help="Price adjustment of the bars.")] = Adjust.QFQ,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Override the networks' maximum epochs (e.g. for a quick look).")] = None,
    units: Annotated[Optional[str], typer.Option(help="Override the networks' units per layer, e.g. 16.")] = None,
    lookback: Annotated[Optional[int], typer.Option(min=1, help="Override the networks' lookback.")] = None,
    out: Annotated[Optional[Path], out_option("Write the JSON result here, and the per-origin forecasts beside it as .csv.")] = None,
    quiet: Annotated[bool, quiet_option("No progress output (refits done out of the total).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Walk-forward backtest of networks and baselines, scored per horizon step against naive."""
    from forecast.atomic import atomic_write_text
    from forecast.backtest import format_table
    from forecast.jobs import BacktestSettings, backtest_one
    from forecast.jsonio import dumps
    from forecast.progress import make_progress, progress_mode

    if expanding and rolling:
        fail("choose --expanding or --rolling W, not both", ExitCode.USAGE)
    overrides = {k: v for k, v in {"epochs": epochs, "units": units, "lookback": lookback}.items() if v is not None}
    settings = BacktestSettings(models=tuple(m.strip() for m in models.split(",") if m.strip()), test_days=test_days,
                                refit_every=refit_every, horizon=horizon, window=rolling, target=target,
                                adjust=adjust.value, levels=state.app_config(None).levels, network_overrides=overrides)
    workspace = state.workspace()
    result = backtest_one(workspace, ticker, settings, progress=make_progress(progress_mode(quiet, as_json)))
    payload = result.to_dict()
    if out is not None:  # the JSON at --out, the per-origin CSV beside it (never the one over the other)
        json_out = out if out.suffix.lower() != ".csv" else out.with_suffix(".json")
        atomic_write_text(json_out, dumps(payload))
        atomic_write_text(json_out.with_suffix(".csv"), result.forecasts_frame().to_csv(index=False))
    if as_json:
        emit_json(payload)
        return
    typer.echo(format_table(result))
    typer.echo(f"saved {workspace.backtest_json(result.ticker)} and {workspace.backtest_csv(result.ticker)}")
