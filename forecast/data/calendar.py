"""Trading calendars: an exchange's sessions (XSHG, XNYS, ...) or Monday-Friday business days.

Every stored series records the calendar its dates follow (``store.StoredSeries``);
a ``TradingCalendar`` is chosen once from that name and then answers every
date question for the series: forecast dates, the sessions a fetch may miss,
rows on closed days. Without a recorded name the rule is the old one: XSHG for
China A-share codes, business days for anything else.

exchange-calendars is imported lazily (it costs ~1 s) and each exchange's
calendar is built once per process.

The exchange's own calendar (tushare ``trade_cal``, cached by the home's store
in ``data/calendar/SSE.parquet``) comes first for XSHG: within the days it
covers, its open days are the sessions. exchange-calendars answers outside
them (4.13.2 publishes XSHG only to 2026-12-31), and past both, weekdays are
the guess (with a warning). The store names its home's cache with
``use_trade_calendar`` when it is opened; the file is read once per change.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecast.data.tickers import Ticker
from forecast.errors import BadInputError

log = logging.getLogger(__name__)
CHINA_TZ = "Asia/Shanghai"
# Tushare publishes a day's bars between about 15:00 and 17:00 Beijing time; from
# this time on a fetch is worth trying (an empty answer is not an error).
PUBLISH_AFTER = dt.time(15, 30)

BUSINESS_DAYS = "business-days"
CHINA_CALENDAR = "XSHG"
# The exchanges an imported file's dates are matched against (Shanghai, New York, Hong Kong, London).
INFERENCE_CANDIDATES = ("XSHG", "XNYS", "XHKG", "XLON")
# A calendar fits a file when almost no row falls on a day it is closed (a stray
# vendor row or two) and few of its sessions have no row (a suspension, a gap).
MAX_ROWS_ON_CLOSED_DAYS = 0.005  # share of the file's rows
MAX_MISSING_SESSIONS = 0.05  # share of the calendar's sessions over the file's span
MIN_ROWS_TO_INFER = 20
# A gap longer than this between two rows is a suspension or a cut, not a holiday: its sessions say nothing.
LONG_GAP = pd.Timedelta(days=14)
INFERENCE_SPAN = pd.DateOffset(years=3)  # the file's last three years decide (about 750 rows, 25-30 holidays)
_EARLIEST = pd.Timestamp("1990-01-02")


_BUILT: dict[str, Any] = {}  # name -> exchange-calendars' calendar, built once per process
_TRADE_CAL_FILES: dict[str, Path] = {}  # calendar name -> the cached trade_cal file of the home in use
_TRADE_CAL_READ: dict[tuple[Path, float], pd.DataFrame | None] = {}  # (file, mtime) -> its rows


def use_trade_calendar(name: str, path: Path) -> None:
    """Make ``path`` (a cached exchange calendar: cal_date, is_open) the first source of calendar ``name``'s sessions."""
    _TRADE_CAL_FILES[name] = Path(path)


def save_trade_calendar(path: Path, days: pd.DataFrame) -> None:
    """Atomically write ``days`` (cal_date, is_open: every calendar day of a span) as the cached calendar."""
    from forecast.atomic import atomic_open

    frame = days[["cal_date", "is_open"]].sort_values("cal_date").reset_index(drop=True)
    with atomic_open(path) as handle:
        frame.to_parquet(handle, index=False)


def cached_trade_calendar(name: str) -> pd.DataFrame | None:
    """Return the cached exchange calendar for ``name`` (cal_date, is_open), or None when there is none or it is unreadable."""
    path = _TRADE_CAL_FILES.get(name)
    if path is None:
        return None
    try:
        key = (path, path.stat().st_mtime)
    except OSError:
        return None
    if key not in _TRADE_CAL_READ:
        try:
            frame = pd.read_parquet(path)
            frame = frame.assign(cal_date=pd.to_datetime(frame["cal_date"]).dt.normalize(), is_open=frame["is_open"].astype(bool))
            _TRADE_CAL_READ[key] = frame.sort_values("cal_date").reset_index(drop=True) if len(frame) else None
        except Exception as exc:  # damaged: exchange-calendars answers; the next refresh rewrites it
            log.warning("the cached exchange calendar %s is unreadable (%s); using exchange-calendars", path, type(exc).__name__)
            _TRADE_CAL_READ[key] = None
    return _TRADE_CAL_READ[key]


