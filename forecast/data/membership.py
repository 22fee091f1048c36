"""The typed values of universes: listings, index membership as date spans, resolved universes.

Pure data (pandas only to build spans from tushare's snapshots): what a universe
name stands for, at a date. ``forecast.data.universe`` resolves names to these;
``forecast.data.universe_cache`` stores and refreshes what they are built from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import pandas as pd

from forecast.errors import UnknownUniverseError


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


@dataclass(frozen=True)
class Listing:
    """One A-share as ``stock_basic`` describes it."""

    ts_code: str
    name: str
    industry: str
    market: str
    list_status: str  # L listed, D delisted, P paused
    list_date: dt.date | None
    delist_date: dt.date | None

    def listed_on(self, day: dt.date) -> bool:
        """True when the company was listed on ``day`` (listed by then, not yet delisted)."""
        if self.list_date is None or self.list_date > day:
            return False
        return self.delist_date is None or self.delist_date > day

    def to_dict(self) -> dict:
        return {**asdict(self), "list_date": _iso(self.list_date), "delist_date": _iso(self.delist_date)}

    @classmethod
    def from_dict(cls, data: dict) -> Listing:
        return cls(str(data["ts_code"]), str(data["name"]), str(data["industry"]), str(data["market"]),
                   str(data["list_status"]), _day(data.get("list_date")), _day(data.get("delist_date")))


@dataclass(frozen=True)
class Span:
    """Days ``start`` to ``end`` (inclusive); ``end`` None: still a member at the latest snapshot."""

    start: dt.date
    end: dt.date | None

    def contains(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": _iso(self.end)}

    @classmethod
    def from_dict(cls, data: dict) -> Span:
        start = _day(data["start"])
        assert start is not None
        return cls(start, _day(data.get("end")))


@dataclass(frozen=True)
class Member:
    """A ticker and the spans during which it belonged to an index (qlib's InstVT)."""

    ticker: str
    spans: tuple[Span, ...]

    def member_on(self, day: dt.date) -> bool:
        return any(s.contains(day) for s in self.spans)

    def to_dict(self) -> dict:
        return {"ticker": self.ticker, "spans": [s.to_dict() for s in self.spans]}

    @classmethod
    def from_dict(cls, data: dict) -> Member:
        return cls(str(data["ticker"]), tuple(Span.from_dict(s) for s in data["spans"]))


@dataclass(frozen=True)
class IndexMembership:
    """An index's members over time, built from its snapshots."""

    index_code: str
    first_snapshot: dt.date
    last_snapshot: dt.date
    members: tuple[Member, ...]

    @classmethod
    def from_snapshots(cls, index_code: str, snapshots: pd.DataFrame) -> IndexMembership:
        """Return the spans implied by ``snapshots`` (``con_code``, ``trade_date``; one row per member and snapshot)."""
        days = sorted(pd.to_datetime(snapshots["trade_date"]).dt.date.unique())
        if not days:
            raise UnknownUniverseError(f"tushare has no constituents of {index_code}: is it an index code?")
        position = {d: i for i, d in enumerate(days)}
        members = []
        frame = snapshots.assign(day=pd.to_datetime(snapshots["trade_date"]).dt.date)
        for ticker, rows in frame.groupby("con_code", sort=True):
            present = sorted(position[d] for d in rows["day"].unique())
            spans, run_start, previous = [], present[0], present[0]
            for i in [*present[1:], None]:
                if i is not None and i == previous + 1:
                    previous = i
                    continue
                after = previous + 1  # the first snapshot without it
                end = days[after] - dt.timedelta(days=1) if after < len(days) else None
                spans.append(Span(days[run_start], end))
                if i is not None:
                    run_start = previous = i
            members.append(Member(str(ticker), tuple(spans)))
        return cls(index_code, days[0], days[-1], tuple(members))

    def on(self, day: dt.date | None = None) -> list[str]:
        """Return the members on ``day`` (default: at the latest snapshot); raise before the first snapshot."""
        if day is None:
            day = self.last_snapshot
        if day < self.first_snapshot:
            raise UnknownUniverseError(f"the members of {self.index_code} are known from {self.first_snapshot} on, "
                                       f"not on {day}")
        return [m.ticker for m in self.members if m.member_on(day)]

    def to_dict(self) -> dict:
        return {"index_code": self.index_code, "first_snapshot": self.first_snapshot.isoformat(),
                "last_snapshot": self.last_snapshot.isoformat(), "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, data: dict) -> IndexMembership:
        first, last = _day(data["first_snapshot"]), _day(data["last_snapshot"])
        assert first is not None and last is not None
        return cls(str(data["index_code"]), first, last, tuple(Member.from_dict(m) for m in data["members"]))


@dataclass(frozen=True)
class UniverseMember:
    ticker: str
    name: str  # the company's name (贵州茅台), "" when the listings do not know it

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> UniverseMember:
        return cls(str(data["ticker"]), str(data.get("name", "")))


@dataclass(frozen=True)
class Universe:
    """What a universe name resolved to."""

    name: str  # as asked for: csi300, all, 399006.SZ, ...
    kind: str  # index, all, watchlist, stored
    as_of: dt.date | None  # the date the members are those of; None: now (watchlist, stored)
    members: tuple[UniverseMember, ...]
    index_code: str | None = None
    note: str = ""  # where the members came from

    @property
    def tickers(self) -> list[str]:
        return [m.ticker for m in self.members]

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "as_of": _iso(self.as_of), "index_code": self.index_code,
                "note": self.note, "count": len(self.members), "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, data: dict) -> Universe:
        return cls(str(data["name"]), str(data["kind"]), _day(data.get("as_of")),
                   tuple(UniverseMember.from_dict(m) for m in data["members"]), data.get("index_code"), str(data.get("note", "")))


@dataclass(frozen=True)
class UniverseInfo:
    """One line of ``universe list``: a name, what it is, and what is cached of it."""

    name: str
    kind: str
    description: str
    cached: bool
    fetched_at: str | None

    def to_dict(self) -> dict:
        return asdict(self)


