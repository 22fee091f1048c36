"""The portfolio backtest's engine and its costs, each figure worked out by hand on a market of a few tickers and days."""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest

from forecast.errors import BadInputError
from forecast.evaluation.costs import A_SHARE, PLAIN, Costs, costs_for
from forecast.evaluation.portfolio import Strategy, simulate
from forecast.evaluation.portfolio_inputs import Market

NAN = math.nan
ZERO = Costs(commission_bps=0.0, min_commission=0.0, stamp_duty=(), transfer_fee=())
DAYS = ["2023-08-21", "2023-08-22", "2023-08-23", "2023-08-24"]


def table(days: list[str], **columns: list) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.to_datetime(days))


def flat_market(days: list[str], prices: dict[str, float], **flags: pd.DataFrame) -> Market:
    """Every ticker opens and closes at its one price every day."""
    frame = table(days, **{ticker: [price] * len(days) for ticker, price in prices.items()})
    return Market(open=frame, close=frame.copy(), **flags)


def last_cash(result) -> float:
    """The cash at the last close: the NAV less what is held."""
    last = result.positions[result.positions.date == result.nav.index[-1]]
    return float(result.nav.iloc[-1] - last["value"].sum())


def held_on(result, day: str) -> dict[str, float]:
    rows = result.positions[result.positions.date == pd.Timestamp(day)]
    return dict(zip(rows.ticker, rows.shares))


# ---------------------------------------------------------------- trading rules


def test_a_name_at_limit_up_is_not_bought_and_its_slot_stays_cash():
    market = flat_market(DAYS[:2], {"A": 10.0, "B": 20.0, "C": 5.0},
                         can_buy=table(DAYS[:2], A=[True, False], B=[True, True], C=[True, True]))
    scores = table(DAYS[:1], A=[3.0], B=[2.0], C=[1.0])
    result = simulate(scores, market, Strategy(top_k=2, capital=10_000.0, lot=100), ZERO)
    budget = 10_000.0 / 2  # split over the two names wanted, A and B, even though A cannot be bought
    b_shares = math.floor(budget / (20.0 * 100)) * 100  # 200
    assert held_on(result, DAYS[1]) == {"B": b_shares}  # C, third best, does not take A's slot
    assert result.blocked["buy_at_limit_up"] == 1
    assert last_cash(result) == pytest.approx(10_000.0 - b_shares * 20.0)  # 6,000: A's half stays cash
    assert result.nav.iloc[-1] == pytest.approx(10_000.0)


def test_a_name_at_limit_down_is_not_sold_and_no_buy_takes_its_slot():
    days = DAYS
    market = Market(open=table(days, A=[10.0, 10.0, 9.0, 9.0], B=[15.0] * 4), close=table(days, A=[10.0, 10.0, 9.0, 9.0], B=[15.0] * 4),
                    can_sell=table(days, A=[True, True, False, True], B=[True] * 4))
    scores = table(days[:3], A=[2.0, 1.0, 1.0], B=[1.0, 2.0, 2.0])
    result = simulate(scores, market, Strategy(top_k=1, rebalance_every=1, max_drop=1, capital=10_000.0, lot=100), ZERO)
    a_shares = math.floor(10_000.0 / (10.0 * 100)) * 100  # 1,000 bought on day 1, cash 0
    assert held_on(result, days[2]) == {"A": a_shares}  # day 2: the sell is refused at limit-down, so B is not bought
    assert result.blocked["sell_at_limit_down"] == 1
    cash_after_sale = a_shares * 9.0  # day 3: sold at 9
    b_shares = math.floor(cash_after_sale / (15.0 * 100)) * 100  # 600
    assert held_on(result, days[3]) == {"B": b_shares}
    assert result.nav.iloc[-1] == pytest.approx(cash_after_sale - b_shares * 15.0 + b_shares * 15.0)
    assert list(result.trades.side) == ["buy", "sell", "buy"]


