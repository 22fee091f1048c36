"""Universe models on the command line: ``rank``, and the global branches of ``train``, ``predict`` and ``backtest``.

``train --preset global``, ``predict`` for tickers with no model of their own
(or ``--model global``) and ``backtest`` with cross-sectional models land
here, so the per-ticker commands keep one line each for them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from forecast.choices import ModelKind
from forecast.cli._options import (
    JsonFlag,
    company_names,
    echo_line,
    echo_table,
    emit_json,
    fail,
    out_option,
    resolve_targets,
    universe_option,
)
from forecast.cli._state import state
from forecast.errors import ExitCode


def rank(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers to rank, or --universe NAME.")] = None,
    universe: Annotated[Optional[str], universe_option("Rank every member of a universe today.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Global model id (default: the universe's latest global model).")] = None,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Rank by the expected return over this many trading days (default: the model's horizon).")] = None,
    top: Annotated[Optional[int], typer.Option(min=1, help="Show only the best N.")] = None,
    out: Annotated[Optional[Path], out_option("Write the whole ranking to this CSV file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rank tickers by the global model's expected return over the horizon, with its 80 % interval."""
    from forecast.atomic import is_stdout, write_user_output
    from forecast.formatting import format_number, format_percent
    from forecast.maths.intervals import level_label, preferred_level
    from forecast.workflow.serving import universe_model
    from forecast.workflow.universe_jobs import predict_batch

    targets = resolve_targets(tickers, universe)
    card = universe_model(state.workspace(), model, targets.universe)
    steps = horizon or card.horizon
    if steps > card.horizon:
        fail(f"--horizon {steps} is beyond the model's horizon ({card.horizon} days)", ExitCode.USAGE)
    batch = predict_batch(state.workspace(), targets.tickers, card)
    names = company_names()
    rows = []
    for position, item in enumerate(_by_step(batch, steps), 1):
        point = item.result.points[steps - 1]
        level = preferred_level(point.intervals)
        lo, hi = point.intervals[level]
        close = item.result.last_close
        rows.append({"rank": position, "ticker": item.ticker, "name": names.get(item.ticker), "last_date": item.result.last_date,
                     "last_close": close, "horizon": steps, "expected_return": point.value / close - 1,
                     "interval": [lo / close - 1, hi / close - 1], "interval_level": float(level), "score": item.score,
                     "trained_on_ticker": bool(item.result.summary.trained_on_ticker)})
    skipped = [{"ticker": t, "error": str(e)} for t, e in sorted(batch.problems.items())]
    if out is not None:
        import pandas as pd

        flat = [{**{k: v for k, v in r.items() if k != "interval"}, "low": r["interval"][0], "high": r["interval"][1]}
                for r in rows]
        write_user_output(out, pd.DataFrame(flat).to_csv(index=False).encode("utf-8"))
    shown = rows[:top] if top else rows
    if as_json:
        emit_json({"model_id": card.id, "universe": card.universe, "horizon": steps, "ranking": shown, "skipped": skipped})
        return
    if not is_stdout(out):  # --out -: the CSV is what stdout carries
        echo_line(f"global model {card.id} (universe {card.universe}, validation Rank IC {_signed(card.validation.get('rank_ic'))}); "
                  f"{len(rows)} ranked by expected {steps}-day return")
        shown_level = level_label(rows[0]["interval_level"]) if rows else "80 %"
        echo_table(["#", "ticker", "name", "last close", "expected", f"{shown_level} range"],
                   [[r["rank"], r["ticker"], r["name"] or "", format_number(r["last_close"]), format_percent(r["expected_return"], sign=True),
                     f"{format_percent(r['interval'][0], sign=True)} .. {format_percent(r['interval'][1], sign=True)}"] for r in shown],
                   align="rllrrr")
    for problem in skipped:
        echo_line(f"skipped {problem['ticker']}: {problem['error']}", err=True)
    if not rows:
        raise typer.Exit(int(ExitCode.ALL_FAILED) if skipped else 0)


