"""Options shared by several commands, declared once; the CLI's printing helpers; ``fail``.

An option whose flag, type and help are the same everywhere is an ``Annotated``
alias. Where only the flag and its checks repeat and the help says what this
command does with it (``--out``, ``--quiet``, ``--model``, ``--universe``), a small factory
spells the flag once and takes the help text.

``train``, ``predict``, ``backtest`` and ``run`` take tickers or ``--universe NAME``;
``resolve_targets`` is the one place that turns either into the tickers to work on.
They also take ``--executor``, ``--workers`` and ``--ray-address``; ``executor_for``
is the one place that turns those into an executor (forecast/workflow/executors.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, NoReturn, Optional, TypeVar

import typer

from forecast.choices import ExecutorKind
from forecast.cli._state import state
from forecast.errors import ExitCode, ForecastError
from forecast.redact import redact
from forecast.workflow.executors import RAY_EXTRA_HINT
from forecast.workspace import Workspace


def _remember_json(value: bool) -> bool:
    state.as_json = bool(value)  # so that the error boundary answers in JSON too
    return value


def _print_version(value: bool) -> None:
    if value:
        from forecast import __version__

        typer.echo(f"forecast {__version__}")
        raise typer.Exit()


VersionFlag = Annotated[bool, typer.Option("--version", is_eager=True, expose_value=True, callback=_print_version,
                                           help="Print the version and exit.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.", callback=_remember_json)]
HomeOpt = Annotated[Optional[Path], typer.Option("--home", envvar="FORECAST_HOME", help="Workspace holding data/ and models/ (default: current directory).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log what each step does to stderr.")]
FailFastFlag = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first ticker that fails; the rest are not tried.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", dir_okay=False, help="Config file (default: <home>/forecast.toml).")]
ExecutorOpt = Annotated[ExecutorKind, typer.Option("--executor", help="Where the per-ticker work runs: local (this machine, see "
                                                   f"--workers) or ray (Ray tasks; needs {RAY_EXTRA_HINT}).")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="local: tickers worked on at once, each in its own process (1, the "
                                         "default: one after another; one TensorFlow process already fills 2 cores). "
                                         "ray without --ray-address: the CPUs of the local Ray.")]
RayAddressOpt = Annotated[Optional[str], typer.Option("--ray-address", metavar="ADDR", help="With --executor ray: the cluster to "
                                                      "run on (e.g. ray://head:10001); default: a local Ray started for this command.")]


def executor_for(kind: ExecutorKind, workers: int, ray_address: Optional[str], fail_fast: bool = False):
    """Return the executor the options ask for; --ray-address without --executor ray is a usage error."""
    from forecast.workflow.executors import make_executor

    if ray_address is not None and kind is not ExecutorKind.RAY:
        fail("--ray-address is for --executor ray", ExitCode.USAGE)
    return make_executor(kind, workers, ray_address, fail_fast)


def _check_out(value: Optional[Path]) -> Optional[Path]:
    from forecast.atomic import is_stdout

    if is_stdout(value) and state.json_requested:
        raise typer.BadParameter("--out - prints the file on stdout, and so does --json: choose one")
    return value


def out_option(help: str) -> Any:
    """``--out FILE``: a file, never a folder; ``-`` is stdout (not with --json). ``forecast.atomic.write_user_output`` writes it."""
    return typer.Option("--out", dir_okay=False, callback=_check_out,
                        help=f"{help} - writes it to stdout.")


def quiet_option(help: str) -> Any:
    return typer.Option("--quiet", "-q", help=help)


def model_option(help: str) -> Any:
    return typer.Option("--model", help=help)


UNIVERSE_NAMES = "csi300, sse50, csi500, an index code (399006.SZ), all, watchlist or stored (see forecast universe list)"


def universe_option(help: str) -> Any:
    """``--universe NAME``: a universe's members today, instead of a list of tickers."""
    return typer.Option("--universe", metavar="NAME", help=f"{help} NAME: {UNIVERSE_NAMES}. Not with tickers.")


T = TypeVar("T")


@dataclass(frozen=True)
class Targets:
    """The tickers a command works on: as the user named them, or a universe's members today."""

    tickers: list[str]
    universe: str | None = None  # the universe the tickers are the members of, as named

    def stored_only(self, job: Callable[[str], T]) -> Callable[[str], T]:
        """Return ``job``, checking first that a universe's member is stored (else the hint to fetch the universe).

        Commands that read the store only (train, predict, backtest) never
        fetch: an index member not fetched yet fails on its own line. The
        check pickles with the job, so it runs where the job runs.
        """
        if self.universe is None:
            return job
        return StoredOnly(job, state.workspace(), self.universe)


@dataclass(frozen=True)
class StoredOnly(Generic[T]):
    """``job``, run only for a ticker stored in ``workspace``; else a NoDataError that says to fetch ``universe``."""

    job: Callable[[str], T]
    workspace: Workspace
    universe: str

    def __call__(self, ticker: str) -> T:
        from forecast.data.store import MarketStore
        from forecast.errors import NoDataError

        if not MarketStore(self.workspace).has(ticker):
            raise NoDataError(f"no stored data for {ticker}; fetch the universe first: forecast fetch --universe {self.universe}")
        return self.job(ticker)


