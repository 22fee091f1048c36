"""The A-share trading rules where the product speaks of tomorrow: ``predict``'s bands and ``rank``'s flags.

An A-share cannot close above its limit-up price or below its limit-down
price, so a China ticker's forecast band (and its point) is cut at the limit
prices compounded over the steps (``data.trading_rules.cap_band``: the first
step exactly at the next day's limit prices), and the forecast's JSON says
where (``price_limits``: the rate, ST or not, and per level the steps cut).
``rank`` flags the names that closed at limit-up or limit-down on their last
stored day, and the suspended ones (no bar on the market's last session, or
suspended there by tushare's ``suspend_d``): a name at limit-up cannot usually
be bought the next morning. Non-China tickers have no limits.

The rules themselves live in ``data.trading_rules``; this module only reads
the stored facts (ST names, suspensions, tushare's limit prices) and applies
the rules to what the commands show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecast.workspace import Workspace

LAST_SESSIONS = 2  # the last day's limit prices need the close of the day before it


def st_tickers(workspace: Workspace, tickers: Sequence[str], day: str | pd.Timestamp) -> set[str]:
    """The tickers whose name on ``day`` (tushare's namechange, where stored) marks them ST or *ST."""
    from forecast.data.trading_facts import load_facts

    names = load_facts(Workspace.at(workspace), list(tickers)).names
    if names is None or names.empty:
        return set()
    moment = pd.Timestamp(day)
    started = pd.to_datetime(names["start_date"], errors="coerce") <= moment
    ended = pd.to_datetime(names["end_date"], errors="coerce")
    current = names[started & (ended.isna() | (ended >= moment))]
    return {str(t) for t, name in zip(current["ts_code"], current["name"]) if "ST" in str(name).upper()}


def user_limits(workspace: Workspace, tickers: Sequence[str]) -> dict[str, float]:
    """The daily limits ``[limits]`` in forecast.toml sets for ``tickers`` on no China board ({} without any)."""
    from forecast.data.trading_rules import board_of
    from forecast.workflow.settings import load_app_config

    others = [t for t in tickers if not board_of(t)]
    return load_app_config(workspace).user_limits(others) if others else {}


def cap_forecasts(workspace: Workspace, results: Sequence[Any]) -> list[Any]:
    """Every limited ticker's forecast of ``results`` within its price limits, in place (ST names from the stored facts).

    The limit paths are computed at once for every forecast with the same rate and horizon: 5,400 forecasts cost
    one pass of numpy per group, not a rule lookup per level and step.
    """
    from forecast.data.trading_rules import is_china, limit_paths, limit_rate

    rates = user_limits(Workspace.at(workspace), [r.ticker for r in results])
    limited = [r for r in results if (is_china(r.ticker) or r.ticker in rates) and r.points]
    if not limited:
        return list(results)
    st = st_tickers(workspace, [r.ticker for r in limited if is_china(r.ticker)], limited[0].points[0].date)
    groups: dict[tuple[float, int, bool], list[Any]] = {}
    for r in limited:
        rate = limit_rate(r.ticker, r.points[0].date, st=r.ticker in st)
        if rate is None and r.ticker in rates and not is_china(r.ticker) and np.isfinite(r.last_close):
            groups.setdefault((rates[r.ticker], len(r.points), True), []).append(r)
        elif rate is not None and np.isfinite(r.last_close):
            groups.setdefault((rate, len(r.points), False), []).append(r)
    for (rate, steps, set_by_user), group in groups.items():
        floors, ceilings = limit_paths(np.array([r.last_close for r in group], dtype=float), rate, steps)
        by_levels: dict[tuple[str, ...], list[int]] = {}
        for i, r in enumerate(group):
            by_levels.setdefault(tuple(r.levels), []).append(i)
        for levels, members in by_levels.items():
            _cap_together([group[i] for i in members], levels, rate, floors[members], ceilings[members], st, set_by_user)
    return list(results)


_SIDES = np.array(["", "upper", "lower", "both"])  # by 2 * (the floor bit) + (the ceiling bit)


def _clipped(lower: np.ndarray, upper: np.ndarray, floors: np.ndarray, ceilings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``trading_rules.clip_band`` on (tickers, steps) arrays at once, to the same bits: (lows, highs, the side cut per step)."""
    finite_low, finite_high = np.isfinite(lower), np.isfinite(upper)
    hit_floor = (finite_low & (lower < floors)) | (finite_high & (upper < floors))  # a gap stays a gap
    hit_ceiling = (finite_low & (lower > ceilings)) | (finite_high & (upper > ceilings))
    # fmax/fmin pass a NaN limit over as clip_band's min/max do (a limit that cannot be computed cuts nothing)
    lows = np.where(finite_low, np.fmin(np.fmax(lower, floors), ceilings), lower)
    highs = np.where(finite_high, np.fmax(np.fmin(upper, ceilings), floors), upper)
    return lows, highs, _SIDES[2 * hit_floor + hit_ceiling]


def _cap_together(group: Sequence[Any], levels: tuple[str, ...], rate: float, floors: np.ndarray, ceilings: np.ndarray,
                  st: set[str], set_by_user: bool) -> None:
    """Keep the point and bands of every forecast of ``group`` (the same steps and levels) within its limit paths
    (``floors``, ``ceilings``: a row per forecast), saying where, in one pass of numpy per level."""
    values = np.array([[p.value for p in r.points] for r in group], dtype=float)
    point, _, point_cut = _clipped(values, values, floors, ceilings)
    cut: dict[str, list[list[str]]] = {}
    for level in levels:
        lower = np.array([[p.intervals[level][0] for p in r.points] for r in group], dtype=float)
        upper = np.array([[p.intervals[level][1] for p in r.points] for r in group], dtype=float)
        lows, highs, sides = _clipped(lower, upper, floors, ceilings)
        for r, row_low, row_high in zip(group, lows.tolist(), highs.tolist()):
            for p, lo, hi in zip(r.points, row_low, row_high):
                p.intervals[level] = [lo, hi]
        cut[level] = sides.tolist()
    for i, (r, row) in enumerate(zip(group, point.tolist())):
        for p, value in zip(r.points, row):
            p.value = value
        r.price_limits = {"rate": rate, "st": r.ticker in st, "point_cut": point_cut[i].tolist(),
                          "cut": {level: sides[i] for level, sides in cut.items()},
                          **({"set_by": "[limits] in forecast.toml"} if set_by_user else {})}


def last_day_flags(workspace: Workspace, tickers: Sequence[str]) -> dict[str, dict[str, bool]]:
    """Per China ticker: closed at limit-up / limit-down on its last stored day, suspended on the market's last session."""
    from forecast.data.store import MarketStore
    from forecast.data.trading_facts import load_facts
    from forecast.data.trading_rules import is_china
    from forecast.data.trading_status import trading_status
    from forecast.data.universe_cache import cached_list_dates

    workspace = Workspace.at(workspace)
    rates = user_limits(workspace, tickers)
    limited = [t for t in tickers if is_china(t) or t in rates]
    if not limited:
        return {}
    store = MarketStore(workspace)
    # China names on their raw prices (the limits are about those); a user's limit on the series as stored
    chosen = [t for t in limited if store.has(t) and (t in rates or store.head(t).price_basis == "raw")]
    if not chosen:
        return {}
    frame = _last_sessions(store, chosen, rates)
    if frame.empty:
        return {}
    open_, close = (frame[c].unstack("ticker").sort_index() for c in ("open", "close"))
    facts = load_facts(workspace, [t for t in chosen if is_china(t)])
    status = trading_status(open_, close, stk_limit=facts.stk_limit, suspensions=facts.suspensions, names=facts.names,
                            listed=cached_list_dates(workspace), user_rates=rates)
    flags: dict[str, dict[str, bool]] = {}
    for ticker in close.columns:
        last = close[ticker].last_valid_index()
        flags[str(ticker)] = {"limit_up": bool(last is not None and status.closed_at_up.at[last, ticker]),
                              "limit_down": bool(last is not None and status.closed_at_down.at[last, ticker]),
                              "suspended": bool(status.suspended[ticker].iloc[-1])}
    return flags


def _last_sessions(store: Any, tickers: Sequence[str], rates: Mapping[str, float]) -> pd.DataFrame:
    """The last sessions of China names on raw prices and of user-limited ones as stored, in one (date, ticker) frame."""
    from forecast.data.panel import load_panel

    china = [t for t in tickers if t not in rates]
    parts = [load_panel(store, group, adjust=adjust, tail=LAST_SESSIONS).frame
             for group, adjust in ((china, "none"), ([t for t in tickers if t in rates], "qfq")) if group]
    return pd.concat(parts).sort_index()
