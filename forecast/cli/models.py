"""Models: ``train`` (one network per ticker, into the registry) and ``models list|show|use|rm``.

The model ``predict`` and ``run`` use for a ticker is its pinned one
(``models use MODEL_ID``), else its latest; every command here says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import Adjust, Arch, ExecutorKind, TargetTransform, TrainPreset
from forecast.cli._options import (
    ExecutorOpt,
    FailFastFlag,
    JsonFlag,
    RayAddressOpt,
    WorkersOpt,
    echo_error,
    echo_line,
    echo_table,
    emit_json,
    executor_for,
    finish,
    quiet_option,
    resolve_targets,
    signed_score,
    universe_option,
)
from forecast.cli._state import state

models_app = typer.Typer(help="List, show, choose and remove trained models.", no_args_is_help=True)
IN_USE_MARK = "*"
IN_USE_LEGEND = f"{IN_USE_MARK} = the model predict and run use for its ticker"
PINNED_LEGEND = " (pinned: chosen with forecast models use)"  # said only when some model is pinned


def train(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers to train on (stored with forecast fetch), or --universe NAME.")] = None,
    universe: Annotated[Optional[str], universe_option("Train on every member of a universe today (stored with forecast fetch --universe NAME).")] = None,
    arch: Annotated[Optional[Arch], typer.Option(help="Recurrent layer: lstm, gru or rnn (SimpleRNN).")] = None,
    preset: Annotated[TrainPreset, typer.Option(help="default: the tuned, fast model; tutorial: the course exercise; "
                                                    "global: one network for the whole --universe.")] = TrainPreset.DEFAULT,
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
    quiet: Annotated[bool, quiet_option("No progress output (tickers done, epochs).")] = False,
    fail_fast: FailFastFlag = False,
    executor: ExecutorOpt = ExecutorKind.LOCAL,
    workers: WorkersOpt = 1,
    ray_address: RayAddressOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Train a recurrent network per ticker (or per member of --universe NAME) and save it to the model registry."""
    from forecast.progress import progress_mode
    from forecast.workflow.batches import InUseNotes, map_with_progress
    from forecast.workflow.jobs import TrainJob

    overrides = {
        "arch": arch.value if arch else None, "lookback": lookback, "horizon": horizon, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "seed": seed, "target": target,
        "transform": target_transform.value if target_transform else None, "features": features, "units": units,
        "dropout": dropout, "bidirectional": bidirectional, "start": start, "end": end,
        "adjust": adjust.value if adjust else None,
    }
    targets = resolve_targets(tickers, universe)
    if preset is TrainPreset.GLOBAL:
        return _train_global(targets, epochs, seed, lookback, horizon, quiet, as_json)
    runner = executor_for(executor, workers, ray_address, fail_fast)
    settings = state.app_config(config)  # forecast.toml (or --config): top-level adjust and levels, [train]
    cfg = settings.train_config(overrides, preset=preset.value)
    progress = progress_mode(quiet, as_json)  # each fit reports its epochs in this mode
    notes = InUseNotes(state.workspace(), targets.tickers)
    # epoch bars only where the fits run in this process
    job = TrainJob(state.workspace(), cfg, tuple(settings.levels), "none" if runner.parallel else progress)
    outcomes = map_with_progress(runner, targets.stored_only(job), targets.tickers, progress, "train",
                                 lambda outcome: _describe_trained(outcome, notes, as_json))
    rows = [_train_row(o.value) for o in outcomes if o.ok]
    finish(outcomes, [{**r, "note": notes.get(r["id"])} for r in rows], as_json)


def _describe_trained(outcome, notes, as_json: bool) -> None:
    """One ticker's new model as it is done: its error line, or its validation line and the note beside the model in use."""
    if not outcome.ok:
        echo_error(f"{outcome.item}: {outcome.error}")
        return
    note = notes.note(outcome.item, outcome.value.card)
    if not as_json:
        r = _train_row(outcome.value)
        echo_line(f"{r['id']}: trained on {r['data_range'][0]}..{r['data_range'][1]}, best val_loss {r['best_val_loss']:.4f} "
                  f"(epoch {r['best_epoch']}), val RMSE {r['val_rmse']:.2f} vs naive {r['val_naive_rmse']:.2f}, {r['seconds']:.1f}s")
    if note:
        echo_line(f"note: {note}", err=True)


