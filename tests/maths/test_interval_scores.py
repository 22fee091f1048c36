"""Interval scores by hand, the reacting scale, the GARCH and ETS anchors, and what happens without them."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_FILE
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.sources.csv_file import read_bars_csv
from forecast.errors import CorruptFileError, ExitCode, MissingExtraError
from forecast.evaluation.backtest import format_table, walk_forward
from forecast.maths import metrics
from forecast.maths.intervals import DEFAULT_SCALE, ewma_variance, origin_scale

runner = CliRunner()


# --- scores, by hand ------------------------------------------------------------------------------

def test_winkler_score_by_hand():
    actual = np.array([10.0, 7.0, 14.0])
    lower, upper = np.array([9.0, 8.0, 9.0]), np.array([11.0, 12.0, 13.0])
    # 80 %: alpha 0.2, 2/alpha = 10. Inside: width 2. Below by 1: 4 + 10. Above by 1: 4 + 10.
    assert metrics.winkler(actual, lower, upper, 0.8) == pytest.approx((2 + 14 + 14) / 3)
    # 95 %: 2/alpha = 40
    assert metrics.winkler(actual, lower, upper, 0.95) == pytest.approx((2 + 44 + 44) / 3)
    assert metrics.winkler(actual, actual, actual, 0.9) == 0.0


def test_pinball_loss_by_hand():
    actual = np.array([10.0, 10.0])
    # q below y: tau * (y - q); q above y: (1 - tau) * (q - y)
    assert metrics.pinball(actual, np.array([8.0, 8.0]), 0.9) == pytest.approx(0.9 * 2)
    assert metrics.pinball(actual, np.array([12.0, 12.0]), 0.9) == pytest.approx(0.1 * 2)
    assert metrics.pinball(actual, np.array([8.0, 13.0]), 0.25) == pytest.approx((0.25 * 2 + 0.75 * 3) / 2)
    # the interval's two quantiles: tau 0.1 at the lower bound, 0.9 at the upper
    lo, hi = np.array([9.0]), np.array([12.0])
    by_hand = 0.5 * (0.1 * (10 - 9) + 0.1 * (12 - 10))
    assert metrics.interval_pinball(np.array([10.0]), lo, hi, 0.8) == pytest.approx(by_hand)


def test_interval_pinball_is_a_quarter_alpha_of_winkler():
    rng = np.random.default_rng(3)
    actual = rng.normal(size=200)
    lower, upper = -np.abs(rng.normal(size=200)), np.abs(rng.normal(size=200))
    for level in (0.8, 0.95):
        assert metrics.interval_pinball(actual, lower, upper, level) == pytest.approx(
            (1 - level) / 4 * metrics.winkler(actual, lower, upper, level))


def test_relative_width_divides_by_the_reference_price():
    assert metrics.relative_width(np.array([90.0, 18.0]), np.array([110.0, 22.0]), np.array([100.0, 20.0])) == pytest.approx(0.2)


# --- the reacting scale ---------------------------------------------------------------------------

def test_ewma_variance_follows_the_riskmetrics_recursion_and_skips_gaps():
    changes = np.array([0.01, -0.02, 0.03, np.nan, 0.01])
    got = ewma_variance(changes, 0.94)
    v = np.mean(np.array([0.01, -0.02, 0.03, 0.01]) ** 2)  # the seed: mean square of the first finite changes
    expected = []
    for x in changes:
        v = v if np.isnan(x) else 0.94 * v + 0.06 * x * x
        expected.append(v)
    np.testing.assert_allclose(got, expected)
    clean = np.array([0.01, -0.02, 0.03, 0.01])
    v, loop = np.mean(clean ** 2), []
    for x in clean:
        v = 0.94 * v + 0.06 * x * x
        loop.append(v)
    np.testing.assert_allclose(ewma_variance(clean, 0.94), loop)  # the gap-free path (one C loop) agrees


@pytest.mark.parametrize("scale", ["std60", "ewma0.94", "ewma0.94+std250"])
def test_every_scale_uses_prices_up_to_the_origin_only(scale):
    prices = np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 600)))
    origins = np.array([100, 300, 450])
    before = origin_scale(prices, origins, "log-return", scale=scale)
    changed = prices.copy()
    changed[451:] *= 3.0
    np.testing.assert_array_equal(origin_scale(changed, origins, "log-return", scale=scale), before)
    assert np.all(before > 0.005) and np.all(before < 0.02)


# --- the range scale ---------------------------------------------------------------------------------

def _intraday_bars(days: int, sigma: np.ndarray, seed: int = 0, ticks: int = 78) -> dict[str, np.ndarray]:
    """Bars of a Brownian log-price seen ``ticks`` times a day, each day's volatility ``sigma[day]``; the open is the close before."""
    rng = np.random.default_rng(seed)
    paths = np.cumsum(rng.normal(0, 1, (days, ticks)) * (sigma[:, None] / np.sqrt(ticks)), axis=1)
    start = np.concatenate([[0.0], np.cumsum(paths[:, -1])[:-1]])
    log_path = start[:, None] + np.concatenate([np.zeros((days, 1)), paths], axis=1)
    return {"close": 100 * np.exp(log_path[:, -1]), "high": 100 * np.exp(log_path.max(axis=1)),
            "low": 100 * np.exp(log_path.min(axis=1))}


