"""Evaluation: ``backtest`` networks and baselines walk-forward, ticker by ticker (named, or a universe's members)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import DEFAULT_BACKTEST_MODELS, DEFAULT_PORTFOLIO_MODELS, MIN_HISTORY_BARS, Adjust, ExecutorKind
from forecast.cli._options import (
    ExecutorOpt,
    FailFastFlag,
    JsonFlag,
    RayAddressOpt,
    WorkersOpt,
    company_names,
    echo_item_error,
    echo_line,
    emit_json,
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
    models: Annotated[Optional[str], typer.Option(help="Comma-separated: default, tutorial, tutorial-gru, default-lstm, naive, drift, ma, maK, linear, garch, ets "
                                                       f"(default: {','.join(DEFAULT_BACKTEST_MODELS)}). "
                                                       "With --universe and any of global, momentum, momentum_20, reversal, lightgbm, or --portfolio: a "
                                                       "cross-sectional backtest (IC, Rank IC, quintile spread; with global, also its "
                                                       "intervals' coverage) of those plus linear and naive "
                                                       "(default with --portfolio: global,momentum,reversal,linear).")] = None,
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
    portfolio: Annotated[bool, typer.Option("--portfolio", help="With --universe: also trade each model's ranking as a top-k portfolio "
                                                              "(next day's open, whole lots, costs, A-share limits) against the universe.")] = False,
    top_k: Annotated[Optional[int], typer.Option(min=1, help="--portfolio: names held, equal weight (default 20, or [portfolio] top_k).")] = None,
    rebalance_every: Annotated[Optional[int], typer.Option(min=1, help="--portfolio: trading days between rebalances (default 5).")] = None,
    max_drop: Annotated[Optional[int], typer.Option(min=1, help="--portfolio: most names replaced per rebalance (default 5).")] = None,
    capital: Annotated[Optional[float], typer.Option(help="--portfolio: starting capital (default 1,000,000).")] = None,
    out: Annotated[Optional[Path], out_option("Write the JSON result here, and the per-origin forecasts beside it as .csv (one ticker only).")] = None,
    quiet: Annotated[bool, quiet_option("No progress output (refits done out of the total; tickers done, with several).")] = False,
    fail_fast: FailFastFlag = False,
    executor: ExecutorOpt = ExecutorKind.LOCAL,
    workers: WorkersOpt = 1,
    ray_address: RayAddressOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Walk-forward backtest of networks and baselines per ticker (or --universe NAME), scored per horizon step against naive."""
    from forecast.progress import progress_mode
    from forecast.workflow.batches import backtest_settings, backtest_tickers
    from forecast.workflow.universe_plans import is_cross_sectional

    if expanding and rolling:
        fail("choose --expanding or --rolling W, not both", ExitCode.USAGE)
    if out is not None and universe is not None:
        fail(f"--out takes one ticker; a universe's backtest is saved under backtests/@{universe}/ (or use --json)", ExitCode.USAGE)
    if out is not None and len(tickers or []) > 1:
        fail("--out takes one ticker; every backtest is also saved under backtests/<TICKER>/", ExitCode.USAGE)
    if split is not None and refit_every is not None:
        fail("--split trains once and scores its named test period; --refit-every belongs to the walk-forward", ExitCode.USAGE)
    targets = resolve_targets(tickers, universe)
    chosen = [m.strip() for m in (models or ",".join(DEFAULT_PORTFOLIO_MODELS if portfolio else DEFAULT_BACKTEST_MODELS)).split(",") if m.strip()]
    trading = {"top_k": top_k, "rebalance_every": rebalance_every, "max_drop": max_drop, "capital": capital}
    if not portfolio and any(v is not None for v in trading.values()):
        fail("--top-k, --rebalance-every, --max-drop and --capital belong to --portfolio", ExitCode.USAGE)
    if portfolio or is_cross_sectional(chosen, split):
        return _backtest_cross(targets, chosen, test_days, refit_every, horizon, split, epochs, quiet, as_json,
                               trading if portfolio else None)
    runner = executor_for(executor, workers, ray_address, fail_fast)
    settings = backtest_settings(chosen, test_days, refit_every, horizon, rolling, target, adjust.value, state.app_config(None).levels,
                                 {"epochs": epochs, "units": units, "lookback": lookback})
    names = company_names()  # shown beside each code; null in JSON when the listings do not know it
    outcomes = backtest_tickers(state.workspace(), settings, targets.tickers, runner, targets.stored_only, progress_mode(quiet, as_json),
                                lambda outcome: _describe(outcome, names, out, as_json))
    if out is not None and outcomes and outcomes[0].ok:
        _write_out(out, outcomes[0].value, names, as_json)
    finish(outcomes, [_row(o.value, names) for o in outcomes if o.ok], as_json, one_object=len(targets.tickers) == 1)


