"""maths/adaptive_batch.py: a universe model's tracker, moved from the batch's own kept forecasts."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.maths.adaptive_batch import NEW, REWRITTEN, BandShape, advance, forecast_records, fresh, shown
from forecast.maths.adaptive_replay import replay
from forecast.maths.adaptive_state import DEFAULT_ETA

LEVELS = np.array([0.8, 0.95])
H = 3


def walk(days: int = 400, seed: int = 3, doubles_at: int | None = None):
    """Daily closes of a random walk (log-returns 1 %), their volatility doubled from ``doubles_at`` on."""
    rng = np.random.default_rng(seed)
    vol = np.full(days, 0.01)
    if doubles_at is not None:
        vol[doubles_at:] = 0.02
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 1, days) * vol))
    dates = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + days)
    return dates, closes


def raw_band(k_sigma: np.ndarray, scale: float = 0.01):
    """'No change' with a band of k_sigma[level] x scale x sqrt(step) in log terms: (point (H,), scale, shape)."""
    offsets = k_sigma[:, None] * np.sqrt(np.arange(1, H + 1))
    return np.ones(H), scale, BandShape(np.array([-offsets, offsets]))


def step(tracks, dates, closes, band):
    """One batch of one ticker at the last of ``dates``."""
    point, scale, shape = band
    return advance(tracks, dates[None, :], closes[None, :], point[None], np.array([scale]), shape, LEVELS, DEFAULT_ETA)


def run_daily(dates, closes, first: int, band, skip=()):
    """Advance one ticker's track at every bar from ``first`` (but those in ``skip``); return it, the multipliers shown
    at each bar and the outcomes applied in all."""
    tracks, shown_at, applied = fresh(["T"], len(LEVELS), H), {}, 0
    for t in range(first, len(dates)):
        if t in skip:
            continue
        tracks, count, _ = step(tracks, dates[: t + 1], closes[: t + 1], band)
        shown_at[t] = shown(tracks)[0]
        applied += int(count[0])
    return tracks, shown_at, applied


def test_a_batch_forecast_every_day_moves_the_tracker_exactly_as_replay_does():
    dates, closes = walk(doubles_at=200)
    band = raw_band(np.array([1.0, 1.6]))  # too narrow for both levels from the start, far too narrow after the shift
    first = 30
    tracks, shown_at, applied = run_daily(dates, closes, first, band)
    origins = np.arange(first, len(dates))
    rows = origins[:, None] + np.arange(1, H + 1)
    actual = np.where(rows < len(closes), closes[np.minimum(rows, len(closes) - 1)], np.nan) / closes[origins, None]
    lower, upper = band[2].bands(band[0], band[1])
    for j, level in enumerate(LEVELS):
        ones = np.ones((len(origins), H))
        expected = replay(ones * band[0], ones * lower[j], ones * upper[j], actual, level, "tracker",
                          eta=DEFAULT_ETA, origins=origins)
        got = np.array([shown_at[t][j] for t in origins])
        np.testing.assert_allclose(got, expected.multipliers, rtol=0, atol=1e-12)
        final = expected.states
        assert [s.updates for s in final] == tracks.updates[0, j].tolist()
        assert [s.misses for s in final] == tracks.misses[0, j].tolist()
    assert applied == int(np.isfinite(actual).sum())  # outcomes, each once for both levels
    assert (tracks.multiplier > 1.2).all()  # it has widened: the bands were too narrow throughout


def test_after_the_volatility_doubles_the_tracked_bands_recover_nominal_coverage_and_fixed_ones_do_not():
    dates, closes = walk(days=1600, seed=11, doubles_at=800)
    k = np.array([1.2816, 1.96])  # the right band for the first half's 1 % (a normal's quantiles)
    _, shown_at, _ = run_daily(dates, closes, 30, raw_band(k))
    late = range(1100, len(dates) - H)  # the second half, after the tracker has had time to move
    for j, level in enumerate(LEVELS):
        fixed_hits, tracked_hits = [], []
        for t in late:
            realised = np.log(closes[t + 1] / closes[t])  # step 1
            half = k[j] * 0.01
            fixed_hits.append(abs(realised) <= half)
            tracked_hits.append(abs(realised) <= half * shown_at[t][j, 0])
        assert np.mean(fixed_hits) < level - 0.15  # twice the volatility: the fixed band misses far more often
        assert abs(np.mean(tracked_hits) - level) < 0.04


def test_the_update_rule_by_hand_on_three_outcomes():
    dates, _ = walk(days=4)
    closes = np.array([100.0, 100.5, 103.0, 102.9])
    band = (np.ones(H), 0.01, BandShape(np.array([-np.ones((2, H)), np.ones((2, H))])))  # +-1 % (log) at every step
    tracks = fresh(["T"], 2, H)
    for t in range(4):
        tracks, _, _ = step(tracks, dates[: t + 1], closes[: t + 1], band)
    # step 1's outcomes: +0.5 % (hit: m 1 -> 1 - 0.02 x 0.2), +2.5 % (miss: + 0.02 x 0.8), -0.1 % (hit: - 0.02 x 0.2)
    assert tracks.multiplier[0, 0, 0] == pytest.approx(1 - 0.004 + 0.016 - 0.004, abs=1e-15)
    assert (tracks.updates[0, 0, 0], tracks.misses[0, 0, 0]) == (3, 1)
    # at 95 % (alpha 0.05) the same outcomes: -0.001, +0.019, -0.001
    assert tracks.multiplier[0, 1, 0] == pytest.approx(1 - 0.001 + 0.019 - 0.001, abs=1e-15)
    # step 2: bar 0 -> bar 2 (+3 %: a miss) and bar 1 -> bar 3 (+2.4 %: a miss), step 3: bar 0 -> bar 3 (+2.9 %: a miss)
    assert tracks.misses[0, 0, 1:].tolist() == [2, 1] and tracks.updates[0, 0, 1:].tolist() == [2, 1]


def test_a_day_without_a_batch_leaves_its_outcomes_out_and_applies_no_other_twice():
    dates, closes = walk(days=60)
    band = raw_band(np.array([1.0, 1.6]))
    every, _, applied_every = run_daily(dates, closes, 20, band)
    skipped, _, applied_skipped = run_daily(dates, closes, 20, band, skip={40})
    # the forecast made at bar 40 was never made: its H outcomes are missing, no other
    assert applied_every - applied_skipped == H
    assert (every.updates - skipped.updates == 1).all()


def test_a_forward_adjusted_past_moves_nothing_the_track_reads_ratios():
    dates, closes = walk(days=80)
    band = raw_band(np.array([1.0, 1.6]))
    tracks, _, _ = run_daily(dates[:71], closes[:71], 20, band)  # the last batch at bar 70; its forecasts still open
    adjusted = closes.copy()
    adjusted[:75] *= 0.9  # an ex-dividend day at bar 75: qfq rescales every close before it
    plain, applied, _ = step(tracks, dates, closes, band)
    moved, _, _ = step(tracks, dates, adjusted, band)
    assert applied[0] == H * (H + 1) // 2  # bar 68's step 3, 69's steps 2-3, 70's steps 1-3
    np.testing.assert_allclose(moved.multiplier, plain.multiplier, rtol=0, atol=1e-12)
    assert not np.allclose(plain.multiplier, tracks.multiplier)  # the outcomes did move it


def test_a_track_whose_last_bar_is_gone_starts_again_at_the_models_band():
    dates, closes = walk(days=60)
    band = raw_band(np.array([1.0, 1.6]))
    tracks, _, _ = run_daily(dates, closes, 20, band)
    assert tracks.updates.sum() > 0
    rewritten = dates + np.timedelta64(365, "D")  # the series was rewritten: no bar the track knows is there
    again, applied, why = step(tracks, rewritten, closes, band)
    assert (why, applied[0], again.updates.sum()) == ([REWRITTEN], 0, 0)
    assert (shown(again) == 1).all()
    first, _, why = step(fresh(["T"], len(LEVELS), H), dates, closes, band)
    assert why == [NEW] and first.through[0] == dates[-1]


def test_tickers_move_independently_in_one_batch():
    dates, closes = walk(days=120, seed=5)
    _, other = walk(days=120, seed=6)
    band = raw_band(np.array([1.0, 1.6]))
    alone = {}
    for name, series in (("A", closes), ("B", other)):
        alone[name], _, _ = run_daily(dates, series, 30, band)
    together = fresh(["A", "B"], len(LEVELS), H)
    both = np.stack([closes, other])
    for t in range(30, 120):
        together, _, _ = advance(together, np.stack([dates[: t + 1]] * 2), both[:, : t + 1], np.stack([band[0]] * 2),
                                 np.array([band[1]] * 2), band[2], LEVELS, DEFAULT_ETA)
    for i, name in enumerate("AB"):
        np.testing.assert_array_equal(together.multiplier[i], alone[name].multiplier[0])
        np.testing.assert_array_equal(together.updates[i], alone[name].updates[0])
    assert not np.array_equal(together.multiplier[0], together.multiplier[1])


def test_the_forecast_record_counts_coverage_from_the_tracks_outcomes():
    tracks = fresh(["T"], 1, 2)
    tracks.updates[:] = [[[10, 0]]]
    tracks.misses[:] = [[[3, 0]]]
    tracks.multiplier[:] = [[[1.1, 1.0]]]
    tracks.through[:] = np.datetime64("2024-01-05")
    record = forecast_records("tracker", 0.02, tracks, np.array([4]), ["0.8"], ["new"])[0]
    assert record["levels"]["0.8"] == {"multiplier": [1.1, 1.0], "coverage": [0.7, None], "outcomes": [10, 0]}
    assert (record["applied"], record["rebuilt"], record["through"]) == (4, "new", "2024-01-05")


def test_a_band_shape_is_the_path_times_its_offsets_times_the_scale():
    shape = BandShape(np.array([[[-1.0, -2.0]], [[1.5, 3.0]]]))  # one level, two steps
    lower, upper = shape.bands(np.array([[1.01, 1.02]]), np.array([0.1]))
    np.testing.assert_allclose(lower, [[[1.01 * np.exp(-0.1), 1.02 * np.exp(-0.2)]]])
    np.testing.assert_allclose(upper, [[[1.01 * np.exp(0.15), 1.02 * np.exp(0.3)]]])


def test_batches_on_some_days_with_bands_that_change_move_the_tracker_as_replay_over_those_days():
    # several outcomes of one step arrive in one batch here: they must be applied oldest origin first
    dates, closes = walk(days=300, seed=8, doubles_at=150)
    rng = np.random.default_rng(4)
    batch_days = np.sort(rng.choice(np.arange(40, 300), size=120, replace=False))
    scales = rng.uniform(0.004, 0.02, size=300)  # a different band every day
    _, _, shape = raw_band(np.array([1.2, 1.8]))
    tracks, shown_at = fresh(["T"], len(LEVELS), H), {}
    for t in batch_days:
        tracks, _, _ = step(tracks, dates[: t + 1], closes[: t + 1], (np.ones(H), scales[t], shape))
        shown_at[t] = shown(tracks)[0]
    rows = batch_days[:, None] + np.arange(1, H + 1)
    actual = np.where(rows < len(closes), closes[np.minimum(rows, len(closes) - 1)], np.nan) / closes[batch_days, None]
    lower, upper = shape.bands(np.ones((len(batch_days), H)), scales[batch_days])
    for j, level in enumerate(LEVELS):
        expected = replay(np.ones((len(batch_days), H)), lower[:, j], upper[:, j], actual, level, "tracker", eta=DEFAULT_ETA,
                          origins=batch_days)
        got = np.array([shown_at[t][j] for t in batch_days])
        np.testing.assert_allclose(got, expected.multipliers, rtol=0, atol=1e-12)
    assert len(np.unique(np.round(got, 9))) > 20  # the multiplier moved, so the order of its moves shows
