"""The one error the workflow raises for flags that do not go together (exit 2, like a bad flag)."""

from __future__ import annotations

from forecast.errors import ExitCode, ForecastError


class UsageError(ForecastError):
    """Flags that do not go together, found by the library before any work: exit 2, as the CLI's own usage errors."""

    exit_code = ExitCode.USAGE
