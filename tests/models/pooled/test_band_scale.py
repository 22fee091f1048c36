"""The volatility a universe model's bands rest on: the day's range for new cards, the 60-day std for older ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.maths.intervals import DEFAULT_SCALE, origin_scale
from forecast.models.pooled.band_scale import band_scale, universe_scale
from forecast.models.pooled.card import GlobalRegistry
from forecast.models.pooled.data import ensemble_forecast, pool, time_split
from forecast.models.pooled.model import GlobalSettings, Recalibration, calibrate, forecast_panel, pooled_against, train_global
from forecast.models.pooled.numpy_net import NumpyGlobalNet
from forecast.models.pooled.recalibration import read_tracks
from tests.models.pooled.test_data import make_panel

TINY = GlobalSettings(lookback=10, horizon=3, units=4, head_units=4, members=2, epochs=2, patience=0,
                      validation_days=40, levels=(0.8, 0.95))
TICKERS = {f"T{i}": 300 for i in range(5)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    panel = make_panel(TICKERS, seed=11)
    registry = GlobalRegistry(tmp_path_factory.mktemp("home"))
    card = train_global(panel, "toy", TINY, registry).card
    return panel, card, NumpyGlobalNet.from_keras_file(registry.model_file(card.id))


def _log_widths(panel, card, network) -> dict[str, np.ndarray]:
    """{ticker: (H,) ln(upper / lower) of its 80 % band}: the band's width, whatever its centre."""
    forecasts, problems = forecast_panel(panel, card, network)
    assert problems == {}
    return {f.ticker: np.array([np.log(p.intervals["0.8"][1] / p.intervals["0.8"][0]) for p in f.result.points])
            for f in forecasts}


def _expected_widths(card, volatility: float) -> np.ndarray:
    quantiles = np.asarray(card.intervals["quantiles"]["0.8"])  # (H, [low, high]) in units of volatility x sqrt(step)
    return (quantiles[:, 1] - quantiles[:, 0]) * volatility * np.sqrt(np.arange(1, card.horizon + 1))


@pytest.mark.slow
def test_a_new_universe_card_rests_its_bands_on_each_tickers_range(trained):
    panel, card, network = trained
    assert card.intervals["scale"] == DEFAULT_SCALE
    widths = _log_widths(panel, card, network)
    for ticker, width in widths.items():
        bars = panel.xs(ticker, level="ticker")
        close, high, low = (bars[k].to_numpy(dtype="float64") for k in ("close", "high", "low"))
        own = origin_scale(close, np.array([len(close) - 1]), "log-return", scale=DEFAULT_SCALE, high=high, low=low)[0]
        np.testing.assert_allclose(width, _expected_widths(card, own), rtol=1e-6)  # the per-ticker models' own scale


@pytest.mark.slow
def test_training_calibrates_on_the_scale_its_card_names(trained):
    panel, card, network = trained
    data = pool(panel, card.horizon)
    validation = time_split(data, card.lookback, train_end=data.dates.max(), validation_days=TINY.validation_days).validation
    scores = ensemble_forecast(network.predict, data, validation, card.lookback, card.horizon)
    _, intervals = calibrate(scores, data.labels[validation], band_scale(data, validation, card.intervals["scale"]), TINY.levels)
    for key, quantiles in card.intervals["quantiles"].items():  # the card's residuals are in the units forecasts use
        np.testing.assert_allclose(quantiles, intervals["quantiles"][key], rtol=1e-4)


@pytest.mark.slow
def test_a_fresh_track_gives_the_models_own_bands(trained, tmp_path):
    panel, card, network = trained
    levels = list(card.intervals["quantiles"])
    fresh = Recalibration(*read_tracks(tmp_path / "none.json", card.id, levels, card.horizon))  # no file: every ticker at 1
    own, _ = forecast_panel(panel, card, network)
    tracked, _ = forecast_panel(panel, card, network, recalibration=fresh)
    for mine, theirs in zip(own, tracked):
        for a, b in zip(mine.result.points, theirs.result.points):
            np.testing.assert_allclose(b.intervals["0.8"], a.intervals["0.8"], rtol=1e-9)  # on the same volatility


