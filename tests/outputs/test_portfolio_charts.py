"""``outputs.portfolio_charts``: the chart of a stored portfolio backtest.

Checked on real results saved into an empty home: every line starts at 1 whatever the capital, the chart is
written (PNG by default beside the backtest, or where asked), its legend names each model, the benchmark and
the index only when there is one, and a universe with no stored backtest is a NotFoundError saying what to run.
"""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from forecast.errors import NotFoundError
from forecast.evaluation.costs import Costs
from forecast.evaluation.portfolio import Strategy, simulate
from forecast.evaluation.portfolio_inputs import Market
from forecast.evaluation.portfolio_records import daily_frame, save_portfolio
from forecast.outputs.portfolio_charts import _growth, render_portfolio, render_stored_portfolio
from forecast.workspace import Workspace

ZERO = Costs(commission_bps=0.0, min_commission=0.0, stamp_duty=(), transfer_fee=())
DAYS = pd.to_datetime(["2023-08-21", "2023-08-22", "2023-08-23", "2023-08-24"])
PNG = b"\x89PNG\r\n\x1a\n"


def result(favourite: str, index_close=None):
    prices = pd.DataFrame({"A": [10.0, 11.0, 10.5, 13.0], "B": [20.0] * 4}, index=DAYS)
    scores = pd.DataFrame({"A": [float(favourite == "A")], "B": [float(favourite == "B")]}, index=DAYS[:1])
    return simulate(scores, Market(open=prices, close=prices.copy()), Strategy(top_k=1, capital=10_000.0, lot=100), ZERO,
                    index_close=index_close)


@pytest.fixture
def text_svg(monkeypatch):
    """SVG text kept as text, so the legend can be read back."""
    monkeypatch.setitem(matplotlib.rcParams, "svg.fonttype", "none")


def test_every_line_starts_at_one_whatever_the_capital():
    assert list(_growth(pd.Series([250.0, 500.0, 125.0]))) == [1.0, 2.0, 0.5]
    assert list(_growth(pd.Series([None, 4.0, 6.0], dtype=float)).dropna()) == [1.0, 1.5]  # from its first value
    empty = pd.Series([None, None], dtype=float)
    assert _growth(empty).isna().all()  # nothing to scale by: left as it is


def test_the_chart_is_written_where_asked(tmp_path):
    path = render_portfolio(daily_frame({"lstm": result("A")}), "csi300: test", tmp_path / "chart.png")
    assert path == tmp_path / "chart.png"
    assert path.read_bytes()[:8] == PNG


def test_the_legend_names_each_model_and_the_benchmark_and_the_index_only_when_there_is_one(tmp_path, text_svg):
    without = render_portfolio(daily_frame({"lstm": result("A"), "naive": result("B")}), "plain", tmp_path / "a.svg")
    svg = without.read_text(encoding="utf-8")
    assert "lstm" in svg and "naive" in svg and "equal-weight universe" in svg and "plain" in svg
    assert ">index<" not in svg
    index_close = pd.Series([3000.0, 3030.0, 3060.0, 3000.0], index=DAYS)
    with_index = render_portfolio(daily_frame({"lstm": result("A", index_close)}), "with", tmp_path / "b.svg")
    assert ">index<" in with_index.read_text(encoding="utf-8")


def test_a_stored_backtest_is_drawn_beside_it_by_default(home):
    run = {"schedule": "every 5 days", "test_range": ["2023-08-21", "2023-08-24"]}
    save_portfolio(home, "csi300", run, {"lstm": result("A")})
    path = render_stored_portfolio(home, "csi300")
    assert path == Workspace.at(home).portfolio_chart("csi300")
    assert path.read_bytes()[:8] == PNG


def test_a_stored_backtest_can_be_drawn_elsewhere_with_its_test_range_in_the_title(home, tmp_path, text_svg):
    run = {"schedule": "every 5 days", "test_range": ["2023-08-21", "2023-08-24"]}
    save_portfolio(home, "csi300", run, {"lstm": result("A")})
    out = render_stored_portfolio(home, "csi300", tmp_path / "elsewhere.svg")
    assert out == tmp_path / "elsewhere.svg"
    assert "test 2023-08-21..2023-08-24" in out.read_text(encoding="utf-8")
    assert not Workspace.at(home).portfolio_chart("csi300").exists()


def test_no_stored_backtest_says_what_to_run(home):
    with pytest.raises(NotFoundError, match="forecast backtest --universe csi300 --portfolio"):
        render_stored_portfolio(home, "csi300")
