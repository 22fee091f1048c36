"""Universes: ``universe list`` (the names this workspace can resolve) and ``universe show NAME`` (its members, with names)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from forecast.cli._options import JsonFlag, emit_json
from forecast.cli._state import state

universe_app = typer.Typer(help="Universes: index constituents, every listed A-share, the watchlist, the store.",
                           no_args_is_help=True)


@universe_app.command("list")
def universe_list(as_json: JsonFlag = False) -> None:
    """List the universe names and what is cached of each (no network)."""
    from forecast.cli._options import echo_table
    from forecast.data.universe import known_universes

    infos = known_universes(state.workspace())
    if as_json:
        emit_json([i.to_dict() for i in infos])
        return
    echo_table(["name", "what", "cached"], [[i.name, i.description, i.fetched_at or ("-" if i.kind in ("index", "all") else "")]
                                            for i in infos], align="lll")


@universe_app.command("show")
def universe_show(
    name: Annotated[str, typer.Argument(help="csi300, sse50, csi500, an index code (399006.SZ), all, watchlist or stored.")],
    date: Annotated[Optional[str], typer.Option("--date", help="The members as they were on this date (YYYY-MM-DD); default: today's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show what a universe holds (today, or on --date), each code with its company name."""
    from forecast.cli._options import echo_table
    from forecast.data.universe import resolve

    found = resolve(name, date, home=state.workspace(), client=state.tushare_client, watchlist=state.watchlist)
    if as_json:
        emit_json(found.to_dict())
        return
    typer.echo(f"{found.name}: {len(found.members)} tickers ({found.note})")
    echo_table(["ticker", "name"], [[m.ticker, m.name] for m in found.members], align="ll")
