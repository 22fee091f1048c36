"""A market's trading status under the A-share rules: per session and ticker, limits, limit hits and suspensions.

Pure: numpy/pandas over frames the caller passes, no I/O. ``trading_status``
applies ``trading_rules`` (the dated limit regimes, ``limit_price``) to a
market's raw opens and closes, with tushare's facts where the caller has: the
limit prices (``stk_limit`` wins where it has a row, else the rule from the
previous close), whether the close and the open sat at a limit, and whether
the ticker was suspended (``suspend_d``, or no bar on a listed session); ST
days come from ``namechange`` rows. ``TradingStatus.can_buy``/``can_sell``
follow from those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.data.trading_rules import LIMIT_RULES, board_of, limit_price

AT_LIMIT_TOLERANCE = 0.005  # half a cent: prices are quoted in cents, so anything closer is the limit itself


@dataclass(frozen=True)
class TradingStatus:
    """What the rules said about each session and ticker: date x ticker frames on one index and columns."""

    up_limit: pd.DataFrame  # NaN where there was no limit
    down_limit: pd.DataFrame
    closed_at_up: pd.DataFrame  # bool
    closed_at_down: pd.DataFrame
    opened_at_up: pd.DataFrame  # bool: a buy at that day's open was impossible
    opened_at_down: pd.DataFrame  # bool: a sell at that day's open was impossible
    suspended: pd.DataFrame  # bool: suspend_d says so, or a listed ticker has no bar on the session

    def can_buy(self) -> pd.DataFrame:
        return ~self.opened_at_up & ~self.suspended

    def can_sell(self) -> pd.DataFrame:
        return ~self.opened_at_down & ~self.suspended

    def counts(self) -> dict[str, int]:
        """How many ticker-sessions each flag holds, e.g. for a backtest's summary."""
        return {name: int(getattr(self, name).to_numpy().sum())
                for name in ("closed_at_up", "closed_at_down", "opened_at_up", "opened_at_down", "suspended")}


def trading_status(open: pd.DataFrame, close: pd.DataFrame, *, stk_limit: pd.DataFrame | None = None,
                   suspensions: pd.DataFrame | None = None, names: pd.DataFrame | None = None,
                   listed: Mapping[str, pd.Timestamp] | None = None,
                   user_rates: Mapping[str, float] | None = None) -> TradingStatus:
    """Return the trading status of a market of RAW (unadjusted) prices.

    ``open``/``close``: date x ticker, the index being the sessions (NaN: no
    bar); ``open`` is aligned on ``close``'s index and columns. Limits:
    ``stk_limit`` rows (trade_date, ts_code, up_limit, down_limit) win where
    they exist; else the rule from the previous close (the last close before
    the session, so a resumption is limited from the close before the
    suspension, as the exchanges do). ``names`` (tushare ``namechange`` rows)
    mark the ST days: a name holding 'ST' (ST, *ST, SST) from its start_date
    until its end_date, or the next name's start. ``listed``: list dates
    (missing: long listed); a listing before the first session counts as long
    listed, the frame's sessions being the only calendar at hand. Suspended:
    a ``suspend_d`` 'S' row without an intraday timing (an intraday halt leaves
    the day tradable), or no bar on a session from the ticker's listing (else
    its first bar) on: a delisted ticker cannot be traded either.
    ``user_rates``: a daily limit the user set (``[limits]`` in forecast.toml)
    for tickers on no China board, the same every day.
    """
    close = close.astype(float)
    open = open.reindex(index=close.index, columns=close.columns).astype(float)
    sessions = pd.DatetimeIndex(close.index)
    tickers = [str(c) for c in close.columns]
    st = _st_days(names, sessions, close.columns)
    numbers = _session_numbers(sessions, close, listed or {})
    up_rate = np.full(close.shape, np.nan)
    down_rate = np.full(close.shape, np.nan)
    days = sessions.to_numpy().astype("datetime64[D]")
    for j, ticker in enumerate(tickers):
        up_rate[:, j], down_rate[:, j] = _rates_by_rule(ticker, days, st[:, j], numbers[:, j])
        if not board_of(ticker) and (user_rates or {}).get(ticker) is not None:
            up_rate[:, j] = down_rate[:, j] = float((user_rates or {})[ticker])
    prev_close = close.ffill().shift(1).to_numpy()
    up_limit = pd.DataFrame(limit_price(prev_close, up_rate, up=True), index=close.index, columns=close.columns)
    down_limit = pd.DataFrame(limit_price(prev_close, down_rate, up=False), index=close.index, columns=close.columns)
    if stk_limit is not None and len(stk_limit):
        up_limit = _override(up_limit, stk_limit, "up_limit")
        down_limit = _override(down_limit, stk_limit, "down_limit")
    suspended = _suspended(close, suspensions, listed or {})

    def at_or_above(prices: pd.DataFrame, limit: pd.DataFrame) -> pd.DataFrame:
        return (prices >= limit - AT_LIMIT_TOLERANCE).fillna(False).astype(bool)

    def at_or_below(prices: pd.DataFrame, limit: pd.DataFrame) -> pd.DataFrame:
        return (prices <= limit + AT_LIMIT_TOLERANCE).fillna(False).astype(bool)

    return TradingStatus(
        up_limit=up_limit, down_limit=down_limit,
        closed_at_up=at_or_above(close, up_limit), closed_at_down=at_or_below(close, down_limit),
        opened_at_up=at_or_above(open, up_limit), opened_at_down=at_or_below(open, down_limit),
        suspended=suspended,
    )