def _earliest(xcals, name: str) -> pd.Timestamp:
    """Return the first day calendar ``name`` can start on: 1990, or its first recorded year (XSHG: 1991)."""
    factory = getattr(xcals.calendar_utils, "_default_calendar_factories", {}).get(name)
    bound = factory.bound_min() if factory is not None else None
    return max(_EARLIEST, pd.Timestamp(bound)) if bound is not None else _EARLIEST


def _exchange(name: str):
    """Return exchange-calendars' calendar ``name``, from 1990 (or its earliest year) to its published end."""
    if name not in _BUILT:
        import exchange_calendars as xcals

        try:
            _BUILT[name] = xcals.get_calendar(name, start=_earliest(xcals, name))
        except ValueError:  # a calendar whose first year this version could not read
            _BUILT[name] = xcals.get_calendar(name)
    return _BUILT[name]


def _sessions_for_inference(name: str, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DatetimeIndex, pd.Timestamp, pd.Timestamp]:
    """Return (sessions in [start, end], first, last recorded day) of ``name``.

    A calendar this process has not built yet is built for the span only: matching
    a file against four exchanges then costs a fraction of building all four whole.
    """
    if name in _BUILT:
        cal = _BUILT[name]
    else:
        import exchange_calendars as xcals

        try:
            cal = xcals.get_calendar(name, start=max(start, _earliest(xcals, name)), end=end)
        except ValueError:  # a span past the calendar's recorded years
            cal = _exchange(name)
    first, last = cal.first_session.tz_localize(None), cal.last_session.tz_localize(None)
    lo, hi = max(start, first), min(end, last)
    days = cal.sessions_in_range(lo, hi) if lo <= hi else []
    return pd.DatetimeIndex(days).tz_localize(None), first, last


def _xshg():
    return _exchange(CHINA_CALENDAR)


@cache
def _warn_beyond(last_session: pd.Timestamp, name: str = CHINA_CALENDAR) -> None:
    """Say once per process and calendar that dates past its horizon are a weekday guess."""
    log.warning(
        "%s holidays after %s are not in exchange-calendars yet; later dates assume Monday-Friday "
        "(upgrade exchange-calendars when the exchange publishes them)", name, last_session.date()
    )


@lru_cache(maxsize=1)
def _calendar_names() -> dict[str, str]:
    """Return {upper-cased name or alias: canonical exchange-calendars name}."""
    import exchange_calendars as xcals

    names = {n.upper(): n for n in xcals.get_calendar_names(include_aliases=False)}
    for alias in xcals.get_calendar_names(include_aliases=True):
        names.setdefault(alias.upper(), xcals.resolve_alias(alias))
    return names