def _train_global(targets, epochs: int | None, seed: int | None, lookback: int | None, horizon: int | None,
                  quiet: bool, as_json: bool) -> None:
    """``train --universe NAME --preset global``: one network for the universe (``workflow.universe_plans``), printed."""
    from forecast.progress import progress_mode
    from forecast.workflow.universe_plans import train_global_model

    result, left_out = train_global_model(state.workspace(), targets.universe, targets.tickers, state.app_config(None).levels,
                                          epochs, seed, lookback, horizon, progress_mode(quiet, as_json))
    card = result.card
    if as_json:
        emit_json({**card.summary(), "train_seconds": card.train_seconds, "windows_per_second": card.windows_per_second,
                   "validation": card.validation, "data": card.data, "left_out": left_out})
        return
    echo_line(f"{card.id}: one network for {len(card.tickers)} tickers of {card.universe}, data {card.data_range[0]}.."
              f"{card.data_range[1]}: training labels to {card.data['train_cut']}, validation "
              f"{card.data['validation'][0]}..{card.data['validation'][1]}: "
              f"Rank IC {signed_score(card.validation.get('rank_ic'))} at step {card.horizon} ({_kept(card)}), "
              f"{card.windows_per_second:,.0f} windows/s, {card.train_seconds:.0f}s")
    if left_out:
        shown = ", ".join(left_out[:10]) + (f" and {len(left_out) - 10} more" if len(left_out) > 10 else "")
        echo_line(f"left out {len(left_out)} with no complete training window (too little history before the training cut, "
                  f"or nothing stored): {shown}; the network can still forecast them once their history is long enough")


def _kept(card) -> str:
    """Which fit the card keeps: epoch 0 of a network with the ridge nested is the ridge alone (no epoch beat it)."""
    epoch = card.validation["best_epoch"]
    return "the nested ridge alone: no trained epoch beat it by a Newey-West t of 2" if epoch == 0 and card.config.get("linear") \
        else f"epoch {epoch}"


def _train_row(result) -> dict:
    card = result.card
    return {"id": card.id, "ticker": card.ticker, "data_range": list(card.data_range),
            "best_val_loss": card.validation["val_loss"], "best_epoch": card.validation["best_epoch"],
            "val_rmse": card.validation["rmse"], "val_naive_rmse": card.validation["naive_rmse"],
            "seconds": card.train_seconds}