def test_range_moves_are_parkinsons_volatility_and_fall_back_where_the_range_cannot_tell():
    from forecast.maths.intervals import range_moves

    close = np.array([10.0, 10.5, 11.55, 11.0, 12.0])
    high = np.array([10.2, 10.8, 11.55, np.nan, 12.5])
    low = np.array([9.8, 10.1, 11.55, 10.9, 11.8])  # day 2: one price all day (limit-locked); day 3: no high
    got = range_moves(close, high, low, "log-return")
    k = np.sqrt(4 * np.log(2))
    np.testing.assert_allclose(got[[0, 3]], np.log([10.8 / 10.1, 12.5 / 11.8]) / k)
    np.testing.assert_allclose(got[[1, 2]], np.abs(np.log([11.55 / 10.5, 11.0 / 11.55])))  # the close's move instead
    np.testing.assert_allclose(range_moves(close, high, low, "level")[0], np.log(10.8 / 10.1) / k * 10.5)
    np.testing.assert_allclose(range_moves(close, None, None, "log-return"), np.abs(np.diff(np.log(close))))


def test_a_bar_with_a_zero_negative_or_infinite_end_counts_its_close_move():
    from forecast.maths.intervals import range_moves

    close = np.array([10.0, 10.5, 10.0, 11.0, 11.5])
    high = np.array([10.2, 10.8, np.inf, 11.2, 11.9])
    low = np.array([9.8, 0.0, 9.9, -1.0, 11.0])
    got = range_moves(close, high, low, "log-return")
    np.testing.assert_allclose(got[:3], np.abs(np.diff(np.log(close)))[:3])  # low 0, high inf, low negative
    np.testing.assert_allclose(got[3], np.log(11.9 / 11.0) / np.sqrt(4 * np.log(2)))
    with pytest.raises(ValueError, match="row for row"):
        range_moves(close, high[:2], low[:2], "log-return")


def test_the_range_blend_is_half_the_ewma_of_squared_range_moves_and_half_their_mean_square_by_hand():
    from forecast.maths.intervals import range_moves

    bars = _intraday_bars(400, np.full(400, 0.012), seed=6)
    moves = range_moves(bars["close"], bars["high"], bars["low"], "log-return")
    origins = np.array([300, 399])
    v = np.mean(moves[:20] ** 2)  # the EWMA's seed
    ewma = []
    for x in moves:
        v = 0.94 * v + 0.06 * x * x
        ewma.append(v)
    expected = [np.sqrt((ewma[o - 1] + np.mean(moves[o - 250: o] ** 2)) / 2) for o in origins]
    got = origin_scale(bars["close"], origins, "log-return", scale="range:ewma0.94+std250", high=bars["high"], low=bars["low"])
    np.testing.assert_allclose(got, expected)


