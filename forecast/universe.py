"""Universes: which tickers a name stands for, at a date.

A universe name is one of

* an index: ``csi300`` (000300.SH), ``sse50`` (000016.SH), ``csi500`` (000905.SH),
  or any index code (``399006.SZ``), whose members come from tushare's
  ``index_weight`` snapshots;
* ``all``: every A-share listed at the date (tushare's ``stock_basic``, listed,
  delisted and paused, so a past date sees the companies listed then);
* ``watchlist``: the ``tickers`` of forecast.toml;
* ``stored``: every ticker in the store.

Index members are kept as qlib keeps instruments: per ticker, a list of date
spans (``Span``) during which it belonged to the index, so ``resolve(name, day)``
answers with the members as they were on ``day`` (no survivorship bias) and,
without a day, with today's. tushare publishes a snapshot a month; a snapshot's
members count from its date until the next snapshot.

Listings and snapshots are cached under ``<home>/data/universe/`` (Parquet,
atomic writes) and refreshed from tushare when older than a day. Without a
client (no token) a stale cache is still used; no cache at all is an
UnknownUniverseError that says how to get one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from forecast.atomic import atomic_open
from forecast.errors import AuthError, BadInputError, SourceError, UnknownUniverseError
from forecast.sources.tushare_pro import TushareClient
from forecast.tickers import parse_ticker
from forecast.workspace import Workspace

log = logging.getLogger(__name__)

INDEX_ALIASES = {"csi300": "000300.SH", "sse50": "000016.SH", "csi500": "000905.SH"}
ALL, WATCHLIST, STORED = "all", "watchlist", "stored"
REFRESH_AFTER = dt.timedelta(days=1)
INDEX_HISTORY_START = "2005-01-01"  # tushare's index_weight reaches back to about here
_META_KEY = b"forecast"

ClientSource = TushareClient | Callable[[], TushareClient] | None


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


# --- the cache -------------------------------------------------------------------------------------

def _write_frame(path: Path, frame: pd.DataFrame, meta: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
    with atomic_open(path) as handle:
        pq.write_table(table, handle)


def _read_frame(path: Path) -> tuple[pd.DataFrame, dict] | None:
    """Return (frame, metadata) of a cached file, or None when there is none or it is unreadable (then it is refetched)."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
        return table.to_pandas(), json.loads(table.schema.metadata[_META_KEY])
    except Exception as exc:  # damaged or foreign: a refresh replaces it
        log.warning("%s is unreadable (%s); it will be fetched again", path, type(exc).__name__)
        return None


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.timezone.utc)


def _stale(meta: dict, now: dt.datetime) -> bool:
    fetched = dt.datetime.fromisoformat(str(meta["fetched_at"]))
    return now - fetched > REFRESH_AFTER


def _make_client(source: ClientSource, have_cache: bool) -> TushareClient | None:
    """Return a client from ``source``; None when there is none, or no token while a (stale) cache can answer."""
    if source is None or isinstance(source, TushareClient):
        return source
    try:
        return source()
    except AuthError as exc:
        if not have_cache:
            raise
        log.warning("using the stored copy, over a day old: %s", exc)
        return None


def load_listings(workspace: Workspace, client: ClientSource = None, now: dt.datetime | None = None) -> list[Listing]:
    """Return every listing, refreshed from ``stock_basic`` when the cache is missing or older than a day."""
    cached = _read_frame(workspace.listings_file)
    moment = _now(now)
    if cached is None or (client is not None and _stale(cached[1], moment)):
        fresh = _refresh_listings(workspace, client, moment, have_cache=cached is not None)
        if fresh is not None:
            cached = fresh
    if cached is None:
        raise UnknownUniverseError("no A-share listings are stored; fetch them with a tushare token "
                                   "(set TUSHARE_TOKEN, then: forecast universe show all)")
    return _listings_from(cached[0])


def _refresh_listings(workspace: Workspace, client: ClientSource, moment: dt.datetime,
                      have_cache: bool) -> tuple[pd.DataFrame, dict] | None:
    from forecast.sources import reference

    made = _make_client(client, have_cache)
    if made is None:
        return None
    try:
        frame = reference.fetch_listings(made)
    except SourceError as exc:
        if not have_cache:
            raise
        log.warning("listings not refreshed (%s); using the stored ones", exc)
        return None
    meta = {"fetched_at": moment.isoformat(timespec="seconds"), "endpoint": "stock_basic"}
    _write_frame(workspace.listings_file, frame, meta)
    return frame, meta


