"""Metrics by hand, no look-ahead, interval coverage, and the backtest CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_FILE
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.sources.csv_file import read_bars_csv
from forecast.evaluation.backtest import walk_forward
from forecast.maths import metrics
from forecast.maths.intervals import conformal_quantiles
from forecast.models.forecasters import make_baseline

runner = CliRunner()


def test_metrics_against_hand_computed_values():
    actual = np.array([10.0, 12.0, 11.0, 13.0])
    predicted = np.array([11.0, 11.0, 11.0, 15.0])
    last = np.array([10.0, 10.0, 12.0, 11.0])
    # errors 1, -1, 0, 2
    assert metrics.rmse(actual, predicted) == pytest.approx(math.sqrt((1 + 1 + 0 + 4) / 4))
    assert metrics.mae(actual, predicted) == pytest.approx(1.0)
    assert metrics.mape(actual, predicted) == pytest.approx((1 / 10 + 1 / 12 + 0 + 2 / 13) / 4)  # a fraction, as in the JSON
    assert metrics.naive_scale(np.array([1.0, 3.0, 2.0])) == pytest.approx(1.5)
    assert metrics.mase(actual, predicted, 2.0) == pytest.approx(0.5)
    assert metrics.skill(1.0, 2.0) == pytest.approx(0.5)
    # moves predicted: +1, +1, -1, +4; actual: 0, +2, -1, +2 -> calls where both move: 3, all hits
    hit, calls, p = metrics.directional_accuracy(actual, predicted, last)
    assert (hit, calls) == (1.0, 3) and p == pytest.approx(0.25)  # two-sided binomial, 3 of 3
    assert metrics.coverage(actual, actual - 1, actual + 1) == 1.0
    assert metrics.coverage(actual, actual + 0.5, actual + 1) == 0.0
    assert metrics.mean_width(np.zeros(3), np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)


def test_diebold_mariano_by_hand():
    e_model = np.array([1.0, 0.0, 1.0, 0.0])
    e_naive = np.array([2.0, 1.0, 1.0, 1.0])
    d = e_model ** 2 - e_naive ** 2  # -3, -1, 0, -1
    n, mean = 4, d.mean()
    var = np.mean((d - mean) ** 2)
    stat = mean / math.sqrt(var / n) * math.sqrt((n + 1 - 2 + 0) / n)
    got, p = metrics.diebold_mariano(e_model, e_naive, 1)
    assert got == pytest.approx(stat) and 0 < p < 1
    assert math.isnan(metrics.diebold_mariano(e_model, e_model, 1)[0])


def test_conformal_quantile_uses_the_finite_sample_rank():
    residuals = np.arange(1, 11, dtype=float)[:, None]  # 1..10
    q = conformal_quantiles(residuals, (0.8,))
    assert q["0.8"] == [9.0]  # ceil(11 * 0.8) = 9th smallest


def random_walk_frame(n=1500, sigma=0.01, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, sigma, n)))
    dates = pd.bdate_range("2015-01-01", periods=n)
    return pd.DataFrame({"date": dates, "open": close, "high": close, "low": close, "close": close,
                         "volume": 1e6, "amount": np.nan})


def test_intervals_reach_nominal_coverage_on_a_gaussian_random_walk():
    frame = random_walk_frame()
    result = walk_forward(frame, "RW", models=("naive", "drift"), test_days=600, refit_every=50, horizon=2)
    for name in ("naive", "drift"):
        cov = result.scores[name]["coverage"]
        assert abs(cov["0.8"] - 0.8) < 0.05 and abs(cov["0.95"] - 0.95) < 0.03, (name, cov)


def _changed_after(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    changed = frame.copy()
    rng = np.random.default_rng(1)
    for col in ("open", "high", "low", "close"):
        changed.loc[row + 1:, col] *= rng.uniform(0.5, 1.5, len(changed) - row - 1)
    changed.loc[row + 1:, "volume"] *= 7
    return changed


@pytest.mark.parametrize("name", ["naive", "drift", "ma", "linear"])
def test_baselines_do_not_look_ahead(name):
    frame = read_bars_csv(SAMPLE_FILE).frame
    origin = len(frame) - 40
    model = make_baseline(name, 3).fit(frame.iloc[: origin + 1])
    before = model.predict_target(frame, np.array([origin]))
    changed = _changed_after(frame, origin)
    model2 = make_baseline(name, 3).fit(changed.iloc[: origin + 1])
    np.testing.assert_array_equal(model2.predict_target(changed, np.array([origin])), before)


def test_walk_forward_does_not_look_ahead_for_networks_and_baselines():
    frame = read_bars_csv(SAMPLE_FILE).frame.tail(500).reset_index(drop=True)
    tiny = {"epochs": 1, "units": (4,), "lookback": 10}
    kwargs = dict(models=("default", "naive", "drift", "ma", "linear"), test_days=20, refit_every=10, horizon=2,
                  network_overrides=tiny)
    first = walk_forward(frame, "X", **kwargs)
    cut = int(first.origins[9])  # the last origin of the first fold
    second = walk_forward(_changed_after(frame, cut), "X", **kwargs)
    for name, path in first.paths.items():
        np.testing.assert_array_equal(second.paths[name].predicted[:10], path.predicted[:10], err_msg=name)
        for level in path.lower:
            np.testing.assert_array_equal(second.paths[name].lower[level][:10], path.lower[level][:10])
        assert not np.array_equal(second.paths[name].predicted[10:], path.predicted[10:]), name  # the change did matter later


def test_backtest_cli_writes_valid_json_and_csv(home, tmp_path):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    out = tmp_path / "bt.json"
    result = runner.invoke(app, ["backtest", "600519.SH", "--models", "default,naive,drift,ma,linear", "--test-days", "30",
                                 "--refit-every", "15", "--horizon", "2", "--epochs", "1", "--units", "4",
                                 "--lookback", "10", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert json.loads(out.read_text()) == payload
    assert set(payload["models"]) == {"default", "naive", "drift", "ma", "linear"}
    for name, score in payload["models"].items():
        for key in ("rmse", "mae", "mase", "skill_vs_naive", "directional_accuracy", "coverage", "interval_width"):
            assert key in score, (name, key)
        assert len(score["by_step"]) == 2 and score["by_step"][0]["n"] == 30 and score["by_step"][1]["n"] == 29
    assert payload["models"]["naive"]["skill_vs_naive"] == 0.0
    forecasts = pd.read_csv(out.with_suffix(".csv"))
    assert len(forecasts) == 5 * 30 * 2
    naive = forecasts[forecasts.model == "naive"]
    np.testing.assert_allclose(naive["predicted"], naive["origin_value"])
    assert (home / "backtests" / "600519.SH" / "latest.json").is_file()


def test_predict_with_a_baseline_model(home):
    runner.invoke(app, ["fetch", "--source", "sample"])
    result = runner.invoke(app, ["predict", "600519.SH", "--model", "naive", "--horizon", "3", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [p["value"] for p in payload["points"]] == [payload["last_close"]] * 3
    widths = [p["intervals"]["0.95"][1] - p["intervals"]["0.95"][0] for p in payload["points"]]
    assert widths == sorted(widths) and widths[0] > 0  # uncertainty grows with the horizon
