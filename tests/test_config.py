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
