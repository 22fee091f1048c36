"""A network's interval quantiles: the mean of its validation windows' own and naive's over many origins, rescaled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_FILE

from forecast.maths.intervals import (
    CALIBRATION_ORIGINS,
    DEFAULT_SCALE,
    anchored_quantiles,
    calibration_origins,
    conformal_quantiles,
    naive_residuals,
    network_intervals,
    origin_scale,
)
from forecast.models.baselines import Naive


def _random_walk(rows: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50.0 * np.exp(np.cumsum(np.r_[0.0, rng.standard_t(4, rows - 1) * 0.012]))


def test_anchored_quantiles_by_hand():
    # naive's long set at one step: 1, 2, ..., 19; the 80 % conformal rank is ceil(20 * 0.8) = 16, so its quantile is 16
    long = np.arange(1.0, 20.0)[:, None]
    naive_val = np.array([[1.0], [-3.0], [2.0], [0.5]])  # root mean square sqrt((1 + 9 + 4 + 0.25) / 4) = sqrt(3.5625)
    model_val = np.array([[2.0], [-5.0], [1.0], [1.5]])  # root mean square sqrt((4 + 25 + 1 + 2.25) / 4) = sqrt(8.0625)
    quantiles, ratio = anchored_quantiles(model_val, naive_val, long, levels=(0.8,))
    expected_ratio = np.sqrt(8.0625 / 3.5625)
    assert ratio == pytest.approx([expected_ratio])
    assert quantiles["0.8"] == pytest.approx([16 * expected_ratio])


def test_each_step_gets_its_own_ratio():
    rng = np.random.default_rng(0)
    naive_val = rng.normal(size=(60, 3))
    model_val = naive_val * np.array([1.0, 2.0, 0.5])  # a model whose errors are naive's, twice and half as large
    long = rng.normal(size=(400, 3))
    quantiles, ratio = anchored_quantiles(model_val, naive_val, long, levels=(0.95,))
    assert ratio == pytest.approx([1.0, 2.0, 0.5])
    naive_q = conformal_quantiles(long, (0.95,))["0.95"]
    assert quantiles["0.95"] == pytest.approx([naive_q[0], 2 * naive_q[1], 0.5 * naive_q[2]])


def test_a_step_where_naive_never_errs_keeps_the_models_own_quantile():
    model_val = np.array([[0.1, 0.3], [0.2, -0.4], [-0.3, 0.5]])
    naive_val = np.array([[0.0, 0.2], [0.0, -0.1], [0.0, 0.3]])  # step 1 of a flat stretch: "no change" is exact
    long = np.abs(np.random.default_rng(2).normal(size=(50, 2)))
    quantiles, ratio = anchored_quantiles(model_val, naive_val, long, levels=(0.8,))
    assert np.isnan(ratio[0]) and np.isfinite(ratio[1])
    assert quantiles["0.8"][0] == conformal_quantiles(model_val, (0.8,))["0.8"][0]
    assert np.isfinite(quantiles["0.8"]).all()


def test_gaps_in_the_long_set_are_left_out_not_turned_into_missing_quantiles():
    rng = np.random.default_rng(4)
    val = rng.normal(size=(80, 2))
    long = rng.normal(size=(400, 2))
    with_gaps = long.copy()
    with_gaps[::13, 1] = np.nan
    got, _ = anchored_quantiles(val, val, with_gaps, levels=(0.8, 0.95))
    expected = conformal_quantiles(long[np.isfinite(with_gaps).all(axis=1)], (0.8, 0.95))
    assert got == {key: pytest.approx(values) for key, values in expected.items()}


def test_a_flat_series_keeps_the_networks_own_finite_quantiles():
    prices = np.full(800, 20.0)
    val_origins = np.arange(680, 795)
    residuals = np.random.default_rng(6).normal(0, 0.01, (len(val_origins), 5))
    card = network_intervals(prices, val_origins, residuals, "log-return", levels=(0.8, 0.95))
    assert np.isfinite(card["quantiles"]["0.95"]).all()
    assert card["quantiles"] == card["validation_quantiles"] and all(np.isnan(card["error_ratio"]))


def test_level_targets_are_calibrated_in_price_units_and_do_not_depend_on_them():
    prices = _random_walk(900, seed=8)
    val_origins = np.arange(770, 897)
    noise = np.random.default_rng(9).normal(0, 0.3, (len(val_origins), 3))
    residuals = naive_residuals(prices, val_origins, 3, "level") + noise  # a level model: naive's errors plus its own
    card = network_intervals(prices, val_origins, residuals, "level", levels=(0.8,))
    tenfold = network_intervals(10 * prices, val_origins, 10 * residuals, "level", levels=(0.8,))
    assert card["space"] == "level" and np.all(np.asarray(card["error_ratio"]) > 1)
    assert tenfold["quantiles"]["0.8"] == pytest.approx(card["quantiles"]["0.8"])  # normalised by a volatility in price units


def test_a_short_history_anchors_on_what_it_has():
    prices = _random_walk(300, seed=10)
    val_origins = np.arange(255, 295)
    card = network_intervals(prices, val_origins, naive_residuals(prices, val_origins, 5, "log-return"), "log-return")
    assert card["naive_origins"] == 300 - 5 - 20  # from the first origin whose EWMA is past its seed
    assert all(np.isfinite(card["quantiles"][key]).all() for key in card["quantiles"])


def test_naive_residuals_in_both_target_spaces():
    prices = np.array([10.0, 11.0, 9.0, 12.0])
    got = naive_residuals(prices, np.array([0, 1]), 2, "log-return")
    np.testing.assert_allclose(got, np.log([[11 / 10, 9 / 10], [9 / 11, 12 / 11]]))
    np.testing.assert_allclose(naive_residuals(prices, np.array([0, 1]), 2, "level"), [[1.0, -1.0], [-2.0, 1.0]])


def test_calibration_origins_are_the_last_ones_with_every_step_known():
    origins = calibration_origins(2000, 5)
    assert len(origins) == CALIBRATION_ORIGINS and origins[-1] == 2000 - 1 - 5
    assert calibration_origins(100, 5, first=10)[0] == 10  # short history: from ``first`` on


def test_a_network_that_says_no_change_is_anchored_on_the_naive_baselines_quantiles():
    prices = _random_walk(1500)
    horizon = 5
    val_origins = np.arange(1270, 1500 - horizon)
    residuals = naive_residuals(prices, val_origins, horizon, "log-return")  # the network predicted exactly 0
    card = network_intervals(prices, val_origins, residuals, "log-return", levels=(0.8, 0.95))
    baseline = Naive(horizon, levels=(0.8, 0.95)).fit(pd.DataFrame({"close": prices}))
    assert card["error_ratio"] == pytest.approx([1.0] * horizon)
    assert card["scale"] == baseline.scale == DEFAULT_SCALE.removeprefix("range:")  # closes alone: the close-to-close form
    assert card["naive_origins"] == CALIBRATION_ORIGINS and card["validation_windows"] == len(val_origins)
    for level in ("0.8", "0.95"):
        assert card["anchored_quantiles"][level] == pytest.approx(baseline.quantiles[level])
        # what it uses: the mean of the anchored quantiles and the validation windows' own
        own = conformal_quantiles(residuals / origin_scale(prices, val_origins, "log-return", scale=card["scale"])[:, None],
                                  (0.8, 0.95))[level]
        assert card["validation_quantiles"][level] == pytest.approx(own)
        assert card["quantiles"][level] == pytest.approx([(a + b) / 2 for a, b in zip(own, baseline.quantiles[level])])
    assert card["validation_quantiles"] != card["anchored_quantiles"]  # 225 validation errors against 500 of naive's


def test_a_network_twice_as_wrong_as_naive_gets_intervals_twice_as_wide():
    prices = _random_walk(1500, seed=5)
    horizon = 3
    val_origins = np.arange(1270, 1500 - horizon)
    naive = naive_residuals(prices, val_origins, horizon, "log-return")
    doubled = network_intervals(prices, val_origins, 2 * naive, "log-return", levels=(0.8,))
    plain = network_intervals(prices, val_origins, naive, "log-return", levels=(0.8,))
    assert doubled["quantiles"]["0.8"] == pytest.approx([2 * q for q in plain["quantiles"]["0.8"]])


@pytest.mark.slow
def test_a_trained_networks_card_holds_both_estimates_and_uses_their_mean():
    from forecast.data.sources.csv_file import read_bars_csv
    from forecast.models import network
    from forecast.models.dataset import training_arrays, unscaled_targets
    from forecast.models.train_config import TrainConfig
    from forecast.models.training import fit_model

    frame = read_bars_csv(SAMPLE_FILE).frame.tail(700).reset_index(drop=True)
    cfg = TrainConfig(units=(8,), lookback=20, horizon=3, epochs=2, seed=3)
    fitted = fit_model(frame, cfg, "600519.SH", levels=(0.8, 0.95))
    intervals = fitted.card.intervals
    # recompute the network's validation errors from its own predictions, apart from fit_model
    arrays = training_arrays(frame, cfg, "600519.SH")
    errors = unscaled_targets(arrays.Y_val, arrays.scaling) - unscaled_targets(network.predict(fitted.model, arrays.X_val), arrays.scaling)
    prices = frame["close"].to_numpy(dtype="float64")
    scale = origin_scale(prices, arrays.val_last_rows, "log-return", scale=DEFAULT_SCALE,
                         high=frame["high"].to_numpy(), low=frame["low"].to_numpy())[:, None]  # the card's scale is on the range
    naive = naive_residuals(prices, arrays.val_last_rows, cfg.horizon, "log-return")
    ratio = np.sqrt(np.mean((errors / scale) ** 2, axis=0) / np.mean((naive / scale) ** 2, axis=0))
    assert intervals["error_ratio"] == pytest.approx(ratio, rel=1e-5)
    assert intervals["validation_windows"] == len(arrays.X_val)
    assert intervals["naive_origins"] == min(CALIBRATION_ORIGINS, len(frame) - cfg.horizon - 5)
    naive_baseline = Naive(cfg.horizon, levels=(0.8, 0.95)).fit(frame)  # its own calibration: the same last 500 origins
    for level in ("0.8", "0.95"):
        own = conformal_quantiles(errors / scale, (float(level),))[level]
        anchored = ratio * np.asarray(naive_baseline.quantiles[level])
        assert intervals["validation_quantiles"][level] == pytest.approx(own, rel=1e-5)
        assert intervals["anchored_quantiles"][level] == pytest.approx(anchored, rel=1e-5)
        assert fitted.card.quantiles[level] == pytest.approx((np.asarray(own) + anchored) / 2, rel=1e-5)


def test_a_baselines_band_follows_the_days_range_where_the_close_alone_would_not_move_it():
    from forecast.models.forecasters import forecast_bands

    close = _random_walk(800, seed=8)
    rng = np.random.default_rng(8)
    spread = close * 0.01 * (1 + rng.random(800))  # each day's high-low range, about 1 to 2 % of the close
    frame = pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=800), "open": close, "close": close,
                          "high": close + spread / 2, "low": close - spread / 2, "volume": 1.0})
    model = Naive(5, levels=(0.8,)).fit(frame.iloc[:700])
    assert model.scale == DEFAULT_SCALE and DEFAULT_SCALE.startswith("range:")
    origin = np.array([760])
    calm = forecast_bands(model, frame, origin)
    wide = frame.copy()
    wide.loc[740:760, "high"] = close[740:761] + 3 * spread[740:761] / 2  # the last three weeks' ranges tripled, closes as they were
    wide.loc[740:760, "low"] = close[740:761] - 3 * spread[740:761] / 2
    stormy = forecast_bands(model, wide, origin)
    calm_width = calm.upper["0.8"] - calm.lower["0.8"]
    assert np.all(stormy.upper["0.8"] - stormy.lower["0.8"] > 1.5 * calm_width)
    np.testing.assert_allclose(stormy.point, calm.point)  # the point is the close's, untouched
    # and its fit calibrated on the range too: ranges twice as wide everywhere give quantiles half as large
    doubled = frame.assign(high=close + spread, low=close - spread)
    refit = Naive(5, levels=(0.8,)).fit(doubled.iloc[:700])
    assert refit.quantiles["0.8"] == pytest.approx([q / 2 for q in model.quantiles["0.8"]], rel=0.02)


def test_a_model_calibrated_on_closes_alone_keeps_that_scale_when_its_bars_gain_a_range():
    from forecast.models.forecasters import forecast_bands

    close = _random_walk(800, seed=9)
    spread = close * 0.01 * (1 + np.random.default_rng(9).random(800))
    real = pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=800), "open": close, "close": close,
                         "high": close + spread / 2, "low": close - spread / 2, "volume": 1.0})
    close_only = real.assign(high=close, low=close)  # what a close-only CSV stores: one price all day
    model = Naive(5, levels=(0.8,)).fit(close_only.iloc[:700])
    assert model.scale == DEFAULT_SCALE.removeprefix("range:")
    origin = np.array([760])
    before, after = forecast_bands(model, close_only, origin), forecast_bands(model, real, origin)  # a refetch brings the range
    np.testing.assert_allclose(after.lower["0.8"], before.lower["0.8"])
    np.testing.assert_allclose(after.upper["0.8"], before.upper["0.8"])
    assert Naive(5, levels=(0.8,)).fit(real.iloc[:700]).scale == DEFAULT_SCALE  # trained with the range: the range's scale
    val_origins = np.arange(600, 795)
    residuals = naive_residuals(close, val_origins, 5, "log-return")
    assert network_intervals(close, val_origins, residuals, "log-return", (0.8,), close, close)["scale"] == model.scale
    assert network_intervals(close, val_origins, residuals, "log-return", (0.8,), real["high"].to_numpy(),
                             real["low"].to_numpy())["scale"] == DEFAULT_SCALE
