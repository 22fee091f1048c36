"""``workflow.universe_plans``: the universe branches of ``train`` and ``backtest``, planned from their flags.

Checked: when ``backtest`` goes cross-sectional, ``--split`` parsing, the CrossSettings and the refit count
derived from the flags, the UsageErrors for a missing ``--universe``, point-in-time membership (None for
universes that are today's list; an index's members on each day from its cached snapshots, fetched from the
fake tushare), and a real cross-sectional backtest of a small synthetic store counting its refits.
(Training the universe network itself needs TensorFlow and is left to the global-model tests; its
refusal without ``--universe`` is checked here.)
"""

from __future__ import annotations

import datetime as dt
import logging
import math

import pytest
from synthetic_market import synthetic_bars, write_store

from forecast.data.store import MarketStore
from forecast.errors import BadInputError, UnknownUniverseError
from forecast.evaluation.cross_backtest import CROSS_ONLY, FixedSplit
from forecast.progress import LineProgress
from forecast.workflow.universe_plans import (
    cross_backtest_universe,
    cross_settings,
    is_cross_sectional,
    parse_split,
    point_in_time,
    refit_count,
    train_global_model,
)
from forecast.workflow.usage import UsageError
from forecast.workspace import Workspace

SPLIT = "2020-06-30,2020-07-01,2020-09-30,2020-10-01,2020-12-24"


@pytest.fixture
def workspace(home) -> Workspace:
    return Workspace.at(home)


# ---------------------------------------------------------------- which backtest


def test_a_model_only_a_cross_section_knows_makes_the_backtest_cross_sectional():
    assert "momentum" in CROSS_ONLY and "global" in CROSS_ONLY
    assert is_cross_sectional(["naive", "momentum"])
    assert is_cross_sectional(["global"])


def test_models_every_backtest_knows_keep_it_per_ticker_unless_a_split_is_fixed():
    assert not is_cross_sectional(["naive", "linear"])
    assert not is_cross_sectional([])
    assert is_cross_sectional(["naive"], split=SPLIT)


# ---------------------------------------------------------------- --split


def test_no_split_is_none():
    assert parse_split(None) is None
    assert parse_split("") is None


def test_a_split_is_five_dates_in_order():
    assert parse_split(" 2020-06-30, 2020-07-01,2020-09-30 ,2020-10-01,2020-12-24") == FixedSplit(
        "2020-06-30", "2020-07-01", "2020-09-30", "2020-10-01", "2020-12-24")


@pytest.mark.parametrize("text", ["2020-06-30,2020-07-01,2020-09-30,2020-10-01", SPLIT + ",2021-01-01"])
def test_a_split_of_other_than_five_dates_is_a_usage_error(text):
    with pytest.raises(UsageError, match="five dates"):
        parse_split(text)


def test_a_split_out_of_order_is_bad_input():
    with pytest.raises(BadInputError, match="train end < validation start"):
        parse_split("2020-07-01,2020-06-30,2020-09-30,2020-10-01,2020-12-24")


# ---------------------------------------------------------------- settings and refits


def test_cross_settings_take_the_flags_and_refit_every_60_days_by_default():
    settings = cross_settings("csi300", ["global", "momentum"], 250, None, 10, None, None)
    assert settings.models == ("global", "momentum")
    assert (settings.horizon, settings.test_days, settings.refit_every, settings.fixed) == (10, 250, 60, None)
    assert settings.network.horizon == 10  # the network forecasts the horizon ranked by


def test_epochs_reach_the_network_and_a_split_is_fixed():
    settings = cross_settings("csi300", ["global"], 250, 20, 5, SPLIT, 3)
    assert settings.network.epochs == 3
    assert settings.refit_every == 20
    assert settings.fixed == parse_split(SPLIT)


def test_a_cross_sectional_backtest_needs_a_universe():
    with pytest.raises(UsageError, match="add --universe NAME"):
        cross_settings(None, ["momentum"], 250, None, 5, None, None)


def test_learned_models_refit_once_per_refit_every_days_and_rules_never():
    settings = cross_settings("csi300", ["global", "linear", "momentum", "naive"], 250, 60, 5, None, None)
    assert refit_count(settings) == 2 * math.ceil(250 / 60)  # two learned models, 5 refits each
    assert refit_count(cross_settings("csi300", ["momentum", "naive"], 250, 60, 5, None, None)) == 0


def test_with_a_fixed_split_each_learned_model_is_fitted_once():
    assert refit_count(cross_settings("csi300", ["global", "lightgbm", "reversal"], 250, 60, 5, SPLIT, None)) == 2


def test_training_the_universe_network_needs_a_universe(workspace):
    with pytest.raises(UsageError, match="add --universe NAME"):
        train_global_model(workspace, None, ["600519.SH"], (0.8,), None, None, None, None)


# ---------------------------------------------------------------- point in time


@pytest.mark.parametrize("universe", ["all", "stored", "watchlist"])
def test_universes_that_are_todays_list_have_no_point_in_time_membership(workspace, universe):
    assert point_in_time(workspace, universe) is None


def test_an_index_without_stored_constituents_says_so(workspace):
    with pytest.raises(UnknownUniverseError, match=r"no constituents of 000300\.SH are stored"):
        point_in_time(workspace, "csi300")


def test_an_index_universes_members_are_those_of_each_day(workspace, fake_tushare):
    from fake_tushare import index_weight_frame

    from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
    from forecast.data.universe_cache import load_index

    fake_tushare.market.index_weight = index_weight_frame(
        "000300.SH", {"20200102": ["600519.SH", "000001.SZ"], "20200701": ["600519.SH", "600036.SH"]})
    load_index(workspace, "000300.SH", TushareClient(fake_tushare.valid_token, timeout=2.0,
                                                     retry=RetryPolicy(attempts=2, sleep=lambda s: None)))  # cache them
    members_on = point_in_time(workspace, "csi300")
    assert members_on(dt.date(2020, 3, 2)) == ["000001.SZ", "600519.SH"]
    assert members_on(dt.date(2020, 6, 30)) == ["000001.SZ", "600519.SH"]  # the day before the next snapshot
    assert members_on(dt.date(2020, 7, 1)) == ["600036.SH", "600519.SH"]
    with pytest.raises(UnknownUniverseError):
        members_on(dt.date(2019, 12, 31))  # before the first snapshot


# ---------------------------------------------------------------- the cross-sectional backtest


def test_a_cross_sectional_backtest_of_a_stored_universe_counts_its_refits(workspace, caplog):
    bars = synthetic_bars(8, 420, seed=0)  # linear needs 336 days before its first refit
    write_store(MarketStore(workspace), bars)
    settings = cross_settings("stored", ["linear", "reversal", "naive"], 30, 20, 5, None, None)
    expected_refits = refit_count(settings)
    assert expected_refits == math.ceil(30 / 20)  # one learned model
    with caplog.at_level(logging.INFO, logger="forecast.progress"):
        result = cross_backtest_universe(workspace, "stored", bars.codes, settings, LineProgress())
    assert [r["model"] for r in result.refits] == ["linear"] * expected_refits
    assert result.tickers == len(bars.codes)  # every member ranked
    counted = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"refits {expected_refits}/{expected_refits}")]
    assert counted, "the last refit was counted"