def _describe(outcome, names: dict[str, str], out: Path | None, as_json: bool) -> None:
    """One ticker's backtest as it is done: its error line, or its table and where it was saved."""
    from forecast.atomic import is_stdout
    from forecast.evaluation.backtest import format_table

    if not outcome.ok:
        echo_item_error(outcome.item, str(outcome.error))
    elif not as_json and not is_stdout(out):  # --out -: the JSON is what stdout carries
        result = outcome.value
        workspace = state.workspace()
        if names.get(result.ticker):
            echo_line(labelled(result.ticker, names))
        echo_line(format_table(result))
        echo_line(f"saved {workspace.backtest_json(result.ticker)} and {workspace.backtest_csv(result.ticker)}")


def _write_out(out: Path, result, names: dict[str, str], as_json: bool = False) -> None:
    """The JSON at --out, the per-origin CSV beside it (never the one over the other)."""
    from forecast.atomic import write_user_output, writes_in_place
    from forecast.jsonio import dumps

    json_out = out if out.suffix.lower() != ".csv" else out.with_suffix(".json")
    beside = not writes_in_place(json_out)  # no CSV beside stdout, a FIFO or a device: backtests/<TICKER>/latest.csv has it
    write_user_output(json_out, dumps(_row(result, names)).encode("utf-8"))
    if beside:
        write_user_output(json_out.with_suffix(".csv"), result.forecasts_frame().to_csv(index=False).encode("utf-8"))
        if not as_json:  # stdout carries the JSON
            echo_line(f"wrote {json_out} and {json_out.with_suffix('.csv')}")


def _row(result, names: dict[str, str]) -> dict:
    """The backtest's JSON, with the company's name (null when unknown)."""
    return {**result.to_dict(), "name": names.get(result.ticker)}


def _backtest_cross(targets, models: list[str], test_days: int, refit_every: int | None, horizon: int,
                    split: str | None, epochs: int | None, quiet: bool, as_json: bool, trading: dict | None) -> None:
    """``backtest --universe NAME --models global,momentum,...``: how well each model ranks the universe, printed;
    with ``--portfolio`` (``trading``: the flags), what trading each ranking would have done."""
    from forecast.progress import make_progress, progress_mode
    from forecast.workflow.portfolio_plans import portfolio_backtest_universe
    from forecast.workflow.universe_plans import cross_backtest_universe, cross_settings

    settings = cross_settings(targets.universe, models, test_days, refit_every, horizon, split, epochs, state.app_config(None).levels)
    workspace = state.workspace()
    reporter = make_progress(progress_mode(quiet, as_json))
    if trading is None:
        result, traded = cross_backtest_universe(workspace, targets.universe, targets.tickers, settings, reporter), None
    else:
        config = state.app_config(None)
        result, traded = portfolio_backtest_universe(workspace, targets.universe, targets.tickers, settings, reporter,
                                                     config.portfolio, trading, config.costs)
    if as_json:
        emit_json({"universe": targets.universe, **result.to_dict(),
                   **({"portfolio": _portfolio_json(traded)} if traded is not None else {})})
        return
    echo_line(f"cross-sectional backtest of {targets.universe} ({result.tickers} of {len(targets.tickers)} tickers), {result.schedule}, "
              f"test {result.test_range[0]}..{result.test_range[1]}, horizon {horizon}")
    echo_line(_format_cross_table(result))
    for model, scores in result.intervals.items():
        echo_line(_format_intervals(model, scores))
    for note in result.notes:
        echo_line(f"note: {note}", err=True)
    chart = f" and the chart {workspace.cross_backtest_chart(targets.universe)}" if len(result.rank_ic) else ""
    echo_line(f"saved {workspace.cross_backtest_json(targets.universe)}, {workspace.cross_backtest_csv(targets.universe)}{chart}")
    if traded is not None:
        _print_portfolio(traded, targets.universe)