def _listings_from(frame: pd.DataFrame) -> list[Listing]:
    def day(value) -> dt.date | None:
        return None if pd.isna(value) else pd.Timestamp(value).date()

    return [Listing(str(r.ts_code), str(r.name), str(r.industry), str(r.market), str(r.list_status), day(r.list_date),
                    day(r.delist_date)) for r in frame.itertuples(index=False)]


def cached_names(workspace: Workspace) -> dict[str, str]:
    """Return {ts_code: company name} from the cached listings, without any network call ({} when none are cached)."""
    cached = _read_frame(workspace.listings_file)
    if cached is None:
        return {}
    return dict(zip(cached[0]["ts_code"].astype(str), cached[0]["name"].astype(str)))


def load_index(workspace: Workspace, index_code: str, client: ClientSource = None,
               now: dt.datetime | None = None) -> IndexMembership:
    """Return an index's membership, its snapshots refreshed from ``index_weight`` when missing or older than a day.

    A refresh asks only for the days after the last stored snapshot.
    """
    path = workspace.index_file(index_code)
    cached = _read_frame(path)
    moment = _now(now)
    if cached is None or (client is not None and _stale(cached[1], moment)):
        made = _make_client(client, cached is not None)
        if made is not None:
            cached = _refresh_index(path, index_code, made, moment, cached)
    if cached is None:
        raise UnknownUniverseError(f"no constituents of {index_code} are stored; fetch them with a tushare token")
    return IndexMembership.from_snapshots(index_code, cached[0])


def _refresh_index(path: Path, index_code: str, client: TushareClient, moment: dt.datetime,
                   cached: tuple[pd.DataFrame, dict] | None) -> tuple[pd.DataFrame, dict] | None:
    from forecast.sources import reference

    old = cached[0] if cached is not None else None
    start = (pd.Timestamp(old["trade_date"].max()) + pd.Timedelta(days=1)) if old is not None and len(old) else pd.Timestamp(INDEX_HISTORY_START)
    end = pd.Timestamp(moment.date())
    try:
        new = reference.fetch_index_weights(client, index_code, start, end) if start <= end else None
    except SourceError as exc:
        if cached is None:
            raise
        log.warning("constituents of %s not refreshed (%s); using the stored ones", index_code, exc)
        return cached
    parts = [f for f in (old, new) if f is not None and len(f)]
    if not parts:
        raise UnknownUniverseError(f"tushare has no constituents of {index_code} from {start.date()}: is it an index code?")
    frame = pd.concat(parts, ignore_index=True).drop_duplicates(["con_code", "trade_date"], keep="last")
    frame = frame.sort_values(["trade_date", "con_code"]).reset_index(drop=True)
    meta = {"fetched_at": moment.isoformat(timespec="seconds"), "endpoint": "index_weight", "index_code": index_code}
    _write_frame(path, frame, meta)
    return frame, meta


TRADE_CAL_START = "1990-12-19"  # the Shanghai exchange's first day


def refresh_trade_calendar(workspace: Workspace, client: ClientSource, now: dt.datetime | None = None) -> bool:
    """Cache the exchange's own calendar (tushare ``trade_cal``, SSE) when missing or over a day old; True when written.

    It spans the exchange's first day to the end of next year (what tushare
    publishes of it). A failure keeps the cached one (or exchange-calendars).
    """
    from forecast.calendar import save_trade_calendar
    from forecast.sources import reference
    from forecast.store import TRADE_CAL_EXCHANGE

    path = workspace.trade_calendar_file(TRADE_CAL_EXCHANGE)
    moment = _now(now)
    if path.is_file() and moment.timestamp() - path.stat().st_mtime <= REFRESH_AFTER.total_seconds():
        return False
    made = _make_client(client, have_cache=True)  # no token: the fallback calendars answer
    if made is None:
        return False
    try:
        days = reference.fetch_trade_calendar(made, TRADE_CAL_START, dt.date(moment.year + 1, 12, 31), TRADE_CAL_EXCHANGE)
    except SourceError as exc:
        log.warning("the exchange calendar was not refreshed (%s)", exc)
        return False
    if days.empty:
        return False
    save_trade_calendar(path, days)
    return True


# --- names -----------------------------------------------------------------------------------------

def index_code_for(name: str) -> str | None:
    """Return the index code a universe name stands for (an alias or a code), else None."""
    text = name.strip()
    if text.lower() in INDEX_ALIASES:
        return INDEX_ALIASES[text.lower()]
    if text.lower() in (ALL, WATCHLIST, STORED):
        return None
    try:
        ticker = parse_ticker(text)
    except BadInputError:  # an ambiguous bare code (000300) or no code at all
        return None
    return str(ticker) if ticker.is_china else None


