"""Per-minute limits: the paced client against a fake that enforces tushare's limit on its own (fake) clock.

The client's pacer and the fake server share one clock that only moves when
someone sleeps, so a minute of pacing takes no time.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.sources import tushare_pro
from forecast.data.sources.pacing import CallPacer
from forecast.data.sources.tushare_pro import DAILY_FIELDS, FACTOR_FIELDS, RetryPolicy, TushareClient
from forecast.errors import ConfigError
from forecast.workflow.settings import CALLS_PER_MINUTE_ENV, DEFAULT_TUSHARE_CALLS_PER_MINUTE, load_app_config

runner = CliRunner()


class FakeClock:
    """Seconds that pass only when slept; every sleep is recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def limited(fake_tushare):
    """The fake, refusing a 4th call to one endpoint within 60 s of its clock."""
    clock = FakeClock()
    fake_tushare.calls_per_minute = 3
    fake_tushare.clock = clock
    return fake_tushare, clock


def days(n: int) -> list[str]:
    return [f"202012{d:02d}" for d in range(1, n + 1)]


def test_a_paced_client_never_trips_the_limit_and_waits_exactly_what_the_window_needs(limited):
    fake, clock = limited
    retry_sleeps: list[float] = []
    client = TushareClient(fake.valid_token, retry=RetryPolicy(sleep=retry_sleeps.append),
                           pacer=CallPacer(3, clock=clock, sleep=clock.sleep))
    for day in days(7):  # 7 daily calls at 3 a minute: 3 now, 3 a minute later, 1 a minute after that
        client.query("daily", DAILY_FIELDS, trade_date=day)
    assert fake.rate_limited == 0 and retry_sleeps == []
    assert fake.calls("daily") == 7
    assert clock.now - 1000.0 == pytest.approx(120.0)
    assert client.pacer.waited_s == pytest.approx(120.0)


def test_each_endpoint_has_its_own_window_as_on_the_real_service(limited):
    fake, clock = limited
    client = TushareClient(fake.valid_token, retry=RetryPolicy(sleep=clock.sleep), pacer=CallPacer(3, clock=clock, sleep=clock.sleep))
    for day in days(3):  # daily and adj_factor interleaved: 6 calls, no wait
        client.query("daily", DAILY_FIELDS, trade_date=day)
        client.query("adj_factor", FACTOR_FIELDS, trade_date=day)
    assert clock.sleeps == [] and fake.rate_limited == 0


def test_a_backfill_of_whole_market_days_paced_makes_two_calls_a_day_and_no_retry(limited):
    fake, clock = limited
    retry_sleeps: list[float] = []
    client = TushareClient(fake.valid_token, retry=RetryPolicy(sleep=retry_sleeps.append),
                           pacer=CallPacer(3, clock=clock, sleep=clock.sleep))
    for day in days(10):
        tushare_pro.fetch_market_day(client, day, {"600519.SH"})
    assert fake.rate_limited == 0 and retry_sleeps == []
    # 1..10 Dec 2020 hold 8 trading days: 10 daily calls, and adj_factor only for the 8 days with bars
    assert (fake.calls("daily"), fake.calls("adj_factor")) == (10, 8) == (client.calls - 8, 8)
    assert clock.now - 1000.0 == pytest.approx(180.0)  # daily's 4th, 7th and 10th calls each open a new minute


def test_without_pacing_the_server_limit_is_met_by_the_retry_path(limited):
    fake, clock = limited
    client = TushareClient(fake.valid_token, retry=RetryPolicy(sleep=clock.sleep), pacer=CallPacer(None))
    for day in days(7):
        client.query("daily", DAILY_FIELDS, trade_date=day)
    assert fake.rate_limited == 2  # the 4th and 7th calls, each answered after one 61 s wait
    assert clock.sleeps == [RetryPolicy().rate_limit_wait_s] * 2
    assert fake.calls("daily") == 9


def test_the_fake_answers_the_real_services_message_with_its_limit(limited):
    fake, _ = limited
    client = TushareClient(fake.valid_token, retry=RetryPolicy(attempts=1, sleep=lambda s: None), pacer=CallPacer(None))
    for day in days(3):
        client.query("daily", DAILY_FIELDS, trade_date=day)
    with pytest.raises(tushare_pro.RateLimitError, match="still hit"):
        client.query("daily", DAILY_FIELDS, trade_date="20201204")
    from fake_tushare import per_minute_message

    message = per_minute_message(3)
    assert "每分钟最多访问该接口3次" in message
    assert any(marker in message for marker in tushare_pro._RATE_LIMITED)
    assert not any(marker in message for marker in tushare_pro._SLOW_LIMITS)  # a per-minute limit: retried, not fatal


# --- configuration ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, env, expected", [
    ("", {}, DEFAULT_TUSHARE_CALLS_PER_MINUTE),
    ("[tushare]\ncalls_per_minute = 200\n", {}, 200),
    ("[tushare]\ncalls_per_minute = 0\n", {}, DEFAULT_TUSHARE_CALLS_PER_MINUTE),
    ("tushare_calls_per_minute = 120\n", {}, 120),
    ("[tushare]\ncalls_per_minute = 200\n", {CALLS_PER_MINUTE_ENV: "50"}, 50),
    ("", {CALLS_PER_MINUTE_ENV: "0"}, DEFAULT_TUSHARE_CALLS_PER_MINUTE),
])
def test_the_call_rate_comes_from_the_environment_then_the_file_then_the_default(tmp_path, text, env, expected):
    (tmp_path / "forecast.toml").write_text(text)
    assert load_app_config(tmp_path, env=env).tushare_calls_per_minute == expected


@pytest.mark.parametrize("text, env", [
    ("[tushare]\ncalls_per_minute = -5\n", {}),
    ("[tushare]\ncalls_per_minute = \"fast\"\n", {}),
    ("[tushare]\ncalls_per_minute = 2.5\n", {}),
    ("[tushare]\ncalls_per_mintue = 200\n", {}),
    ("", {CALLS_PER_MINUTE_ENV: "lots"}),
])
def test_a_bad_call_rate_is_a_config_error(tmp_path, text, env):
    (tmp_path / "forecast.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"calls_per_min|CALLS_PER_MINUTE"):
        load_app_config(tmp_path, env=env)


def test_a_bad_call_rate_exits_2_in_one_line(home):
    (home / "forecast.toml").write_text("[tushare]\ncalls_per_minute = -1\n")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 2 and "calls_per_minute" in result.output


def test_fetch_builds_its_client_with_the_configured_rate(home, monkeypatch):
    from forecast.cli._state import state

    state.reset()  # what the root group does at the start of every invocation: the home comes from $FORECAST_HOME
    (home / "forecast.toml").write_text('[tushare]\ntoken = "from-the-file-123"\ncalls_per_minute = 120\n')
    client = state.tushare_client()
    assert client.pacer.calls_per_minute == 120
    monkeypatch.setenv(CALLS_PER_MINUTE_ENV, "45")
    assert state.tushare_client().pacer.calls_per_minute == 45
    shown = json.loads(runner.invoke(app, ["config", "show", "--json"]).stdout)
    assert shown["tushare_calls_per_minute"] == 45
