"""``models.garch``: the GARCH(1,1)-t baseline and its simulated bands.

Checked: its refusals (a bad mean, too few returns, non-positive prices, predicting unfitted); that the
conditional variance follows sigma2[t+1] = omega + alpha * e[t]**2 + beta * sigma2[t] and sees nothing after its
origin; that the point path is mu * k; that with the variance held constant (alpha = beta = 0) the one-step band
is the Student-t quantile; and that the seeded draws make a forecast reproducible and the same at an origin
whether it is asked alone or in a backtest.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("arch")
from scipy.stats import t as student_t  # arch brings scipy

from forecast.errors import BadInputError
from forecast.models.garch import PERCENT, GarchForecaster

H = 5


def walk(n=400, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"close": 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, n)))})


@pytest.fixture(scope="module")
def fitted():
    frame = walk()
    return GarchForecaster(H, paths=2000).fit(frame), frame


def test_a_mean_other_than_constant_or_zero_is_refused():
    with pytest.raises(BadInputError, match="constant or zero"):
        GarchForecaster(H, mean="ar")


def test_fewer_than_100_returns_are_refused():
    with pytest.raises(BadInputError, match="at least 100 daily returns, not 99"):
        GarchForecaster(H).fit(walk(100))  # 100 prices: 99 returns


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan])
def test_prices_must_be_positive_and_finite(bad):
    frame = walk(200)
    frame.loc[50, "close"] = bad
    with pytest.raises(BadInputError, match="positive, finite close"):
        GarchForecaster(H).fit(frame)


def test_predicting_before_fitting_is_an_error():
    model = GarchForecaster(H)
    with pytest.raises(RuntimeError, match="before fit"):
        model.predict_target(walk(200), np.array([150]))
    with pytest.raises(RuntimeError, match="before fit"):
        model.next_variance(walk(200), np.array([150]))


def test_the_fit_gives_a_stationary_garch_with_fat_tails(fitted):
    model, _ = fitted
    p = model.params
    assert set(p) == {"mu", "omega", "alpha", "beta", "nu"}
    assert p["omega"] > 0 and p["alpha"] >= 0 and p["beta"] >= 0 and p["alpha"] + p["beta"] < 1
    assert p["nu"] > 2  # a unit-variance t needs nu > 2


def test_the_variance_follows_the_garch_recursion_from_one_origin_to_the_next(fitted):
    model, frame = fitted
    p = model.params
    origins = np.arange(150, 160)
    sigma2 = model.next_variance(frame, origins)
    log_p = np.log(frame["close"].to_numpy())
    for i, origin in enumerate(origins[1:], 1):
        shock = (log_p[origin] - log_p[origin - 1]) * PERCENT - p["mu"]  # the return that ended at this origin
        assert sigma2[i] == pytest.approx(p["omega"] + p["alpha"] * shock ** 2 + p["beta"] * sigma2[i - 1])


def test_the_variance_at_an_origin_sees_no_later_price(fitted):
    model, frame = fitted
    changed = frame.copy()
    changed.loc[251:, "close"] *= 0.5  # a crash after the origin
    assert model.next_variance(changed, np.array([250, 300]))[0] == pytest.approx(model.next_variance(frame, np.array([250]))[0])


def test_no_origins_is_no_variances(fitted):
    model, frame = fitted
    assert model.next_variance(frame, np.array([], dtype=int)).shape == (0,)


def test_the_point_path_is_mu_per_day(fitted):
    model, frame = fitted
    path = model.predict_target(frame, np.array([200, 399]))
    expected = [model.params["mu"] / 100 * k for k in range(1, H + 1)]
    assert path.shape == (2, H)
    np.testing.assert_allclose(path[0], expected)
    np.testing.assert_allclose(path[1], expected)


def test_a_zero_mean_model_forecasts_no_change():
    frame = walk()
    model = GarchForecaster(H, mean="zero", paths=200).fit(frame)
    assert model.params["mu"] == 0.0
    assert (model.predict_target(frame, np.array([300])) == 0).all()


def test_bands_hold_the_point_path_nest_by_level_and_widen_with_the_horizon(fitted):
    model, frame = fitted
    bands = model.predict_bounds(frame, np.array([200, 399]))
    assert set(bands) == {"0.8", "0.95"}
    lo80, hi80 = bands["0.8"]
    lo95, hi95 = bands["0.95"]
    assert lo80.shape == hi95.shape == (2, H)
    assert (lo95 < lo80).all() and (lo80 < hi80).all() and (hi80 < hi95).all()
    assert (np.diff(hi95 - lo95, axis=1) > 0).all()


def test_with_a_constant_variance_the_one_day_band_is_the_student_t_quantile(fitted):
    _, frame = fitted
    model = GarchForecaster(H, paths=4000).fit(frame)
    model.params = {**model.params, "mu": 0.1, "omega": 4.0, "alpha": 0.0, "beta": 0.0}  # sigma = 2 % every day
    lower, upper = model.predict_bounds(frame, np.array([399]))["0.95"]
    nu = model.params["nu"]
    half = 2.0 * student_t.ppf(0.975, nu) * math.sqrt((nu - 2) / nu)  # the unit-variance t, scaled to sigma
    assert upper[0, 0] == pytest.approx((0.1 + half) / 100, rel=0.05)
    assert lower[0, 0] == pytest.approx((0.1 - half) / 100, rel=0.05)
    # H independent days of equal variance: the H-day spread is sqrt(H) times the one-day spread
    assert (upper[0, -1] - lower[0, -1]) / (upper[0, 0] - lower[0, 0]) == pytest.approx(math.sqrt(H), rel=0.08)


def test_the_same_seed_gives_the_same_bands_and_another_seed_other_bands():
    frame = walk()
    origins = np.array([350])
    first = GarchForecaster(H, paths=500, seed=3).fit(frame).predict_bounds(frame, origins)["0.8"]
    again = GarchForecaster(H, paths=500, seed=3).fit(frame).predict_bounds(frame, origins)["0.8"]
    other = GarchForecaster(H, paths=500, seed=4).fit(frame).predict_bounds(frame, origins)["0.8"]
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_an_origin_gets_the_same_bands_alone_as_in_a_backtest_of_many(fitted):
    model, frame = fitted
    many = model.predict_bounds(frame, np.arange(150, 400))  # several batches of origins
    alone = model.predict_bounds(frame, np.array([399]))
    for key in many:
        np.testing.assert_allclose(many[key][0][-1], alone[key][0][0])
        np.testing.assert_allclose(many[key][1][-1], alone[key][1][0])