def _kind(name: str) -> str:
    text = name.strip().lower()
    if text in (ALL, WATCHLIST, STORED):
        return text
    if index_code_for(name) is not None:
        return "index"
    aliases = ", ".join(INDEX_ALIASES)
    raise UnknownUniverseError(f"unknown universe {name!r}; use {aliases}, an index code such as 000300.SH, "
                               f"{ALL}, {WATCHLIST} or {STORED}")


def resolve(name: str, day: dt.date | str | None = None, *, home: Workspace | Path | str | None = None,
            client: ClientSource = None, now: dt.datetime | None = None) -> Universe:
    """Return the universe ``name`` on ``day`` (default: now), its members sorted by code, with company names.

    ``client`` (a TushareClient, or a function that makes one) is used only
    when listings or constituents must be fetched or are over a day old.
    Raises UnknownUniverseError for a name that names nothing, or whose members
    cannot be known.
    """
    workspace = Workspace.at(home)
    kind = _kind(name)
    as_of = pd.Timestamp(day).date() if day is not None else None
    if kind == WATCHLIST:
        from forecast.config import load_app_config

        tickers = [str(parse_ticker(t)) for t in load_app_config(workspace).tickers]
        if not tickers:
            raise UnknownUniverseError(f"the watchlist is empty: list tickers in {workspace.config_file} "
                                       "(tickers = [\"600519.SH\"])")
        note = f"the tickers of {workspace.config_file.name}"
    elif kind == STORED:
        from forecast.store import MarketStore

        tickers = MarketStore(workspace).tickers()
        if not tickers:
            raise UnknownUniverseError(f"the store under {workspace.data_dir} holds no ticker yet")
        note = "every ticker in the store"
    elif kind == ALL:
        listings = load_listings(workspace, client, now)
        when = as_of or _now(now).date()
        tickers = [item.ts_code for item in listings if item.listed_on(when)]
        note = f"every A-share listed on {when} ({len(listings)} known, delisted ones included)"
        as_of = when
    else:
        code = index_code_for(name)
        assert code is not None
        membership = load_index(workspace, code, client, now)
        tickers = membership.on(as_of)
        note = (f"{code} members on {as_of}" if as_of else f"{code} members at its latest snapshot ({membership.last_snapshot})")
        as_of = as_of or membership.last_snapshot
    names = _names_if_cached(workspace, client if kind in (ALL, "index") else None, now)
    members = tuple(UniverseMember(t, names.get(t, "")) for t in sorted(set(tickers)))
    return Universe(name=name, kind=kind, as_of=as_of if kind in (ALL, "index") else None, members=members,
                    index_code=index_code_for(name) if kind == "index" else None, note=note)


def _names_if_cached(workspace: Workspace, client: ClientSource, now: dt.datetime | None) -> dict[str, str]:
    """Return company names: from the listings (fetched when a client is at hand), else none."""
    if client is not None:
        try:
            return {item.ts_code: item.name for item in load_listings(workspace, client, now)}
        except (SourceError, UnknownUniverseError) as exc:
            log.warning("company names unavailable (%s)", exc)
    return cached_names(workspace)


def known_universes(home: Workspace | Path | str | None = None) -> list[UniverseInfo]:
    """Return the universe names this workspace can resolve, and what is cached of each (no network)."""
    workspace = Workspace.at(home)
    infos = [UniverseInfo(alias, "index", f"index {code}", *_cache_state(workspace.index_file(code)))
             for alias, code in INDEX_ALIASES.items()]
    if workspace.universe_dir.is_dir():
        for path in sorted(workspace.universe_dir.glob("index-*.parquet")):
            code = path.name[len("index-"): -len(".parquet")]
            if code not in INDEX_ALIASES.values():
                infos.append(UniverseInfo(code, "index", f"index {code}", *_cache_state(path)))
    infos.append(UniverseInfo(ALL, ALL, "every listed A-share", *_cache_state(workspace.listings_file)))
    infos.append(UniverseInfo(WATCHLIST, WATCHLIST, "the tickers of forecast.toml", True, None))
    infos.append(UniverseInfo(STORED, STORED, "every ticker in the store", True, None))
    return infos


def _cache_state(path: Path) -> tuple[bool, str | None]:
    """Return (cached, fetched_at) from the file's schema alone, reading no rows."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return False, None
    try:
        meta = json.loads((pq.read_schema(path).metadata or {})[_META_KEY])
    except Exception:  # unreadable: the next resolve fetches it again
        return False, None
    return True, str(meta["fetched_at"])