@models_app.command("list")
def models_list(
    ticker: Annotated[Optional[str], typer.Argument(help="Only this ticker's models.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List trained models, newest last; * marks the one predict and run use."""
    from forecast.workflow.model_views import model_summaries, models_of

    summaries, skipped = model_summaries(state.workspace())
    if skipped:
        typer.echo(f"warning: {skipped} model folder(s) have an unreadable metadata.json; see: forecast doctor", err=True)
    summaries, universe_models = models_of(state.workspace(), summaries, ticker)
    if as_json:
        emit_json(summaries + universe_models)  # universe models carry their kind (UNIVERSE_MODEL) and their universe
        return
    if not summaries and not universe_models:
        typer.echo(f"no models for {ticker} yet; try: forecast train {ticker}" if ticker
                   else "no models yet; try: forecast train 600519.SH")
        return
    _print_model_tables(summaries, universe_models)


def _print_model_tables(summaries: list[dict], universe_models: list[dict]) -> None:
    """The per-ticker models (* the one in use), then the universe models."""
    from forecast.formatting import format_percent

    if summaries:
        rows = [[(IN_USE_MARK + (" pinned" if s["pinned"] else "")) if s["in_use"] else "", s["id"], s["ticker"],
                 f"{s['data_range'][0]}..{s['data_range'][1]}", s["horizon"],
                 "-" if s["val_rmse"] is None else f"{s['val_rmse']:.2f}", format_percent(s["val_skill_vs_naive"], sign=True)]
                for s in summaries]
        echo_table(["USE", "MODEL", "TICKER", "TRAINED ON", "H", "VAL RMSE", "SKILL"], rows, align="lllllrr")
        typer.echo(IN_USE_LEGEND + (PINNED_LEGEND if any(s["pinned"] for s in summaries) else ""))
    if universe_models:
        typer.echo("universe (global) models: predict uses one for a ticker with no model of its own")
        echo_table(["MODEL", "UNIVERSE", "TICKERS", "TRAINED ON", "H", "VAL RANK IC"],
                   [[g["id"], g["universe"], g["tickers"], f"{g['data_range'][0]}..{g['data_range'][1]}", g["horizon"],
                     "-" if g["validation_rank_ic"] is None else f"{g['validation_rank_ic']:+.4f}"] for g in universe_models],
                   align="llrlrr")


def _global_brief(card: dict) -> str:
    """A universe model's card as ``models show`` prints it: its tickers counted, not listed."""
    return _card_lines({k: v for k, v in card.items() if k != "tickers"} | {"tickers": len(card["tickers"])})


def _card_lines(card: dict, indent: str = "") -> str:
    """A card as aligned ``key: value`` lines, nested tables indented under their key (``--json`` gives the JSON)."""
    width = max((len(str(k)) for k in card), default=0)
    lines = []
    for key, value in card.items():
        if isinstance(value, dict) and value:
            lines.append(f"{indent}{key}:")
            lines.append(_card_lines(value, indent + "  "))
        else:
            shown = (", ".join(str(v) for v in value) if isinstance(value, list)
                     else "-" if value is None or value == {} else value)
            lines.append(f"{indent}{str(key) + ':':<{width + 1}} {shown}")
    return "\n".join(lines)


def _show_universe_model(view, as_json: bool) -> None:
    """A universe model's card; named through a ticker, which ticker it serves and why."""
    served = view.served
    if as_json:
        emit_json(view.universe_card if served is None else {**view.universe_card, "in_use": True, "in_use_because": served.reason})
        return
    if served is not None:
        typer.echo(f"{served.ticker}: predict uses {served.model_id}, the global model of {served.universe} ({served.reason})")
    typer.echo(_global_brief(view.universe_card))


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(metavar="MODEL_ID|TICKER", help="Model id (see forecast models list), "
                                                                        "or a ticker: the model predict and run use for it.")],
    as_json: JsonFlag = False,
) -> None:
    """Show a model's configuration, data range, validation metrics and versions, and whether predict uses it."""
    from forecast.workflow.model_views import model_view

    view = model_view(state.workspace(), model)
    if view.universe_card is not None:
        return _show_universe_model(view, as_json)
    card, choice = view.card, view.choice
    in_use = choice is not None and choice.model_id == card.id
    meta = {**card.to_dict(), "in_use": in_use, "in_use_because": choice.reason if in_use and choice else None}
    if as_json:
        emit_json(meta)
        return
    if in_use and choice is not None:
        typer.echo(f"{card.ticker}: predict and run use {card.id} ({choice.reason})")
    elif choice is not None:
        typer.echo(f"{card.ticker}: predict and run use {choice.model_id} ({choice.reason}), not this one; "
                   f"to switch: forecast models use {card.id}")
    brief = {k: v for k, v in meta.items() if k not in ("history", "scaling", "in_use", "in_use_because")}
    typer.echo(_card_lines(brief))


@models_app.command("use")
def models_use(
    model: Annotated[str, typer.Argument(metavar="MODEL_ID|TICKER", help="The model predict and run should use for its "
                                                                        "ticker; with --latest, a ticker (or any of its models).")],
    latest: Annotated[bool, typer.Option("--latest", help="Unpin: use the ticker's newest model again.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Pin the model that predict and run use for its ticker; --latest goes back to the newest."""
    from forecast.workflow.model_views import pin_model, unpin_model

    if not latest:
        card = pin_model(state.workspace(), model)
        payload = {"ticker": card.ticker, "model_id": card.id, "in_use_because": "pinned"}
        message = (f"{card.ticker}: predict and run now use {card.id} (pinned); "
                   f"back to the newest with: forecast models use {card.ticker} --latest")
    else:
        ticker, previous, choice = unpin_model(state.workspace(), model)
        payload = {"ticker": ticker, "model_id": choice.model_id if choice else None,
                   "in_use_because": choice.reason if choice else None, "unpinned": previous}
        now = f"predict and run use the latest, {choice.model_id}" if choice else f"no model yet; run: forecast train {ticker}"
        message = f"{ticker}: {'unpinned ' + previous + '; ' if previous else 'was not pinned; '}{now}"
    if as_json:
        emit_json(payload)
    else:
        typer.echo(message)


@models_app.command("rm")
def models_rm(model_id: Annotated[str, typer.Argument(help="Model id to delete.")], as_json: JsonFlag = False) -> None:
    """Delete a model from the registry (and its pin, if predict was pinned to it)."""
    from forecast.workflow.housekeeping import remove_model

    pinned_for = remove_model(state.workspace(), model_id)
    if as_json:
        emit_json({"removed": model_id, "was_pinned_for": pinned_for})
        return
    typer.echo(f"removed {model_id}" + (f"; it was pinned for {pinned_for}, which now uses its latest model" if pinned_for else ""))