def _signed(value) -> str:
    """A score such as +0.0123, or "-" when there is none (no validation day had two tickers to rank)."""
    return f"{value:+.4f}" if isinstance(value, (int, float)) and value == value and abs(value) != float("inf") else "-"


def _by_step(batch, steps: int):
    """The forecasts sorted by expected return at ``steps`` (highest first, ties by ticker)."""
    return sorted(batch.forecasts.values(), key=lambda f: (-(f.result.points[steps - 1].value / f.result.last_close), f.ticker))


def train_global_command(targets, epochs: int | None, seed: int | None, lookback: int | None, horizon: int | None,
                         quiet: bool, as_json: bool) -> None:
    """``train --universe NAME --preset global``: one network for the universe."""
    from forecast.models.pooled.model import GlobalSettings
    from forecast.progress import progress_mode
    from forecast.workflow.universe_jobs import train_universe

    if targets.universe is None:
        fail("--preset global trains one model for a universe: add --universe NAME (e.g. csi300, stored)", ExitCode.USAGE)
    overrides: dict[str, Any] = {k: v for k, v in {"epochs": epochs, "seed": seed, "lookback": lookback, "horizon": horizon}.items() if v is not None}
    settings = dataclasses.replace(GlobalSettings(levels=state.app_config(None).levels), **overrides)
    result = train_universe(state.workspace(), targets.universe, targets.tickers, settings, progress_mode(quiet, as_json))
    card = result.card
    # members with no complete training window (too short, or stored only after the training cut): named, not silently dropped
    left_out = sorted(set(targets.tickers) - set(card.tickers))
    if as_json:
        emit_json({**card.summary(), "train_seconds": card.train_seconds, "windows_per_second": card.windows_per_second,
                   "validation": card.validation, "data": card.data, "left_out": left_out})
        return
    echo_line(f"{card.id}: one network for {len(card.tickers)} tickers of {card.universe}, data {card.data_range[0]}.."
              f"{card.data_range[1]}: training labels to {card.data['train_cut']}, validation "
              f"{card.data['validation'][0]}..{card.data['validation'][1]}: "
              f"Rank IC {_signed(card.validation.get('rank_ic'))} at step {card.horizon} (epoch {card.validation['best_epoch']}), "
              f"{card.windows_per_second:,.0f} windows/s, {card.train_seconds:.0f}s")
    if left_out:
        shown = ", ".join(left_out[:10]) + (f" and {len(left_out) - 10} more" if len(left_out) > 10 else "")
        echo_line(f"left out {len(left_out)} with no complete training window (too little history before the training cut, "
                  f"or nothing stored): {shown}; the network can still forecast them once their history is long enough")


def is_cross_sectional(models: list[str], split: str | None = None) -> bool:
    """``backtest`` ranks the universe instead of forecasting each ticker when a model only a cross-section knows is named,
    or a fixed ``--split`` (which only the cross-sectional backtest has) is given."""
    from forecast.evaluation.cross_backtest import CROSS_ONLY

    return split is not None or any(m in CROSS_ONLY for m in models)


