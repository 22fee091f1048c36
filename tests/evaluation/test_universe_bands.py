"""The universe model's bands in the cross-sectional backtest (evaluation/universe_bands.py): made as a card's, scored honestly."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from forecast.evaluation.cross_backtest import CrossSettings, cross_backtest
from forecast.evaluation.universe_bands import BandBlock, block_bands, score_bands
from forecast.maths.adaptive_replay import replay
from forecast.models.backtest_records import CrossBacktestRecord, load_cross_backtest, save_cross_backtest
from forecast.models.pooled.data import pool, time_split
from forecast.models.pooled.model import GlobalSettings
from tests.models.pooled.test_data import make_panel

LEVELS = (0.8, 0.95)
HORIZON = 3


def _validation(seed: int = 4):
    data = pool(make_panel({f"T{i}": 400 for i in range(12)}, seed=seed), HORIZON)
    days = np.unique(data.dates)
    split = time_split(data, 10, train_end=days[-1], validation_days=120)
    return data, split.validation


def test_bands_made_from_the_validation_residuals_cover_them_at_the_nominal_rate():
    data, validation = _validation()
    rng = np.random.default_rng(0)
    scores = data.labels[validation] + rng.normal(0, 0.05, (len(validation), HORIZON))  # a noisy but informative score
    block = block_bands(data, validation, scores, validation, scores, LEVELS)
    assert block.scale.startswith("range:")
    realised = np.exp(data.labels[validation])
    assert (block.lower < block.point[:, None]).all() and (block.point[:, None] < block.upper).all()
    for j, level in enumerate(LEVELS):
        inside = (realised >= block.lower[:, j]) & (realised <= block.upper[:, j])
        # the quantiles are these residuals' own: in sample, each step covers its level (up to the quantiles' rounding)
        np.testing.assert_allclose(inside.mean(axis=0), level, atol=0.005)
    assert (block.upper[:, 1] - block.lower[:, 1] > block.upper[:, 0] - block.lower[:, 0]).all()  # 95 % outside 80 %


def test_a_refits_bands_rest_on_its_validation_rows_alone_never_on_the_rows_they_forecast():
    data, validation = _validation(seed=5)
    later = np.flatnonzero(data.dates > data.dates[validation].max())  # the rows after validation: what a refit scores
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 1, (len(data), HORIZON))
    before = block_bands(data, validation, scores[validation], later, scores[later], LEVELS)
    changed = copy.deepcopy(data)
    changed.labels[later] *= 3  # what the scored rows came to
    after = block_bands(changed, validation, scores[validation], later, scores[later], LEVELS)
    for name in ("point", "lower", "upper"):
        np.testing.assert_array_equal(getattr(after, name), getattr(before, name))
    rangeless = copy.deepcopy(data)
    rangeless.log_range[later] = np.nan  # the scored rows lose their range: the scale is still the validation rows' choice
    assert block_bands(rangeless, validation, scores[validation], later, scores[later], LEVELS).scale == before.scale
    assert before.scale.startswith("range:")
    moved = copy.deepcopy(data)
    moved.labels[validation] *= 3  # the validation rows' outcomes do move the bands
    wider = block_bands(moved, validation, scores[validation], later, scores[later], LEVELS)
    assert (wider.upper / wider.point[:, None] > before.upper / before.point[:, None]).all()


def _gapped_blocks(data, rows, rng, blocks: int = 3):
    """Hand-made bands at ``rows`` less a tenth of them (gaps, unequal counts per ticker), cut by date into refits."""
    rows = np.sort(rows[rng.random(len(rows)) > 0.1])
    point = np.exp(rng.normal(0, 0.002, (len(rows), HORIZON)))
    half = np.array([0.02, 0.035])[None, :, None] * np.sqrt(np.arange(1, HORIZON + 1)) * rng.uniform(0.6, 1.4, (len(rows), 1, 1))
    lower, upper = point[:, None] * np.exp(-half), point[:, None] * np.exp(half * 1.1)
    lower[:5, 0] = np.nan  # a band that could not be made is not scored
    cuts = np.quantile(data.dates[rows].astype("int64"), np.linspace(0, 1, blocks + 1)[1:-1]).astype("datetime64[ns]")
    refit = np.searchsorted(cuts, data.dates[rows], side="right")
    return [BandBlock(rows[refit == b], point[refit == b], lower[refit == b], upper[refit == b], f"s{b % 2}") for b in range(blocks)]


@pytest.mark.parametrize("restart", [False, True])
def test_scores_match_a_plain_count_per_ticker_and_the_tracker_replayed_per_ticker(restart):
    data, validation = _validation(seed=8)
    data.labels[validation[::37]] = np.nan  # outcomes not known: not scored, not counted
    rng = np.random.default_rng(3)
    blocks = _gapped_blocks(data, validation, rng)
    rows = np.concatenate([b.rows for b in blocks])
    refit = np.repeat(np.arange(len(blocks)), [len(b.rows) for b in blocks])
    point, lower, upper = (np.concatenate([getattr(b, name) for b in blocks]) for name in ("point", "lower", "upper"))
    scores = score_bands(data, blocks, LEVELS, eta=0.05, restart=restart)
    if not restart:  # the product's backtest: the track runs on across refits, as predict's across retrains
        assert score_bands(data, blocks, LEVELS, eta=0.05) == scores != score_bands(data, blocks, LEVELS, eta=0.05, restart=True)
    realised = np.exp(data.labels[rows])
    assert scores["scale"] == ["s0", "s1"] and scores["tickers"] == 12
    assert scores["forecasts"] == int(np.isfinite(realised[:, 0]).sum()) < len(rows)
    tickers = pd.Series(data.tickers[rows])
    assert tickers.value_counts().nunique() > 1  # unequal counts: a mean over tickers differs from one over rows
    for j, level in enumerate(LEVELS):
        cells = scores["levels"][str(level)]
        known = np.isfinite(realised) & np.isfinite(lower[:, j])
        below, above = known & (realised < lower[:, j]), known & (realised > upper[:, j])
        np.testing.assert_allclose(cells["coverage"], (known & ~below & ~above).sum(axis=0) / known.sum(axis=0), atol=1e-6)
        np.testing.assert_allclose(cells["below"], below.sum(axis=0) / known.sum(axis=0), atol=1e-6)
        with np.errstate(invalid="ignore"):
            winkler = upper[:, j] - lower[:, j] + 2 / (1 - level) * (np.maximum(lower[:, j] - realised, 0) + np.maximum(realised - upper[:, j], 0))
        per_ticker = pd.DataFrame(np.where(known, winkler, np.nan)).groupby(tickers).mean()
        np.testing.assert_allclose(cells["winkler"], per_ticker.mean().to_numpy(), rtol=1e-5)
        own = pd.DataFrame(known & ~below & ~above).groupby(tickers).sum() / pd.DataFrame(known).groupby(tickers).sum()
        np.testing.assert_allclose(cells["within_5"], (np.abs(own - level) <= 0.05 + 1e-9).mean().to_numpy(), atol=1e-6)
        # recalibrated: a tracker per ticker running on across refits, as predict's across retrains (or one per refit)
        moved = np.zeros_like(below)
        keys = pd.DataFrame({"t": tickers, "b": refit if restart else 0})
        for mine in keys.groupby(["t", "b"]).groups.values():
            mine = np.asarray(mine)
            alone = replay(point[mine], lower[mine, j], upper[mine, j], realised[mine], level, "tracker", eta=0.05,
                           origins=data.position[rows][mine])
            moved[mine] = known[mine] & (realised[mine] >= alone.lower) & (realised[mine] <= alone.upper)
        np.testing.assert_allclose(cells["adaptive_coverage"], moved.sum(axis=0) / known.sum(axis=0), atol=1e-6)
        assert cells["adaptive_coverage"] != cells["coverage"]  # the tracker moved something


def test_the_backtest_hands_the_bands_the_networks_every_step_and_ranks_by_its_last(monkeypatch):
    from forecast.evaluation import cross_backtest as module
    from forecast.models.pooled.learners import GlobalNetworkLearner

    class Scripted(GlobalNetworkLearner):
        """The network's plumbing with a fixed score (a function of the row's own past closes): no training."""

        def fit(self, data, target, train_rows, validation_rows) -> None:
            self.model = "scripted"

        def paths(self, data, rows):
            return np.log(data.close[rows])[:, None] * np.array([1.0, -2.0, 3.0]) + data.position[rows][:, None] * 0.01

    handed = []
    real = module.block_bands
    monkeypatch.setattr(module, "make_learner", lambda name, settings: Scripted(settings))
    monkeypatch.setattr(module, "block_bands", lambda *args: handed.append(args) or real(*args))
    panel = make_panel({f"T{i}": 260 for i in range(6)}, seed=15)
    net = GlobalSettings(lookback=10, horizon=HORIZON, validation_days=30)
    result = cross_backtest(panel, CrossSettings(models=("global",), horizon=HORIZON, test_days=40, refit_every=20,
                                                 validation_days=30, network=net))
    assert len(handed) == 2 and result.intervals["global"]["forecasts"] == 6 * 40
    ranked = []
    for data, validation, validation_paths, rows, paths, levels in handed:
        probe = Scripted(net)
        np.testing.assert_array_equal(validation_paths, probe.paths(data, validation))
        np.testing.assert_array_equal(paths, probe.paths(data, rows))  # every step, in order
        ranked.append(pd.Series(paths[:, -1], index=pd.MultiIndex.from_arrays([pd.DatetimeIndex(data.dates[rows]), data.tickers[rows]])))
        assert levels == net.levels
    signal = pd.concat(ranked).sort_index()
    kept = result.scores["global"]
    pd.testing.assert_series_equal(kept, signal.loc[kept.index], check_names=False)  # the ranking is the last step's score


@pytest.mark.slow
def test_the_backtest_scores_the_universe_networks_bands_and_keeps_them_in_its_record(tmp_path):
    net = GlobalSettings(lookback=10, horizon=HORIZON, units=4, head_units=4, members=1, epochs=1, patience=0, validation_days=30)
    panel = make_panel({f"T{i}": 260 for i in range(6)}, seed=15)
    result = cross_backtest(panel, CrossSettings(models=("global", "linear", "momentum"), horizon=HORIZON, test_days=40,
                                                 refit_every=20, validation_days=30, network=net))
    assert set(result.intervals) == {"global"}  # the one model with bands
    scores = result.intervals["global"]
    assert scores["tickers"] == 6 and scores["forecasts"] == 6 * 40
    for key in ("0.8", "0.95"):
        cells = scores["levels"][key]
        assert len(cells["coverage"]) == HORIZON and all(0 < c <= 1 for c in cells["coverage"] + cells["adaptive_coverage"])
        assert all(w > 0 for w in cells["winkler"] + cells["adaptive_winkler"])
    assert all(lo >= hi for lo, hi in zip(scores["levels"]["0.95"]["coverage"], scores["levels"]["0.8"]["coverage"]))
    save_cross_backtest(tmp_path, result.record("stored"), result.daily_frame())
    assert load_cross_backtest(tmp_path, "stored").intervals == result.record("stored").to_dict()["intervals"]


def test_a_record_written_before_bands_were_scored_reads_with_no_bands():
    record = CrossBacktestRecord.from_dict({"models": {}, "horizon": 5, "quantiles": 5, "min_tickers": 5, "newey_west_lags": 4})
    assert record.intervals == {}
