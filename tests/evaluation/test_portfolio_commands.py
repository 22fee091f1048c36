"""``backtest --universe --portfolio``, ``plot --kind portfolio``, the report's section, ``rank``'s flags and ``predict``'s
cut bands, through the CLI and the workflow on stored synthetic markets (an A-share one with a price-limit rocket, a
non-China one)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic_market import synthetic_bars, write_store
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.store import MarketStore
from forecast.errors import ExitCode
from forecast.models.results import ForecastPoint, ForecastResult
from tests.models.pooled.test_commands import TICKERS, store_panel
from tests.models.pooled.test_data import make_panel

runner = CliRunner()
N_TICKERS, N_DAYS, ROCKET_DAYS = 12, 300, 80


def cli(*args: str):
    return runner.invoke(app, list(args))


def up_limit(prev_close: float, rate: float = 0.10) -> float:
    """The exchange's limit-up price, by hand: prev close x 1.1 rounded half-up to the cent."""
    return float(np.floor(prev_close * (1 + rate) * 100 + 0.5) / 100)


@pytest.fixture
def a_share_home(home):
    """12 A-shares; the first opens and closes at its limit-up price on each of the last 80 sessions (nobody can buy it)."""
    bars = synthetic_bars(N_TICKERS, N_DAYS, seed=5)
    bars.factor[:, 0] = bars.factor[0, 0]  # no dividend on the rocket: its limits follow its own raw closes
    for t in range(N_DAYS - ROCKET_DAYS, N_DAYS):
        price = up_limit(float(bars.close[t - 1, 0]))
        bars.open[t, 0] = bars.high[t, 0] = bars.low[t, 0] = bars.close[t, 0] = price
    write_store(MarketStore(home), bars)
    return home, bars


def portfolio_backtest(*extra: str):
    return cli("backtest", "--universe", "stored", "--models", "momentum_20,reversal", "--portfolio", "--test-days", "60",
               "--top-k", "3", "--max-drop", "2", "--quiet", *extra)


