"""The global model: one network trained on a universe, its card, and forecasts for tickers it never saw."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, subprocess_env

from forecast.errors import BadInputError, CorruptFileError
from forecast.models.pooled.card import GlobalCard, GlobalRegistry
from forecast.models.pooled.model import GlobalSettings, calibrate, forecast_panel, ranked, train_global
from forecast.models.pooled.net_config import GlobalNetConfig
from tests.models.pooled.test_data import make_panel

TINY = GlobalSettings(lookback=10, horizon=3, units=4, head_units=4, members=2, epochs=2, patience=0,
                      validation_days=40, levels=(0.8, 0.95))


def test_calibration_recovers_a_linear_map_and_its_residual_quantiles():
    rng = np.random.default_rng(0)
    n = 20_000
    scores = rng.normal(size=(n, 2))
    sigma = np.full(n, 0.02)
    noise = rng.normal(size=(n, 2)) * sigma[:, None] * np.sqrt([1, 2])
    labels = 0.001 + 0.01 * scores + noise
    calibration, intervals = calibrate(scores, labels, sigma, levels=(0.8,))
    np.testing.assert_allclose(calibration["slope"], [0.01, 0.01], rtol=0.05)
    np.testing.assert_allclose(calibration["intercept"], [0.001, 0.001], atol=5e-4)
    lo, hi = intervals["quantiles"]["0.8"][1]
    assert lo == pytest.approx(-1.2816, abs=0.06) and hi == pytest.approx(1.2816, abs=0.06)  # standard normal 10 % / 90 %


@pytest.mark.slow
def test_train_registers_a_universe_model_that_forecasts_a_ticker_it_never_saw(tmp_path):
    seen = make_panel({f"T{i}": 260 for i in range(6)}, seed=5)
    registry = GlobalRegistry(tmp_path)
    trained = train_global(seen, "toy", TINY, registry)
    card = registry.card(trained.card.id)
    assert card.universe == "toy" and set(card.tickers) == {f"T{i}" for i in range(6)}
    assert registry.latest_id("toy") == card.id
    assert card.data["windows_train"] > 0 and card.data["windows_validation"] > 0
    assert len(card.validation["scores"]) >= 1
    from forecast import __version__

    assert card.versions["forecast"] == __version__ and "keras" in card.versions  # as a per-ticker card records them

    newcomer = make_panel({"NEW": 200}, seed=99)
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

    model = NumpyGlobalNet.from_keras_file(registry.model_file(card.id))
    forecasts, problems = forecast_panel(pd.concat([seen, newcomer]).sort_index(), card, model)
    assert problems == {}
    by_ticker = {f.ticker: f for f in forecasts}
    assert set(by_ticker) == {*card.tickers, "NEW"}
    new = by_ticker["NEW"].result
    assert new.summary.trained_on_ticker is False
    assert len(new.points) == TINY.horizon and new.last_close == pytest.approx(newcomer["close"].iloc[-1])
    for point in new.points:
        lo80, hi80 = point.intervals["0.8"]
        lo95, hi95 = point.intervals["0.95"]
        assert lo95 <= lo80 < hi80 <= hi95
    order = [f.expected_return for f in ranked(forecasts)]
    assert order == sorted(order, reverse=True)

    again, _ = forecast_panel(pd.concat([seen, newcomer]).sort_index(), card, model)
    assert [f.score for f in again] == [f.score for f in forecasts]  # one batched call, reproducible


@pytest.mark.slow
def test_a_ticker_with_the_bars_the_message_names_gets_its_forecast(tmp_path):
    from forecast.models.pooled.data import min_bars
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

    seen = make_panel({f"T{i}": 200 for i in range(4)}, seed=6)
    registry = GlobalRegistry(tmp_path)
    card = train_global(seen, "toy", TINY, registry).card
    model = NumpyGlobalNet.from_keras_file(registry.model_file(card.id))
    needed = min_bars(card.lookback)
    short = make_panel({"SHORT": needed - 1}, seed=7)
    _, problems = forecast_panel(pd.concat([seen, short]).sort_index(), card, model)
    assert problems["SHORT"] == f"too little history for the global model (needs {needed} bars)"
    enough = make_panel({"SHORT": needed}, seed=7)
    forecasts, problems = forecast_panel(pd.concat([seen, enough]).sort_index(), card, model)
    assert problems == {} and "SHORT" in {f.ticker for f in forecasts}  # the number it names is the one it means


def test_too_short_a_history_is_a_one_line_error(tmp_path):
    with pytest.raises(BadInputError, match="needs at least"):
        train_global(make_panel({"A": 80, "B": 80}), "toy", TINY, GlobalRegistry(tmp_path))


def test_a_universe_of_one_ticker_is_a_one_line_error_not_a_crash_inside_keras(tmp_path):
    with pytest.raises(BadInputError, match=r"comparing tickers with each other.*add tickers"):
        train_global(make_panel({"ALONE": 300}), "toy", TINY, GlobalRegistry(tmp_path))
    assert not list(tmp_path.rglob("*.keras"))  # nothing registered


def test_a_damaged_card_names_the_field(tmp_path):
    card = {"kind": "global", "id": "toy-global-1", "universe": "toy", "tickers": ["A"], "created_at": "now",
            "config": {"lookback": 10, "horizon": 2}, "features": {}, "data": {"range": ["2020-01-01", "2020-12-31"]},
            "validation": {}, "calibration": {"slope": [1.0], "intercept": [0.0, 0.0]}, "intervals": {"quantiles": {}}}
    with pytest.raises(CorruptFileError, match=r"calibration\.slope needs 2 numbers"):
        GlobalCard.from_dict(card)
    card["calibration"]["slope"] = [1.0, 1.0]
    assert GlobalCard.from_dict(json.loads(json.dumps(card))).horizon == 2
    card["id"] = "../escape"
    with pytest.raises(CorruptFileError, match="not a valid model id"):
        GlobalCard.from_dict(card)


def test_an_epoch_cap_draws_a_different_random_set_of_whole_days_each_epoch():
    from forecast.models.pooled.data import pool, targets, time_split
    from forecast.models.pooled.network import PooledBatches

    panel = make_panel({f"T{i}": 200 for i in range(5)}, seed=3)
    data = pool(panel, 3)
    split = time_split(data, 10, train_end=data.dates.max(), validation_days=20)
    target = targets(data, "rank", known_until=split.cut)
    every = PooledBatches(data, split.train, target, GlobalNetConfig(lookback=10, horizon=3), shuffle_seed=1)
    capped = PooledBatches(data, split.train, target, GlobalNetConfig(lookback=10, horizon=3, epoch_windows=len(split.train) // 4),
                           shuffle_seed=1)
    assert len(every) == len(every.batches) and every.windows_per_epoch() == pytest.approx(len(split.train), rel=0.01)
    assert len(capped) == pytest.approx(len(capped.batches) / 4, abs=1)
    assert capped.windows_per_epoch() == pytest.approx(len(split.train) / 4, rel=0.05)

    def epoch_days(batches):
        days = []
        for i in range(len(batches)):
            (window, static), y = batches[i]
            rows = batches.batches[batches.order[i]]
            assert len(np.unique(data.dates[rows])) == 1 and len(y) == len(rows) == len(window)  # one whole day a batch
            assert set(rows) <= set(split.train)
            days.append(data.dates[rows][0])
        batches.on_epoch_end()
        return set(days)

    first, second = epoch_days(capped), epoch_days(capped)
    assert first != second  # a fresh draw each epoch: a long history reaches the network over the epochs
    oldest = set(np.unique(data.dates[split.train])[:len(first)])
    assert first != oldest  # the first epoch draws at random too, not the oldest days


def test_the_preset_hands_the_network_every_setting_it_declares_and_keeps_its_own():
    settings = GlobalSettings(lookback=7, horizon=2, units=9, head_units=3, members=1, max_day_rows=77, linear_margin_t=1.5,
                              linear_alphas=(2.0,), validation_days=30, train_every=2)
    network = settings.network()
    assert type(network) is GlobalNetConfig
    assert {f.name: getattr(network, f.name) for f in fields(GlobalNetConfig)} == {
        f.name: getattr(settings, f.name) for f in fields(GlobalNetConfig)}
    own = {f.name for f in fields(GlobalSettings)} - {f.name for f in fields(GlobalNetConfig)}
    assert own == {"target", "validation_days", "train_every", "adjust", "levels"}
    # where the preset's default differs from the network's, the preset's wins
    assert (GlobalSettings().units, GlobalSettings().epoch_windows, GlobalSettings().linear) == (64, 65_536, True)
    assert (GlobalNetConfig().units, GlobalNetConfig().epoch_windows, GlobalNetConfig().linear) == (32, None, False)
    # the card records every setting flat and as JSON; read back, it is the same preset
    written = json.loads(json.dumps(settings.to_dict()))
    assert set(written) == {f.name for f in fields(GlobalSettings)}
    assert GlobalSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in written.items()}) == settings


def test_reading_the_preset_never_starts_tensorflow():
    probe = ("import sys\nfrom forecast.models.pooled.model import GlobalSettings\nGlobalSettings().network()\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'keras', 'tf_keras'}))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
