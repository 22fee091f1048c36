"""Trading calendars: XSHG sessions for China tickers, Monday-Friday for others.

exchange-calendars is imported lazily (it costs ~0.5 s) and each calendar is
built once per process.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache

import numpy as np
import pandas as pd

from forecast.tickers import Ticker

log = logging.getLogger(__name__)
CHINA_TZ = "Asia/Shanghai"
# Tushare publishes a day's bars between about 15:00 and 17:00 Beijing time; from
# this time on a fetch is worth trying (an empty answer is not an error).
PUBLISH_AFTER = dt.time(15, 30)


@lru_cache(maxsize=1)
def _xshg():
    import exchange_calendars as xcals

    return xcals.get_calendar("XSHG", start="2000-01-04")


@lru_cache(maxsize=1)
def _warn_beyond(last_session: pd.Timestamp) -> None:
    """Say once per process that dates past the calendar's horizon are a weekday guess."""
    log.warning(
        "XSHG holidays after %s are not in exchange-calendars yet; later dates assume Monday-Friday "
        "(upgrade exchange-calendars when the exchange publishes them)", last_session.date()
    )


def _uses_xshg(ticker: Ticker | None) -> bool:
    return ticker is not None and ticker.is_china


def _xshg_covers(day: pd.Timestamp) -> bool:
    cal = _xshg()
    return cal.first_session <= day <= cal.last_session


def sessions_between(start, end, ticker: Ticker | None) -> pd.DatetimeIndex:
    """Return the trading days in [start, end], tz-naive and normalised."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end < start:
        return pd.DatetimeIndex([])
    if _uses_xshg(ticker):
        cal = _xshg()
        lo, hi = max(start, cal.first_session), min(end, cal.last_session)
        days = cal.sessions_in_range(lo, hi) if lo <= hi else pd.DatetimeIndex([])
        days = pd.DatetimeIndex(days).tz_localize(None)
        # Beyond the calendar's published holidays, weekdays are the best guess.
        if end > cal.last_session:
            _warn_beyond(cal.last_session)
            days = days.append(pd.bdate_range(max(start, cal.last_session + pd.Timedelta(days=1)), end))
        return days
    return pd.bdate_range(start, end)


def next_sessions(after, count: int, ticker: Ticker | None) -> pd.DatetimeIndex:
    """Return the ``count`` trading days strictly after ``after``."""
    after = pd.Timestamp(after).normalize()
    span = count * 2 + 30  # enough calendar days for any holiday run
    while True:
        days = sessions_between(after + pd.Timedelta(days=1), after + pd.Timedelta(days=span), ticker)
        if len(days) >= count:
            return days[:count]
        span *= 2


def is_session_mask(dates: pd.DatetimeIndex, ticker: Ticker | None) -> np.ndarray:
    """Return a boolean mask: True where the date is a trading day."""
    if len(dates) == 0:
        return np.zeros(0, dtype=bool)
    sessions = sessions_between(dates.min(), dates.max(), ticker)
    return np.asarray(dates.normalize().isin(sessions))


def latest_published_session(now: dt.datetime | None, ticker: Ticker | None) -> pd.Timestamp:
    """Return the newest trading day whose bar can already be published at ``now``.

    ``now`` defaults to the wall clock; naive datetimes are read as Beijing time
    for China tickers. Before PUBLISH_AFTER on a trading day, that day does not count.
    """
    now_ts = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz=CHINA_TZ)
    if now_ts.tzinfo is not None:
        now_ts = now_ts.tz_convert(CHINA_TZ).tz_localize(None)
    today = now_ts.normalize()
    recent = sessions_between(today - pd.Timedelta(days=40), today, ticker)
    if len(recent) and recent[-1] == today and now_ts.time() < PUBLISH_AFTER:
        recent = recent[:-1]
    return recent[-1]