@dataclass(frozen=True)
class TradingCalendar:
    """The days one series trades on: an exchange-calendars name (``XNYS``) or ``business-days``."""

    name: str

    @property
    def is_exchange(self) -> bool:
        return self.name != BUSINESS_DAYS

    def sessions_between(self, start, end) -> pd.DatetimeIndex:
        """Return the trading days in [start, end], tz-naive and normalised."""
        start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
        if end < start:
            return pd.DatetimeIndex([])
        if not self.is_exchange:
            return pd.bdate_range(start, end)
        cached = cached_trade_calendar(self.name)
        if cached is not None:
            first, last = cached["cal_date"].iloc[0], cached["cal_date"].iloc[-1]
            inside = cached[(cached["cal_date"] >= max(start, first)) & (cached["cal_date"] <= min(end, last)) & cached["is_open"]]
            days = pd.DatetimeIndex(inside["cal_date"])
            if start < first:
                days = self._from_exchange(start, min(end, first - pd.Timedelta(days=1))).append(days)
            if end > last:
                days = days.append(self._from_exchange(max(start, last + pd.Timedelta(days=1)), end))
            return days
        return self._from_exchange(start, end)

    def _from_exchange(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
        """Return exchange-calendars' sessions in [start, end], weekdays outside its recorded years."""
        if end < start:
            return pd.DatetimeIndex([])
        cal = _exchange(self.name)
        first, last = cal.first_session.tz_localize(None), cal.last_session.tz_localize(None)
        lo, hi = max(start, first), min(end, last)
        days = pd.DatetimeIndex(cal.sessions_in_range(lo, hi) if lo <= hi else []).tz_localize(None)
        # Outside the exchange's recorded years, weekdays are the best guess.
        if start < first:
            days = pd.bdate_range(start, min(end, first - pd.Timedelta(days=1))).append(days)
        if end > last:
            _warn_beyond(last, self.name)
            days = days.append(pd.bdate_range(max(start, last + pd.Timedelta(days=1)), end))
        return days

    def next_sessions(self, after, count: int) -> pd.DatetimeIndex:
        """Return the ``count`` trading days strictly after ``after``."""
        after = pd.Timestamp(after).normalize()
        span = count * 2 + 30  # enough calendar days for any holiday run
        while True:
            days = self.sessions_between(after + pd.Timedelta(days=1), after + pd.Timedelta(days=span))
            if len(days) >= count:
                return days[:count]
            span *= 2

    def sessions_missed(self, last, today) -> int:
        """Return the trading days strictly between ``last`` (a series' last bar) and ``today``: bars it lacks.

        ``today``'s own bar is not counted: a job that runs before the close,
        or before the bar is published, must not call a series behind for it.
        """
        return len(self.sessions_between(pd.Timestamp(last) + pd.Timedelta(days=1), pd.Timestamp(today) - pd.Timedelta(days=1)))

    def is_session_mask(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Return a boolean mask: True where the date is a trading day."""
        if len(dates) == 0:
            return np.zeros(0, dtype=bool)
        sessions = self.sessions_between(dates.min(), dates.max())
        return np.asarray(dates.normalize().isin(sessions))

    def latest_published_session(self, now: dt.datetime | None) -> pd.Timestamp:
        """Return the newest trading day whose bar can already be published at ``now`` (tushare's clock).

        ``now`` defaults to the wall clock; naive datetimes are read as Beijing
        time. Before PUBLISH_AFTER on a trading day, that day does not count.
        """
        now_ts = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz=CHINA_TZ)
        if now_ts.tzinfo is not None:
            now_ts = now_ts.tz_convert(CHINA_TZ).tz_localize(None)
        today = now_ts.normalize()
        recent = self.sessions_between(today - pd.Timedelta(days=40), today)
        if len(recent) and recent[-1] == today and now_ts.time() < PUBLISH_AFTER:
            recent = recent[:-1]
        return recent[-1]


def default_calendar(ticker: Ticker | None) -> TradingCalendar:
    """Return the rule for a series with no recorded calendar: XSHG for China codes, else business days."""
    return TradingCalendar(CHINA_CALENDAR if ticker is not None and ticker.is_china else BUSINESS_DAYS)


def get_calendar(name: str) -> TradingCalendar:
    """Return the calendar ``name`` (an exchange-calendars name or alias, or business-days), or raise BadInputError."""
    text = str(name).strip()
    if text.lower() in (BUSINESS_DAYS, "business_days", "business"):
        return TradingCalendar(BUSINESS_DAYS)
    names = _calendar_names()
    if text.upper() in names:
        return TradingCalendar(names[text.upper()])
    close = difflib.get_close_matches(text.upper(), list(names), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise BadInputError(f"unknown calendar {name!r}; {hint}use {BUSINESS_DAYS} or an exchange-calendars name "
                        f"such as {', '.join(INFERENCE_CANDIDATES)}")


def as_calendar(spec: TradingCalendar | Ticker | str | None) -> TradingCalendar:
    """Return ``spec`` as a calendar: a calendar as is, a name looked up, a ticker (or None) by the default rule."""
    if isinstance(spec, TradingCalendar):
        return spec
    if isinstance(spec, str):
        return get_calendar(spec)
    return default_calendar(spec)


SERIES_CALENDAR_ATTR = "calendar"  # the key under which the store names a frame's calendar in ``frame.attrs``


def calendar_of(frame: pd.DataFrame, ticker: Ticker | None) -> TradingCalendar:
    """Return the calendar the store recorded for the series ``frame`` was read from, else the ticker's default."""
    name = frame.attrs.get(SERIES_CALENDAR_ATTR)
    return TradingCalendar(str(name)) if name else default_calendar(ticker)


@dataclass(frozen=True)
class CalendarFit:
    """How well one calendar matches a file's dates."""

    name: str
    rows: int  # the file's rows within the calendar's recorded years
    on_closed_days: int  # rows on days the calendar is closed
    missing: int  # the calendar's sessions with no row, outside long gaps
    sessions: int  # the calendar's sessions over the file's span, outside long gaps

    @property
    def fits(self) -> bool:
        return (self.rows >= MIN_ROWS_TO_INFER and self.on_closed_days <= MAX_ROWS_ON_CLOSED_DAYS * self.rows
                and self.missing <= MAX_MISSING_SESSIONS * self.sessions)

    @property
    def misfits(self) -> int:
        return self.on_closed_days + self.missing


@dataclass(frozen=True)
class CalendarChoice:
    """The calendar chosen for an imported series, and why (shown in the import's notes)."""

    calendar: TradingCalendar
    reason: str
    inferred: bool = True  # False: given, kept, or the ticker's rule because the dates did not tell

    def describe(self) -> str:
        return f"calendar {self.calendar.name} ({self.reason})"


def _fit(name: str, dates: pd.DatetimeIndex) -> CalendarFit:
    if name == BUSINESS_DAYS:
        within, sessions = dates, pd.bdate_range(dates[0], dates[-1])
    else:
        sessions, first, last = _sessions_for_inference(name, dates[0], dates[-1])
        within = dates[(dates >= first) & (dates <= last)]
    if len(within) == 0:
        return CalendarFit(name, 0, 0, 0, 0)
    sessions = sessions[(sessions >= within[0]) & (sessions <= within[-1])]
    absent = sessions[~sessions.isin(within)]
    after = within.searchsorted(absent)  # each absent session lies between rows after-1 and after
    in_long_gap = (within[after] - within[after - 1]) > LONG_GAP
    return CalendarFit(name, len(within), int((~within.isin(sessions)).sum()), int((~in_long_gap).sum()),
                       len(sessions) - int(in_long_gap.sum()))


def infer_calendar(dates, fallback: TradingCalendar) -> CalendarChoice:
    """Return the calendar that clearly fits ``dates``, else ``fallback``.

    Each candidate exchange (and business days) is scored, over the file's last
    three years, by the rows on days it is closed plus its sessions with no row. A candidate fits when both
    stay within a small share (MAX_ROWS_ON_CLOSED_DAYS, MAX_MISSING_SESSIONS);
    the best fitting one wins if no other scores as well. A span without a
    holiday fits every exchange and business days alike: then the fallback.
    """
    days = pd.DatetimeIndex(pd.to_datetime(pd.Series(dates)).dt.normalize().unique()).sort_values()
    if len(days):
        days = days[days >= days[-1] - INFERENCE_SPAN]  # the recent years: enough holidays, and the calendar in force now
    if len(days) < MIN_ROWS_TO_INFER:
        return CalendarChoice(fallback, f"too few dates ({len(days)}) to tell a calendar; the default for the ticker", False)
    fits = sorted((f for f in (_fit(n, days) for n in (*INFERENCE_CANDIDATES, BUSINESS_DAYS)) if f.fits),
                  key=lambda f: f.misfits)
    if not fits:
        return CalendarChoice(fallback, "no exchange calendar fits the dates; the default for the ticker", False)
    best = fits[0]
    if len(fits) > 1 and fits[1].misfits == best.misfits:
        tied = ", ".join(f.name for f in fits if f.misfits == best.misfits)
        return CalendarChoice(fallback, f"the dates fit {tied} alike; the default for the ticker", False)
    return CalendarChoice(TradingCalendar(best.name), f"inferred from the dates: {best.on_closed_days} row(s) on its closed days, "
                                                      f"{best.missing} of its {best.sessions} sessions missing")


# The per-ticker functions below keep their callers (fetching, validation) working:
# each takes a TradingCalendar, a calendar name, or a ticker (then the default rule).

def sessions_between(start, end, ticker: TradingCalendar | Ticker | str | None) -> pd.DatetimeIndex:
    """Return the trading days in [start, end], tz-naive and normalised."""
    return as_calendar(ticker).sessions_between(start, end)


def next_sessions(after, count: int, ticker: TradingCalendar | Ticker | str | None) -> pd.DatetimeIndex:
    """Return the ``count`` trading days strictly after ``after``."""
    return as_calendar(ticker).next_sessions(after, count)


def is_session_mask(dates: pd.DatetimeIndex, ticker: TradingCalendar | Ticker | str | None) -> np.ndarray:
    """Return a boolean mask: True where the date is a trading day."""
    return as_calendar(ticker).is_session_mask(dates)


def latest_published_session(now: dt.datetime | None, ticker: TradingCalendar | Ticker | str | None) -> pd.Timestamp:
    """Return the newest trading day whose bar can already be published at ``now`` (see TradingCalendar)."""
    return as_calendar(ticker).latest_published_session(now)