@pytest.mark.parametrize("flagged", [True, False], ids=["suspended-frame", "nan-open-only"])
def test_a_suspended_name_is_held_and_valued_at_its_last_close(flagged):
    days = DAYS
    open_ = table(days, A=[10.0, 10.0, NAN, 12.0], B=[20.0] * 4)
    close = table(days, A=[10.0, 11.0, NAN, 12.0], B=[20.0] * 4)
    suspended = table(days, A=[False, False, True, False], B=[False] * 4) if flagged else None
    market = Market(open=open_, close=close, suspended=suspended)
    scores = table(days[:2], A=[2.0, 1.0], B=[1.0, 2.0])  # day 1's scores want B instead of A, traded on day 2
    result = simulate(scores, market, Strategy(top_k=1, rebalance_every=1, max_drop=1, capital=10_000.0, lot=100), ZERO)
    assert held_on(result, days[2]) == {"A": 1_000}
    assert result.blocked["suspended_held"] == 1
    assert result.nav[days[2]] == pytest.approx(1_000 * 11.0)  # day 1's close, the last known
    assert result.nav[days[1]] == pytest.approx(1_000 * 11.0)


def test_a_suspended_name_is_not_bought():
    market = flat_market(DAYS[:2], {"A": 10.0, "B": 10.0}, suspended=table(DAYS[:2], A=[False, True], B=[False, False]))
    result = simulate(table(DAYS[:1], A=[2.0], B=[1.0]), market, Strategy(top_k=1, capital=10_000.0, lot=100), ZERO)
    assert result.blocked["suspended_not_bought"] == 1
    assert held_on(result, DAYS[1]) == {}
    assert result.trades.empty


def test_a_day_without_scores_is_skipped_and_the_rebalance_waits_for_the_next_scored_day():
    market = flat_market(DAYS, {"A": 10.0, "B": 10.0})
    scores = table(DAYS[:3], A=[2.0, NAN, 1.0], B=[1.0, NAN, 2.0])
    result = simulate(scores, market, Strategy(top_k=1, rebalance_every=1, max_drop=1, capital=1_000.0, lot=1), ZERO)
    assert held_on(result, DAYS[2]) == {"A": 100}  # day 1 had no scores: nothing traded on day 2
    assert held_on(result, DAYS[3]) == {"B": 100}  # day 2's scores traded on day 3
    assert list(result.trades.date.dt.strftime("%Y-%m-%d")) == [DAYS[1], DAYS[3], DAYS[3]]


# ---------------------------------------------------------------- TopkDropout


def test_topk_dropout_sells_at_most_max_drop_names_worst_first_and_an_unscored_name_counts_as_worst():
    days = DAYS
    market = flat_market(days, {t: 10.0 for t in "ABCDE"})
    scores = table(days[:3], A=[5.0, NAN, NAN], B=[4.0, 0.5, 0.5], C=[3.0, 3.0, 3.0], D=[2.0, 5.0, 5.0], E=[1.0, 4.0, 4.0])
    strategy = Strategy(top_k=3, rebalance_every=1, max_drop=1, capital=3_000.0, lot=1)
    result = simulate(scores, market, strategy, ZERO)
    each = 3_000.0 / 3 / 10.0  # 100 shares of each of the first three
    assert held_on(result, days[1]) == {"A": each, "B": each, "C": each}
    # day 1's top three are D, E, C; A (no score) and B (0.5) fall out, but only one may go: A, the worst
    assert held_on(result, days[2]) == {"B": each, "C": each, "D": each}
    assert held_on(result, days[3]) == {"C": each, "D": each, "E": each}  # then B, for E
    sells = result.trades[result.trades.side == "sell"]
    assert list(sells.ticker) == ["A", "B"]


def test_kept_names_are_not_reweighted_and_the_cash_is_split_over_the_names_bought():
    days = DAYS[:3]
    market = Market(open=table(days, A=[10.0, 10.0, 10.0], B=[10.0, 10.0, 20.0], C=[10.0, 10.0, 10.0]),
                    close=table(days, A=[10.0, 10.0, 10.0], B=[10.0, 20.0, 20.0], C=[10.0, 10.0, 10.0]))
    scores = table(days[:2], A=[3.0, 1.0], B=[2.0, 2.0], C=[1.0, 3.0])
    result = simulate(scores, market, Strategy(top_k=2, rebalance_every=1, max_drop=1, capital=2_000.0, lot=1), ZERO)
    assert held_on(result, days[1]) == {"A": 100, "B": 100}
    # day 2: A (100 x 10 = 1,000) is sold for C; B, now worth 2,000, keeps its 100 shares
    assert held_on(result, days[2]) == {"B": 100, "C": 100}


