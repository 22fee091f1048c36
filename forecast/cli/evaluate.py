"""Evaluation: ``backtest`` networks and baselines walk-forward, ticker by ticker (named, or a universe's members)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import DEFAULT_BACKTEST_MODELS, DEFAULT_REFIT_EVERY, MIN_HISTORY_BARS, Adjust, ExecutorKind
from forecast.cli._options import (
    ExecutorOpt,
    FailFastFlag,
    JsonFlag,
    RayAddressOpt,
    WorkersOpt,
    company_names,
    echo_item_error,
    echo_line,
    executor_for,
    fail,
    finish,
    labelled,
    out_option,
    quiet_option,
    resolve_targets,
    universe_option,
)
from forecast.cli._state import state
from forecast.errors import ExitCode


def backtest(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers to backtest (stored with forecast fetch), or --universe NAME.")] = None,
    universe: Annotated[Optional[str], universe_option("Backtest every member of a universe today (stored with forecast fetch --universe NAME).")] = None,
    models: Annotated[str, typer.Option(help="Comma-separated: default, tutorial, tutorial-gru, default-lstm, naive, drift, ma, maK, linear, garch, ets. "
                                             "With --universe and any of global, momentum, momentum_20, reversal, lightgbm: a "
                                             "cross-sectional backtest (IC, Rank IC, quintile spread) of those plus linear and naive.")] = ",".join(DEFAULT_BACKTEST_MODELS),
    test_days: Annotated[int, typer.Option(min=1, help="Walk forward through this many final trading days.")] = 250,
    refit_every: Annotated[Optional[int], typer.Option(min=1, help="Refit every model after this many origins "
                                                                    "(default 20 per ticker, 60 cross-sectional).")] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Trading days forecast from each origin; each step is scored.")] = 5,
    rolling: Annotated[Optional[int], typer.Option(min=MIN_HISTORY_BARS, help="Train on the last W bars only (default: expanding window).")] = None,
    expanding: Annotated[bool, typer.Option("--expanding", help="Train on all bars up to each origin (the default).")] = False,
    target: Annotated[str, typer.Option(help="Price column to forecast: close or open.")] = "close",
    adjust: Annotated[Adjust, typer.Option(help="Price adjustment of the bars.")] = Adjust.QFQ,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Override the networks' maximum epochs (e.g. for a quick look).")] = None,
    units: Annotated[Optional[str], typer.Option(help="Override the networks' units per layer, e.g. 16.")] = None,
    lookback: Annotated[Optional[int], typer.Option(min=1, help="Override the networks' lookback.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Cross-sectional only: a fixed split instead of walk-forward, "
                                                      "TRAIN_END,VALID_START,VALID_END,TEST_START,TEST_END.")] = None,
    out: Annotated[Optional[Path], out_option("Write the JSON result here, and the per-origin forecasts beside it as .csv (one ticker only).")] = None,
    quiet: Annotated[bool, quiet_option("No progress output (refits done out of the total; tickers done, with several).")] = False,
    fail_fast: FailFastFlag = False,
    executor: ExecutorOpt = ExecutorKind.LOCAL,
    workers: WorkersOpt = 1,
    ray_address: RayAddressOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Walk-forward backtest of networks and baselines per ticker (or --universe NAME), scored per horizon step against naive."""
    from forecast.atomic import is_stdout, write_user_output, writes_in_place
    from forecast.evaluation.backtest import format_table
    from forecast.jsonio import dumps
    from forecast.progress import SilentProgress, make_progress, progress_mode
    from forecast.workflow.executors import advancing
    from forecast.workflow.jobs import BacktestJob, BacktestSettings

    if expanding and rolling:
        fail("choose --expanding or --rolling W, not both", ExitCode.USAGE)
    if out is not None and (universe is not None or len(tickers or []) > 1):
        fail("--out takes one ticker; every backtest is also saved under backtests/<TICKER>/", ExitCode.USAGE)
    targets = resolve_targets(tickers, universe)
    chosen = [m.strip() for m in models.split(",") if m.strip()]
    from forecast.cli.ranking import backtest_cross_command, is_cross_sectional

    if is_cross_sectional(chosen, split):
        return backtest_cross_command(targets, chosen, test_days, refit_every, horizon, split, epochs, quiet, as_json)
    refit_every = refit_every or DEFAULT_REFIT_EVERY
    runner = executor_for(executor, workers, ray_address, fail_fast)
    overrides = {k: v for k, v in {"epochs": epochs, "units": units, "lookback": lookback}.items() if v is not None}
    settings = BacktestSettings(models=tuple(m.strip() for m in models.split(",") if m.strip()), test_days=test_days,
                                refit_every=refit_every, horizon=horizon, window=rolling, target=target,
                                adjust=adjust.value, levels=state.app_config(None).levels, network_overrides=overrides)
    workspace = state.workspace()
    names = company_names()  # shown beside each code; null in JSON when the listings do not know it
    mode = progress_mode(quiet, as_json)
    # one ticker's refits, restarted for each ticker; only where the refits run in this process
    job = BacktestJob(workspace, settings, None if runner.parallel else make_progress(mode))

    def describe(outcome) -> None:
        if not outcome.ok:
            echo_item_error(outcome.item, str(outcome.error))
        elif not as_json and not is_stdout(out):  # --out -: the JSON is what stdout carries
            result = outcome.value
            if names.get(result.ticker):
                echo_line(labelled(result.ticker, names))
            echo_line(format_table(result))
            echo_line(f"saved {workspace.backtest_json(result.ticker)} and {workspace.backtest_csv(result.ticker)}")

    items = targets.tickers
    done = make_progress(mode) if len(items) > 1 else SilentProgress()  # tickers done, above each one's refits
    done.start(len(items), "backtest")
    try:
        outcomes = runner.map(targets.stored_only(job), items, on_done=advancing(done, describe))
    finally:
        done.close()
    if out is not None and outcomes and outcomes[0].ok:  # the JSON at --out, the per-origin CSV beside it (never the one over the other)
        result = outcomes[0].value
        json_out = out if out.suffix.lower() != ".csv" else out.with_suffix(".json")
        beside = not writes_in_place(json_out)  # no CSV beside stdout, a FIFO or a device: backtests/<TICKER>/latest.csv has it
        write_user_output(json_out, dumps(_row(result, names)).encode("utf-8"))
        if beside:
            write_user_output(json_out.with_suffix(".csv"), result.forecasts_frame().to_csv(index=False).encode("utf-8"))
    finish(outcomes, [_row(o.value, names) for o in outcomes if o.ok], as_json, one_object=len(items) == 1)


def _row(result, names: dict[str, str]) -> dict:
    """The backtest's JSON, with the company's name (null when unknown)."""
    return {**result.to_dict(), "name": names.get(result.ticker)}
