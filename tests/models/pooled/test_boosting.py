"""``models.pooled.boosting.train_booster``: LightGBM trees on (x, y), deterministic, rows without a target left out,
and a MissingExtraError that says how to install the extra when lightgbm is absent."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from forecast.errors import MissingExtraError
from forecast.models.pooled.boosting import PARAMS, train_booster

needs_lightgbm = pytest.mark.skipif(importlib.util.find_spec("lightgbm") is None, reason="lightgbm is an optional extra")

ROWS = 2000


def data(seed=0):
    """y is +1 where the first feature is positive, -1 elsewhere, plus a little noise; the second feature is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, 2))
    y = np.where(x[:, 0] > 0, 1.0, -1.0) + rng.normal(0.0, 0.1, ROWS)
    return x, y


@needs_lightgbm
def test_the_booster_has_as_many_trees_as_rounds():
    x, y = data()
    assert train_booster(x, y, rounds=7, seed=0).num_trees() == 7


@needs_lightgbm
def test_it_learns_the_sign_of_the_feature_that_drives_the_target():
    x, y = data()
    booster = train_booster(x, y, rounds=50, seed=0)
    probe = np.array([[2.0, 0.0], [-2.0, 0.0]])
    up, down = booster.predict(probe)
    assert up > 0 > down


@needs_lightgbm
def test_the_same_data_and_seed_give_the_same_trees():
    x, y = data()
    probe = data(seed=1)[0][:50]
    first = train_booster(x, y, rounds=20, seed=5).predict(probe)
    again = train_booster(x, y, rounds=20, seed=5).predict(probe)
    np.testing.assert_array_equal(first, again)


@needs_lightgbm
def test_rows_without_a_finite_target_are_left_out():
    x, y = data()
    gaps = y.copy()
    gaps[::10] = np.nan
    gaps[5] = np.inf
    ok = np.isfinite(gaps)
    probe = data(seed=1)[0][:50]
    with_gaps = train_booster(x, gaps, rounds=20, seed=0).predict(probe)
    without_rows = train_booster(x[ok], y[ok], rounds=20, seed=0).predict(probe)
    np.testing.assert_array_equal(with_gaps, without_rows)


def test_it_runs_on_two_threads_deterministically():
    assert PARAMS["num_threads"] == 2 and PARAMS["deterministic"] is True


def test_without_lightgbm_it_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # as if the optional package were not installed
    x, y = data()
    with pytest.raises(MissingExtraError, match=r"forecast\[global\]"):
        train_booster(x, y, rounds=1, seed=0)