# ---------------------------------------------------------------- costs in the engine


def test_commission_transfer_fee_and_lot_rounding_give_the_exact_cash():
    days = ["2023-08-24", "2023-08-25"]
    market = flat_market(days, {"A": 10.0, "B": 50.0})
    result = simulate(table(days[:1], A=[2.0], B=[1.0]), market, Strategy(top_k=2, capital=100_000.0, lot=100), A_SHARE)
    budget = 100_000.0 / 2
    a_value = math.floor(budget / (10.0 * 100)) * 100 * 10.0  # 5,000 shares, 50,000
    a_cost = max(5.0, a_value * 0.00025) + a_value * 0.00001  # 12.5 commission + 0.5 transfer fee
    cash = 100_000.0 - a_value - a_cost
    b_lots = math.floor(budget / (50.0 * 100))  # 10 lots = 50,000, but 50,000 + 13.0 > 49,987 left
    b_value = (b_lots - 1) * 100 * 50.0  # one lot less: 45,000
    b_cost = max(5.0, b_value * 0.00025) + b_value * 0.00001
    cash -= b_value + b_cost
    assert held_on(result, days[1]) == {"A": 5_000, "B": 900}
    assert last_cash(result) == pytest.approx(cash, abs=1e-9)  # 4,975.30
    assert list(result.trades.cost) == pytest.approx([a_cost, b_cost])
    assert result.metrics["total_cost"] == pytest.approx(a_cost + b_cost)


def test_the_minimum_commission_applies_to_a_small_order():
    days = ["2023-08-24", "2023-08-25"]
    result = simulate(table(days[:1], A=[1.0]), flat_market(days, {"A": 9.5}), Strategy(top_k=1, capital=10_000.0, lot=100), A_SHARE)
    value = 1_000 * 9.5  # floor(10,000 / 950) = 10 lots
    commission = 5.0  # 9,500 x 2.5 bp = 2.375, under the 5.0 minimum
    assert value * 0.00025 < commission
    assert result.trades.cost.iloc[0] == pytest.approx(commission + value * 0.00001)
    assert last_cash(result) == pytest.approx(10_000.0 - value - commission - value * 0.00001)


@pytest.mark.parametrize(("sell_day", "stamp_rate"), [("2023-08-25", 0.001), ("2023-08-28", 0.0005)])
def test_stamp_duty_on_a_sell_before_and_from_2023_08_28(sell_day, stamp_rate):
    days = ["2023-08-23", "2023-08-24", sell_day]
    market = Market(open=table(days, A=[10.0, 10.0, 11.0], B=[20.0] * 3), close=table(days, A=[10.0, 10.0, 11.0], B=[20.0] * 3),
                    can_buy=table(days, A=[True] * 3, B=[True, True, False]))  # B cannot be bought: the sale stays cash
    scores = table(days[:2], A=[2.0, 1.0], B=[1.0, 2.0])
    result = simulate(scores, market, Strategy(top_k=1, rebalance_every=1, max_drop=1, capital=100_000.0, lot=100), A_SHARE)
    # the buy: 100 lots would cost 100,000 + 26.00, so 99 lots
    bought = 9_900 * 10.0
    cash = 100_000.0 - bought - (bought * 0.00025 + bought * 0.00001)  # 974.26
    sold = 9_900 * 11.0
    sell_cost = sold * 0.00025 + sold * 0.00001 + sold * stamp_rate
    cash += sold - sell_cost
    assert result.trades.cost.iloc[1] == pytest.approx(sell_cost)
    assert result.nav.iloc[-1] == pytest.approx(cash)


# ---------------------------------------------------------------- benchmark, index, metrics


def benchmark_market() -> tuple[pd.DataFrame, Market]:
    close = table(DAYS, A=[10.0, 10.0, 11.0, 12.1], B=[20.0, 22.0, 22.0, 19.8])
    return table(DAYS[:1], A=[1.0], B=[0.0]), Market(open=close.copy(), close=close)


