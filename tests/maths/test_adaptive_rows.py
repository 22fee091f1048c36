"""The tracker over many series' rows at once (maths/adaptive_rows.py): the same bands as each series replayed alone."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.maths.adaptive_replay import replay
from forecast.maths.adaptive_rows import tracker_over_rows
from forecast.maths.band_scores import band_scores

LEVELS = (0.8, 0.95)


def _forecasts(seed: int, series: int = 5, horizon: int = 3):
    """Rows of several series on gapped bar numbers, with t-distributed outcomes, some unknown."""
    rng = np.random.default_rng(seed)
    names, bars = [], []
    for s in range(series):
        count = int(rng.integers(1, 70))
        names += [f"S{s}"] * count
        bars += sorted(rng.choice(150, count, replace=False).tolist())
    n = len(names)
    point = np.exp(rng.normal(0, 0.01, (n, horizon)))
    actual = point * np.exp(rng.standard_t(3, (n, horizon)) * 0.02)
    actual[rng.random((n, horizon)) < 0.05] = np.nan
    width = {0.8: 0.026, 0.95: 0.045}
    lower = {lv: point * np.exp(-width[lv] * rng.uniform(0.8, 1.2, (n, 1))) for lv in LEVELS}
    upper = {lv: point * np.exp(width[lv] * rng.uniform(0.8, 1.2, (n, 1))) for lv in LEVELS}
    return np.array(names), np.array(bars), point, actual, lower, upper


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_series_gets_what_the_tracker_replayed_on_it_alone_gives_whatever_the_row_order(seed):
    names, bars, point, actual, lower, upper = _forecasts(seed)
    scores = np.stack([band_scores(actual, lower[lv], upper[lv], point) for lv in LEVELS], axis=1)
    shuffled = np.random.default_rng(seed + 10).permutation(len(names))
    got = np.empty((len(names), len(LEVELS), point.shape[1]))
    got[shuffled] = tracker_over_rows(names[shuffled], bars[shuffled], scores[shuffled], [1 - lv for lv in LEVELS], 0.05)
    for name in np.unique(names):
        mine = names == name
        for j, level in enumerate(LEVELS):
            alone = replay(point[mine], lower[level][mine], upper[level][mine], actual[mine], level, "tracker", eta=0.05,
                           origins=bars[mine])
            np.testing.assert_allclose(got[mine, j], alone.multipliers, rtol=0, atol=1e-12)
    assert (got != 1).any()  # the tracker moved: the comparison is not between two untouched bands


def test_the_rule_by_hand_with_the_outcome_known_k_bars_after_its_origin():
    eta, alpha = 0.1, 0.2
    # one series, bars 0, 1, 2, 5; step 1 misses at bar 0, hits at 1; step 2 hits at bar 0
    scores = np.array([[[2.0, 0.5]], [[0.5, 0.5]], [[0.5, 0.5]], [[0.5, 0.5]]])
    shown = tracker_over_rows(["A"] * 4, [0, 1, 2, 5], scores, [alpha], eta)
    miss, hit = 1 + eta * (1 - alpha), 1 - eta * alpha
    # step 1: bar 0 sees nothing; bar 1 sees bar 0's miss; bar 2 also bar 1's hit; bar 5 also bar 2's hit
    np.testing.assert_allclose(shown[:, 0, 0], [1, miss, miss - eta * alpha, miss - 2 * eta * alpha])
    # step 2: bars 0 and 1 see nothing; bar 2 sees bar 0's hit; bar 5 sees bars 0, 1 and 2
    np.testing.assert_allclose(shown[:, 0, 1], [1, 1, hit, 1 - 3 * eta * alpha])


def test_a_shrinking_multiplier_shows_the_empty_band_not_a_negative_one():
    shown = tracker_over_rows(["A"] * 30, np.arange(30), np.zeros((30, 1, 1)), [0.5], 0.2)
    assert shown.min() == 0 and (np.diff(shown[:, 0, 0]) <= 0).all()


def test_no_rows_give_no_multipliers():
    assert tracker_over_rows([], [], np.empty((0, 2, 5)), [0.2, 0.05], 0.02).shape == (0, 2, 5)
