"""The command-line interface: parse, call one library function, print.

Kept thin on purpose; every command's work lives in the library. Heavy
packages (TensorFlow, matplotlib, scikit-learn) are imported inside the
commands that need them, so ``forecast --help``, ``fetch`` and ``plot`` start fast.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from forecast.errors import ExitCode, ForecastError

app = typer.Typer(
    help="Forecast daily stock prices with recurrent networks, always beside naive baselines.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # keeps the tushare token out of tracebacks
    add_completion=False,
)
data_app = typer.Typer(help="Inspect the local market-data store.", no_args_is_help=True)
app.add_typer(data_app, name="data")


class Source(str, Enum):
    tushare = "tushare"
    csv = "csv"
    sample = "sample"


class Adjust(str, Enum):
    qfq = "qfq"
    hfq = "hfq"
    none = "none"


class _State:
    home: Optional[Path] = None


state = _State()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("forecast")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


def _json_safe(value):
    """Return ``value`` with NaN/inf turned into null, so the output is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def emit_json(payload) -> None:
    typer.echo(json.dumps(_json_safe(payload), ensure_ascii=False, indent=2, default=str, allow_nan=False))


def fail(message: str, code: int, as_json: bool = False) -> None:
    if as_json:
        emit_json({"error": message, "exit_code": int(code)})
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(int(code))


def handles_errors(command: Callable) -> Callable:
    """Turn library errors into a one-line message and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ForecastError as exc:
            fail(str(exc), exc.exit_code, kwargs.get("as_json", False))
        except KeyboardInterrupt:
            typer.echo("Error: interrupted", err=True)
            raise typer.Exit(130)

    return wrapper


@app.callback()
def main_options(
    home: Annotated[Optional[Path], typer.Option("--home", envvar="FORECAST_HOME", help="Workspace holding data/ and models/ (default: current directory).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
) -> None:
    """Forecast daily stock prices with recurrent networks, always beside naive baselines."""
    state.home = home
    _setup_logging(verbose)


def _store():
    from forecast.store import MarketStore

    return MarketStore(state.home)


def _print_fetch_report(report) -> None:
    line = f"{report.ticker}: {report.rows} rows {report.first_date}..{report.last_date}, +{report.new_rows} new, {report.revised_rows} revised"
    if report.calls:
        line += f", {report.calls} API calls"
    typer.echo(line)
    for note in report.notes:
        typer.echo(f"  {note}")
    for finding in report.validation.get("findings", []):
        more = ", ..." if finding["count"] > len(finding["examples"]) else ""
        typer.echo(f"warning: {report.ticker}: {finding['check']}: {finding['count']} row(s), e.g. {', '.join(finding['examples'])}{more}", err=True)


@app.command()
@handles_errors
def fetch(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers: 600519.SH, sh600519, 600519, or any symbol for CSV.")] = None,
    source: Annotated[Source, typer.Option(help="Where the bars come from.")] = Source.tushare,
    file: Annotated[Optional[Path], typer.Option("--file", help="CSV file to import (--source csv).")] = None,
    start: Annotated[Optional[str], typer.Option(help="First date for a new ticker (YYYY-MM-DD); default 2005-01-01.")] = None,
    end: Annotated[Optional[str], typer.Option(help="Last date (default: the newest published trading day).")] = None,
    adjust: Annotated[Adjust, typer.Option(help="Adjustment for the summary shown; raw bars and factors are stored.")] = Adjust.qfq,
    date_format: Annotated[Optional[str], typer.Option(help="strptime format of the CSV dates, when they are ambiguous.")] = None,
    columns: Annotated[Optional[str], typer.Option(help="CSV column mapping, e.g. date=Day,close=Last,volume=Vol.")] = None,
    strict: Annotated[bool, typer.Option(help="Treat validation findings as errors and store nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fetch daily bars into the local store: incremental from tushare, or import a CSV or the sample."""
    from forecast import fetching

    store = _store()
    tickers = tickers or []
    failures = []
    if source is Source.sample:
        reports = [fetching.import_sample(store, t, strict=strict) for t in (tickers or [fetching.SAMPLE_TICKER])]
    elif source is Source.csv:
        if file is None:
            fail("--source csv needs --file PATH", ExitCode.USAGE, as_json)
        if len(tickers) > 1:
            fail("--source csv imports one file for one ticker", ExitCode.USAGE, as_json)
        reports = [fetching.import_csv(store, tickers[0] if tickers else None, file, date_format=date_format,
                                       column_map=columns, strict=strict)]
    else:
        if not tickers:
            fail("name at least one ticker, e.g. forecast fetch 600519.SH", ExitCode.USAGE, as_json)
        from forecast.sources.tushare_pro import TushareClient, token_from_env
        from forecast.tickers import parse_ticker

        for ticker in tickers:  # a typo should not wait for a token check
            parse_ticker(ticker)
        client = TushareClient(token_from_env())
        reports, failures = fetching.update_from_tushare(store, tickers, client, start=start, end=end, strict=strict)
    if as_json:
        emit_json({"results": [r.to_dict() for r in reports],
                   "failures": [{"ticker": f.ticker, "error": str(f.error), "exit_code": int(f.error.exit_code)} for f in failures]})
    else:
        for report in reports:
            _print_fetch_report(report)
    for failure in failures:
        typer.echo(f"Error: {failure.ticker}: {failure.error}", err=True)
    if failures:
        raise typer.Exit(int(failures[0].error.exit_code))


@data_app.command("list")
@handles_errors
def data_list(as_json: JsonFlag = False) -> None:
    """List the stored tickers with their date ranges."""
    store = _store()
    summaries = [store.read(t).summary() for t in store.tickers()]
    if as_json:
        emit_json(summaries)
        return
    if not summaries:
        typer.echo(f"no data in {store.root}; try: forecast fetch --source sample")
    for s in summaries:
        typer.echo(f"{s['ticker']:<12} {s['rows']:>6} rows  {s['first_date']}..{s['last_date']}  {s['source']} ({s['adjust']})")


@data_app.command("show")
@handles_errors
def data_show(
    ticker: Annotated[str, typer.Argument(help="Ticker to describe.")],
    adjust: Annotated[Adjust, typer.Option(help="Adjustment of the prices shown.")] = Adjust.qfq,
    as_json: JsonFlag = False,
) -> None:
    """Describe one stored ticker: rows, date range, source, adjustment and validation findings."""
    from forecast.tickers import parse_ticker

    store = _store()
    stored = store.read(parse_ticker(ticker))
    summary = stored.summary()
    bars = store.read_bars(stored.ticker, adjust.value)
    summary["adjust"] = bars.adjust
    last = bars.frame.iloc[-1]
    summary["last_bar"] = {k: (last[k].date().isoformat() if k == "date" else float(last[k])) for k in bars.frame.columns}
    if as_json:
        emit_json(summary)
        return
    typer.echo(f"{summary['ticker']}: {summary['rows']} rows, {summary['first_date']}..{summary['last_date']}")
    typer.echo(f"source {summary['source']}, prices {summary['adjust']}, updated {summary['updated_at']}")
    typer.echo(f"last bar: " + ", ".join(f"{k} {v}" for k, v in summary["last_bar"].items()))
    findings = summary["validation"]["findings"]
    typer.echo("validation: " + ("clean" if not findings else f"{len(findings)} finding(s)"))
    for f in findings:
        typer.echo(f"  {f['check']}: {f['count']} row(s), e.g. {', '.join(f['examples'])}")


def main() -> None:
    app()