def test_the_equal_weight_benchmark_and_the_excess_return():
    scores, market = benchmark_market()
    result = simulate(scores, market, Strategy(top_k=1, capital=1_000.0, lot=1), ZERO)
    assert list(result.nav) == pytest.approx([1_000.0, 1_000.0, 1_100.0, 1_210.0])  # 100 A bought at 10 on day 1
    bench_returns = [(0.0 + 0.1) / 2, (0.1 + 0.0) / 2, (0.1 - 0.1) / 2]  # each day's mean of A's and B's returns
    assert list(result.benchmark) == pytest.approx([1_000.0, 1_050.0, 1_102.5, 1_102.5])
    excess = [0.0 - bench_returns[0], 0.1 - bench_returns[1], 0.1 - bench_returns[2]]
    metrics = result.metrics
    assert metrics["total_return"] == pytest.approx(0.21)
    assert metrics["annual_return"] == pytest.approx(1.21 ** (252 / 3) - 1)
    assert metrics["benchmark_total_return"] == pytest.approx(0.1025)
    assert metrics["excess_annual_return"] == pytest.approx(statistics.mean(excess) * 252)
    assert metrics["information_ratio"] == pytest.approx(statistics.mean(excess) / statistics.stdev(excess) * math.sqrt(252))
    assert metrics["max_drawdown"] == 0.0
    assert metrics["hit_rate"] == 1.0  # the one period: 1.21 against 1.1025
    assert metrics["annual_turnover"] == pytest.approx(1_000.0 / 2 / statistics.mean([1_000, 1_000, 1_100, 1_210]) * 252 / 3)
    assert metrics["days"] == 4 and metrics["trades"] == 1
    assert list(result.daily_frame()["excess_return"].iloc[1:]) == pytest.approx(excess)


def test_a_given_benchmark_is_compounded_and_an_index_scaled_to_the_capital():
    scores, market = benchmark_market()
    given = pd.Series([0.5, 0.02, -0.01, 0.03], index=pd.to_datetime(DAYS))  # the first day's return is before the start
    index_close = pd.Series([3_000.0, 3_300.0, 3_300.0, 3_630.0], index=pd.to_datetime(DAYS))
    result = simulate(scores, market, Strategy(top_k=1, capital=1_000.0, lot=1), ZERO, benchmark_returns=given, index_close=index_close)
    assert list(result.benchmark) == pytest.approx([1_000.0, 1_020.0, 1_020.0 * 0.99, 1_020.0 * 0.99 * 1.03])
    assert list(result.index) == pytest.approx([1_000.0, 1_100.0, 1_100.0, 1_210.0])
    over_index = [0.0 - 0.1, 0.1 - 0.0, 0.1 - 0.1]
    assert result.metrics["excess_annual_return_over_index"] == pytest.approx(statistics.mean(over_index) * 252)
    assert result.metrics["index_annual_return"] == pytest.approx(1.21 ** (252 / 3) - 1)
    assert "index" in result.daily_frame().columns


def test_a_drawdown_is_negative_and_the_span_ends_one_period_after_the_last_rebalance():
    days = [f"2023-09-{d:02d}" for d in (4, 5, 6, 7, 8, 11, 12)]
    close = table(days, A=[10.0, 10.0, 12.0, 9.0, 9.0, 9.0, 9.0], B=[10.0] * 7)
    result = simulate(table(days[:1], A=[1.0], B=[0.0]), Market(open=close, close=close), Strategy(top_k=1, rebalance_every=3, capital=1_000.0, lot=1), ZERO)
    assert list(result.nav.index.strftime("%Y-%m-%d")) == days[:4]  # the first day and three more
    assert result.metrics["max_drawdown"] == pytest.approx(900.0 / 1_200.0 - 1)


