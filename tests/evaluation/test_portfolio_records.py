"""``evaluation.portfolio_records``: what is stored of a universe's portfolio backtest and how it reads back.

Real results from ``evaluation.portfolio.simulate`` on a market of two tickers and four days are saved into an
empty home; checked: the daily CSV's columns (``<model>_nav``, ``<model>_drawdown``, the benchmark, the index
only when there is one), the positions' rows, the round trip, and the damaged files that read as a
CorruptFileError naming the command that rebuilds them.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from forecast.errors import CorruptFileError
from forecast.evaluation.costs import Costs
from forecast.evaluation.portfolio import Strategy, simulate
from forecast.evaluation.portfolio_inputs import Market
from forecast.evaluation.portfolio_records import (
    BENCHMARK,
    INDEX,
    column,
    daily_frame,
    drawdown_columns,
    load_portfolio,
    nav_columns,
    positions_frame,
    save_portfolio,
)
from forecast.workspace import Workspace

ZERO = Costs(commission_bps=0.0, min_commission=0.0, stamp_duty=(), transfer_fee=())
DAYS = pd.to_datetime(["2023-08-21", "2023-08-22", "2023-08-23", "2023-08-24"])
RUN = {"schedule": "every 5 days", "test_range": ["2023-08-21", "2023-08-24"], "notes": ["a note"]}


def result(favourite: str, index_close: pd.Series | None = None):
    """A top-1 portfolio that holds ``favourite``: A rises 10 -> 13 (and dips on day 3), B stays at 20."""
    prices = pd.DataFrame({"A": [10.0, 11.0, 10.5, 13.0], "B": [20.0] * 4}, index=DAYS)
    scores = pd.DataFrame({"A": [1.0 if favourite == "A" else 0.0], "B": [1.0 if favourite == "B" else 0.0]}, index=DAYS[:1])
    return simulate(scores, Market(open=prices, close=prices.copy()), Strategy(top_k=1, capital=10_000.0, lot=100), ZERO,
                    index_close=index_close)


@pytest.fixture(scope="module")
def results():
    return {"lstm": result("A"), "naive": result("B")}


def test_a_models_column_is_its_name_and_the_series():
    assert column("lstm", "nav") == "lstm_nav"
    assert column("naive", "drawdown") == "naive_drawdown"


def test_the_daily_frame_holds_each_models_nav_and_drawdown_beside_the_benchmark(results):
    daily = daily_frame(results)
    assert list(daily.columns) == ["lstm_nav", "lstm_drawdown", BENCHMARK, "naive_nav", "naive_drawdown"]
    assert daily.index.name == "date"
    for model, one in results.items():
        own = one.daily_frame()
        assert list(daily[f"{model}_nav"]) == list(own["nav"])
        assert list(daily[f"{model}_drawdown"]) == list(own["drawdown"])
    assert list(daily[BENCHMARK]) == list(results["lstm"].daily_frame()["benchmark"])


def test_the_drawdown_column_is_the_fall_from_the_running_peak(results):
    daily = daily_frame(results)
    nav = list(daily["lstm_nav"])
    peaks = [max(nav[: i + 1]) for i in range(len(nav))]
    assert list(daily["lstm_drawdown"]) == pytest.approx([v / p - 1 for v, p in zip(nav, peaks)])
    assert min(daily["lstm_drawdown"]) < 0  # A's dip on the third day shows


def test_the_index_column_is_there_only_when_an_index_was_given():
    index_close = pd.Series([3000.0, 3030.0, 3060.0, 3000.0], index=DAYS)
    with_index = daily_frame({"lstm": result("A", index_close)})
    assert INDEX in with_index
    assert list(with_index[INDEX]) == pytest.approx([10_000.0 * v / 3000.0 for v in index_close])  # scaled to the capital
    assert INDEX not in daily_frame({"lstm": result("A")})


def test_positions_name_their_model_first(results):
    positions = positions_frame(results)
    assert positions.columns[0] == "model"
    assert len(positions) > 0
    assert set(positions["model"]) == {"lstm", "naive"}
    for model, one in results.items():
        mine = positions[positions["model"] == model].drop(columns="model").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, one.positions.reset_index(drop=True))


def test_no_positions_is_an_empty_frame_with_the_columns():
    empty = positions_frame({})
    assert len(empty) == 0
    assert list(empty.columns) == ["model", "date", "ticker", "shares", "close", "value", "weight"]


def test_nothing_stored_reads_as_none(home):
    assert load_portfolio(home, "csi300") is None


def test_a_saved_backtest_reads_back_as_it_was_saved(home, results):
    paths = save_portfolio(home, "csi300", RUN, results)
    workspace = Workspace.at(home)
    assert paths == (workspace.portfolio_json("csi300"), workspace.portfolio_csv("csi300"),
                     workspace.portfolio_positions_csv("csi300"))
    assert all(p.is_file() for p in paths)
    assert paths[0].parent.name == "@csi300"
    record, daily = load_portfolio(home, "csi300")
    assert record["universe"] == "csi300"
    assert record["schedule"] == RUN["schedule"] and record["test_range"] == RUN["test_range"]
    assert set(record["models"]) == {"lstm", "naive"}
    assert record["models"]["lstm"]["trades"] == len(results["lstm"].trades)
    expected = daily_frame(results)
    pd.testing.assert_frame_equal(daily, expected, check_freq=False)
    positions = pd.read_csv(paths[2])
    assert len(positions) == len(positions_frame(results))


def test_nav_and_drawdown_columns_are_one_per_model_named_by_the_model(home, results):
    save_portfolio(home, "csi300", RUN, results)
    _, daily = load_portfolio(home, "csi300")
    navs, drawdowns = nav_columns(daily), drawdown_columns(daily)
    assert list(navs.columns) == ["lstm", "naive"] and list(drawdowns.columns) == ["lstm", "naive"]
    assert list(navs["naive"]) == list(daily["naive_nav"])
    assert list(drawdowns["lstm"]) == list(daily["lstm_drawdown"])


def test_a_record_that_is_no_json_is_corrupt_and_names_the_command_that_rebuilds_it(home, results):
    paths = save_portfolio(home, "csi300", RUN, results)
    paths[0].write_text("{not json", encoding="utf-8")
    with pytest.raises(CorruptFileError, match="forecast backtest --universe csi300 --portfolio"):
        load_portfolio(home, "csi300")


def test_a_missing_daily_csv_is_corrupt(home, results):
    paths = save_portfolio(home, "csi300", RUN, results)
    paths[1].unlink()
    with pytest.raises(CorruptFileError, match="cannot be read"):
        load_portfolio(home, "csi300")


@pytest.mark.parametrize("damage", ["models-not-a-dict", "a-list", "no-benchmark"])
def test_files_this_version_did_not_write_are_refused(home, results, damage):
    paths = save_portfolio(home, "csi300", RUN, results)
    if damage == "models-not-a-dict":
        paths[0].write_text(json.dumps({"universe": "csi300", "models": []}), encoding="utf-8")
    elif damage == "a-list":
        paths[0].write_text("[]", encoding="utf-8")
    else:
        pd.read_csv(paths[1]).drop(columns=[BENCHMARK]).to_csv(paths[1], index=False)
    with pytest.raises(CorruptFileError, match="not one this version wrote"):
        load_portfolio(home, "csi300")
