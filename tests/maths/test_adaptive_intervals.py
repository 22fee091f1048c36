"""Adaptive conformal recalibration of intervals: the update rules by hand, recovery after a regime change,
Gibbs and Candès' long-run bound (computed, not copied), no look-ahead, JSON state and bad inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from forecast.errors import BadInputError
from forecast.maths.adaptive_intervals import adjust, multiplier, new_state, update
from forecast.maths.adaptive_replay import replay
from forecast.maths.adaptive_state import AdaptiveState
from forecast.maths.band_scores import band_scores

# --- simulated forecasts ---------------------------------------------------------------------------

Z = {0.8: 1.2815515655446004, 0.95: 1.959963984540054}  # standard normal quantiles at 0.9 and 0.975


def random_walk(n: int, sigma: np.ndarray, seed: int) -> np.ndarray:
    """Prices of a driftless log random walk whose daily volatility is ``sigma`` (n,)."""
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.concatenate([[0.0], np.cumsum(rng.standard_normal(n - 1) * sigma[1:])]))


def naive_forecasts(prices: np.ndarray, horizon: int, level: float, sigma0: float):
    """"No change" forecasts at every origin with a band fitted on the first regime only (a fixed split-conformal band)."""
    n = len(prices) - horizon
    steps = np.arange(1, horizon + 1)
    point = np.repeat(prices[:n, None], horizon, axis=1)
    half = Z[level] * sigma0 * np.sqrt(steps)[None, :]
    lower, upper = point * np.exp(-half), point * np.exp(half)
    actual = np.stack([prices[k: n + k] for k in steps], axis=1)
    return point, lower, upper, actual


def covered(actual, lower, upper) -> np.ndarray:
    return (actual >= lower) & (actual <= upper)


# --- the rules by hand -----------------------------------------------------------------------------

def test_aci_update_by_hand_on_hits_and_misses():
    # band 90..110 around 100 in linear space: an outcome at 115 scores 1.5, at 99.5 scores 0.05, at 112 scores 1.2
    state = new_state(0.8, "aci", gamma=0.1, warmup=0, space="linear", seed_scores=[0.1 * i for i in range(1, 11)])
    assert multiplier(state) == pytest.approx(0.9)  # rank ceil(11 * 0.8) = 9 of 0.1..1.0
    state = update(state, 115.0, 90.0, 110.0, 100.0)  # 1.5 > 0.9: a miss; alpha 0.2 + 0.1 (0.2 - 1) = 0.12
    assert state.alphas == [pytest.approx(0.12)]
    assert multiplier(state) == pytest.approx(1.5)  # rank ceil(12 * 0.88) = 11 of 11 scores: the new 1.5
    state = update(state, 99.5, 90.0, 110.0, 100.0)  # 0.05: a hit; alpha 0.12 + 0.1 * 0.2 = 0.14
    assert state.alphas == [pytest.approx(0.14)]
    state = update(state, 112.0, 90.0, 110.0, 100.0)  # 1.2 <= 1.5: a hit; alpha 0.16; rank ceil(14 * 0.84) = 12: 1.2
    assert state.alphas == [pytest.approx(0.16)]
    assert (state.updates, state.misses) == (3, 1)
    assert multiplier(state) == pytest.approx(1.2)
    assert adjust(state, 90.0, 110.0, 100.0) == (pytest.approx(88.0), pytest.approx(112.0))


def test_dtaci_update_by_hand():
    # two experts (gamma 0.1 and 0.2) on the seeded scores 0.1..1.0; alpha 0.2
    state = new_state(0.8, "dtaci", gammas=[0.1, 0.2], warmup=0, space="linear", seed_scores=[0.1 * i for i in range(1, 11)])
    state = update(state, 115.0, 90.0, 110.0, 100.0)  # score 1.5: a miss for both; both experts lose the same
    assert state.weights == [pytest.approx(0.5), pytest.approx(0.5)]
    assert state.alphas == [pytest.approx(0.12), pytest.approx(0.04)]  # 0.2 - 0.1 * 0.8, 0.2 - 0.2 * 0.8
    # score 0.05 lies below all 11 scores: beta = 1 - 0/12 = 1, the largest alpha that covers
    state = update(state, 99.5, 90.0, 110.0, 100.0)
    loss = [0.2 * (1 - 0.12), 0.2 * (1 - 0.04)]  # the alpha-pinball loss of each expert's alpha against beta = 1
    eta = math.sqrt(3 / 100) * math.sqrt((math.log(2 * 100) + 2) / (0.8 ** 2 * 0.2 ** 3 + 0.2 ** 2 * 0.8 ** 3))
    raw = [0.5 * math.exp(-eta * v) for v in loss]
    weights = [(1 - 0.005) * r / sum(raw) + 0.005 / 2 for r in raw]  # fixed share, sigma = 1 / (2 * 100)
    assert state.weights == [pytest.approx(w / sum(weights)) for w in weights]
    assert state.weights[0] > 0.5  # the expert that gave up less coverage gains weight
    assert state.alphas == [pytest.approx(0.14), pytest.approx(0.08)]  # both hit
    assert state.current_alpha == pytest.approx(sum(w * a for w, a in zip(state.weights, [0.14, 0.08])))
    # the first outcome missed the band drawn at 0.2 (0.9), the second fell in the one drawn at 0.08 (infinite)
    assert (state.updates, state.misses) == (2, 1)


def test_tracker_update_by_hand():
    state = new_state(0.8, "tracker", eta=0.1, space="linear")
    assert adjust(state, 90.0, 110.0, 100.0) == (pytest.approx(90.0), pytest.approx(110.0))  # starts at the model's band
    state = update(state, 115.0, 90.0, 110.0, 100.0)  # miss: m = 1 + 0.1 (1 - 0.2)
    assert state.multiplier == pytest.approx(1.08)
    state = update(state, 95.0, 90.0, 110.0, 100.0)  # hit: m = 1.08 - 0.1 * 0.2
    assert state.multiplier == pytest.approx(1.06)
    assert adjust(state, 90.0, 110.0, 100.0) == (pytest.approx(89.4), pytest.approx(110.6))
    seeded = new_state(0.8, "tracker", seed_scores=[0.1 * i for i in range(1, 11)])  # starts at their quantile, rank 9
    assert (seeded.multiplier, seeded.scores) == (pytest.approx(0.9), [])


def test_alpha_past_either_end_gives_the_empty_or_the_widest_band():
    state = new_state(0.8, "aci", warmup=0, space="linear", seed_scores=[0.5, 1.0, 3.0])
    state.alphas = [1.02]  # alpha >= 1: the empty band, the point alone
    assert adjust(state, 90.0, 110.0, 100.0) == (100.0, 100.0)
    state.alphas = [-0.01]  # alpha <= 0: infinite in theory; shown as the widest the scores support (the largest, 3)
    assert math.isinf(multiplier(state))
    assert adjust(state, 90.0, 110.0, 100.0) == (pytest.approx(70.0), pytest.approx(130.0))
    # and an infinite band counts as covering: alpha climbs back by gamma * alpha
    after = update(state, 200.0, 90.0, 110.0, 100.0)
    assert (after.misses, after.alphas[0]) == (0, pytest.approx(-0.01 + state.gammas[0] * 0.2))
    # a glitch among the scores (30) is not followed: a band is shown at most 3 times the nominal quantile (rank
    # ceil(21 * 0.8) = 17 of these 20 scores: 0.5), whether ACI asks for an infinite band or for the glitch itself
    state.scores = [0.5] * 19 + [30.0]
    for alpha_t in (-0.01, 0.06):  # 0.06: rank ceil(21 * 0.94) = 20, the glitch
        state.alphas = [alpha_t]
        assert multiplier(state) in (math.inf, 30.0)
        assert adjust(state, 90.0, 110.0, 100.0) == (pytest.approx(85.0), pytest.approx(115.0))


def test_scores_read_each_side_of_an_asymmetric_band_in_its_own_half_width():
    # in log space a price band 80..125 around 100 is symmetric: both bounds score 1, their midpoints 0.5
    lo, hi, p = 80.0, 125.0, 100.0
    scores = band_scores(np.array([80.0, 125.0, 100 * math.sqrt(0.8), 100 * math.sqrt(1.25), 100.0]), lo, hi, p)
    np.testing.assert_allclose(scores, [1, 1, 0.5, 0.5, 0], atol=1e-12)
    assert np.isnan(band_scores(-1.0, lo, hi, p))  # no log of a non-price: skipped, not a hit or a miss
    assert np.isnan(band_scores(np.nan, lo, hi, p))


# --- what ACI promises -----------------------------------------------------------------------------

@pytest.mark.parametrize("level", [0.8, 0.95])
@pytest.mark.parametrize(("method", "options"), [
    ("aci", {}), ("dtaci", {}), ("tracker", {}),
    ("aci", {"window": 10 ** 6, "gamma": 0.01}),  # every score kept: only alpha's moves can bring coverage back
])
def test_after_the_volatility_doubles_adaptive_bands_recover_and_fixed_ones_do_not(level, method, options):
    n = 4000
    sigma = np.where(np.arange(n) < n // 2, 0.01, 0.02)
    prices = random_walk(n, sigma, seed=11)
    point, lower, upper, actual = naive_forecasts(prices, 3, level, sigma0=0.01)
    bands = replay(point, lower, upper, actual, level, method, **options)
    settled = slice(n // 2 + 500, None)  # the second half, after a reaction time of 500 days
    for k in range(3):
        fixed = covered(actual[settled, k], lower[settled, k], upper[settled, k]).mean()
        adaptive = covered(actual[settled, k], bands.lower[settled, k], bands.upper[settled, k]).mean()
        assert fixed < level - 0.1, f"step {k + 1}: the fixed band should lose its coverage ({fixed:.3f})"
        assert abs(adaptive - level) < 0.03, f"step {k + 1}: {method} covers {adaptive:.3f}, nominal {level}"
        # and before the change it did not cost coverage either
        early = slice(500, n // 2)
        assert abs(covered(actual[early, k], bands.lower[early, k], bands.upper[early, k]).mean() - level) < 0.03


@pytest.mark.parametrize("gamma", [0.01, 0.05, 0.2])
@pytest.mark.parametrize("level", [0.8, 0.95])
def test_long_run_miscoverage_is_within_the_gibbs_candes_bound(gamma, level):
    # volatility switching fourfold every 300 days, Student-t shocks, and a band fitted once on a calm spell: far off
    n = 3000
    rng = np.random.default_rng(5)
    sigma = np.where((np.arange(n) // 300) % 2 == 0, 0.005, 0.02)
    prices = 100 * np.exp(np.cumsum(rng.standard_t(3, n) * sigma / math.sqrt(3)))
    point, lower, upper, actual = naive_forecasts(prices, 3, level, sigma0=0.004)
    bands = replay(point, lower, upper, actual, level, "aci", gamma=gamma)
    alpha = 1 - level
    for k, state in enumerate(bands.states):
        T = state.updates
        bound = (max(alpha, 1 - alpha) + gamma) / (gamma * T)  # alpha_1 = alpha: Gibbs and Candès (2021), Prop. 4.1
        assert n - 100 < T  # every outcome but the warm-up and the last steps moved it
        assert abs(state.misses / T - alpha) <= bound, f"step {k + 1}: {state.misses / T:.4f} against {alpha} ± {bound:.4f}"
        fixed_miss = 1 - covered(actual[:, k], lower[:, k], upper[:, k]).mean()
        assert abs(fixed_miss - alpha) > bound  # the bound is tight enough here to tell a wrong rule apart
    # at step 1 with daily origins the counted misses are exactly the misses of the bands the method asked for; the
    # bands shown differ only where one had to be shown narrower (infinite, or past the cap), and miss there at most
    state = bands.states[0]
    scored = slice(state.seen - state.updates, None)  # after the warm-up
    scores = band_scores(actual[scored, 0], lower[scored, 0], upper[scored, 0], point[scored, 0])
    assert int((scores > bands.wanted[scored, 0]).sum()) == state.misses
    shown_miss = ~covered(actual[scored, 0], bands.lower[scored, 0], bands.upper[scored, 0])
    narrower = bands.multipliers[scored, 0] < bands.wanted[scored, 0]
    assert np.array_equal(shown_miss[~narrower], (scores > bands.wanted[scored, 0])[~narrower])
    assert shown_miss[narrower].sum() >= (scores > bands.wanted[scored, 0])[narrower].sum()  # narrower: misses no less


def test_the_tracker_keeps_its_long_run_coverage_too():
    n = 3000
    sigma = np.where(np.arange(n) < n // 2, 0.01, 0.03)
    prices = random_walk(n, sigma, seed=8)
    point, lower, upper, actual = naive_forecasts(prices, 1, 0.8, sigma0=0.01)
    bands = replay(point, lower, upper, actual, 0.8, "tracker", eta=0.05)
    state = bands.states[0]
    scores = band_scores(actual[:, 0], lower[:, 0], upper[:, 0], point[:, 0])
    bound = (np.max(scores) + 0.05) / (0.05 * state.updates)  # Angelopoulos et al. (2023), Prop. 1, B = the largest score
    assert abs(state.miscoverage - 0.2) <= bound
    assert abs(covered(actual[2000:, 0], bands.lower[2000:, 0], bands.upper[2000:, 0]).mean() - 0.8) < 0.04


# --- how replay runs -------------------------------------------------------------------------------

def test_a_band_rests_only_on_outcomes_known_at_its_origin():
    prices = random_walk(400, np.full(400, 0.01), seed=3)
    point, lower, upper, actual = naive_forecasts(prices, 3, 0.8, sigma0=0.01)
    before = replay(point, lower, upper, actual, 0.8, "aci", gamma=0.05, warmup=10)
    j, k = 200, 2  # origin 200's step 3 is known at origin 203: bands up to 202 must not move, later ones may
    changed = actual.copy()
    changed[j, k] *= 1.5
    after = replay(point, lower, upper, changed, 0.8, "aci", gamma=0.05, warmup=10)
    np.testing.assert_array_equal(after.lower[: j + k + 1], before.lower[: j + k + 1])
    assert not np.array_equal(after.lower[:, k], before.lower[:, k])
    np.testing.assert_array_equal(after.lower[:, :k], before.lower[:, :k])  # another step's state never sees it


def test_update_and_adjust_one_day_at_a_time_give_the_replayed_bands():
    prices = random_walk(300, np.full(300, 0.01), seed=4)
    point, lower, upper, actual = naive_forecasts(prices, 1, 0.95, sigma0=0.008)
    for method in ("aci", "dtaci", "tracker"):
        bands = replay(point, lower, upper, actual, 0.95, method)
        state = new_state(0.95, method)
        for i in range(len(point)):
            lo, hi = adjust(state, lower[i, 0], upper[i, 0], point[i, 0])
            assert (lo, hi) == (pytest.approx(bands.lower[i, 0], rel=1e-12), pytest.approx(bands.upper[i, 0], rel=1e-12))
            state = update(state, actual[i, 0], lower[i, 0], upper[i, 0], point[i, 0])
        assert state.to_dict() == bands.states[0].to_dict()


def test_fixed_returns_the_model_bands():
    prices = random_walk(100, np.full(100, 0.01), seed=1)
    point, lower, upper, actual = naive_forecasts(prices, 2, 0.8, sigma0=0.01)
    bands = replay(point, lower, upper, actual, 0.8, "fixed")
    np.testing.assert_array_equal(bands.lower, lower)
    np.testing.assert_array_equal(bands.upper, upper)


# --- stored state ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["aci", "dtaci", "tracker"])
def test_state_survives_json_and_decides_the_same(method):
    prices = random_walk(600, np.where(np.arange(600) < 300, 0.01, 0.02), seed=6)
    point, lower, upper, actual = naive_forecasts(prices, 1, 0.8, sigma0=0.01)
    state = replay(point[:400], lower[:400], upper[:400], actual[:400], 0.8, method).states[0]
    if method == "tracker":
        assert state.scores == []  # it needs none: its stored state is a few numbers
    else:
        state.scores[3] = math.inf  # an outcome off a zero half-width: stored as null, strict JSON
    text = json.dumps(state.to_dict(), allow_nan=False)
    back = AdaptiveState.from_dict(json.loads(text))
    assert back.to_dict() == state.to_dict()
    for i in range(400, len(point)):  # the reloaded state goes on exactly as the one in memory
        a = adjust(state, lower[i, 0], upper[i, 0], point[i, 0])
        b = adjust(back, lower[i, 0], upper[i, 0], point[i, 0])
        assert a == b
        state = update(state, actual[i, 0], lower[i, 0], upper[i, 0], point[i, 0])
        back = update(back, actual[i, 0], lower[i, 0], upper[i, 0], point[i, 0])


def test_update_leaves_the_given_state_alone():
    state = new_state(0.8, "aci", warmup=0, space="linear", seed_scores=[1.0] * 5)
    before = state.to_dict()
    update(state, 130.0, 90.0, 110.0, 100.0)
    assert state.to_dict() == before


# --- bad inputs ------------------------------------------------------------------------------------

def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(BadInputError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.2, True, "0.8", float("nan")])
def test_a_level_outside_zero_one_is_refused(level):
    assert "level" in one_line_error(new_state, level)
    assert "level" in one_line_error(replay, [[1.0]], [[0.9]], [[1.1]], [[1.0]], level)


@pytest.mark.parametrize("gamma", [0, -0.01, float("nan"), float("inf")])
def test_a_step_size_of_zero_or_less_is_refused(gamma):
    assert "gamma" in one_line_error(new_state, 0.8, "aci", gamma=gamma)
    assert "gamma" in one_line_error(new_state, 0.8, "dtaci", gammas=[0.01, gamma])
    assert "eta" in one_line_error(new_state, 0.8, "tracker", eta=gamma)
    assert "gamma" in one_line_error(replay, [[1.0]], [[0.9]], [[1.1]], [[1.0]], 0.8, "aci", gamma=gamma)


def test_mismatched_lengths_and_unknown_names_are_refused():
    p = np.ones((5, 2))
    assert "shape" in one_line_error(replay, p, p[:4], p, p, 0.8)
    assert "shape" in one_line_error(replay, p, p, p[:, :1], p, 0.8)
    assert "shape" in one_line_error(replay, p, p, p, np.ones(5), 0.8)
    assert "origins" in one_line_error(replay, p, p, p, p, 0.8, origins=[0, 1, 2])
    assert "origins" in one_line_error(replay, p, p, p, p, 0.8, origins=[0, 1, 1, 2, 3])
    assert "states" in one_line_error(replay, p, p, p, p, 0.8, states=[None])
    assert "method" in one_line_error(new_state, 0.8, "conformal-magic")
    assert "space" in one_line_error(new_state, 0.8, space="sqrt")
    assert "window" in one_line_error(new_state, 0.8, window=0)


def test_a_damaged_stored_state_is_refused_in_one_line():
    good = new_state(0.8, "dtaci").to_dict()
    for damage in ({"version": 99}, {"alphas": [0.2]}, {"level": 2}, {"scores": [-1.0]}, {"weights": "x"}, {"method": "x"}):
        one_line_error(AdaptiveState.from_dict, {**good, **damage})
    one_line_error(AdaptiveState.from_dict, [1, 2])
    one_line_error(AdaptiveState.from_dict, {k: v for k, v in good.items() if k != "gammas"})
