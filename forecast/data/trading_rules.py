"""The A-share trading rules: the boards' dated price limits, limit prices, and bands that respect them.

Pure: numpy/pandas over the values the caller passes, no I/O. It promises

* ``LIMIT_RULES``: the limit regimes of each board as dated data (one row per
  regime, never an ``if`` on a date), and ``limit_band``/``limit_rate``, the
  rates in force for a ticker on a day;
* ``limit_price``: the exchange's limit price, ``prev_close x (1 +- rate)``
  rounded half-up to the cent, vectorised;
* ``cap_band``: a forecast band from a last close, cut where it would cross the
  limits compounded over the steps, saying which steps were cut
  (``limit_paths``, ``clip_band``: the same for many tickers at once).

A market's history under these rules (limit hits, suspensions, ST days from
tushare's facts) is ``trading_status.trading_status``.

A ticker is a China code when it is an A-share exchange code (.SH, .SZ, .BJ).
Indices (``Ticker.is_index``'s rule: 000xxx.SH, 399xxx.SZ, 899xxx.BJ) and every
non-China ticker are on no board, so they have no limits.

Sources for the dated rules (the exchanges' notices, as summarised by
tushare's ``stk_limit`` documentation and by the marina-rules dataset of
point-in-time A-share rules, https://pypi.org/project/marina-rules/):
main board +-10 % since 1996-12-16, ST/*ST +-5 %; new listings: no limit on
the listing day until 2013, then +44 % / -36 % of the issue price on the
listing day (SSE/SZSE 2013-12 notices on new listings' first days), and from
the main-board registration reform (first listings 2023-04-10) no limit on the
first 5 sessions; ChiNext +-10 % (ST +-5 %) until 2020-08-21, +-20 % for all
(ST too) from 2020-08-24 with the first 5 sessions unlimited; STAR +-20 % from
its opening on 2019-07-22, first 5 sessions unlimited; BSE +-30 % from its
opening on 2021-11-15, the listing day unlimited. A 2025 revision of the
main-board rules for risk-warning (ST) stocks is not modelled: tushare's
``stk_limit``, when the token can read it, carries the exchange's own prices
and wins over these rules.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.data.tickers import parse_ticker
from forecast.errors import BadInputError

_ROUNDING_SLACK = 1e-6  # in cents: 10.05 x 1.1 is 11.054999... in binary, and the exchange rounds the exact 11.055 up
CHINA_EXCHANGES = ("SH", "SZ", "BJ")
BOARDS = ("main", "chinext", "star", "bse")


@dataclass(frozen=True)
class LimitRule:
    """One limit regime of one board, in force from ``first_day`` to ``last_day`` (None: still in force).

    ``rate``/``st_rate``: the daily limit of ordinary and ST/*ST names;
    ``unlimited_first_days``: a new listing's first sessions without a limit;
    ``listing_day_band``: (up, down) rates of the listing day around the issue
    price where the exchange set an asymmetric one (the +44 % / -36 % era).
    """

    board: str
    first_day: dt.date
    last_day: dt.date | None
    rate: float
    st_rate: float
    unlimited_first_days: int
    listing_day_band: tuple[float, float] | None = None

    def covers(self, day: dt.date) -> bool:
        return self.first_day <= day and (self.last_day is None or day <= self.last_day)


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


LIMIT_RULES: tuple[LimitRule, ...] = (
    LimitRule("main", _d("1996-12-16"), _d("2013-12-31"), 0.10, 0.05, 1),
    LimitRule("main", _d("2014-01-01"), _d("2023-04-09"), 0.10, 0.05, 0, (0.44, 0.36)),
    LimitRule("main", _d("2023-04-10"), None, 0.10, 0.05, 5),
    LimitRule("chinext", _d("2009-10-30"), _d("2013-12-31"), 0.10, 0.05, 1),
    LimitRule("chinext", _d("2014-01-01"), _d("2020-08-23"), 0.10, 0.05, 0, (0.44, 0.36)),
    LimitRule("chinext", _d("2020-08-24"), None, 0.20, 0.20, 5),
    LimitRule("star", _d("2019-07-22"), None, 0.20, 0.20, 5),
    LimitRule("bse", _d("2021-11-15"), None, 0.30, 0.30, 1),
)


def _ticker_parts(ticker: str) -> tuple[str, str | None, bool]:
    """Return (six-digit code, exchange, is_index); exchange None for anything that is not a China code."""
    try:
        parsed = parse_ticker(ticker)
    except BadInputError:
        return "", None, False
    return parsed.symbol[:6], parsed.exchange, parsed.is_index


def is_china(ticker: str) -> bool:
    """True for an A-share exchange code (.SH, .SZ, .BJ), index or not; ``board_of`` tells the tradable ones."""
    return _ticker_parts(ticker)[1] in CHINA_EXCHANGES


def board_of(ticker: str) -> str:
    """Return 'main', 'chinext' (30xxxx.SZ), 'star' (688/689xxx.SH), 'bse' (.BJ), or '' (an index, or not China)."""
    code, exchange, index = _ticker_parts(ticker)
    if exchange not in CHINA_EXCHANGES or index:
        return ""
    if exchange == "BJ":
        return "bse"
    if exchange == "SZ" and code.startswith("30"):
        return "chinext"
    if exchange == "SH" and code.startswith(("688", "689")):
        return "star"
    return "main"


def _day(day) -> dt.date:
    return pd.Timestamp(day).date()


def rule_for(board: str, day) -> LimitRule | None:
    """Return the regime of ``board`` in force on ``day``; None before the board had one (or for no board)."""
    on = _day(day)
    return next((r for r in LIMIT_RULES if r.board == board and r.covers(on)), None)


def limit_band(ticker: str, day, *, st: bool = False, session_number: int | None = None) -> tuple[float, float] | None:
    """Return the (up, down) limit rates of ``ticker`` on ``day``; None when there is no limit that day.

    ``session_number`` is 1 on the listing day (None: long listed). The
    regime in force on ``day`` decides the new-listing days too (a listing in
    the few sessions before a reform is treated under the new regime).
    """
    rule = rule_for(board_of(ticker), day)
    if rule is None:
        return None
    if session_number is not None:
        if session_number <= rule.unlimited_first_days:
            return None
        if session_number == 1 and rule.listing_day_band is not None:
            return rule.listing_day_band
    rate = rule.st_rate if st else rule.rate
    return rate, rate


def limit_rate(ticker: str, day, *, st: bool = False, session_number: int | None = None) -> float | None:
    """Return the symmetric daily limit rate of ``ticker`` on ``day`` (0.10 for +-10 %).

    None: no +-rate limit that day: not a China stock, a new listing's
    unlimited first sessions, or a listing day under the +44 % / -36 % rule
    (asymmetric around the issue price: ``limit_band`` gives it).
    """
    band = limit_band(ticker, day, st=st, session_number=session_number)
    if band is None or band[0] != band[1]:
        return None
    return band[0]


def limit_price(prev_close, rate, up: bool):
    """Return ``prev_close x (1 +- rate)`` rounded half-up to 0.01, as the exchanges do; arrays broadcast.

    A NaN close or rate gives NaN. Floats work; a scalar in gives a float out.
    """
    factor = 1.0 + np.asarray(rate, dtype=float) if up else 1.0 - np.asarray(rate, dtype=float)
    cents = np.asarray(prev_close, dtype=float) * factor * 100.0
    rounded = np.floor(cents + 0.5 + _ROUNDING_SLACK) / 100.0
    return float(rounded) if np.ndim(rounded) == 0 else rounded


# --- forecast bands --------------------------------------------------------------------------------

@dataclass(frozen=True)
class BandCut:
    """A band after the limits: per step the bounds, and which side was cut ('', 'upper', 'lower', 'both')."""

    lower: list[float]
    upper: list[float]
    cut: list[str]


def cap_band(ticker: str, last_close: float, lower: Sequence[float], upper: Sequence[float], *, day,
             st: bool = False, user_rate: float | None = None) -> BandCut:
    """Return a forecast band over steps 1..H from ``last_close``, cut where it crosses the price limits.

    ``day``: the session of step 1; its regime is taken for every step. Step
    1 may not cross the next day's limit prices (``limit_price`` of
    ``last_close``); step h the limit prices of the limit prices, h times over
    (the highest and lowest closes the exchange lets the ticker reach in h
    sessions, i.e. ``last_close x (1 +- rate)^h`` rounded at each session). A
    non-China ticker, or one without a limit that day, comes back unchanged,
    unless the user set it a limit (``user_rate``: ``[limits]`` in forecast.toml).
    """
    rate = limit_rate(ticker, day, st=st)
    if rate is None and not board_of(ticker) and user_rate is not None:
        rate = float(user_rate)
    if rate is None or not np.isfinite(last_close):
        return BandCut([float(v) for v in lower], [float(v) for v in upper], [""] * len(list(upper)))
    floors, ceilings = limit_paths(np.array([float(last_close)]), rate, len(list(upper)))
    return clip_band(lower, upper, floors[0], ceilings[0])


def limit_paths(last_close: np.ndarray, rate: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest closes each of ``last_close`` may reach in 1..``steps`` sessions at a daily ``rate``:
    (floors, ceilings), each (tickers, steps): the limit price of the limit price, rounded at each session."""
    floors = np.empty((len(last_close), steps))
    ceilings = np.empty((len(last_close), steps))
    floor = ceiling = np.asarray(last_close, dtype=float)
    for h in range(steps):
        ceiling = np.asarray(limit_price(ceiling, rate, up=True), dtype=float)
        floor = np.asarray(limit_price(floor, rate, up=False), dtype=float)
        floors[:, h], ceilings[:, h] = floor, ceiling
    return floors, ceilings


def clip_band(lower: Sequence[float], upper: Sequence[float], floors: Sequence[float], ceilings: Sequence[float]) -> BandCut:
    """A band kept within each step's [floor, ceiling], saying per step which limit bit ('', 'lower', 'upper', 'both')."""
    lows = [float(v) for v in lower]
    highs = [float(v) for v in upper]
    cuts = []
    for h, (floor, ceiling) in enumerate(zip(floors, ceilings)):
        floor, ceiling = float(floor), float(ceiling)
        bounds = [v for v in (lows[h], highs[h]) if math.isfinite(v)]  # a gap stays a gap
        # the side is the limit that bit: a point (lower == upper) above the ceiling is cut at the 'upper' only
        hit_floor = any(v < floor for v in bounds)
        hit_ceiling = any(v > ceiling for v in bounds)
        new_low = min(max(lows[h], floor), ceiling) if math.isfinite(lows[h]) else lows[h]
        new_high = max(min(highs[h], ceiling), floor) if math.isfinite(highs[h]) else highs[h]
        side = {(True, True): "both", (True, False): "lower", (False, True): "upper", (False, False): ""}[
            (hit_floor, hit_ceiling)]
        lows[h], highs[h] = new_low, new_high
        cuts.append(side)
    return BandCut(lows, highs, cuts)
