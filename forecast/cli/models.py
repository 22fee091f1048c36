"""Models: ``train`` (one network per ticker, into the registry) and ``models list|show|rm``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import Adjust, Arch, Preset, TargetTransform
from forecast.cli._options import JsonFlag, emit_json, quiet_option
from forecast.cli._state import state

models_app = typer.Typer(help="List, show and remove trained models.", no_args_is_help=True)


def _train_config(preset: Preset, config_file: Optional[Path], overrides: dict):
    from forecast.config import build_train_config, read_toml

    if config_file is not None:
        file_options = read_toml(config_file).get("train", {})
    else:
        default_file = state.workspace().config_file
        file_options = read_toml(default_file).get("train", {}) if default_file.is_file() else {}
    return build_train_config(preset.value, file_options, overrides)


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
    as_json: JsonFlag = False,
) -> None:
    """Train a recurrent network per ticker and save it to the model registry."""
    from forecast.training import progress_mode, train_ticker

    overrides = {
        "arch": arch.value if arch else None, "lookback": lookback, "horizon": horizon, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "seed": seed, "target": target,
        "transform": target_transform.value if target_transform else None, "features": features, "units": units,
        "dropout": dropout, "bidirectional": bidirectional, "start": start, "end": end,
        "adjust": adjust.value if adjust else None,
    }
    cfg = _train_config(preset, config, overrides)
    store, registry = state.store(), state.registry()
    results = []
    for ticker in tickers:
        result = train_ticker(store, registry, ticker, cfg, progress="none" if as_json else progress_mode(quiet))
        meta = result.metadata
        results.append({"id": result.model_id, "ticker": meta["ticker"], "data_range": meta["data"]["range"],
                        "best_val_loss": meta["validation"]["val_loss"], "best_epoch": meta["validation"]["best_epoch"],
                        "val_rmse": meta["validation"]["rmse"], "val_naive_rmse": meta["validation"]["naive_rmse"],
                        "seconds": meta["train_seconds"]})
        if not as_json:
            r = results[-1]
            typer.echo(f"{r['id']}: trained on {r['data_range'][0]}..{r['data_range'][1]}, best val_loss {r['best_val_loss']:.4f} "
                       f"(epoch {r['best_epoch']}), val RMSE {r['val_rmse']:.2f} vs naive {r['val_naive_rmse']:.2f}, {r['seconds']:.1f}s")
    if as_json:
        emit_json(results)


@models_app.command("list")
def models_list(as_json: JsonFlag = False) -> None:
    """List trained models, newest last."""
    summaries = sorted(state.registry().summaries(), key=lambda s: s["created_at"])
    if as_json:
        emit_json(summaries)
        return
    if not summaries:
        typer.echo("no models yet; try: forecast train 600519.SH")
    for s in summaries:
        mark = "*" if s["latest"] else " "
        typer.echo(f"{mark} {s['id']}  {s['data_range'][0]}..{s['data_range'][1]}  h={s['horizon']}  val RMSE {s['val_rmse']:.2f}")


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