def backtest_cross_command(targets, models: list[str], test_days: int, refit_every: int | None, horizon: int,
                           split: str | None, epochs: int | None, quiet: bool, as_json: bool) -> None:
    """``backtest --universe NAME --models global,momentum,...``: how well each model ranks the universe."""
    from forecast.evaluation.cross_backtest import DEFAULT_REFIT_EVERY, LEARNED, CrossSettings, FixedSplit
    from forecast.models.pooled.model import GlobalSettings
    from forecast.progress import make_progress, progress_mode
    from forecast.workflow.universe_jobs import backtest_universe

    if targets.universe is None:
        fail("a cross-sectional backtest ranks a universe: add --universe NAME", ExitCode.USAGE)
    fixed = None
    if split:
        parts = [p.strip() for p in split.split(",")]
        if len(parts) != 5:
            fail("--split takes five dates: TRAIN_END,VALID_START,VALID_END,TEST_START,TEST_END", ExitCode.USAGE)
        fixed = FixedSplit(*parts)
    refit_every = refit_every or DEFAULT_REFIT_EVERY
    network = GlobalSettings(horizon=horizon) if not epochs else GlobalSettings(horizon=horizon, epochs=epochs)
    settings = CrossSettings(models=tuple(models), horizon=horizon, test_days=test_days, refit_every=refit_every,
                             fixed=fixed, network=network)
    import math

    learned = [m for m in models if m in LEARNED]
    reporter = make_progress(progress_mode(quiet, as_json))
    reporter.start(len(learned) * (1 if fixed else math.ceil(test_days / refit_every)), "refits")
    try:
        result = backtest_universe(state.workspace(), targets.universe, targets.tickers, settings,
                                   membership=_point_in_time(targets.universe), progress=lambda note: reporter.advance(note))
    finally:
        reporter.close()
    if as_json:
        emit_json({"universe": targets.universe, **result.to_dict()})
        return
    echo_line(f"cross-sectional backtest of {targets.universe} ({len(targets.tickers)} tickers), {result.schedule}, "
              f"test {result.test_range[0]}..{result.test_range[1]}, horizon {horizon}")
    echo_line(format_cross_table(result))
    for note in result.notes:
        echo_line(f"note: {note}", err=True)
    workspace = state.workspace()
    echo_line(f"saved {workspace.cross_backtest_json(targets.universe)} and {workspace.cross_backtest_csv(targets.universe)}")


def _point_in_time(universe: str):
    """The members of an index universe as they were on each day (no survivorship bias); None for other universes."""
    from forecast.data.universe import index_code_for, load_index

    code = index_code_for(universe)
    if code is None:
        return None  # all, watchlist, stored: today's list is the list
    return load_index(state.workspace(), code).on


def format_cross_table(result) -> str:
    from forecast.formatting import format_table

    def number(value: float, digits: int = 4) -> str:
        return "-" if value != value else f"{value:+.{digits}f}"

    rows = [[name, number(m.ic), number(m.rank_ic), number(m.rank_icir, 3), number(m.t_naive, 2), number(m.t_newey_west, 2),
             "-" if m.spread != m.spread else f"{m.spread:+.3%}", "-" if m.turnover != m.turnover else f"{m.turnover:.1%}", m.days]
            for name, m in result.report.models.items()]
    lags = result.report.horizon - 1
    table = format_table(["model", "IC", "Rank IC", "Rank ICIR", "t naive", f"t NW({lags})", "Q5-Q1", "turnover", "days"], rows)
    return (table + f"\nt naive = mean/std x sqrt(days); t NW({lags}) = Newey-West with {lags} lags for the overlapping "
            f"{result.report.horizon}-day labels: the one that counts. A model with no days (naive) ranks nothing.")


def global_forecasts(tickers: list[str], model: str | None, universe: str | None) -> tuple[dict[str, object], dict[str, str]]:
    """The forecasts ``predict`` takes from universe models, in batches: {ticker: ForecastResult or the error}, and why
    each ticker's model serves it (``workflow.serving``'s answer, for every ticker it could answer).

    Tickers a universe model does not serve (and tickers that are no tickers)
    are left to the per-ticker path, which says why when none serves them.
    """
    from forecast.data.tickers import parse_ticker
    from forecast.errors import ForecastError
    from forecast.workflow.serving import Router, Serving
    from forecast.workflow.universe_jobs import predict_batch

    workspace = state.workspace()
    router = Router(workspace, model, universe)
    found: dict[str, object] = {}
    reasons: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for text, served in router.serve_all(tickers).items():
        if isinstance(served, Serving):
            reasons[served.ticker] = served.reason
        if isinstance(served, Serving) and served.kind is ModelKind.GLOBAL:
            groups.setdefault(served.model_id, []).append(served.ticker)
        elif isinstance(served, ForecastError) and router.names_universe_model:
            try:
                found[str(parse_ticker(text))] = served
            except ForecastError:
                continue
    for model_id, wanted in groups.items():
        batch = predict_batch(workspace, wanted, router.universe_models.card(model_id))
        found.update({t: f.result for t, f in batch.forecasts.items()})
        found.update(batch.problems)
    return found, reasons