def test_an_ex_dividend_day_leaves_the_nav_unchanged():
    days = DAYS[:3]
    market = Market(open=table(days, A=[10.0, 10.0, 9.5]), close=table(days, A=[10.0, 10.0, 9.5]),
                    adjustment=table(days, A=[1.0, 1.0, 10.0 / 9.5]))  # a 0.5 dividend: the raw price drops, the factor rises
    result = simulate(table(days[:1], A=[1.0]), market, Strategy(top_k=1, capital=10_000.0, lot=100), ZERO)
    assert result.nav.iloc[2] == pytest.approx(result.nav.iloc[1]) == pytest.approx(10_000.0)
    assert held_on(result, days[2])["A"] == pytest.approx(1_000 * 10.0 / 9.5)
    assert result.benchmark.iloc[2] == pytest.approx(result.benchmark.iloc[1])


def test_to_dict_is_json_and_the_daily_frame_has_its_columns():
    scores, market = benchmark_market()
    result = simulate(scores, market, Strategy(top_k=1, capital=1_000.0, lot=1), PLAIN)
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["first_day"] == DAYS[0] and payload["last_day"] == DAYS[-1] and payload["trades"] == 1
    assert payload["metrics"]["information_ratio_over_index"] is None  # no index given
    assert payload["strategy"]["top_k"] == 1 and payload["costs"]["commission_bps"] == 1.0
    assert list(result.daily_frame().columns) == ["nav", "benchmark", "drawdown", "daily_return", "excess_return", "turnover", "cost"]


# ---------------------------------------------------------------- bad input


def test_no_day_with_scores_is_refused():
    market = flat_market(DAYS[:2], {"A": 10.0})
    with pytest.raises(BadInputError, match="no day has scores for any ticker: nothing to trade"):
        simulate(table(DAYS[:2], A=[NAN, NAN]), market, Strategy(top_k=1, lot=1), ZERO)


def test_top_k_above_the_scored_tickers_is_refused_naming_both_numbers():
    market = flat_market(DAYS[:2], {"A": 10.0, "B": 10.0, "C": 10.0, "D": 10.0})
    with pytest.raises(BadInputError, match=r"top_k is 4 but only 3 tickers have scores"):
        simulate(table(DAYS[:1], A=[1.0], B=[2.0], C=[3.0], D=[NAN]), market, Strategy(top_k=4, lot=1), ZERO)


def test_a_capital_below_the_cheapest_lot_is_refused_naming_both():
    market = flat_market(DAYS[:2], {"A": 10.0, "B": 30.0})
    cheapest = 10.0 * 100 + max(5.0, 1_000 * 0.00025) + 1_000 * 0.00001  # 1,005.01
    with pytest.raises(BadInputError, match=r"capital 1,000\.00 .* A \(100 shares at 10\.00\), costs 1,005\.01"):
        simulate(table(DAYS[:1], A=[1.0], B=[2.0]), market, Strategy(top_k=1, capital=1_000.0, lot=100), A_SHARE)
    assert simulate(table(DAYS[:1], A=[1.0], B=[2.0]), market, Strategy(top_k=1, capital=cheapest, lot=100), A_SHARE).trades.empty


def test_scores_outside_the_market_are_refused():
    market = flat_market(DAYS[:2], {"A": 10.0})
    with pytest.raises(BadInputError, match=r"1 day.* the market has no prices for, the first 2023-08-23"):
        simulate(table([DAYS[0], DAYS[2]], A=[1.0, 1.0]), market, Strategy(top_k=1, lot=1), ZERO)
    with pytest.raises(BadInputError, match=r"ticker.* the market has no prices for: Z"):
        simulate(table(DAYS[:1], A=[1.0], Z=[2.0]), market, Strategy(top_k=1, lot=1), ZERO)


def test_scores_with_a_day_twice_or_prices_that_are_not_numbers_are_refused():
    market = flat_market(DAYS[:2], {"A": 10.0})
    with pytest.raises(BadInputError, match="scores must have each date once"):
        simulate(table([DAYS[0], DAYS[0]], A=[1.0, 2.0]), market, Strategy(top_k=1, lot=1), ZERO)
    words = table(DAYS[:2], A=["ten", "ten"])
    with pytest.raises(BadInputError, match=r"market\.close must hold numbers"):
        simulate(table(DAYS[:1], A=[1.0]), Market(open=words, close=words), Strategy(top_k=1, lot=1), ZERO)