def test_bands_are_calibrated_on_the_range_only_where_most_bars_have_one():
    from forecast.maths.intervals import calibration_scale

    bars = _intraday_bars(800, np.full(800, 0.01), seed=7)
    close_to_close = DEFAULT_SCALE.removeprefix("range:")
    assert DEFAULT_SCALE.startswith("range:")
    assert calibration_scale(bars["high"], bars["low"]) == DEFAULT_SCALE
    assert calibration_scale(bars["close"], bars["close"]) == close_to_close  # a close-only file: every bar one price
    assert calibration_scale(None, None) == close_to_close
    high, low = bars["high"].copy(), bars["low"].copy()
    high[-300:] = low[-300:] = bars["close"][-300:]  # the last 300 of the 500 recent bars lost their range
    assert calibration_scale(high, low) == close_to_close
    high, low = bars["high"].copy(), bars["low"].copy()
    high[:-300] = low[:-300] = bars["close"][:-300]  # the older bars lost theirs instead: 300 of the recent 500 have one
    assert calibration_scale(high, low) == DEFAULT_SCALE


def test_a_close_only_file_gets_the_close_to_close_scale_from_the_range_scale():
    prices = np.exp(np.cumsum(np.random.default_rng(4).normal(0, 0.01, 400)))
    origins = np.arange(50, 400)
    np.testing.assert_allclose(origin_scale(prices, origins, "log-return", scale="range:ewma0.94", high=prices, low=prices),
                               origin_scale(prices, origins, "log-return", scale="ewma0.94"))


def test_the_range_scale_tracks_a_known_volatility_more_closely_than_close_to_close_returns():
    days = 3000
    sigma = 0.01 * (1 + 0.5 * np.sin(np.arange(days) / 200))  # slow swings: what is left between scale and truth is noise
    bars = _intraday_bars(days, sigma)
    origins = np.arange(300, days - 1)
    truth = sigma[origins + 1]  # what the scale at an origin should foresee: the next day's volatility
    on_range = origin_scale(bars["close"], origins, "log-return", scale="range:ewma0.94", high=bars["high"], low=bars["low"])
    on_close = origin_scale(bars["close"], origins, "log-return", scale="ewma0.94")
    spread = {name: np.std(np.log(scale / truth)) for name, scale in (("range", on_range), ("close", on_close))}
    assert spread["range"] < 0.7 * spread["close"], spread  # the same EWMA, a measure with less noise in it (about half)
    assert np.median(on_range / truth) == pytest.approx(1.0, abs=0.1)  # and it measures the same thing


@pytest.mark.parametrize("scale", ["range:std60", "range:ewma0.94", "range:ewma0.94+std250"])
def test_every_range_scale_uses_bars_up_to_the_origin_only(scale):
    bars = _intraday_bars(600, np.full(600, 0.01), seed=2)
    origins = np.array([100, 300, 450])
    before = origin_scale(bars["close"], origins, "log-return", scale=scale, high=bars["high"], low=bars["low"])
    high, low = bars["high"].copy(), bars["low"].copy()
    high[451:] *= 1.5
    low[451:] /= 1.5
    np.testing.assert_array_equal(origin_scale(bars["close"], origins, "log-return", scale=scale, high=high, low=low), before)
    assert np.all(before > 0.005) and np.all(before < 0.02)


