"""Forecasts: ``predict`` the next trading days from each ticker's model, with intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import ExecutorKind
from forecast.cli._options import (
    ExecutorOpt,
    FailFastFlag,
    JsonFlag,
    RayAddressOpt,
    WorkersOpt,
    company_names,
    echo_error,
    echo_line,
    echo_table,
    executor_for,
    finish,
    labelled,
    model_option,
    out_option,
    quiet_option,
    resolve_targets,
    universe_option,
)
from forecast.cli._state import state


def predict(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers to forecast, or --universe NAME.")] = None,
    universe: Annotated[Optional[str], universe_option("Forecast every member of a universe today (stored with forecast fetch --universe NAME).")] = None,
    model: Annotated[Optional[str], model_option("Model id, or a baseline (naive, drift, ma, linear, garch, ets); default: the ticker's "
                                                 "pinned model (forecast models use), else its latest.")] = None,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Trading days to show (at most the model's horizon).")] = None,
    out: Annotated[Optional[Path], out_option("Write the forecast rows to this CSV file.")] = None,
    quiet: Annotated[bool, quiet_option("No progress output (tickers done, with several tickers).")] = False,
    fail_fast: FailFastFlag = False,
    executor: ExecutorOpt = ExecutorKind.LOCAL,
    workers: WorkersOpt = 1,
    ray_address: RayAddressOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Forecast the next trading days after the last stored bar, with prediction intervals (tickers or --universe NAME)."""
    import logging

    from forecast.atomic import is_stdout, write_user_output
    from forecast.formatting import format_number
    from forecast.maths.intervals import level_label
    from forecast.models.registry import CHOSEN
    from forecast.progress import SilentProgress, make_progress, progress_mode
    from forecast.workflow.executors import SerialExecutor, advancing
    from forecast.workflow.jobs import PredictJob

    targets = resolve_targets(tickers, universe)
    runner = executor_for(executor, workers, ray_address, fail_fast)
    levels = state.app_config(None).levels
    names = company_names()  # shown beside each code; null in JSON when the listings do not know it
    registry = state.registry()
    reasons: dict[str, str] = {}  # ticker -> why its model was used: --model, pinned or latest
    log = logging.getLogger("forecast.predict")

    from forecast.cli.ranking import global_forecasts
    from forecast.data.tickers import parse_ticker

    batched, served_because = global_forecasts(targets.tickers, model, targets.universe)  # one batch per universe model

    def from_batch(ticker: str):
        found = batched[key_of(ticker) or ticker]
        if isinstance(found, Exception):
            raise found
        return _cut(found, horizon)

    def key_of(ticker: str) -> str | None:
        try:
            return str(parse_ticker(ticker))
        except Exception:  # no ticker: the per-ticker job says why, on its own line
            return None

    def describe(outcome) -> None:
        if not outcome.ok:
            echo_error(f"{outcome.item}: {outcome.error}")
            return
        r = outcome.value
        reasons[r.ticker] = served_because.get(r.ticker) or (CHOSEN if model else registry.reason_for(r.ticker, r.model_id))
        log.info("%s: %d-day forecast after %s by %s (%s), %s on %s bars, in %.2fs", r.ticker, len(r.points), r.last_date,
                 r.model_id, reasons[r.ticker], r.summary.kind or "model", r.summary.adjust or "?",
                 outcome.seconds)
        if not as_json and not is_stdout(out):  # --out -: the CSV is what stdout carries
            echo_line(f"{labelled(r.ticker, names)}: model {r.model_id} ({reasons[r.ticker]}); last {r.target} {r.last_value:.2f} on {r.last_date}")
            levels_shown = r.levels  # narrowest first
            headers = ["date", r.target] + [f"{level_label(lv)} {side}" for lv in levels_shown for side in ("low", "high")]
            echo_table(headers, [[p.date, format_number(p.value)] + [format_number(p.intervals[lv][i]) for lv in levels_shown for i in (0, 1)]
                                 for p in r.points])

    items = targets.tickers
    in_batch = [t for t in items if key_of(t) in batched]  # answered by the global model's batch, here
    own = [t for t in items if key_of(t) not in batched]  # each by its own model, through the executor
    done = make_progress(progress_mode(quiet, as_json)) if len(items) > 1 else SilentProgress()
    done.start(len(items), "predict")
    try:
        report = advancing(done, describe)
        finished = SerialExecutor(fail_fast).map(targets.stored_only(from_batch), in_batch, on_done=report)
        if own and not (fail_fast and any(not o.ok for o in finished)):
            job = PredictJob(state.workspace(), model, horizon, tuple(levels))
            finished += runner.map(targets.stored_only(job), own, on_done=report)
    finally:
        done.close()
    order = {t: i for i, t in enumerate(items)}
    outcomes = sorted(finished, key=lambda o: order[o.item])  # the order the user named them
    results = [o.value for o in outcomes if o.ok and o.value is not None]
    if out is not None and results:
        import pandas as pd

        write_user_output(out, pd.concat([r.to_frame() for r in results]).to_csv(index=False).encode("utf-8"))
    finish(outcomes, [{**r.to_dict(), "name": names.get(r.ticker), "model_choice": reasons.get(r.ticker)} for r in results],
           as_json, one_object=len(items) == 1)


def _cut(result, horizon: int | None):
    """The first ``horizon`` days of a forecast (all of them without --horizon)."""
    if horizon is not None and horizon < len(result.points):
        result.points = result.points[:horizon]
    return result
