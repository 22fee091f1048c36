"""Hostile inputs, the caches: a damaged universe or calendar cache costs a refetch or a fallback, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.fetching import import_sample
from forecast.data.store import MarketStore
from forecast.errors import ExitCode
from forecast.workspace import Workspace

runner = CliRunner()
GARBAGE = b"PAR1 not really parquet PAR1"


def test_a_damaged_exchange_calendar_falls_back_and_predict_works(home):
    import_sample(MarketStore(home))
    calendar = Workspace.at(home).trade_calendar_file("SSE")
    calendar.parent.mkdir(parents=True, exist_ok=True)
    calendar.write_bytes(GARBAGE)
    result = runner.invoke(app, ["predict", "600519.SH", "--model", "naive", "--json"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("cache", ["listings", "index"])
def test_a_damaged_universe_cache_is_fetched_again_or_says_why_not(home, cache):
    workspace = Workspace.at(home)
    path = workspace.listings_file if cache == "listings" else workspace.index_file("000300.SH")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(GARBAGE)
    shown = runner.invoke(app, ["universe", "show", "all" if cache == "listings" else "csi300"])
    assert shown.exit_code == ExitCode.AUTH_FAILED  # no token to fetch it again: said in one line
    *warnings, error = shown.stderr.strip().splitlines()
    assert error.startswith("Error: no tushare token") and "Traceback" not in shown.output
    assert [path.name in line and "fetched again" in line for line in warnings] == [True]  # the damage is named once
    listed = runner.invoke(app, ["universe", "list"])
    assert listed.exit_code == 0 and "Traceback" not in listed.output