def _portfolio_json(traded) -> dict:
    return {**traded.run, "models": {model: result.to_dict() for model, result in traded.results.items()}}


def _print_portfolio(traded, universe: str) -> None:
    """Each model's portfolio in one row (what following its ranking would have done), then where it was saved."""
    from forecast.formatting import format_table

    workspace = state.workspace()
    first = next(iter(traded.results.values()))
    strategy, costs = first.strategy, first.costs
    echo_line(f"\nportfolio: top {strategy.top_k}, equal weight, rebalanced every {strategy.rebalance_every} days, at most "
              f"{strategy.max_drop} replaced each time; bought and sold at the next day's open in lots of {strategy.lot}, "
              f"from {strategy.capital:,.0f}; commission {costs.commission_bps:g} bp (min {costs.min_commission:g})"
              + (", stamp duty on sells, transfer fee" if costs.stamp_duty else ""))

    def pct(value, sign: bool = True) -> str:
        return "-" if value is None or value != value else (f"{value:+.1%}" if sign else f"{value:.1%}")

    def times(value) -> str:
        return "-" if value is None or value != value else f"{value:.1f}x"

    def num(value) -> str:
        return "-" if value is None or value != value else f"{value:+.2f}"

    rows = []
    for model, result in traded.results.items():
        m = result.metrics
        rows.append([model, pct(m.get("annual_return")), pct(m.get("benchmark_annual_return")), pct(m.get("excess_annual_return")),
                     num(m.get("information_ratio")), pct(m.get("max_drawdown")), times(m.get("annual_turnover")),
                     pct(m.get("cost_drag"), sign=False), pct(m.get("hit_rate"), sign=False), sum(result.blocked.values())])
    echo_line(format_table(["model", "annual", "benchmark", "excess", "IR", "max DD", "turnover/yr", "costs/yr", "hit rate",
                            "blocked"], rows))
    echo_line("excess = annualised mean daily return over the equal-weight universe; IR = its mean / std x sqrt(252); "
              "blocked = trades the limits or a suspension did not allow")
    for note in traded.notes:
        echo_line(f"note: {note}", err=True)
    echo_line(f"saved {workspace.portfolio_json(universe)}, {workspace.portfolio_csv(universe)} and "
              f"{workspace.portfolio_chart(universe)}")


def _format_cross_table(result) -> str:
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


def _format_intervals(model: str, scores: dict) -> str:
    """A model's bands in the backtest, per level and step: coverage as fitted and recalibrated, where the misses fall,
    how many tickers keep within 5 points of nominal, and what the recalibration did to the Winkler score."""
    from forecast.formatting import format_table
    from forecast.maths.intervals import level_label

    def pct(value) -> str:
        return "-" if value is None else f"{value:.1%}"

    rows = []
    for key, cells in scores["levels"].items():
        for k, (fixed, moved) in enumerate(zip(cells["coverage"], cells["adaptive_coverage"])):
            ratio = "-" if not cells["winkler"][k] or cells["adaptive_winkler"][k] is None else f"{cells['adaptive_winkler'][k] / cells['winkler'][k]:.3f}"
            rows.append([level_label(key) if k == 0 else "", k + 1, f"{pct(fixed)} -> {pct(moved)}",
                         f"{pct(cells['adaptive_below'][k])} / {pct(cells['adaptive_above'][k])}",
                         f"{pct(cells['within_5'][k])} -> {pct(cells['adaptive_within_5'][k])}",
                         "-" if cells["adaptive_winkler"][k] is None else f"{cells['adaptive_winkler'][k]:.2%}", ratio])
    table = format_table(["level", "step", "coverage", "below / above", "tickers within ±5 pts", "Winkler", "vs as fitted"], rows)
    return (f"\n{model}'s intervals on the test days ({scores['tickers']} tickers, {scores['forecasts']:,} forecasts; volatility "
            f"{', '.join(scores['scale'])}): as fitted -> recalibrated by each ticker's tracker (eta {scores['eta']:g}), "
            f"which runs on across refits, as predict's does across retrained models\n{table}\nbelow / above: outcomes outside the recalibrated band on each side; "
            f"Winkler: the recalibrated band's mean interval score, as a share of the price (lower is better), and its ratio "
            f"to the band as fitted")