def resolve_targets(tickers: list[str] | None, universe: str | None, required: bool = True) -> Targets:
    """Return the tickers named, or the members of ``universe`` today; a usage error for both, or for neither when ``required``.

    Resolving a universe needs no token while its cache exists (a stale one is
    used as it is); a name that names nothing is an UnknownUniverseError.
    """
    if tickers and universe is not None:
        fail("name tickers or --universe NAME, not both", ExitCode.USAGE)
    if universe is None:
        if required and not tickers:
            fail("name at least one ticker, or --universe NAME (see forecast universe list)", ExitCode.USAGE)
        return Targets(list(tickers or []))
    from forecast.data.universe import resolve
    from forecast.errors import UnknownUniverseError

    found = resolve(universe, home=state.workspace(), client=state.tushare_client, watchlist=state.watchlist)
    if not found.members:
        raise UnknownUniverseError(f"the universe {universe} has no members ({found.note})")
    return Targets(found.tickers, universe)


def company_names() -> dict[str, str]:
    """Return {ticker: company name} from the cached listings (no network; {} when none are cached)."""
    from forecast.data.universe_cache import cached_names

    return cached_names(state.workspace())


def labelled(ticker: str, names: dict[str, str]) -> str:
    """Return "600519.SH 贵州茅台" when ``names`` knows the company, else the code alone (terminal lines; JSON has ``name``)."""
    name = names.get(ticker)
    return f"{ticker} {name}" if name else ticker


def emit_json(payload) -> None:
    """Print ``payload`` as strict JSON on stdout, secrets masked."""
    from forecast.jsonio import dumps

    typer.echo(redact(dumps(payload)))


def echo_line(text: str, err: bool = False) -> None:
    """Print ``text`` and a newline on stdout (stderr with ``err``) through ``sys.stdout``/``sys.stderr`` as they are now.

    A Rich progress bar, while it runs, replaces them with proxies that print
    above its bars; ``typer.echo`` writes to the streams underneath and would
    land in the middle of a bar.
    """
    import sys

    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def echo_table(headers: list[str], rows: list[list], align: str | None = None) -> None:
    """Print a table with a header row: a Rich table on a terminal, aligned plain text otherwise (pipes, cron, tests).

    ``align`` has one letter per column, ``l`` or ``r`` (default: the first
    column left, the others right).
    """
    import shutil
    import sys

    from forecast.formatting import MISSING, format_table

    plain = format_table(headers, rows, align)
    too_wide = max(len(line) for line in plain.splitlines()) > shutil.get_terminal_size().columns
    if not sys.stdout.isatty() or too_wide:  # too wide: Rich would cut cells (a model id!); whole lines wrap instead
        echo_line(plain)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    aligns = align or ("l" + "r" * (len(headers) - 1))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False)
    for header, how in zip(headers, aligns):
        table.add_column(header, justify="left" if how == "l" else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(MISSING if cell is None else str(cell)) for cell in row))  # Text: no markup in data
    Console(soft_wrap=False).print(table)


def echo_error(message: str) -> None:
    """Print ``Error: <message>`` on stderr, secrets masked."""
    echo_line(f"Error: {redact(message)}", err=True)


def echo_item_error(item: str, message: str) -> None:
    """``Error: ITEM: message``, the item named once even when the library's message already starts with it."""
    echo_error(message if message.startswith((f"{item} ", f"{item}:", f"{item}'s ")) else f"{item}: {message}")


class CommandError(ForecastError):
    """A problem the CLI itself finds in the arguments; reported like any library error."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(exit_code)


def fail(message: str, code: int = ExitCode.USAGE) -> NoReturn:
    """Stop the command with ``message`` and exit ``code``; the root's error boundary prints it."""
    raise CommandError(message, code)


def finish(outcomes, rows: list, as_json: bool, one_object: bool = False) -> None:
    """End a multi-ticker command: print ``rows`` as JSON, then exit as ``run`` does (0, the one failure's code, 8 or 9).

    Every ticker was tried; each failure was already reported on stderr as it
    happened. Under --json, one ticker named: its rows (one object when
    ``one_object``), or the usual {"error", "exit_code"} when it failed;
    several: {"results": rows, "failures": [...]} every time, failures or not
    (a script reads one shape).
    """
    from forecast.workflow.executors import exit_code_for

    failures = [{"ticker": o.item, "error": o.error, "exit_code": o.exit_code} for o in outcomes if not o.ok]
    if as_json:
        if len(outcomes) == 1 and failures:  # one ticker named: the error object every other failure prints
            emit_json({"error": failures[0]["error"], "exit_code": failures[0]["exit_code"]})
        elif len(outcomes) > 1:
            emit_json({"results": rows, "failures": failures})
        else:
            emit_json(rows[0] if one_object and len(rows) == 1 else rows)
    code = exit_code_for(outcomes)
    if code:
        raise typer.Exit(code)


def signed_score(value) -> str:
    """A score such as +0.0123, or "-" when there is none (no validation day had two tickers to rank)."""
    return f"{value:+.4f}" if isinstance(value, (int, float)) and value == value and abs(value) != float("inf") else "-"
