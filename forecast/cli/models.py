"""Models: ``train`` (one network per ticker, into the registry) and ``models list|show|rm``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import Adjust, Arch, Preset, TargetTransform
from forecast.cli._options import FailFastFlag, JsonFlag, echo_error, emit_json, finish, quiet_option
from forecast.cli._state import state

models_app = typer.Typer(help="List, show and remove trained models.", no_args_is_help=True)


def train(
    tickers: Annotated[list[str], typer.Argument(help="Tickers to train on (stored with forecast fetch).")],
    arch: Annotated[Optional[Arch], typer.Option(help="Recurrent layer: lstm, gru or rnn (SimpleRNN).")] = None,
    preset: Annotated[Preset, typer.Option(help="default: the tuned, fast model; tutorial: the course exercise.")] = Preset.DEFAULT,
    config: Annotated[Optional[Path], typer.Option("--config", exists=True, dir_okay=False, help="TOML file with a [train] table (default: <home>/forecast.toml).")] = None,
    lookback: Annotated[Optional[int], typer.Option(min=1, help="Bars in each input window.")] = None,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Trading days forecast at once (direct multi-step).")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum training epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Windows per gradient step.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed; the same data, config and seed give the same model.")] = None,
    target: Annotated[Optional[str], typer.Option(help="Price column to forecast: close or open.")] = None,
    target_transform: Annotated[Optional[TargetTransform], typer.Option(help="log-return (default: 0 means no change) or level.")] = None,
    features: Annotated[Optional[str], typer.Option(help="Comma-separated inputs: close,open,high,low,volume,return,log_volume,range.")] = None,
    units: Annotated[Optional[str], typer.Option(help="Comma-separated units per recurrent layer, e.g. 64,32.")] = None,
    dropout: Annotated[Optional[float], typer.Option(help="Dropout after each recurrent layer.")] = None,
    bidirectional: Annotated[Optional[bool], typer.Option("--bidirectional/--unidirectional", help="Bidirectional first layer.")] = None,
    start: Annotated[Optional[str], typer.Option(help="Train on bars from this date (YYYY-MM-DD).")] = None,
    end: Annotated[Optional[str], typer.Option(help="Train on bars up to this date.")] = None,
    adjust: Annotated[Optional[Adjust], typer.Option(help="Price adjustment to train on.")] = None,
    quiet: Annotated[bool, quiet_option("No progress output.")] = False,
    fail_fast: FailFastFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Train a recurrent network per ticker and save it to the model registry."""
    from forecast.executors import SerialExecutor
    from forecast.jobs import train_one
    from forecast.training import progress_mode

    overrides = {
        "arch": arch.value if arch else None, "lookback": lookback, "horizon": horizon, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "seed": seed, "target": target,
        "transform": target_transform.value if target_transform else None, "features": features, "units": units,
        "dropout": dropout, "bidirectional": bidirectional, "start": start, "end": end,
        "adjust": adjust.value if adjust else None,
    }
    settings = state.app_config(config)  # forecast.toml (or --config): top-level adjust and levels, [train]
    cfg = settings.train_config(overrides, preset=preset.value)
    workspace = state.workspace()
    progress = "none" if as_json else progress_mode(quiet)

    def describe(outcome) -> None:
        if not outcome.ok:
            echo_error(f"{outcome.item}: {outcome.error}")
        elif not as_json:
            r = _train_row(outcome.value)
            typer.echo(f"{r['id']}: trained on {r['data_range'][0]}..{r['data_range'][1]}, best val_loss {r['best_val_loss']:.4f} "
                       f"(epoch {r['best_epoch']}), val RMSE {r['val_rmse']:.2f} vs naive {r['val_naive_rmse']:.2f}, {r['seconds']:.1f}s")

    outcomes = SerialExecutor(fail_fast).map(lambda t: train_one(workspace, t, cfg, progress, settings.levels), tickers, on_done=describe)
    finish(outcomes, [_train_row(o.value) for o in outcomes if o.ok], as_json)



def _train_row(result) -> dict:
    card = result.card
    return {"id": card.id, "ticker": card.ticker, "data_range": list(card.data_range),
            "best_val_loss": card.validation["val_loss"], "best_epoch": card.validation["best_epoch"],
            "val_rmse": card.validation["rmse"], "val_naive_rmse": card.validation["naive_rmse"],
            "seconds": card.train_seconds}


@models_app.command("list")
def models_list(as_json: JsonFlag = False) -> None:
    """List trained models, newest last."""
    registry = state.registry()
    summaries = sorted(registry.summaries(), key=lambda s: s["created_at"])
    skipped = len(registry.ids()) - len(summaries)
    if skipped:
        typer.echo(f"warning: {skipped} model folder(s) have an unreadable metadata.json; see: forecast doctor", err=True)
    if as_json:
        emit_json(summaries)
        return
    if not summaries:
        typer.echo("no models yet; try: forecast train 600519.SH")
    for s in summaries:
        mark = "*" if s["latest"] else " "
        rmse = "-" if s["val_rmse"] is None else f"{s['val_rmse']:.2f}"
        typer.echo(f"{mark} {s['id']}  {s['data_range'][0]}..{s['data_range'][1]}  h={s['horizon']}  val RMSE {rmse}")


@models_app.command("show")
def models_show(model_id: Annotated[str, typer.Argument(help="Model id (see forecast models list).")], as_json: JsonFlag = False) -> None:
    """Show a model's configuration, data range, validation metrics and versions."""
    meta = state.registry().metadata(model_id)
    if as_json:
        emit_json(meta)
        return
    brief = {k: v for k, v in meta.items() if k not in ("history", "scaling")}
    typer.echo(json.dumps(brief, indent=2, ensure_ascii=False))


@models_app.command("rm")
def models_rm(model_id: Annotated[str, typer.Argument(help="Model id to delete.")]) -> None:
    """Delete a model from the registry."""
    state.registry().remove(model_id)
    typer.echo(f"removed {model_id}")
