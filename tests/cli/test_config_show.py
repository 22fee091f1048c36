"""Configuration as `forecast config show` reports it (in-process; no Keras, no subprocess)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from forecast.cli import app

runner = CliRunner()


def test_config_show_masks_the_token(tmp_path):
    (tmp_path / "forecast.toml").write_text('tickers = ["600519.SH"]\n[tushare]\ntoken = "abcdefgh12345678"\n')
    result = runner.invoke(app, ["config", "show", "--json"], env={"FORECAST_HOME": str(tmp_path), "TUSHARE_TOKEN": ""})
    assert result.exit_code == 0 and "abcdefgh12345678" not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["tickers"] == ["600519.SH"] and shown["tushare_token"].startswith("****")
    from_env = runner.invoke(app, ["config", "show", "--json"], env={"FORECAST_HOME": str(tmp_path), "TUSHARE_TOKEN": "zzzzzzzzzz99",
                                                                     "FORECAST_TICKERS": "000858.SZ,600036"})
    shown = json.loads(from_env.stdout)
    assert shown["tickers"] == ["000858.SZ", "600036"] and shown["tushare_token"] == "****99"


def test_config_show_reports_every_problem_of_the_file_at_once_the_tickers_and_new_tables_included(tmp_path):
    """Issue 29 item 14: one run of config show names them all, whatever table each is in."""
    (tmp_path / "forecast.toml").write_text(
        'tickers = ["../x"]\nadjust = "weird"\nbogus = 1\n[train]\nlr = -1\n[tushare]\ncalls_per_minute = -5\n'
        '[sources]\n"AAPL" = "nowhere"\n[portfolio]\ntop_k = 0\n[costs]\ncommission_bps = -1\n[limits]\n"AAPL" = 2\n')
    result = runner.invoke(app, ["config", "show"], env={"FORECAST_HOME": str(tmp_path), "TUSHARE_TOKEN": ""})
    assert result.exit_code == 2
    for named in ("bogus", "adjust", "[train]", "calls_per_minute", "[sources]", "[portfolio]", "commission_bps", "[limits]",
                  "'../x' is not a ticker"):
        assert named in result.output, named
    assert "9 problems" in result.output
