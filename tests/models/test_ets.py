"""``models.ets``: the AutoETS baseline on the log close, with statsforecast's own intervals.

Checked: its refusals (too few, non-positive prices, predicting unfitted), that a forecast at an origin sees only
the prices up to it, that a log-linear trend is carried on, and that its intervals are the normal ones of an
additive state-space model: symmetric about the point path, the 95 % band wider than the 80 % band by
z(0.975) / z(0.90), and widening with the horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("statsforecast")
from scipy.stats import norm  # statsforecast brings scipy

from forecast.errors import BadInputError
from forecast.models.ets import EtsForecaster

H = 5


def walk(n=300, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"close": 100 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))})


@pytest.fixture(scope="module")
def fitted():
    frame = walk()
    return EtsForecaster(H).fit(frame), frame


def test_fewer_than_30_prices_are_refused():
    with pytest.raises(BadInputError, match="at least 30 prices, not 29"):
        EtsForecaster(H).fit(walk(29))


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_prices_must_be_positive_and_finite(bad):
    frame = walk(60)
    frame.loc[10, "close"] = bad
    with pytest.raises(BadInputError, match="positive, finite close"):
        EtsForecaster(H).fit(frame)


def test_predicting_before_fitting_is_an_error():
    with pytest.raises(RuntimeError, match="before fit"):
        EtsForecaster(H).predict_target(walk(60), np.array([50]))


def test_forecasts_have_one_row_per_origin_and_one_column_per_day(fitted):
    model, frame = fitted
    origins = np.array([100, 200, 299])
    assert model.predict_target(frame, origins).shape == (3, H)
    bands = model.predict_bounds(frame, origins)
    assert set(bands) == {"0.8", "0.95"}
    assert all(part.shape == (3, H) for lower_upper in bands.values() for part in lower_upper)


def test_a_forecast_sees_only_the_prices_up_to_its_origin(fitted):
    model, frame = fitted
    changed = frame.copy()
    changed.loc[201:, "close"] *= 3.0  # a jump after the origin
    before = model.predict_bounds(frame, np.array([200]))
    after = model.predict_bounds(changed, np.array([200]))
    np.testing.assert_allclose(model.predict_target(changed, np.array([200])), model.predict_target(frame, np.array([200])))
    for key in before:
        np.testing.assert_allclose(after[key][0], before[key][0])
        np.testing.assert_allclose(after[key][1], before[key][1])


def test_an_origin_gets_the_same_forecast_alone_or_among_others(fitted):
    model, frame = fitted
    together = model.predict_target(frame, np.array([150, 299]))
    alone = model.predict_target(frame, np.array([299]))
    np.testing.assert_allclose(together[1], alone[0])


def test_intervals_are_symmetric_normal_bands_about_the_point_path(fitted):
    model, frame = fitted
    origins = np.array([120, 299])
    mean = model.predict_target(frame, origins)
    bands = model.predict_bounds(frame, origins)
    for lower, upper in bands.values():
        assert (lower < mean).all() and (mean < upper).all()
        np.testing.assert_allclose(upper - mean, mean - lower, rtol=1e-6)
    ratio = (bands["0.95"][1] - bands["0.95"][0]) / (bands["0.8"][1] - bands["0.8"][0])
    np.testing.assert_allclose(ratio, norm.ppf(0.975) / norm.ppf(0.90), rtol=1e-3)


def test_intervals_widen_with_the_horizon(fitted):
    model, frame = fitted
    lower, upper = model.predict_bounds(frame, np.array([299]))["0.95"]
    assert (np.diff(upper - lower, axis=1) > 0).all()


def test_a_log_linear_trend_is_carried_on_at_its_slope():
    rng = np.random.default_rng(2)
    days = np.arange(200)
    frame = pd.DataFrame({"close": np.exp(3.0 + 0.01 * days + rng.normal(0.0, 1e-3, len(days)))})  # +1 % a day
    model = EtsForecaster(H).fit(frame)
    path = model.predict_target(frame, np.array([199]))[0]
    np.testing.assert_allclose(np.diff(path), 0.01, atol=1e-3)
    assert path[-1] == pytest.approx(0.01 * H, abs=5e-3)


def test_levels_choose_the_bands(fitted):
    _, frame = fitted
    model = EtsForecaster(H, levels=(0.5,)).fit(frame)
    bands = model.predict_bounds(frame, np.array([299]))
    assert set(bands) == {"0.5"}
