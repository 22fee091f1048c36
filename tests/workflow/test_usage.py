"""``workflow.usage.UsageError``: flags that do not go together are a ForecastError with exit 2, like a bad flag,
and the CLI reports one as a one-line ``Error:`` with that code."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.store import MarketStore
from forecast.errors import ExitCode, ForecastError
from forecast.workflow.usage import UsageError
from forecast.workspace import Workspace


def test_a_usage_error_exits_2_like_a_bad_flag():
    assert UsageError.exit_code is ExitCode.USAGE
    assert int(UsageError("x").exit_code) == 2


def test_a_usage_error_is_a_forecast_error_with_its_message():
    with pytest.raises(ForecastError, match="name tickers or --universe, not both"):
        raise UsageError("name tickers or --universe, not both")


def test_the_cli_reports_a_usage_error_on_one_line_with_exit_2(home):
    # --source csv without --file: fetch_plan raises UsageError before anything is stored
    result = CliRunner().invoke(app, ["fetch", "600519.SH", "--source", "csv"])
    assert result.exit_code == 2
    assert result.output == "Error: --source csv needs --file PATH\n"
    assert MarketStore(Workspace.at(home)).tickers() == []  # nothing was stored
