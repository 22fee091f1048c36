"""`run` says when a ticker's data went stale, and counts it as not ok (exit 8, or 9 when no ticker is fresh).

Cron mails only on a non-zero exit. A ticker whose fetch failed, or whose last
bar lags its own calendar by more than ``stale_after_days`` trading days, is
still forecast from what is stored (the best there is), but its outcome says
``stale`` with its last date, and the run does not exit 0.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import FIXTURES
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.fetching import import_csv, import_sample
from forecast.data.store import MarketStore
from forecast.errors import ConfigError, ExitCode, SourceError
from forecast.models.train_config import DEFAULT
from forecast.workflow import pipeline
from forecast.workflow.run_summary import TickerOutcome
from forecast.workflow.settings import load_app_config
from forecast.workspace import Workspace

US = FIXTURES / "long_us_style.csv"
runner = CliRunner()


@pytest.fixture
def aapl(home) -> pd.Timestamp:
    """AAPL's bars from the US fixture (NYSE sessions to 2018-02-07); returns its last bar's date."""
    import_csv(MarketStore(home), "AAPL", US)
    return MarketStore(home).head("AAPL").last_date


def judged(home: Path, ticker: str, today: dt.date, fetch_error=None, stale_after: int = 5) -> TickerOutcome:
    plan = pipeline.DailyPlan(Workspace.at(home), home / "daily" / today.isoformat(), today, None, DEFAULT, (0.8,),
                              stale_after_days=stale_after)
    outcome = TickerOutcome(ticker)
    pipeline._judge_freshness(plan, outcome, fetch_error)
    return outcome


def test_a_last_bar_within_the_allowance_is_fresh_and_older_is_stale(home, aapl):
    nyse_sessions = pd.bdate_range(aapl + pd.Timedelta(days=1), "2018-03-01")  # no NYSE holiday in Feb 2018 after the 7th but the 19th
    fresh = judged(home, "AAPL", dt.date(2018, 2, 9))  # one session (the 8th) not yet stored
    assert not fresh.stale and fresh.sessions_behind == 1 and fresh.error is None
    stale = judged(home, "AAPL", dt.date(2018, 3, 1))
    assert stale.stale and stale.exit_code == ExitCode.PARTIAL
    assert stale.sessions_behind == len(nyse_sessions) - 2  # the 19th (Presidents' Day) and 1 March itself do not count
    assert "2018-02-07" in stale.error and "stale_after_days = 5" in stale.error


def test_the_allowance_is_the_settings(home, aapl):
    assert not judged(home, "AAPL", dt.date(2018, 3, 1), stale_after=30).stale


def test_a_failed_fetch_makes_the_ticker_stale_whatever_its_age(home, aapl):
    outcome = judged(home, "AAPL", dt.date(2018, 2, 8), fetch_error=SourceError("tushare host unreachable"))
    assert outcome.stale and "its fetch failed" in outcome.error and "2018-02-07" in outcome.error


def test_the_bundled_sample_is_fixed_by_design_and_never_stale(home):
    import_sample(MarketStore(home))
    outcome = judged(home, "600519.SH", dt.date.today())
    assert not outcome.stale and outcome.sessions_behind > 1000


def test_a_stale_ticker_keeps_its_outputs_and_the_run_exits_9_when_none_is_fresh(home, aapl, monkeypatch):
    def forecast_written(plan, outcome, models, fetch_error=None):  # the real judge, after files a forecast would write
        for path in Workspace.daily_outputs(plan.day_dir, outcome.ticker).values():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("forecast\n")
            outcome.outputs[path.suffix.lstrip(".").replace("png", "chart")] = str(path)
        pipeline._judge_freshness(plan, outcome, fetch_error)
        outcome.ok = not outcome.stale
        return outcome

    monkeypatch.setattr(pipeline, "daily_ticker", forecast_written)
    monkeypatch.setattr(pipeline, "_fetch", lambda store, config, tickers: ({}, {}))
    (home / "forecast.toml").write_text('tickers = ["AAPL"]\n[sources]\nAAPL = "csv"\n')
    summary = pipeline.run_daily(home, load_app_config(home), today=dt.date(2018, 3, 1))
    [outcome] = summary.tickers
    assert summary.exit_code == ExitCode.ALL_FAILED and not outcome.ok and outcome.stale
    latest = home / "daily" / "latest"
    assert (latest / "AAPL.csv").is_file() and not (latest / "AAPL.failed.json").exists()
    stored = json.loads((latest / "summary.json").read_text())
    assert stored["tickers"][0]["stale"] is True and stored["tickers"][0]["sessions_behind"] == outcome.sessions_behind


def test_run_with_no_tickers_still_writes_a_summary(home):
    result = runner.invoke(app, ["run"])
    assert result.exit_code == ExitCode.USAGE and "no tickers" in result.stderr
    summary = json.loads((home / "daily" / "latest" / "summary.json").read_text())
    assert summary["exit_code"] == ExitCode.USAGE and "no tickers" in summary["error"]


@pytest.mark.parametrize("text, problem", [
    ('stale_after_days = 0\n', "stale_after_days"), ('stale_after_days = "x"\n', "stale_after_days"),
])
def test_forecast_toml_problems_are_found_when_it_is_read(home, text, problem):
    (home / "forecast.toml").write_text(text)
    with pytest.raises(ConfigError, match=problem):
        load_app_config(home)


def test_every_problem_of_forecast_toml_is_reported_at_once_train_included(home):
    (home / "forecast.toml").write_text('levels = [0.8, 0.8]\nstale_after_days = -1\n'
                                        '[train]\nepochs = 0\nlookback = "x"\ndropout = 2\n')
    with pytest.raises(ConfigError) as raised:
        load_app_config(home)
    lines = str(raised.value).splitlines()
    for word in ("levels", "stale_after_days", "epochs", "lookback", "dropout"):
        assert sum(word in line for line in lines) == 1, (word, lines)


def test_a_bad_rate_in_the_environment_is_not_blamed_on_a_file_that_does_not_exist(home):
    with pytest.raises(ConfigError) as raised:
        load_app_config(home, env={"FORECAST_TUSHARE_CALLS_PER_MINUTE": "fast"})
    assert "FORECAST_TUSHARE_CALLS_PER_MINUTE" in str(raised.value) and "forecast.toml" not in str(raised.value)


@pytest.mark.slow
def test_a_second_run_the_same_day_repeats_nothing(home, monkeypatch):
    from forecast.workflow import jobs

    import_sample(MarketStore(home))
    assert runner.invoke(app, ["train", "600519.SH", "--epochs", "1", "--units", "4", "--lookback", "10"]).exit_code == 0
    (home / "forecast.toml").write_text('tickers = ["600519.SH"]\nsource = "sample"\n')
    first = pipeline.run_daily(home, load_app_config(home))
    assert first.exit_code == ExitCode.OK
    files = Workspace.daily_outputs(home / "daily" / dt.date.today().isoformat(), "600519.SH")
    before = {kind: path.stat().st_mtime_ns for kind, path in files.items()}

    def predict_again(*args, **kwargs):
        raise AssertionError("the second run predicted again")

    monkeypatch.setattr(jobs, "predict_one", predict_again)
    second = pipeline.run_daily(home, load_app_config(home))
    assert second.exit_code == ExitCode.OK and second.tickers[0].model_id == first.tickers[0].model_id
    assert {kind: path.stat().st_mtime_ns for kind, path in files.items()} == before
    assert (home / "daily" / "latest" / "600519.SH.json").read_bytes() == files["json"].read_bytes()


def test_run_says_each_failure_once(home):
    result = runner.invoke(app, ["run", "600036.SH"])  # not in the sample, no token: its fetch fails
    assert result.exit_code != 0
    mentions = [line for line in result.stderr.splitlines() if "600036.SH" in line]
    assert len(mentions) == 1, result.stderr


@pytest.mark.parametrize("entry", ["../x", ""])
def test_config_show_names_an_entry_of_tickers_that_is_no_ticker(home, entry):
    (home / "forecast.toml").write_text(f'tickers = ["600519.SH", "{entry}"]\n')
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == ExitCode.USAGE and f"{entry!r} is not a ticker" in result.stderr
