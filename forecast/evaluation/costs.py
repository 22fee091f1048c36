"""What an order costs: commission (with a minimum), transfer fee, and stamp duty on sells.

Promises:

* ``Costs.order_cost(day, value, sell)`` is the whole cost of one order of
  traded value ``value`` on ``day``: ``max(min_commission, value x
  commission_bps / 10,000)`` + ``value x transfer_fee_on(day)`` + (on a sell
  only) ``value x stamp_duty_on(day)``; an order of value 0 costs 0. Nothing is
  rounded to the cent.
* Rates that changed over time are dated data, not ``if`` branches: a schedule
  is ``((first_day, rate), ...)`` in ascending ISO dates, and the rate of a day
  is that of the last entry whose first day is on or before it (0 before the
  first entry).
* ``A_SHARE`` holds the Chinese market's rates: commission 2.5 bp with a 5 CNY
  minimum; stamp duty on sells 0.3 % until 2008-04-23, 0.1 % from 2008-04-24,
  0.05 % from 2023-08-28; transfer fee 0.002 % until 2022-04-28, 0.001 % from
  2022-04-29. ``PLAIN`` (every other market): 1 bp commission and nothing else.
* ``costs_for(tickers, table)`` picks ``A_SHARE`` when every ticker is a China
  code (``.SH``, ``.SZ``, ``.BJ``), else ``PLAIN``, then applies the user's
  ``[costs]`` table from forecast.toml; a bad table raises ``BadInputError``
  with one line naming the key.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecast.errors import BadInputError

Schedule = tuple[tuple[str, float], ...]

FROM_THE_START = "1900-01-01"  # the first day of a rate that has always applied
CHINA_SUFFIXES = (".SH", ".SZ", ".BJ")
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
TABLE_KEYS = ("commission_bps", "min_commission", "stamp_duty", "transfer_fee")


def _iso_day(day: object) -> str:
    """``day`` (a date, a Timestamp, a numpy datetime or an ISO string) as 'YYYY-MM-DD', which compares in date order."""
    if isinstance(day, str) and ISO_DAY.fullmatch(day):
        return day
    return pd.Timestamp(day).strftime("%Y-%m-%d")


def _rate_on(schedule: Schedule, day: object) -> float:
    key = _iso_day(day)
    rate = 0.0
    for first_day, first_rate in schedule:  # ascending: the last entry that has started wins
        if first_day > key:
            break
        rate = first_rate
    return rate


def _check_schedule(name: str, schedule: Schedule) -> None:
    days = [first_day for first_day, _ in schedule]
    for first_day, rate in schedule:
        _check_date(name, first_day)
        _check_rate(name, rate)
    if days != sorted(set(days)):
        raise BadInputError(f"{name} must list its first days once each, in ascending order, not {days}")


def _check_date(name: str, value: object) -> None:
    try:
        valid = isinstance(value, str) and bool(ISO_DAY.fullmatch(value)) and bool(dt.date.fromisoformat(value))
    except ValueError:  # 2023-02-30 has the shape but is no day
        valid = False
    if not valid:
        raise BadInputError(f"{name} has a date {value!r} that is not a YYYY-MM-DD date")


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"{name} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise BadInputError(f"{name} must be a finite number, not {value!r}")
    if number < 0:
        raise BadInputError(f"{name} must be >= 0, not {value!r}")
    return number


def _check_rate(name: str, value: object) -> float:
    rate = _check_number(name, value)
    if rate >= 1:  # a rate of 1 or more takes the whole order: a percentage typed where a fraction was meant
        raise BadInputError(f"{name} is a fraction of the traded value (0.001 is 0.1 %), so it must be below 1, not {value!r}")
    return rate


@dataclass(frozen=True)
class Costs:
    commission_bps: float  # per order, both sides, basis points of the traded value
    min_commission: float  # per order, in the account currency (0 = none)
    stamp_duty: Schedule  # sells only: ((first_day 'YYYY-MM-DD', rate), ...) ascending; rate a fraction
    transfer_fee: Schedule  # both sides, dated the same way

    def __post_init__(self) -> None:
        _check_number("commission_bps", self.commission_bps)
        _check_number("min_commission", self.min_commission)
        _check_schedule("stamp_duty", self.stamp_duty)
        _check_schedule("transfer_fee", self.transfer_fee)

    def stamp_duty_on(self, day: object) -> float:
        return _rate_on(self.stamp_duty, day)

    def transfer_fee_on(self, day: object) -> float:
        return _rate_on(self.transfer_fee, day)

    def order_cost(self, day: object, value: float, sell: bool) -> float:
        if value < 0:
            raise BadInputError(f"an order's traded value must be >= 0, not {value}")
        if value == 0:
            return 0.0
        commission = max(self.min_commission, value * self.commission_bps / 10_000)
        duty = value * self.stamp_duty_on(day) if sell else 0.0
        return commission + value * self.transfer_fee_on(day) + duty

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the same shape as a ``[costs]`` table (schedules as {first_day: rate})."""
        return {"commission_bps": self.commission_bps, "min_commission": self.min_commission,
                "stamp_duty": dict(self.stamp_duty), "transfer_fee": dict(self.transfer_fee)}


A_SHARE = Costs(
    commission_bps=2.5,
    min_commission=5.0,
    stamp_duty=((FROM_THE_START, 0.003), ("2008-04-24", 0.001), ("2023-08-28", 0.0005)),
    transfer_fee=((FROM_THE_START, 0.00002), ("2022-04-29", 0.00001)),
)
PLAIN = Costs(commission_bps=1.0, min_commission=0.0, stamp_duty=(), transfer_fee=())


def is_china_code(ticker: str) -> bool:
    return str(ticker).upper().endswith(CHINA_SUFFIXES)


def costs_for(tickers: Iterable[str], table: Mapping[str, Any] | None = None) -> Costs:
    """The market's default costs for ``tickers``, overridden by the user's ``[costs]`` table."""
    names = list(tickers)
    base = A_SHARE if names and all(is_china_code(t) for t in names) else PLAIN
    if not table:
        return base
    unknown = sorted(str(key) for key in table if key not in TABLE_KEYS)
    if unknown:
        raise BadInputError(f"[costs] has no key {', '.join(unknown)}; the keys are {', '.join(TABLE_KEYS)}")
    fields: dict[str, Any] = {
        "commission_bps": base.commission_bps, "min_commission": base.min_commission,
        "stamp_duty": base.stamp_duty, "transfer_fee": base.transfer_fee,
    }
    for key in ("commission_bps", "min_commission"):
        if key in table:
            fields[key] = _check_number(f"[costs] {key}", table[key])
    for key in ("stamp_duty", "transfer_fee"):
        if key in table:
            fields[key] = _schedule_from_setting(f"[costs] {key}", table[key])
    return Costs(**fields)


def _schedule_from_setting(name: str, value: object) -> Schedule:
    """A number (one rate from the start) or a table {"YYYY-MM-DD" = rate} as a schedule in ascending dates."""
    if isinstance(value, Mapping):
        entries = []
        for day, rate in value.items():
            first_day = day.isoformat() if isinstance(day, dt.date) else day  # a TOML date key read as a date
            _check_date(name, first_day)
            entries.append((first_day, _check_rate(f"{name} on {first_day}", rate)))
        return tuple(sorted(entries))
    return ((FROM_THE_START, _check_rate(name, value)),)


def costs_problems(table: Mapping[str, Any]) -> list[str]:
    """Every problem of a ``[costs]`` table, one line."""
    try:
        costs_for(["600519.SH"], table)
    except BadInputError as exc:
        return [str(exc)]
    return []