def _rates_by_rule(ticker: str, days: np.ndarray, st: np.ndarray,
                   numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the (up, down) rates of one ticker per session (``days``: datetime64[D]) by ``LIMIT_RULES`` (NaN: no limit)."""
    up = np.full(len(days), np.nan)
    down = np.full(len(days), np.nan)
    board = board_of(ticker)
    if not board:
        return up, down
    for rule in (r for r in LIMIT_RULES if r.board == board):
        live = days >= np.datetime64(rule.first_day)
        if rule.last_day is not None:
            live &= days <= np.datetime64(rule.last_day)
        if not live.any():
            continue
        rate = np.where(st, rule.st_rate, rule.rate)
        up = np.where(live, rate, up)
        down = np.where(live, rate, down)
        if rule.listing_day_band is not None:
            first = live & (numbers == 1)
            up = np.where(first, rule.listing_day_band[0], up)
            down = np.where(first, rule.listing_day_band[1], down)
        unlimited = live & (numbers >= 1) & (numbers <= rule.unlimited_first_days)
        up = np.where(unlimited, np.nan, up)
        down = np.where(unlimited, np.nan, down)
    return up, down


def _session_numbers(sessions: pd.DatetimeIndex, close: pd.DataFrame, listed: Mapping[str, pd.Timestamp]) -> np.ndarray:
    """Return 1 on each ticker's listing session, 2 on the next...; 0 where unknown or long listed, -1 before listing."""
    numbers = np.zeros(close.shape, dtype=int)
    positions = np.arange(len(sessions))
    for j, ticker in enumerate(close.columns):
        day = listed.get(str(ticker))
        if day is None or pd.isna(day) or len(sessions) == 0 or pd.Timestamp(day) < sessions[0]:
            continue
        first = int(sessions.searchsorted(pd.Timestamp(day), side="left"))
        numbers[:, j] = np.where(positions >= first, positions - first + 1, -1)
    return numbers


def _st_days(names: pd.DataFrame | None, sessions: pd.DatetimeIndex, columns: pd.Index) -> np.ndarray:
    """Return a sessions x tickers bool array: True where the ticker's name held 'ST' that day."""
    st = np.zeros((len(sessions), len(columns)), dtype=bool)
    if names is None or not len(names):
        return st
    where = {str(c): j for j, c in enumerate(columns)}
    frame = names.assign(ts_code=names["ts_code"].astype(str),
                         start=_as_dates(names["start_date"]), end=_as_dates(names["end_date"]))
    frame = frame[frame["ts_code"].isin(where) & frame["start"].notna()].sort_values(["ts_code", "start"])
    # a name lasts until its end_date, else until the next name starts (the stored end may predate a later change)
    next_start = frame.groupby("ts_code")["start"].shift(-1) - pd.Timedelta(days=1)
    frame = frame.assign(until=frame["end"].fillna(next_start))
    for row in frame[frame["name"].astype(str).str.upper().str.contains("ST", regex=False)].itertuples(index=False):
        until = row.until if pd.notna(row.until) else sessions.max() if len(sessions) else row.start
        st[:, where[row.ts_code]] |= (sessions >= row.start) & (sessions <= until)
    return st


def _as_dates(values: pd.Series) -> pd.Series:
    """Return dates given as Timestamps or as tushare's YYYYMMDD text (other text forms too, more slowly)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.astype(object).where(values.notna(), None)
    try:
        return pd.to_datetime(text, format="%Y%m%d")
    except (ValueError, TypeError):
        return pd.to_datetime(text, format="mixed", errors="coerce")


def _override(by_rule: pd.DataFrame, stk_limit: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return ``by_rule`` with the exchange's own limit prices where ``stk_limit`` has a row."""
    rows = pd.DataFrame({"date": _as_dates(stk_limit["trade_date"]), "ts_code": stk_limit["ts_code"].astype(str),
                         column: stk_limit[column]})
    table = (rows.drop_duplicates(["date", "ts_code"], keep="last")
             .pivot(index="date", columns="ts_code", values=column).astype(float))
    given = table.reindex(index=by_rule.index, columns=[str(c) for c in by_rule.columns]).to_numpy()
    merged = np.where(np.isnan(given), by_rule.to_numpy(dtype=float), given)
    return pd.DataFrame(merged, index=by_rule.index, columns=by_rule.columns)


def _suspended(close: pd.DataFrame, suspensions: pd.DataFrame | None, listed: Mapping[str, pd.Timestamp]) -> pd.DataFrame:
    sessions = pd.DatetimeIndex(close.index)
    bars = close.notna()
    started = bars.cummax()  # from the first bar on
    for ticker in close.columns:
        day = listed.get(str(ticker))
        if day is not None and pd.notna(day):
            started[ticker] = started[ticker] | (sessions >= pd.Timestamp(day))
    suspended = started & ~bars
    if suspensions is not None and len(suspensions):
        timing = suspensions.get("suspend_timing", pd.Series(None, index=suspensions.index))
        whole_day = suspensions[(suspensions["suspend_type"].astype(str) == "S")
                                & timing.fillna("").astype(str).str.strip().eq("")]
        rows = sessions.get_indexer(_as_dates(whole_day["trade_date"]))
        position = {str(c): j for j, c in enumerate(close.columns)}
        cols = np.array([position.get(code, -1) for code in whole_day["ts_code"].astype(str)], dtype=int)
        known = (rows >= 0) & (cols >= 0)
        marks = suspended.to_numpy(copy=True)
        marks[rows[known], cols[known]] = True
        suspended = pd.DataFrame(marks, index=close.index, columns=close.columns)
    return suspended.astype(bool)
