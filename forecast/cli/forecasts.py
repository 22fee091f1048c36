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
    from forecast.progress import progress_mode
    from forecast.workflow.forecasting import PredictPlan

    targets = resolve_targets(tickers, universe)
    runner = executor_for(executor, workers, ray_address, fail_fast)
    names = company_names()  # shown beside each code; null in JSON when the listings do not know it
    plan = PredictPlan(state.workspace(), targets.tickers, model, horizon, state.app_config(None).levels, targets.universe)
    outcomes = plan.run(runner, fail_fast, targets.stored_only, progress_mode(quiet, as_json),
                        lambda outcome: _describe(outcome, plan, names, out, as_json))
    results = [o.value for o in outcomes if o.ok and o.value is not None]
    if out is not None and results:
        _write_csv(out, results)
    rows = [{**r.to_dict(), "name": names.get(r.ticker), "model_choice": plan.reason(r)} for r in results] if as_json else []
    finish(outcomes, rows, as_json, one_object=len(plan.tickers) == 1)  # the rows are printed under --json alone


def _describe(outcome, plan, names: dict[str, str], out: Path | None, as_json: bool) -> None:
    """One ticker's forecast as it is done: its error line, or its model and table (not under --json or --out -)."""
    import logging

    from forecast.atomic import is_stdout
    from forecast.formatting import format_number
    from forecast.maths.intervals import level_label

    if not outcome.ok:
        echo_error(f"{outcome.item}: {outcome.error}")
        return
    r = outcome.value
    reason = plan.reason(r)
    logging.getLogger("forecast.predict").info(
        "%s: %d-day forecast after %s by %s (%s), %s on %s bars, in %.2fs", r.ticker, len(r.points), r.last_date,
        r.model_id, reason, r.summary.kind or "model", r.summary.adjust or "?", outcome.seconds)
    if not as_json and not is_stdout(out):  # --out -: the CSV is what stdout carries
        apart = "" if r.of_record else f"; kept apart: {r.ticker}'s forecast of record (plot, report, run) stays its model in use's"
        echo_line(f"{labelled(r.ticker, names)}: model {r.model_id} ({reason}); last {r.target} {r.last_value:.2f} on {r.last_date}{apart}")
        levels_shown = r.levels  # narrowest first
        headers = ["date", r.target] + [f"{level_label(lv)} {side}" for lv in levels_shown for side in ("low", "high")]
        echo_table(headers, [[p.date, format_number(p.value)] + [format_number(p.intervals[lv][i]) for lv in levels_shown for i in (0, 1)]
                             for p in r.points])


def _write_csv(out: Path, results: list) -> None:
    import pandas as pd

    from forecast.atomic import write_user_output

    write_user_output(out, pd.concat([r.to_frame() for r in results]).to_csv(index=False).encode("utf-8"))
