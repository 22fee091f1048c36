"""The one error boundary: every exception a command raises becomes one line and a documented exit code.

``RULES`` is the whole policy, first match wins. The root group runs every
command of every group inside its ``invoke``, so catching there covers them
all, the global options' callback included. Typer's own exits and usage errors
(exit 2) pass through to Typer, which prints the usage and the error on
stderr; under ``--json`` a usage error also prints the same
``{"error", "exit_code"}`` object on stdout as every other error, even when
the command line broke before ``--json`` itself was read. Every message is
redacted before it is printed. No traceback reaches the user unless they ask
for one with ``-v``.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

from forecast.cli._options import echo_error, emit_json
from forecast.cli._state import state
from forecast.errors import ExitCode, ForecastError, os_error_message
from forecast.redact import redact

try:  # Typer 0.2x carries its own Click, whose exceptions derive from TyperException
    from typer import TyperException as _UsageErrors
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older Typer runs on Click itself
    from click import ClickException as _UsageErrors  # type: ignore[assignment]
    from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore[assignment]

PASS_THROUGH = (typer.Exit, typer.Abort, _UsageErrors)
INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for Ctrl-C
OUTPUT_CLOSED = 141  # 128 + SIGPIPE: what a shell reports when the reader stopped reading (| head)
VERBOSE_HINT = " (rerun with -v for the traceback)"


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _internal_message(exc: BaseException) -> str:
    text = _one_line(str(exc))
    return f"internal error: {type(exc).__name__}" + (f": {text}" if text else "")


@dataclass(frozen=True)
class Rule:
    catches: type[BaseException]
    exit_code: Callable[[Any], int]
    message: Callable[[Any], str]
    traceback: bool = False  # under -v, print the traceback before the line
    hint: str = ""  # appended to the line when the traceback is not shown


RULES: tuple[Rule, ...] = (
    Rule(ForecastError, lambda e: e.exit_code, str),  # the library's own errors: their message, their code
    Rule(KeyboardInterrupt, lambda e: INTERRUPTED, lambda e: "interrupted"),
    Rule(OSError, lambda e: ExitCode.BAD_INPUT, os_error_message, traceback=True),  # e.g. --out in a folder we cannot write
    Rule(Exception, lambda e: ExitCode.INTERNAL, _internal_message, traceback=True, hint=VERBOSE_HINT),  # a bug
)


def report(exc: BaseException, verbose: bool = False) -> int:
    """Print ``exc`` as the table says (and as JSON on stdout under --json); return the exit code."""
    rule = next(r for r in RULES if isinstance(exc, r.catches))
    code = int(rule.exit_code(exc))
    message = rule.message(exc)
    if rule.traceback and verbose:
        typer.echo(redact("".join(traceback.format_exception(exc))).rstrip("\n"), err=True)
    else:
        message += rule.hint
    if state.as_json:
        emit_json({"error": message, "exit_code": code})
    echo_error(message)
    return code


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for ``--json`` (before a ``--`` that ends the options)."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def report_usage(exc: Exception) -> None:
    """Under --json, print a usage error as the {"error", "exit_code"} object; Typer prints the text on stderr."""
    if (state.as_json or state.json_requested) and isinstance(exc, UsageError) and not isinstance(exc, NoArgsIsHelpError):
        emit_json({"error": redact(_one_line(exc.format_message())), "exit_code": int(exc.exit_code)})


def _drop_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file behind stdout (a test runner's buffer): nothing to flush at exit
        pass


class GuardedGroup(TyperGroup):
    """The root command group; every command runs inside its ``invoke``, so the boundary sits here once."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        state.reset()  # the first thing an invocation does: parsing the global options comes before invoke
        state.json_requested = wants_json(list(args))
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:  # a bad global option, or a missing command
            report_usage(exc)
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:  # a command's own arguments
            report_usage(exc)
            raise
        except PASS_THROUGH:
            raise
        except BrokenPipeError:  # the reader of stdout has gone (| head): nothing to say, and nowhere to say it
            _drop_stdout()
            raise typer.Exit(OUTPUT_CLOSED) from None
        except (Exception, KeyboardInterrupt) as exc:
            raise typer.Exit(report(exc, verbose=bool(ctx.params.get("verbose")))) from None
