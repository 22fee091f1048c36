"""``workflow.forecasting``: ``predict`` over many tickers and ``rank``'s refusals, on the sample in an empty home.

Checked with the naive baseline (no network to train): which model serves each ticker and why, outcomes in the
order the tickers were named with each failure on its own, the forecast's horizon cut with ``--horizon``, the
count of tickers done, and ``rank``'s UsageError for a horizon beyond its universe model's. (Forecasts from a
universe model's batch need a trained network, TensorFlow: left to the global-model tests.)
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from conftest import SAMPLE_FILE

from forecast.data import fetching
from forecast.data.calendar import TradingCalendar
from forecast.data.store import MarketStore
from forecast.errors import ModelNotFoundError
from forecast.models.pooled.card import GlobalRegistry
from forecast.workflow.executors import SerialExecutor
from forecast.workflow.forecasting import PredictPlan, cut, rank_tickers, universe_forecasts
from forecast.workflow.usage import UsageError
from forecast.workspace import Workspace
from tests.workflow.test_serving import no_weights, universe_card

OWN, MISSING = "600519.SH", "000001.SZ"
LEVELS = (0.8, 0.95)


@pytest.fixture
def workspace(home) -> Workspace:
    ws = Workspace.at(home)
    fetching.import_sample(MarketStore(ws))
    return ws


def last_sample_bar() -> pd.Series:
    return pd.read_csv(SAMPLE_FILE).sort_values("date").iloc[-1]


def run(plan: PredictPlan, mode: str = "none", seen: list | None = None):
    return plan.run(SerialExecutor(), False, lambda job: job, mode, (seen.append if seen is not None else lambda _: None))


# ---------------------------------------------------------------- which model serves


def test_without_universe_models_nothing_is_batched_and_each_real_ticker_has_its_reason(workspace):
    found, reasons = universe_forecasts(workspace, ["600519", MISSING, "no ticker!"], "naive", None)
    assert found == {}
    assert reasons == {OWN: "--model", MISSING: "--model"}  # text that is no ticker is left to the per-ticker path


# ---------------------------------------------------------------- predict


def test_each_ticker_is_forecast_in_the_order_named_and_a_missing_one_fails_on_its_own(workspace):
    seen = []
    outcomes = run(PredictPlan(workspace, [MISSING, "600519"], "naive", 3, LEVELS), seen=seen)
    assert [o.item for o in outcomes] == [MISSING, "600519"]
    assert not outcomes[0].ok and outcomes[0].exit_code == 4 and f"forecast fetch {MISSING}" in outcomes[0].error
    assert outcomes[1].ok
    assert sorted(o.item for o in seen) == sorted([MISSING, "600519"])


def test_the_naive_forecast_is_the_last_close_on_each_following_trading_day(workspace):
    [outcome] = run(PredictPlan(workspace, [OWN], "naive", 3, LEVELS))
    result = outcome.value
    last = last_sample_bar()
    assert result.ticker == OWN and result.model_id == "naive"
    assert result.last_close == pytest.approx(last["close"])
    assert [p.value for p in result.points] == pytest.approx([last["close"]] * 3)
    sessions = TradingCalendar("XSHG").sessions_between(pd.Timestamp(last["date"]) + pd.Timedelta(days=1),
                                                        pd.Timestamp(last["date"]) + pd.Timedelta(days=15))
    assert [p.date for p in result.points] == [d.date().isoformat() for d in sessions[:3]]
    for point in result.points:
        lo80, hi80 = point.intervals["0.8"]
        lo95, hi95 = point.intervals["0.95"]
        assert lo95 < lo80 < point.value < hi80 < hi95


def test_the_reason_for_a_model_named_with_model_is_the_flag(workspace):
    plan = PredictPlan(workspace, [OWN], "naive", 3, LEVELS)
    [outcome] = run(plan)
    assert plan.reason(outcome.value) == "--model"


def test_a_ticker_with_no_model_and_none_named_is_told_how_to_train_one(workspace):
    [outcome] = run(PredictPlan(workspace, [OWN], None, None, LEVELS))
    assert not outcome.ok
    assert f"forecast train {OWN}" in outcome.error


def test_several_tickers_are_counted_as_they_are_done(workspace, caplog):
    with caplog.at_level(logging.INFO, logger="forecast.progress"):
        run(PredictPlan(workspace, [OWN, MISSING, "600519"], "naive", 2, LEVELS), mode="lines")
    lines = [r.getMessage() for r in caplog.records if r.name == "forecast.progress"]
    # the failed ticker is counted (3/3 at the end) but has no progress line: its error line reports it
    assert [line.split(" (")[0] for line in lines] == [f"predict 1/3: {OWN}", "predict 3/3: 600519"]


# ---------------------------------------------------------------- cut


@pytest.fixture
def five_day_forecast(workspace):
    return run(PredictPlan(workspace, [OWN], "naive", 5, LEVELS))[0].value


def test_cut_keeps_the_first_days_asked_for(five_day_forecast):
    dates = [p.date for p in five_day_forecast.points]
    assert [p.date for p in cut(five_day_forecast, 2).points] == dates[:2]


@pytest.mark.parametrize("horizon", [None, 5, 9])
def test_cut_without_a_shorter_horizon_keeps_every_day(five_day_forecast, horizon):
    assert len(cut(five_day_forecast, horizon).points) == 5


# ---------------------------------------------------------------- rank


def test_rank_without_a_universe_model_says_how_to_train_one(workspace):
    with pytest.raises(ModelNotFoundError, match="forecast train --universe csi300 --preset global"):
        rank_tickers(workspace, [OWN], None, "csi300", None, {})


def test_rank_refuses_a_horizon_beyond_its_models(workspace):
    GlobalRegistry(workspace).save(universe_card("u-1", "csi300", (OWN,), "2026-01-01T00:00:00+00:00"), no_weights)  # horizon 3
    with pytest.raises(UsageError, match=r"--horizon 4 is beyond the model's horizon \(3 days\)"):
        rank_tickers(workspace, [OWN], None, "csi300", 4, {})
