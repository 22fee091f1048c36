"""Market data: ``fetch`` (tushare, a CSV or the sample into the store) and ``data list|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import Adjust, BackfillPlan, Source, adjust_words
from forecast.cli._options import JsonFlag, echo_error, echo_item_error, emit_json
from forecast.cli._state import state

data_app = typer.Typer(help="Inspect the local market-data store.", no_args_is_help=True)


def _print_fetch_report(report) -> None:
    line = f"{report.ticker}: {report.rows} rows {report.first_date}..{report.last_date}, +{report.new_rows} new, {report.revised_rows} revised"
    if report.dropped_rows:
        line += f", {report.dropped_rows} dropped (not in the file)"
    if report.last_close is not None:
        line += f", last close {report.last_close:.2f} ({report.adjust})"
    if report.calls:
        line += f", {report.calls} API calls"
    typer.echo(line)
    for note in report.notes:
        typer.echo(f"  {note}")
    from forecast.data.validation import ValidationReport

    if report.validation:
        for finding in ValidationReport.from_dict(report.validation).findings:
            typer.echo(f"warning: {report.ticker}: {finding.describe()}", err=True)


def fetch(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers: 600519.SH, sh600519, 600519, or any symbol for CSV.")] = None,
    source: Annotated[Source, typer.Option(help="Where the bars come from.")] = Source.TUSHARE,
    file: Annotated[Optional[Path], typer.Option("--file", help="CSV file to import (--source csv).")] = None,
    start: Annotated[Optional[str], typer.Option(help="First date for a new ticker (YYYY-MM-DD); default 2005-01-01.")] = None,
    end: Annotated[Optional[str], typer.Option(help="Last date (default: the newest published trading day).")] = None,
    adjust: Annotated[Adjust, typer.Option(help="Adjustment of the last close reported (tushare bars are stored raw with factors).")] = Adjust.QFQ,
    date_format: Annotated[Optional[str], typer.Option(help="strptime format of the CSV dates, when they are ambiguous.")] = None,
    columns: Annotated[Optional[str], typer.Option(help="CSV column mapping, e.g. date=Day,close=Last,volume=Vol.")] = None,
    strict: Annotated[bool, typer.Option(help="Treat validation findings as errors and store nothing.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Let a CSV with less than half the stored rows replace the series.")] = False,
    calendar: Annotated[Optional[str], typer.Option(
        "--calendar", metavar="NAME",
        help="Trading calendar of an imported series: an exchange-calendars name (XNYS, XSHG, XHKG, XLON, ...) or "
             "business-days. Default: inferred from the file's dates. Forecast dates follow it.")] = None,
    ticker_column: Annotated[Optional[str], typer.Option(
        "--ticker-column", metavar="COL",
        help="Long-format CSV (--source csv, no ticker): the column naming each row's ticker. "
             "Default: ts_code, ticker, symbol or Name, whichever the file has.")] = None,
    universe: Annotated[Optional[str], typer.Option(
        "--universe", metavar="NAME",
        help="Fetch every ticker of a universe: csi300, sse50, csi500, an index code, all, watchlist or stored "
             "(see forecast universe list). New tickers are backfilled from --start, resumably.")] = None,
    backfill: Annotated[BackfillPlan, typer.Option(
        "--backfill",
        help="How --universe backfills new tickers: auto (the fewer calls), by-date (whole-market days, 2 calls a day "
             "for any number of tickers) or by-ticker (2 calls per ticker).")] = BackfillPlan.AUTO,
    as_json: JsonFlag = False,
) -> None:
    """Fetch daily bars into the local store: incremental from tushare, or import a CSV or the sample."""
    from forecast.workflow.fetch_plan import FetchRequest, fetch_bars

    request = FetchRequest(tuple(tickers or []), source, file, start, end, adjust.value, date_format, columns, strict, replace,
                           calendar, ticker_column, universe, backfill.value)
    fetched = fetch_bars(state.store(), request, state.tushare_client, state.watchlist)
    _print_fetched(fetched, as_json)
    if fetched.exit_code():
        raise typer.Exit(fetched.exit_code())


def _print_fetched(fetched, as_json: bool) -> None:
    """The fetch's reports (or a long CSV's summary), as JSON or one line each; each failure on its error line."""
    if fetched.long_import is not None:
        _print_long_import(fetched.long_import, as_json)
    elif as_json:
        emit_json({"results": [r.to_dict() for r in fetched.reports],
                   "failures": [{"ticker": f.ticker, "error": str(f.error), "exit_code": int(f.error.exit_code)} for f in fetched.failures]})
    else:
        for report in fetched.reports:
            _print_fetch_report(report)
    for failure in fetched.failures:
        echo_item_error(failure.ticker, str(failure.error))


def _print_long_import(imported, as_json: bool) -> None:
    """Print one summary for a long-format import (stored tickers, rows, problems by kind, refusals)."""
    from forecast.cli._options import echo_table

    summary = imported.summary()
    if as_json:
        emit_json({"results": [r.to_dict() for r in imported.reports],
                   "failures": [{"ticker": r["ticker"], "error": r["error"], "exit_code": r["exit_code"]} for r in summary["refused"]],
                   "summary": summary})
    else:
        typer.echo(f"{imported.file}: {len(imported.reports) + len(imported.refused)} tickers in column {imported.ticker_column} "
                   f"(+{summary['new_rows']:,} new rows, {summary['revised_rows']:,} revised)")
        table = [["imported", len(imported.reports), summary["rows"]],
                 ["refused (see the errors)", len(imported.refused), sum(r.rows for r in imported.refused)]]
        table += [[f"warning: {p['check']}", p["tickers"], p["rows"]] for p in summary["problems"]]
        echo_table(["", "tickers", "rows"], table)
        for problem in summary["problems"]:  # which ticker, which day: enough to look the rows up
            more = " ..." if problem["rows"] > len(problem["examples"]) else ""
            typer.echo(f"  {problem['check']}: {', '.join(problem['examples'])}{more}")
    for refusal in imported.refused:
        echo_error(f"{refusal.ticker}: refused ({refusal.rows} rows): {refusal.reason}")


@data_app.command("list")
def data_list(as_json: JsonFlag = False) -> None:
    """List the stored tickers with their company names (from the cached listing) and date ranges."""
    from forecast.workflow.housekeeping import stored_series

    summaries, unreadable = stored_series(state.workspace())
    for item in unreadable:
        echo_error(f"{item['error']} (forecast doctor --repair moves it aside)")
    if as_json:
        emit_json(summaries if not unreadable else {"results": summaries, "failures": unreadable})
        return
    if not summaries:
        typer.echo(f"no data in {state.store().root}; try: forecast fetch --source sample")
    name_width = max((_display_width(s["name"] or "") for s in summaries), default=0)
    for s in summaries:
        name = f"{_padded(s['name'] or '', name_width)}  " if name_width else ""
        typer.echo(f"{s['ticker']:<12} {name}{s['rows']:>6} rows  {s['first_date']}..{s['last_date']}  {s['source']} "
                   f"({adjust_words(s['adjust'])})")


def _display_width(text: str) -> int:
    """Return the columns ``text`` takes on a terminal: a CJK character takes two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _padded(text: str, width: int) -> str:
    return text + " " * (width - _display_width(text))


