"""Typed errors of the library, each carrying the CLI exit code it maps to.

The CLI turns any ForecastError into a one-line ``Error: ...`` on stderr and
exits with ``exit_code``; everything else is a bug (exit 1).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # a bug: please report it
    USAGE = 2  # Typer/Click's own code for bad flags
    BAD_INPUT = 3  # corrupt CSV, ambiguous ticker or date, too little history, mismatched model
    NOT_FOUND = 4  # unknown ticker, no stored data, no model
    SOURCE_FAILED = 5  # network error, HTTP error, rate limit still hit after retries
    AUTH_FAILED = 6  # wrong token, not enough tushare points
    BUSY = 7  # another process holds the store lock past the wait bound
    PARTIAL = 8  # `run`: some tickers failed, others succeeded
    ALL_FAILED = 9  # `run`: every ticker failed
    WORKER_LOST = 10  # the process doing the work was killed (out of memory, a signal, a lost node): not a bug, rerun


class ForecastError(Exception):
    exit_code: ExitCode = ExitCode.INTERNAL


class ConfigError(ForecastError):
    """forecast.toml, or a setting in the environment, is wrong: one line per problem."""

    exit_code = ExitCode.USAGE


class MissingExtraError(ForecastError):
    """A model needs an optional package that is not installed (exit 2, like a flag this installation cannot honour)."""

    exit_code = ExitCode.USAGE


class BadInputError(ForecastError):
    exit_code = ExitCode.BAD_INPUT


class AmbiguousTickerError(BadInputError):
    pass


class DateFormatError(BadInputError):
    pass


class CorruptFileError(BadInputError):
    pass


def unloadable_model(path, exc: BaseException) -> CorruptFileError:
    """The one-line error for a model file that cannot be loaded (missing, truncated, not a Keras archive, refused)."""
    from pathlib import Path

    reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return CorruptFileError(f"model file {path} cannot be loaded ({type(exc).__name__}: {reason}); "
                            f"retrain, or remove the model with forecast models rm {Path(path).parent.name}")


class ValidationFailed(BadInputError):
    """Raised under --strict when the validator finds problems."""


class InsufficientHistoryError(BadInputError):
    pass


class ModelMismatchError(BadInputError):
    pass


class NotFoundError(ForecastError):
    exit_code = ExitCode.NOT_FOUND


class UnknownTickerError(NotFoundError):
    pass


class NoDataError(NotFoundError):
    pass


class ModelNotFoundError(NotFoundError):
    pass


class UnknownUniverseError(NotFoundError):
    """A universe name that names nothing, or whose members cannot be known (nothing cached, a date before its history)."""


class SourceError(ForecastError):
    exit_code = ExitCode.SOURCE_FAILED


class RateLimitError(SourceError):
    pass


class AuthError(ForecastError):
    exit_code = ExitCode.AUTH_FAILED


class StoreBusyError(ForecastError):
    exit_code = ExitCode.BUSY


def os_error_message(exc: OSError) -> str:
    """The path(s) and the operating system's reason, e.g. ``/x/y.csv: Permission denied`` (exit 3 wherever it is met)."""
    reason = exc.strerror or " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else f"{type(exc).__name__}: {reason}"
