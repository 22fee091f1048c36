"""Issue 27's online recalibration wired into the product: the backtest scores it beside the fixed bands, and
predict keeps its state per ticker and model (forecasts/<T>/adaptive/<model>.json) and adjusts today's bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.evaluation.backtest import format_table, walk_forward
from forecast.maths.adaptive_state import DEFAULT_METHOD


def doubling_frame(n: int = 1000, after: int = 500, seed: int = 0) -> pd.DataFrame:
    """A log random walk whose daily volatility doubles (1 % to 2 %) for its last ``after`` bars."""
    rng = np.random.default_rng(seed)
    sigma = np.where(np.arange(n) < n - after, 0.01, 0.02)
    close = 100 * np.exp(np.cumsum(rng.standard_normal(n) * sigma))
    return pd.DataFrame({"date": pd.bdate_range("2015-01-01", periods=n), "open": close, "high": close, "low": close,
                         "close": close, "volume": 1e6, "amount": np.nan})


@pytest.mark.parametrize("seed", [0, 1])
def test_backtest_adaptive_bands_keep_coverage_when_volatility_doubles(seed):
    # one fit before the shift (as between two refits of the product): its conformal quantile cannot follow,
    # its volatility scale follows only in part; the online recalibration must do better, at every step
    result = walk_forward(doubling_frame(seed=seed), "VOL", models=("naive",), test_days=500, refit_every=500, horizon=5)
    for step in result.scores["naive"]["by_step"]:
        fixed, adaptive = step["coverage"]["0.8"], step["adaptive"]["coverage"]["0.8"]
        assert step["adaptive"]["method"] == DEFAULT_METHOD
        assert abs(adaptive - 0.8) < abs(fixed - 0.8), (step["step"], fixed, adaptive)
        assert set(step["adaptive"]["winkler"]) == set(step["winkler"])


def test_backtest_keeps_fixed_scores_and_shows_one_adaptive_line_per_model():
    frame = doubling_frame(n=400, after=100)
    result = walk_forward(frame, "VOL", models=("naive", "drift"), test_days=60, refit_every=20, horizon=2)
    scores = result.scores["drift"]
    assert scores["adaptive"] == scores["by_step"][0]["adaptive"]  # step 1's fields at the top, as before
    # the fixed coverage is still the fixed bands' own
    path, ok = result.paths["drift"], result.origins + 1 < len(result.prices)
    actual = result.prices[result.origins[ok] + 1]
    inside = (actual >= path.lower["0.8"][ok, 0]) & (actual <= path.upper["0.8"][ok, 0])
    assert scores["coverage"]["0.8"] == pytest.approx(inside.mean())
    table = format_table(result)
    assert table.count("adaptive") == 2 * 2 + 1  # one line per model and step shown, and the legend
    record = result.to_dict()
    assert record["models"]["naive"]["by_step"][1]["adaptive"]["coverage"]["0.95"] is not None


# --- predict keeps a state per ticker and model -------------------------------------------------------

def store_bars(home, ticker: str, frame: pd.DataFrame) -> None:
    from forecast.data.store import MarketStore
    from forecast.data.validation import ValidationReport

    store = MarketStore(home)
    with store.writing():
        store.write(ticker, frame.assign(amount=frame["close"] * frame["volume"], adj_factor=1.0), "csv", "qfq",
                    ValidationReport(len(frame), []), calendar="business")


def predict(home, ticker: str = "VOL.US", model: str = "naive"):
    from forecast.workflow.jobs import predict_one
    from forecast.workspace import Workspace

    return predict_one(Workspace.at(home), ticker, model)


def read_state(home, ticker: str = "VOL.US", model: str = "naive") -> dict:
    import json

    from forecast.workspace import Workspace

    return json.loads(Workspace.at(home).adaptive_state_file(ticker, model).read_text())


def test_predict_updates_its_state_by_exactly_the_new_outcomes(home):
    from forecast.maths.adaptive_state import AdaptiveState
    from forecast.models.results import load_forecast

    frame = doubling_frame(n=700, after=200)
    store_bars(home, "VOL.US", frame.iloc[:600])
    first = predict(home)
    state = read_state(home)
    assert state["through"] == frame["date"].iloc[599].date().isoformat()
    assert first.adaptive is not None and first.adaptive["method"] == DEFAULT_METHOD and first.adaptive["rebuilt"] == "new"
    before = {lv: [AdaptiveState.from_dict(d) for d in ds] for lv, ds in state["states"].items()}
    assert before["0.8"][0].updates > 400  # caught up on the stored history (at most 500 origins)

    store_bars(home, "VOL.US", frame.iloc[:607])  # seven more bars: seven new outcomes at every step
    second = predict(home)
    after = {lv: [AdaptiveState.from_dict(d) for d in ds] for lv, ds in read_state(home)["states"].items()}
    assert read_state(home)["through"] == frame["date"].iloc[606].date().isoformat()
    assert second.adaptive["applied"] == 7 * 5 and "rebuilt" not in second.adaptive
    for lv in ("0.8", "0.95"):
        assert [a.updates - b.updates for a, b in zip(after[lv], before[lv])] == [7] * 5
    # the stored forecast says what was done, and today's band is the model's scaled by the state's multiplier
    stored = load_forecast(home, "VOL.US")
    assert stored.adaptive == second.adaptive
    assert stored.adaptive["levels"]["0.8"]["outcomes"] == [s.updates for s in after["0.8"]]
    m = stored.adaptive["levels"]["0.8"]["multiplier"][0]
    lo, hi = stored.points[0].intervals["0.8"]
    assert m > 1.05  # the volatility doubled: its band widened
    assert np.log(hi / stored.points[0].value) > 0

    again = predict(home)  # nothing new: nothing applied, the same bands (a rerun after a kill repeats nothing)
    assert again.adaptive["applied"] == 0 and again.points[0].intervals == second.points[0].intervals


def test_a_killed_update_is_repeated_the_same_way(home):
    frame = doubling_frame(n=700, after=200)
    store_bars(home, "VOL.US", frame.iloc[:600])
    predict(home)
    old = read_state(home)
    store_bars(home, "VOL.US", frame.iloc[:605])
    one = predict(home)
    from forecast.atomic import atomic_write_text
    from forecast.jsonio import dumps
    from forecast.workspace import Workspace

    atomic_write_text(Workspace.at(home).adaptive_state_file("VOL.US", "naive"), dumps(old))  # as if killed before the write
    two = predict(home)
    assert two.points[0].intervals == one.points[0].intervals and two.adaptive == one.adaptive


@pytest.mark.parametrize("text", ["{not json", "\x00\xff", '{"version": 1, "states": {"0.8": [], "0.95": []}, "through": "x"}',
                                  '{"version": 1, "states": {"0.8": [], "0.95": []}, "through": "2020-01-01", "horizon": "five", "model_id": "naive", "method": "tracker"}', '{"version": 1, "states": {"0.8": [{"version": 7}], "0.95": []}}', "[]"])
def test_a_broken_state_file_is_rebuilt_with_one_warning(home, text, caplog):
    from forecast.workspace import Workspace

    frame = doubling_frame(n=600, after=200)
    store_bars(home, "VOL.US", frame)
    good = predict(home)
    path = Workspace.at(home).adaptive_state_file("VOL.US", "naive")
    path.write_text(text)
    with caplog.at_level("WARNING"):
        rebuilt = predict(home)
    assert rebuilt.adaptive["rebuilt"].startswith("unreadable")
    assert rebuilt.points[0].intervals == good.points[0].intervals  # rebuilt from the same bars: the same state
    assert read_state(home)["through"] == good.adaptive["through"]
    warnings = [r for r in caplog.records if "adaptive interval state" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()


def test_an_old_forecast_without_adaptive_still_loads(home):
    from forecast.models.results import ForecastResult

    frame = doubling_frame(n=400, after=100)
    store_bars(home, "VOL.US", frame)
    data = predict(home).to_dict()
    assert "adaptive" in data
    del data["adaptive"]
    assert ForecastResult.from_dict(data).adaptive is None


def test_other_levels_start_a_new_state_without_a_warning(home, caplog):
    from forecast.workflow.jobs import predict_one
    from forecast.workspace import Workspace

    store_bars(home, "VOL.US", doubling_frame(n=400, after=100))
    predict(home)
    with caplog.at_level("WARNING"):
        other = predict_one(Workspace.at(home), "VOL.US", "naive", levels=(0.9,))
    assert other.adaptive["rebuilt"] == "other settings" and list(other.adaptive["levels"]) == ["0.9"]
    assert not [r for r in caplog.records if "adaptive interval state" in r.getMessage()]


def test_a_baselines_state_starts_again_when_its_bars_gain_a_range_so_the_same_bars_give_the_same_bands(home, tmp_path):
    from forecast.maths.intervals import DEFAULT_SCALE

    close_only = doubling_frame(n=700, after=200)  # one price all day: the close-to-close scale
    spread = close_only["close"] * 0.01 * (1 + np.random.default_rng(5).random(len(close_only)))
    full = close_only.assign(high=close_only["close"] + spread / 2, low=close_only["close"] - spread / 2)
    store_bars(home, "VOL.US", close_only)
    predict(home)
    assert read_state(home)["scale"] == DEFAULT_SCALE.removeprefix("range:")
    store_bars(home, "VOL.US", full)  # a refetch brings highs and lows: the baseline refits on the range
    moved = predict(home)
    assert moved.adaptive["rebuilt"] == "other settings" and read_state(home)["scale"] == DEFAULT_SCALE
    fresh_home = tmp_path / "fresh"  # the same bars, never seen close-only: the same forecast
    fresh_home.mkdir()
    store_bars(fresh_home, "VOL.US", full)
    fresh = predict(fresh_home)
    assert moved.adaptive["levels"] == fresh.adaptive["levels"]
    assert [p.intervals for p in moved.points] == [p.intervals for p in fresh.points]