def _tickers_end_to_end(lengths, seed: int = 4) -> list[dict[str, np.ndarray]]:
    """Bars of several tickers of ``lengths`` days, with the gaps real files have: limit-locked days (one price all
    day), missing highs, a low of zero, a missing close."""
    rng = np.random.default_rng(seed)
    out = []
    for i, days in enumerate(lengths):
        bars = _intraday_bars(days, np.exp(rng.normal(np.log(0.015), 0.4, days)), seed=seed + i)
        pick = rng.choice(days, size=max(3, days // 20), replace=False)
        bars["high"][pick[0::3]] = bars["low"][pick[0::3]] = bars["close"][pick[0::3]]  # limit-locked
        bars["high"][pick[1::3]] = np.nan
        bars["low"][pick[2::3]] = 0.0
        bars["close"][pick[-1]] = np.nan
        out.append(bars)
    return out


@pytest.mark.parametrize("scale", ["range:ewma0.94+std250", "ewma0.94+std250", "range:std60", "std60", "ewma0.94"])
def test_the_long_order_scale_is_each_tickers_own_scale(scale):
    from forecast.maths.intervals import MIN_SCALE_ROWS
    from forecast.maths.long_scale import long_origin_scale

    tickers = _tickers_end_to_end([700, 3, 40, 300])  # a ticker with fewer bars than a scale needs among them
    close, high, low = (np.concatenate([bars[k] for bars in tickers]) for k in ("close", "high", "low"))
    start = np.concatenate([np.full(len(bars["close"]), first) for bars, first in
                            zip(tickers, np.cumsum([0] + [len(bars["close"]) for bars in tickers[:-1]]))])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_range = np.log(high / np.where(low > 0, low, np.nan))  # as the universe's pooled inputs keep it
    rows = np.arange(len(close))
    got = long_origin_scale(close, log_range, start, rows, scale)
    for bars, first in zip(tickers, np.unique(start)):
        mine = np.flatnonzero(start == first)
        origins = mine - first
        own = origin_scale(bars["close"], origins, "log-return", scale=scale, high=bars["high"], low=bars["low"])
        known = np.isfinite(got[mine])
        np.testing.assert_allclose(got[mine][known], own[known], rtol=1e-9)
        assert not known[origins < MIN_SCALE_ROWS].any()  # too little history: NaN, where origin_scale falls back
        assert known[origins >= 60].all()
    assert np.isfinite(got).sum() > 900


def test_the_long_order_scale_gives_the_same_bits_in_blocks_of_tickers_for_rows_in_any_order():
    from forecast.maths.long_scale import long_origin_scale

    tickers = _tickers_end_to_end([300, 40, 500, 3, 120], seed=6)
    close, high, low = (np.concatenate([bars[k] for bars in tickers]) for k in ("close", "high", "low"))
    lengths = [len(bars["close"]) for bars in tickers]
    start = np.repeat(np.cumsum([0, *lengths[:-1]]), lengths)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_range = np.log(high / np.where(low > 0, low, np.nan))
    rows = np.random.default_rng(1).permutation(np.r_[10:300, 345:840, 880:963])  # not every ticker, shuffled
    whole = long_origin_scale(close, log_range, start, rows, DEFAULT_SCALE)
    for block in (1, 50, 400):  # a ticker per block, and blocks a ticker is longer than
        np.testing.assert_array_equal(long_origin_scale(close, log_range, start, rows, DEFAULT_SCALE, block_rows=block), whole)
    by_row = long_origin_scale(close, log_range, start, np.arange(len(close)), DEFAULT_SCALE)
    np.testing.assert_array_equal(whole, by_row[rows])  # the rows asked, each where it was asked
    assert np.isfinite(whole).sum() > 800


def test_the_long_order_window_gives_the_same_figures_in_chunks():
    from forecast.maths.long_scale import _long_window

    tickers = _tickers_end_to_end([300, 40, 500], seed=5)
    moves = np.abs(np.diff(np.log(np.concatenate([bars["close"] for bars in tickers])), prepend=np.nan))
    start = np.repeat([0, 300, 340], [300, 40, 500])
    moves[[0, 300, 340]] = np.nan  # a ticker's first bar has no move
    rows = np.arange(len(moves))
    whole = _long_window(moves, start, rows, 60, demean=False)
    np.testing.assert_array_equal(_long_window(moves, start, rows, 60, demean=False, chunk=7), whole)  # training's
    assert np.isfinite(whole).sum() > 700  # many rows, past the first chunk: each chunk lands where it belongs


def test_the_long_order_scale_reads_each_tickers_bars_up_to_the_row_only():
    from forecast.maths.long_scale import long_origin_scale

    tickers = _tickers_end_to_end([400, 400], seed=7)
    close, high, low = (np.concatenate([bars[k] for bars in tickers]) for k in ("close", "high", "low"))
    start = np.repeat([0, 400], 400)
    rows = np.array([150, 399, 550, 799])
    with np.errstate(divide="ignore"):  # the low of zero: an infinite range, which the scale passes over
        log_range = np.log(high / low)
    before = long_origin_scale(close, log_range, start, rows, DEFAULT_SCALE)
    later = log_range.copy()
    later[400:551] *= 3  # the second ticker's earlier days move: the first ticker's rows do not see them
    later[551:] *= 3  # and its rows after 550
    after = long_origin_scale(close, later, start, rows, DEFAULT_SCALE)
    np.testing.assert_array_equal(after[:2], before[:2])
    assert after[2] > 2 * before[2]
    np.testing.assert_allclose(after[3], 3 * before[3], rtol=0.05)  # every range tripled: the scale, near enough


@pytest.mark.parametrize("scale", ["range:", "range:ewma1.5", "range:std2", "ranges:ewma0.94", "ewma0.94+range:std250"])
def test_a_malformed_range_scale_is_refused(scale):
    from forecast.errors import BadInputError
    from forecast.maths.intervals import check_scale

    with pytest.raises(BadInputError, match=r"range:ewma0\.94"):
        check_scale(scale)


def test_the_ewma_scale_reacts_to_a_shock_within_days():
    returns = np.full(400, 0.005) * np.where(np.arange(400) % 2, 1, -1)
    returns[300] = 0.08  # one 8 % day after a calm spell
    prices = 100 * np.exp(np.cumsum(returns))
    after = np.array([301, 305])
    ewma = origin_scale(prices, after, "log-return", scale="ewma0.94")
    std = origin_scale(prices, after, "log-return", scale="std60")
    assert ewma[0] > 1.5 * std[0]  # the day after, the EWMA has jumped; the 60-day std has barely moved


def test_an_old_card_keeps_its_std60_scale_and_a_new_one_names_its_own():
    from forecast.models.card import ModelCard
    from forecast.models.forecasters import card_scale
    from forecast.models.train_config import DEFAULT

    old = {"id": "X-default-gru-1", "ticker": "600519.SH", "created_at": "2026-01-01T00:00:00+00:00",
           "config": DEFAULT.to_dict(), "features": ["return"],
           "scaling": {"features": {"kind": "standard", "shift": [0.0], "scale": [1.0]},
                       "target": {"kind": "standard", "shift": [0.0], "scale": [1.0]}},
           "data": {"range": ["2020-01-01", "2020-12-31"]}, "validation": {},
           "intervals": {"scale_window": 60, "quantiles": {"0.8": [1.0] * DEFAULT.horizon}}}
    assert card_scale(ModelCard.from_dict(old)) == "std60"
    new = {**old, "intervals": {**old["intervals"], "scale": DEFAULT_SCALE}}
    assert card_scale(ModelCard.from_dict(new)) == DEFAULT_SCALE
    with pytest.raises(CorruptFileError):
        card_scale(ModelCard.from_dict({**old, "intervals": {**old["intervals"], "scale": "magic"}}))


# --- GARCH on data it should fit -------------------------------------------------------------------

def simulated_garch_frame(n: int, mu=0.03, omega=0.02, alpha=0.08, beta=0.90, nu=6.0, seed=7) -> pd.DataFrame:
    """Prices whose daily log-returns (in percent) follow a GARCH(1,1) with standardised Student-t shocks."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(nu, size=n) * np.sqrt((nu - 2) / nu)
    sigma2, returns = omega / (1 - alpha - beta), np.empty(n)
    for t in range(n):
        returns[t] = mu + np.sqrt(sigma2) * z[t]
        sigma2 = omega + alpha * (returns[t] - mu) ** 2 + beta * sigma2
    close = 100 * np.exp(np.concatenate([[0.0], np.cumsum(returns / 100)]))
    dates = pd.bdate_range("2000-01-03", periods=n + 1)
    return pd.DataFrame({"date": dates, "open": close, "high": close, "low": close, "close": close,
                         "volume": 1e6, "amount": np.nan})


def test_garch_recovers_known_parameters_and_its_bands_hold_their_level():
    pytest.importorskip("arch")
    from forecast.models.forecasters import forecast_bands, make_baseline

    frame = simulated_garch_frame(3600)
    model = make_baseline("garch", 5).fit(frame.iloc[:3001])
    p = model.params
    assert abs(p["alpha"] - 0.08) < 0.04 and abs(p["beta"] - 0.90) < 0.05, p
    assert abs(p["alpha"] + p["beta"] - 0.98) < 0.03 and 3.5 < p["nu"] < 10, p
    origins = np.arange(3000, 3595)
    bands = forecast_bands(model, frame, origins)
    close = frame["close"].to_numpy()
    for k in (0, 4):
        actual = close[origins + k + 1]
        cov80 = metrics.coverage(actual, bands.lower["0.8"][:, k], bands.upper["0.8"][:, k])
        cov95 = metrics.coverage(actual, bands.lower["0.95"][:, k], bands.upper["0.95"][:, k])
        assert abs(cov80 - 0.8) < 0.06 and abs(cov95 - 0.95) < 0.035, (k + 1, cov80, cov95)


def test_garch_bands_widen_after_a_shock_and_with_the_horizon():
    pytest.importorskip("arch")
    from forecast.models.forecasters import forecast_bands, make_baseline

    frame = simulated_garch_frame(1200)
    model = make_baseline("garch", 5).fit(frame)
    shocked = frame.copy()
    shocked.loc[1200, ["open", "high", "low", "close"]] = frame["close"].iloc[1199] * 0.9
    calm = forecast_bands(model, frame, np.array([1200]))
    after = forecast_bands(model, shocked, np.array([1200]))
    width = {name: np.log(b.upper["0.8"] / b.lower["0.8"])[0] for name, b in (("calm", calm), ("after", after))}
    assert width["after"][0] > 1.5 * width["calm"][0] and np.all(np.diff(width["calm"]) > 0)


# --- the anchors through the CLI and the backtest ------------------------------------------------------

@pytest.mark.parametrize("name", ["garch", "ets"])
def test_predict_with_an_anchor_gives_both_levels_on_trading_days(home, name):
    pytest.importorskip({"garch": "arch", "ets": "statsforecast"}[name])
    from forecast.data.calendar import next_sessions
    from forecast.data.tickers import parse_ticker

    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    result = runner.invoke(app, ["predict", "600519.SH", "--model", name, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model_id"] == name and payload["model_summary"]["family"] == name
    points = payload["points"]
    assert len(points) == 5
    expected = next_sessions(pd.Timestamp(payload["last_date"]), 5, parse_ticker("600519.SH"))
    assert [p["date"] for p in points] == [d.date().isoformat() for d in expected]
    for p in points:
        (lo80, hi80), (lo95, hi95) = p["intervals"]["0.8"], p["intervals"]["0.95"]
        assert lo95 < lo80 < p["value"] < hi80 < hi95, p
    widths = [p["intervals"]["0.95"][1] - p["intervals"]["0.95"][0] for p in points]
    assert widths == sorted(widths)


def test_anchors_in_a_short_backtest_are_scored_at_every_step_and_level():
    pytest.importorskip("arch")
    pytest.importorskip("statsforecast")
    frame = read_bars_csv(SAMPLE_FILE).frame.tail(700).reset_index(drop=True)
    result = walk_forward(frame, "600519.SH", models=("garch", "ets", "naive"), test_days=40, refit_every=20, horizon=3)
    assert set(result.scores) == {"garch", "ets", "naive"} and result.paths["garch"].fits == 2
    for name, score in result.scores.items():
        assert len(score["by_step"]) == 3
        for step in score["by_step"]:
            for key in ("coverage", "interval_width", "relative_width", "winkler", "pinball"):
                assert set(step[key]) == {"0.8", "0.95"}, (name, key)
            assert step["winkler"]["0.95"] > step["interval_width"]["0.95"] * 0.99
            assert 0 < step["relative_width"]["0.8"] < step["relative_width"]["0.95"] < 1
    table = format_table(result)
    assert "W80" in table and "W95" in table and "note:" not in table


@pytest.mark.parametrize("name", ["garch", "ets"])
def test_an_anchor_forecasts_the_last_bar_as_its_backtest_does(name):
    pytest.importorskip({"garch": "arch", "ets": "statsforecast"}[name])
    from forecast.models.forecasters import forecast_bands, make_baseline

    frame = read_bars_csv(SAMPLE_FILE).frame.tail(600).reset_index(drop=True)
    known = frame.iloc[:-3]  # predict at the last known bar; the backtest sees three more bars after it
    last = np.array([len(known) - 1])
    bands = forecast_bands(make_baseline(name, 3).fit(known), known, last)
    path = walk_forward(frame, "X", models=(name,), horizon=3, origins=last, first_fit_rows=len(known)).paths[name]
    np.testing.assert_allclose(path.predicted[0], bands.point[0])
    for level in ("0.8", "0.95"):
        np.testing.assert_allclose(path.lower[level][0], bands.lower[level][0])
        np.testing.assert_allclose(path.upper[level][0], bands.upper[level][0])


# --- without the optional extra -------------------------------------------------------------------

@pytest.fixture
def without_statsforecast(monkeypatch):
    """Make ``import statsforecast`` fail as it does where the extra is not installed."""
    for module in [m for m in sys.modules if m == "statsforecast" or m.startswith("statsforecast.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "statsforecast", None)


def test_a_backtest_without_statsforecast_goes_on_with_a_note(without_statsforecast):
    frame = read_bars_csv(SAMPLE_FILE).frame.tail(400).reset_index(drop=True)
    result = walk_forward(frame, "600519.SH", models=("ets", "drift"), test_days=20, refit_every=20, horizon=2)
    assert set(result.scores) == {"drift", "naive"}
    assert "pip install forecast[intervals]" in result.settings["skipped"]["ets"]
    notes = [line for line in format_table(result).splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "ets" in notes[0] and "statsforecast" in notes[0]
    assert result.to_dict()["settings"]["skipped"] == result.settings["skipped"]


def test_predict_ets_without_statsforecast_is_a_one_line_usage_error(home, without_statsforecast):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    result = runner.invoke(app, ["predict", "600519.SH", "--model", "ets"])
    assert result.exit_code == ExitCode.USAGE == MissingExtraError.exit_code
    assert "pip install forecast[intervals]" in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


# --- the calibration chart ------------------------------------------------------------------------

def test_plot_calibration_and_the_backtest_footer_read_the_stored_scores(home):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    bt = runner.invoke(app, ["backtest", "600519.SH", "--models", "drift", "--test-days", "30", "--horizon", "3"])
    assert bt.exit_code == 0, bt.output
    assert "W80" in bt.output
    result = runner.invoke(app, ["plot", "600519.SH", "--kind", "calibration", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["kind"] == "calibration" and (home / "charts" / "600519.SH-calibration.png").stat().st_size > 10_000
    from forecast.models.backtest_records import load_backtest
    from forecast.outputs.charts import interval_footer

    footer = interval_footer(load_backtest(home, "600519.SH"), "drift")
    assert footer.startswith("80% interval: coverage ") and "steps 1 / 3" in footer and "95% interval" in footer
    assert runner.invoke(app, ["plot", "600519.SH", "--kind", "backtest"]).exit_code == 0


@pytest.mark.parametrize("scale", ["std60", "ewma0.94", "ewma0.94+std250"])
def test_a_flat_series_gets_a_unit_scale_not_zero(scale):
    from forecast.maths.intervals import origin_scale

    flat = np.full(400, 12.5)
    got = origin_scale(flat, np.arange(100, 400), "log-return", scale=scale)
    assert np.isfinite(got).all() and (got > 0).all()  # residuals divided by it stay finite (0/0 was NaN quantiles)
    moving = flat * np.exp(np.cumsum(np.r_[0.0, np.random.default_rng(1).normal(0, 0.01, 399)]))
    assert not np.allclose(origin_scale(moving, np.arange(100, 400), "log-return", scale=scale), 1.0)


def test_the_calibration_chart_is_titled_by_its_ticker_not_its_last_model(home, tmp_path):
    from forecast.models.backtest_records import load_backtest
    from forecast.outputs.charts import calibration_chart

    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    bt = runner.invoke(app, ["backtest", "600519.SH", "--models", "naive,drift", "--test-days", "30", "--horizon", "3"])
    assert bt.exit_code == 0, bt.output
    info = calibration_chart(load_backtest(home, "600519.SH"), "600519.SH", tmp_path / "c.png", name="Kweichow Moutai")
    assert info.title.split(":")[0] == "Kweichow Moutai 600519.SH"  # the company and code, not the last model's name