@pytest.mark.parametrize(("field", "value"), [("top_k", 0), ("rebalance_every", 0), ("max_drop", -1), ("lot", 0), ("capital", 0.0),
                                              ("capital", math.inf), ("top_k", 2.5)])
def test_a_strategy_out_of_range_is_refused(field, value):
    with pytest.raises(BadInputError, match=f"{field} must be"):
        Strategy(**{field: value})


# ---------------------------------------------------------------- costs


def test_a_share_rates_are_dated():
    assert A_SHARE.stamp_duty_on("2008-04-23") == 0.003
    assert A_SHARE.stamp_duty_on("2008-04-24") == 0.001
    assert A_SHARE.stamp_duty_on(pd.Timestamp("2023-08-27")) == 0.001
    assert A_SHARE.stamp_duty_on("2023-08-28") == 0.0005
    assert A_SHARE.transfer_fee_on("2022-04-28") == 0.00002
    assert A_SHARE.transfer_fee_on("2022-04-29") == 0.00001
    assert A_SHARE.order_cost("2024-01-02", 0.0, True) == 0.0
    assert A_SHARE.order_cost("2024-01-02", 100_000.0, True) == pytest.approx(25.0 + 1.0 + 50.0)
    assert A_SHARE.order_cost("2024-01-02", 100_000.0, False) == pytest.approx(25.0 + 1.0)
    assert PLAIN.order_cost("2024-01-02", 100_000.0, True) == pytest.approx(10.0)


def test_costs_for_picks_the_market_default():
    assert costs_for(["600519.SH", "000001.SZ", "830799.BJ"]) == A_SHARE
    assert costs_for(["AAPL"]) == PLAIN
    assert costs_for(["600519.SH", "AAPL"]) == PLAIN  # a mixed universe is not an A-share one


def test_costs_for_applies_the_users_table():
    costs = costs_for(["600519.SH"], {"commission_bps": 3, "min_commission": 0, "stamp_duty": {"2023-08-28": 0.0005, "2010-01-01": 0.001},
                                      "transfer_fee": 0.00002})
    assert (costs.commission_bps, costs.min_commission) == (3.0, 0.0)
    assert costs.stamp_duty == (("2010-01-01", 0.001), ("2023-08-28", 0.0005))  # sorted
    assert costs.stamp_duty_on("2009-12-31") == 0.0  # before the first dated rate
    assert costs.transfer_fee_on("1995-01-01") == 0.00002  # a number applies from the start
    assert costs_for(["AAPL"], {"commission_bps": 0.5}) == Costs(0.5, 0.0, (), ())
    assert costs_for(["600519.SH"], A_SHARE.to_dict()) == A_SHARE  # to_dict has the table's shape


@pytest.mark.parametrize(("table", "message"), [
    ({"commission_bps": -1}, r"\[costs\] commission_bps must be >= 0, not -1"),
    ({"min_commission": "5"}, r"\[costs\] min_commission must be a number, not '5'"),
    ({"min_commission": True}, r"\[costs\] min_commission must be a number"),
    ({"stamp_duty": -0.001}, r"\[costs\] stamp_duty must be >= 0"),
    ({"stamp_duty": 0.1 * 10}, r"\[costs\] stamp_duty is a fraction"),
    ({"stamp_duty": {"2023-13-01": 0.001}}, r"\[costs\] stamp_duty has a date '2023-13-01'"),
    ({"transfer_fee": {"20230828": 0.001}}, r"\[costs\] transfer_fee has a date '20230828'"),
    ({"transfer_fee": {"2023-08-28": -1}}, r"\[costs\] transfer_fee on 2023-08-28 must be >= 0"),
    ({"commision_bps": 1}, r"\[costs\] has no key commision_bps"),
])
def test_costs_for_refuses_a_bad_table_naming_the_key(table, message):
    with pytest.raises(BadInputError, match=message):
        costs_for(["600519.SH"], table)


def test_a_schedule_out_of_order_is_refused():
    with pytest.raises(BadInputError, match="stamp_duty must list its first days once each, in ascending order"):
        Costs(commission_bps=1.0, min_commission=0.0, stamp_duty=(("2023-08-28", 0.0005), ("2008-04-24", 0.001)), transfer_fee=())
