"""``workflow.daily_plan``: ``run``'s settings from forecast.toml and its flags, in an empty home.

``--retrain-after`` and ``--source`` are laid over the config (``--source`` beating [sources] too); no tickers
named nor configured is a UsageError (exit 2) that still leaves a summary.json for cron; the daily folder is
forecast.toml's outdir, or daily/ when forecast.toml or the home cannot be read; only ok tickers are logged.
"""

from __future__ import annotations

import json
import logging

import pytest

from forecast.errors import ConfigError, ExitCode
from forecast.workflow.daily_plan import NO_TICKERS, daily_config, daily_outdir, log_done
from forecast.workflow.run_summary import RunSummary, TickerOutcome
from forecast.workflow.settings import AppConfig
from forecast.workflow.usage import UsageError
from forecast.workspace import Workspace

CONFIGURED = AppConfig(tickers=("600519.SH",), sources=(("000001.SZ", "csv"),), retrain_after_days=20)


@pytest.fixture
def workspace(home) -> Workspace:
    return Workspace.at(home)


def test_without_flags_the_config_is_used_as_it_is(workspace):
    assert daily_config(workspace, CONFIGURED, None, None) == CONFIGURED


@pytest.mark.parametrize(("flag", "days"), [("5", 5), ("0", 0), ("never", None)])
def test_retrain_after_replaces_the_configured_days(workspace, flag, days):
    cfg = daily_config(workspace, CONFIGURED, None, None, retrain_after=flag)
    assert cfg.retrain_after_days == days
    assert cfg.tickers == CONFIGURED.tickers  # the rest as configured


def test_a_retrain_after_that_is_no_number_of_days_is_a_config_error(workspace):
    with pytest.raises(ConfigError, match="--retrain-after"):
        daily_config(workspace, CONFIGURED, None, None, retrain_after="soon")


def test_the_source_flag_beats_the_configured_source_and_per_ticker_sources(workspace):
    cfg = daily_config(workspace, CONFIGURED, None, None, source="sample")
    assert cfg.source == "sample"
    assert cfg.sources == ()
    assert CONFIGURED.sources  # the config passed in is not changed


def test_tickers_named_on_the_command_line_are_enough(workspace):
    cfg = daily_config(workspace, AppConfig(), ["600519.SH"], None)
    assert cfg.tickers == ()  # the named tickers are the caller's; the config is left as it was


def test_no_tickers_at_all_is_a_usage_error_that_leaves_a_summary_for_cron(workspace, home):
    with pytest.raises(UsageError, match="no tickers") as raised:
        daily_config(workspace, AppConfig(), [], None)
    assert raised.value.exit_code == ExitCode.USAGE == 2
    summary = json.loads((home / "daily" / "latest" / "summary.json").read_text(encoding="utf-8"))
    assert summary["exit_code"] == 2
    assert NO_TICKERS in json.dumps(summary, ensure_ascii=False)


def test_the_failed_runs_summary_goes_to_the_outdir_asked_for(workspace, home):
    with pytest.raises(UsageError):
        daily_config(workspace, AppConfig(outdir="configured"), None, home / "asked")
    assert (home / "asked" / "latest" / "summary.json").is_file()
    assert not (home / "configured").exists()


def test_without_an_outdir_asked_for_the_summary_goes_to_the_configured_one(workspace, home):
    with pytest.raises(UsageError):
        daily_config(workspace, AppConfig(outdir="configured"), None, None)
    assert (home / "configured" / "latest" / "summary.json").is_file()


def test_the_daily_folder_is_daily_without_a_forecast_toml(workspace, home):
    assert daily_outdir(workspace) == home / "daily"


def test_the_daily_folder_is_the_one_forecast_toml_names(workspace, home):
    (home / "forecast.toml").write_text('outdir = "reports"\n', encoding="utf-8")
    assert daily_outdir(workspace) == home / "reports"


def test_an_unreadable_forecast_toml_falls_back_to_daily(workspace, home):
    (home / "forecast.toml").write_text("outdir = [unclosed\n", encoding="utf-8")
    assert daily_outdir(workspace) == home / "daily"


def test_a_home_that_is_a_file_falls_back_to_daily(tmp_path):
    not_a_folder = tmp_path / "home-file"
    not_a_folder.write_text("x", encoding="utf-8")
    workspace = Workspace(not_a_folder, 0)
    assert daily_outdir(workspace) == not_a_folder / "daily"


def test_only_the_tickers_that_are_ok_are_logged(caplog):
    summary = RunSummary("2024-01-02", "t0", tickers=[
        TickerOutcome("600519.SH", ok=True, model_id="m-1", model_choice="latest", retrained=True),
        TickerOutcome("000001.SZ", ok=True, model_id="m-2", model_choice="pinned"),
        TickerOutcome("300750.SZ", ok=False, error="no data"),
    ])
    with caplog.at_level(logging.INFO, logger="forecast.run"):
        log_done(summary)
    lines = [r.getMessage() for r in caplog.records if r.name == "forecast.run"]
    assert lines == ["600519.SH: ok, model m-1 (latest), retrained", "000001.SZ: ok, model m-2 (pinned)"]
