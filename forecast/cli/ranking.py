"""Ranking: ``rank`` the tickers of a universe by the global model's expected return (``workflow.forecasting``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.cli._options import (
    JsonFlag,
    company_names,
    echo_line,
    echo_table,
    emit_json,
    out_option,
    resolve_targets,
    signed_score,
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
    tradable: Annotated[bool, typer.Option("--tradable", help="Leave out China names that closed at limit-up or limit-down "
                                                               "on their last day, or are suspended (they are flagged otherwise).")] = False,
    out: Annotated[Optional[Path], out_option("Write the whole ranking to this CSV file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rank tickers by the global model's expected return over the horizon, with its 80 % interval."""
    from forecast.workflow.forecasting import rank_tickers

    targets = resolve_targets(tickers, universe)
    ranking = rank_tickers(state.workspace(), targets.tickers, model, targets.universe, horizon, company_names(), tradable)
    if out is not None:
        _write_csv(out, ranking.rows)
    if as_json:
        emit_json({"model_id": ranking.card.id, "universe": ranking.card.universe, "horizon": ranking.steps,
                   "ranking": ranking.rows[:top] if top else ranking.rows, "skipped": ranking.skipped,
                   **({"left_out": ranking.left_out} if tradable else {})})
    else:
        _print_ranking(ranking, top, out)
    if not ranking.rows:
        raise typer.Exit(int(ExitCode.ALL_FAILED) if ranking.skipped else 0)


def _write_csv(out: Path, rows: list[dict]) -> None:
    import pandas as pd

    from forecast.atomic import write_user_output

    flat = [{**{k: v for k, v in r.items() if k not in ("interval", "flags")}, "low": r["interval"][0], "high": r["interval"][1],
             "flags": " ".join(r["flags"])} for r in rows]
    write_user_output(out, pd.DataFrame(flat).to_csv(index=False).encode("utf-8"))


def _print_ranking(ranking, top: int | None, out: Path | None) -> None:
    from forecast.atomic import is_stdout
    from forecast.formatting import format_number, format_percent
    from forecast.maths.intervals import level_label

    card, rows = ranking.card, ranking.rows
    shown = rows[:top] if top else rows
    if not is_stdout(out):  # --out -: the CSV is what stdout carries
        echo_line(f"global model {card.id} (universe {card.universe}, validation Rank IC {signed_score(card.validation.get('rank_ic'))}); "
                  f"{len(rows)} ranked by expected {ranking.steps}-day return")
        shown_level = level_label(rows[0]["interval_level"]) if rows else "80 %"
        flagged = any(r["flags"] for r in rows)  # the column only where some name is at a limit or suspended
        named = any(r["name"] for r in shown)  # no empty column where no name is known (US tickers, no listings cached)
        echo_table(["#", "ticker", *(["name"] if named else []), "last close", "expected", f"{shown_level} range",
                    *(["flags"] if flagged else [])],
                   [[r["rank"], r["ticker"], *([r["name"] or ""] if named else []), format_number(r["last_close"]),
                     format_percent(r["expected_return"], sign=True),
                     f"{format_percent(r['interval'][0], sign=True)} .. {format_percent(r['interval'][1], sign=True)}",
                     *([" ".join(f.replace("_", "-") for f in r["flags"])] if flagged else [])] for r in shown],
                   align="rl" + ("l" if named else "") + "rrr" + ("l" if flagged else ""))
        apart = [r["ticker"] for r in rows if not r.get("of_record", True)]
        if apart:
            echo_line(f"{len(apart)} ranked ticker(s) have a model of their own ({', '.join(apart[:5])}{' ...' if len(apart) > 5 else ''}): "
                      "this ranking's forecasts of them are kept apart; plot and the report show their own model's")
        if ranking.left_out:
            echo_line(f"--tradable left out {len(ranking.left_out)} name(s) at a price limit or suspended: "
                      + ", ".join(f"{x['ticker']} ({' '.join(x['flags'])})" for x in ranking.left_out[:10])
                      + (" ..." if len(ranking.left_out) > 10 else ""))
    for problem in ranking.skipped:
        echo_line(f"skipped {problem['ticker']}: {problem['error']}", err=True)