def test_a_name_at_limit_up_at_every_open_is_never_bought_though_momentum_ranks_it_first(a_share_home):
    home, bars = a_share_home
    result = portfolio_backtest("--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)["portfolio"]
    rocket = bars.codes[0]
    momentum = payload["models"]["momentum_20"]
    assert momentum["blocked"]["buy_at_limit_up"] >= 1  # it was wanted: a 10 % rise every day tops any 20-day momentum
    positions = pd.read_csv(home / "backtests" / "@stored" / "portfolio-positions.csv")
    assert rocket not in set(positions.loc[positions["model"] == "momentum_20", "ticker"])
    assert set(positions["ticker"]) <= set(bars.codes) and (positions["shares"] % 100 == 0).all()  # whole A-share lots
    assert momentum["costs"]["stamp_duty"]  # China universe: the A-share costs


def test_the_portfolio_is_saved_drawn_and_reported(a_share_home, tmp_path):
    home, _ = a_share_home
    result = portfolio_backtest()
    assert result.exit_code == 0, result.output
    assert "portfolio: top 3" in result.stdout and "momentum_20" in result.stdout
    saved = json.loads((home / "backtests" / "@stored" / "portfolio.json").read_text())
    daily = pd.read_csv(home / "backtests" / "@stored" / "portfolio.csv", index_col="date")
    assert set(saved["models"]) == {"momentum_20", "reversal"}
    assert {"momentum_20_nav", "reversal_nav", "benchmark"} <= set(daily.columns)
    assert daily["benchmark"].iloc[0] == pytest.approx(saved["models"]["reversal"]["strategy"]["capital"])
    assert (home / "backtests" / "@stored" / "portfolio.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    chart = tmp_path / "nav.png"
    drawn = cli("plot", "--universe", "stored", "--kind", "portfolio", "--out", str(chart))
    assert drawn.exit_code == 0, drawn.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page = tmp_path / "report.html"
    reported = cli("report", "--universe", "stored", "--out", str(page))
    assert reported.exit_code in (0, ExitCode.PARTIAL, ExitCode.ALL_FAILED), reported.output  # no forecasts: the section still shows
    html = page.read_text()
    assert "Portfolio backtest" in html and "fig-portfolio" in html


def test_a_plain_universe_trades_single_shares_at_a_basis_point_commission(home):
    store_panel(home, make_panel({t: 300 for t in TICKERS}, seed=3))
    result = cli("backtest", "--universe", "stored", "--models", "momentum_20", "--portfolio", "--test-days", "40",
                 "--top-k", "2", "--quiet", "--json")
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)["portfolio"]["models"]["momentum_20"]
    assert model["strategy"]["lot"] == 1 and not model["costs"]["stamp_duty"] and model["costs"]["min_commission"] == 0


def test_bad_portfolio_input_is_one_line_and_its_exit_code(a_share_home):
    home, _ = a_share_home
    too_many = cli("backtest", "--universe", "stored", "--models", "momentum_20", "--portfolio", "--top-k", "50", "--quiet")
    assert too_many.exit_code == ExitCode.BAD_INPUT and "50" in too_many.output and str(N_TICKERS) in too_many.output
    assert not (home / "backtests" / "@stored" / "latest.json").exists()  # refused before an hour of refits, not after

    without = cli("backtest", "--universe", "stored", "--models", "momentum_20", "--top-k", "3")
    assert without.exit_code == ExitCode.USAGE and "--portfolio" in without.output

    (home / "forecast.toml").write_text("[costs]\ncommission_bps = -1\n")
    negative = cli("backtest", "--universe", "stored", "--models", "momentum_20", "--portfolio", "--quiet")
    assert negative.exit_code == ExitCode.USAGE and "commission_bps" in negative.output
    assert len(negative.output.strip().splitlines()) == 1

    (home / "forecast.toml").write_text("[portfolio]\ncapital = 10.0\n")
    poor = cli("backtest", "--universe", "stored", "--models", "momentum_20", "--portfolio", "--top-k", "3", "--test-days", "30", "--quiet")
    assert poor.exit_code == ExitCode.BAD_INPUT and "capital" in poor.output


def test_plot_portfolio_needs_a_universe_with_a_stored_portfolio(home):
    assert cli("plot", "--kind", "portfolio").exit_code == ExitCode.USAGE
    assert cli("plot", "T0", "--universe", "stored", "--kind", "portfolio").exit_code == ExitCode.USAGE
    missing = cli("plot", "--universe", "stored", "--kind", "portfolio")
    assert missing.exit_code == ExitCode.NOT_FOUND and "--portfolio" in missing.output


def forecast_of(ticker: str, last_close: float, lower: list[float], upper: list[float]) -> ForecastResult:
    points = [ForecastPoint(f"2024-01-0{2 + i}", (lo + hi) / 2, {"0.8": [lo, hi]}) for i, (lo, hi) in enumerate(zip(lower, upper))]
    return ForecastResult(ticker, "m", "close", "2023-12-29", last_close, last_close, points, "now")


def test_a_china_band_stops_at_the_next_days_limit_prices_and_says_so(home):
    from forecast.workflow.price_limits import cap_forecasts

    china, us = (forecast_of(t, 10.0, [8.0, 7.0], [12.0, 13.0]) for t in ("600000.SH", "AAPL"))
    capped, untouched = cap_forecasts(home, [china, us])
    assert capped.points[0].intervals["0.8"] == [pytest.approx(9.0), pytest.approx(11.0)]  # 10 x (1 -+ 10 %)
    low2, high2 = capped.points[1].intervals["0.8"]
    assert high2 <= 10.0 * 1.1 ** 2 + 0.01 and low2 >= 10.0 * 0.9 ** 2 - 0.01  # compounded over two steps
    assert capped.price_limits["rate"] == pytest.approx(0.10) and capped.price_limits["cut"]["0.8"][0] == "both"
    assert json.loads(json.dumps(capped.to_dict()))["price_limits"]["cut"]["0.8"][0] == "both"
    assert untouched.points[0].intervals["0.8"] == [8.0, 12.0] and untouched.price_limits is None


def test_rank_flags_a_name_that_closed_at_limit_up_and_one_with_no_bar_on_the_last_session(home):
    from forecast.workflow.price_limits import last_day_flags

    bars = synthetic_bars(4, 60, seed=9)
    bars.factor[:, :] = 10.0
    bars.close[-1, 0] = up_limit(float(bars.close[-2, 0]))
    write_store(MarketStore(home), bars, codes=bars.codes[:3])  # the fourth: stored up to the day before the last
    write_store(MarketStore(home), bars, end=bars.dates[-2], codes=bars.codes[3:])
    flags = last_day_flags(home, bars.codes)
    assert flags[bars.codes[0]]["limit_up"] and not flags[bars.codes[0]]["suspended"]
    assert flags[bars.codes[3]]["suspended"]
    assert not any(flags[bars.codes[1]].values())


def test_limits_in_forecast_toml_cut_a_us_band_and_are_checked(home):
    from forecast.errors import ConfigError
    from forecast.workflow.price_limits import cap_forecasts
    from forecast.workflow.settings import load_app_config

    (home / "forecast.toml").write_text('[limits]\n"AAPL" = 0.1\n"*.T" = 0.2\n')
    config = load_app_config(home)
    assert config.limit_for("AAPL") == 0.1 and config.limit_for("7203.T") == 0.2 and config.limit_for("MSFT") is None
    capped, free = cap_forecasts(home, [forecast_of("AAPL", 10.0, [8.0, 7.0], [12.0, 13.0]), forecast_of("MSFT", 10.0, [8.0], [12.0])])
    assert capped.points[0].intervals["0.8"] == [pytest.approx(9.0), pytest.approx(11.0)]
    assert capped.price_limits["set_by"].startswith("[limits]") and free.price_limits is None

    (home / "forecast.toml").write_text('[limits]\n"AAPL" = 1.5\n"MSFT" = "ten"\n')
    with pytest.raises(ConfigError) as raised:
        load_app_config(home)
    assert "AAPL" in str(raised.value) and "MSFT" in str(raised.value)


def test_a_user_limit_blocks_a_buy_at_its_limit_up_open_in_a_plain_universe(home):
    """A non-China universe with [limits]: a name opening at its +5 % limit every day is never bought."""
    panel = make_panel({t: 300 for t in TICKERS}, seed=3)
    rocket = panel.xs(TICKERS[0], level="ticker")
    closes = rocket["close"].to_numpy().copy()
    for t in range(len(closes) - 60, len(closes)):
        closes[t] = np.floor(closes[t - 1] * 1.05 * 100 + 0.5) / 100
    for column in ("open", "high", "low", "close"):
        panel.loc[(slice(None), TICKERS[0]), column] = closes
    store_panel(home, panel)
    (home / "forecast.toml").write_text('[limits]\n"*" = 0.05\n')
    result = cli("backtest", "--universe", "stored", "--models", "momentum_20", "--portfolio", "--test-days", "40",
                 "--top-k", "2", "--quiet", "--json")
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)["portfolio"]["models"]["momentum_20"]
    assert model["blocked"]["buy_at_limit_up"] >= 1
    positions = pd.read_csv(home / "backtests" / "@stored" / "portfolio-positions.csv")
    assert TICKERS[0] not in set(positions["ticker"])


def test_the_universes_index_is_the_second_benchmark_when_its_bars_are_stored(home):
    """csi300's index, 000300.SH, stored like any ticker (forecast fetch 000300.SH), is read from the test's first day on."""
    from forecast.workflow.portfolio_plans import index_close

    assert index_close(home, "csi300", pd.Timestamp("2020-01-01")) is None  # not stored: the universe alone
    store_panel(home, make_panel({"000300.SH": 120}, seed=8))
    stored = MarketStore(home).read_bars("000300.SH").frame
    start = stored["date"].iloc[60]
    index = index_close(home, "csi300", start)
    assert index.name == "000300.SH" and index.index[0] == start and len(index) == 60
    assert list(index) == list(stored["close"].iloc[60:])
    assert index_close(home, "stored", start) is None  # a universe that is no index has none