@data_app.command("show")
def data_show(
    ticker: Annotated[str, typer.Argument(help="Ticker to describe.")],
    adjust: Annotated[Adjust, typer.Option(help="Adjustment of the prices shown.")] = Adjust.QFQ,
    last: Annotated[int, typer.Option("-n", "--last", min=1, help="Show the last N bars.")] = 5,
    as_json: JsonFlag = False,
) -> None:
    """Describe one stored ticker: rows, date range, source, adjustment, validation findings and its last bars."""
    from forecast.cli._options import echo_table
    from forecast.formatting import format_number
    from forecast.workflow.housekeeping import describe_series

    summary, bars, columns = describe_series(state.workspace(), ticker, adjust.value, last)
    if as_json:
        emit_json({**summary, "last_bars": bars})
        return
    typer.echo(f"{summary['ticker']}: {summary['rows']} rows, {summary['first_date']}..{summary['last_date']}")
    typer.echo(f"source {summary['source']}, prices {adjust_words(summary['adjust'])}, updated {summary['updated_at']}")
    counts = ("volume", "amount")  # whole numbers with thousands separators; prices with 2 decimals
    echo_table(["date", *columns], [[b["date"], *(format_number(b[c], 0 if c in counts else 2, thousands=c in counts) for c in columns)]
                                    for b in bars])
    from forecast.data.validation import ValidationReport

    findings = ValidationReport.from_dict(summary["validation"]).findings
    typer.echo("validation: " + ("clean" if not findings else f"{len(findings)} finding(s)"))
    for f in findings:
        typer.echo(f"  {f.describe()}")