@pytest.mark.slow
def test_wider_recent_ranges_widen_that_tickers_band_alone(trained):
    panel, card, network = trained
    before = _log_widths(panel, card, network)
    wide = panel.copy()
    recent = (wide.index.get_level_values("ticker") == "T2") & (wide.index.get_level_values("date") >= wide.index.levels[0][-15])
    mid = np.sqrt(wide.loc[recent, "high"] * wide.loc[recent, "low"])
    half = np.log(wide.loc[recent, "high"] / wide.loc[recent, "low"]) / 2
    wide.loc[recent, "high"], wide.loc[recent, "low"] = mid * np.exp(3 * half), mid * np.exp(-3 * half)  # closes untouched
    after = _log_widths(wide, card, network)
    assert np.all(after["T2"] > 1.5 * before["T2"])
    for ticker in set(TICKERS) - {"T2"}:
        np.testing.assert_array_equal(after[ticker], before[ticker])


@pytest.mark.slow
def test_a_card_from_before_named_scales_keeps_the_60_day_std(trained):
    panel, card, network = trained
    old = type(card)(**{**card.__dict__, "intervals": {k: v for k, v in card.intervals.items() if k != "scale"}})
    widths = _log_widths(panel, old, network)
    for ticker, width in widths.items():
        returns = np.diff(np.log(panel.xs(ticker, level="ticker")["close"].to_numpy(dtype="float64")))
        np.testing.assert_allclose(width, _expected_widths(card, np.std(returns[-60:], ddof=1)), rtol=1e-5)


def test_a_universe_of_close_only_bars_is_calibrated_on_the_close_to_close_form():
    panel = make_panel({"A": 120, "B": 120}, seed=3)
    data = pool(panel, 3)
    rows = np.arange(len(data))
    assert universe_scale(data, rows) == DEFAULT_SCALE
    flat = panel.assign(high=panel["close"], low=panel["close"])  # one price all day: no range
    assert universe_scale(pool(flat, 3), rows) == DEFAULT_SCALE.removeprefix("range:")
    half = panel.copy()
    b_rows = half.index.get_level_values("ticker") == "B"
    half.loc[b_rows, "high"] = half.loc[b_rows, "low"] = half.loc[b_rows, "close"]  # B close-only: half the rows
    assert universe_scale(pool(half, 3), rows) == DEFAULT_SCALE  # half have a range: enough
    a_rows = np.flatnonzero(pool(half, 3).tickers == "A")
    assert universe_scale(pool(half, 3), np.r_[a_rows[:-1], np.flatnonzero(pool(half, 3).tickers == "B")]) \
        == DEFAULT_SCALE.removeprefix("range:")  # one short of half: not


def test_a_row_whose_scale_cannot_be_measured_gets_the_60_day_std():
    panel = make_panel({"A": 100, "B": 3}, seed=4)  # B: three bars, too few for any scale
    data = pool(panel, 3)
    rows = np.arange(len(data))
    got = band_scale(data, rows, DEFAULT_SCALE)
    short = data.tickers == "B"
    np.testing.assert_array_equal(got[short], data.sigma[short].astype("float64"))
    long = ~short & (data.position >= 60)
    assert np.all(got[long] != data.sigma[long].astype("float64")) and np.all(got[long] > 0)
    np.testing.assert_array_equal(band_scale(data, rows, None), data.sigma.astype("float64"))


def test_a_tickers_scale_is_the_same_whichever_tickers_are_laid_out_before_it():
    alone = make_panel({"ZZ": 400}, seed=8)
    others = make_panel({"AA": 700, "BB": 250}, seed=9, start="2019-01-01")
    together = pd.concat([others, alone]).sort_index()
    scales = []
    for data in (pool(alone, 3), pool(together, 3), pooled_against(together, 3, reference=["AA", "BB"])):  # ZZ: an outsider
        rows = np.flatnonzero((data.tickers == "ZZ") & (data.position >= 5))  # before: the 60-day std's fill, the block's median
        scales.append(band_scale(data, rows, DEFAULT_SCALE))
    np.testing.assert_array_equal(scales[0], scales[1])
    np.testing.assert_array_equal(scales[0], scales[2])
