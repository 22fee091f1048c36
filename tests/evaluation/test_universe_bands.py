"""The universe model's bands in the cross-sectional backtest (evaluation/universe_bands.py): made as a card's, scored honestly."""

from __future__ import annotations

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


def test_scores_match_a_plain_count_per_ticker_and_the_tracker_replayed_ticker_by_ticker():
    data, rows = _validation(seed=8)
    rng = np.random.default_rng(3)
    point = np.exp(rng.normal(0, 0.002, (len(rows), HORIZON)))
    half = np.array([0.02, 0.035])[None, :, None] * np.sqrt(np.arange(1, HORIZON + 1)) * rng.uniform(0.6, 1.4, (len(rows), 1, 1))
    lower, upper = point[:, None] * np.exp(-half), point[:, None] * np.exp(half * 1.1)
    middle = len(rows) // 2  # two refits' blocks: scored as one history
    blocks = [BandBlock(rows[:middle], point[:middle], lower[:middle], upper[:middle], "a"),
              BandBlock(rows[middle:], point[middle:], lower[middle:], upper[middle:], "b")]
    scores = score_bands(data, blocks, LEVELS, eta=0.05)
    assert scores["scale"] == ["a", "b"] and scores["tickers"] == 12 and scores["forecasts"] == len(rows)
    realised = np.exp(data.labels[rows])
    tickers = pd.Series(data.tickers[rows])
    for j, level in enumerate(LEVELS):
        cells = scores["levels"][str(level)]
        below, above = realised < lower[:, j], realised > upper[:, j]
        np.testing.assert_allclose(cells["coverage"], 1 - (below | above).mean(axis=0), atol=1e-6)
        np.testing.assert_allclose(cells["below"], below.mean(axis=0), atol=1e-6)
        winkler = upper[:, j] - lower[:, j] + 2 / (1 - level) * (np.maximum(lower[:, j] - realised, 0) + np.maximum(realised - upper[:, j], 0))
        per_ticker = pd.DataFrame(winkler).groupby(tickers).mean()
        np.testing.assert_allclose(cells["winkler"], per_ticker.mean().to_numpy(), rtol=1e-5)
        own = pd.DataFrame(~(below | above)).groupby(tickers).mean()
        np.testing.assert_allclose(cells["within_5"], (np.abs(own - level) <= 0.05 + 1e-9).mean().to_numpy(), atol=1e-6)
        # recalibrated: each ticker's own tracker over its days, in order of its bars
        moved_inside = np.zeros_like(below)
        for ticker in tickers.unique():
            mine = (tickers == ticker).to_numpy()
            alone = replay(point[mine], lower[mine, j], upper[mine, j], realised[mine], level, "tracker", eta=0.05,
                           origins=data.position[rows][mine])
            moved_inside[mine] = (realised[mine] >= alone.lower) & (realised[mine] <= alone.upper)
        np.testing.assert_allclose(cells["adaptive_coverage"], moved_inside.mean(axis=0), atol=1e-6)
        assert cells["adaptive_coverage"] != cells["coverage"]  # the tracker moved something


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


def test_a_record_written_before_bands_were_scored_reads_with_none():
    record = CrossBacktestRecord.from_dict({"models": {}, "horizon": 5, "quantiles": 5, "min_tickers": 5, "newey_west_lags": 4})
    assert record.intervals == {}
