"""The universe cache: tushare's listings, index snapshots and trade calendar under ``<home>/data/``.

Parquet files written atomically and refreshed from tushare when older than a
day. Without a client (no token) a stale cache is still used; no cache at all
is an UnknownUniverseError that says how to get one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from forecast.atomic import atomic_open
from forecast.data.membership import IndexMembership, Listing
from forecast.data.sources.tushare_pro import TushareClient
from forecast.errors import AuthError, SourceError, UnknownUniverseError
from forecast.workspace import Workspace

log = logging.getLogger(__name__)

REFRESH_AFTER = dt.timedelta(days=1)
INDEX_HISTORY_START = "2005-01-01"  # tushare's index_weight reaches back to about here
_META_KEY = b"forecast"

ClientSource = TushareClient | Callable[[], TushareClient] | None


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


def _make_client(source: ClientSource, have_cache: bool, instead: str = "the stored copy, over a day old") -> TushareClient | None:
    """Return a client from ``source``; None when there is none, or no token while something else can answer (``instead``)."""
    if source is None or isinstance(source, TushareClient):
        return source
    try:
        return source()
    except AuthError as exc:
        if not have_cache:
            raise
        log.warning("using %s: %s", instead, exc)
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
    from forecast.data.sources import reference

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


def cached_list_dates(workspace: Workspace) -> dict[str, pd.Timestamp]:
    """Return {ts_code: listing day} from the cached listings, without any network call ({} when none are cached)."""
    cached = _read_frame(workspace.listings_file)
    if cached is None:
        return {}
    frame = cached[0].dropna(subset=["list_date"])
    return {str(code): pd.Timestamp(day) for code, day in zip(frame["ts_code"], frame["list_date"])}


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
    from forecast.data.sources import reference

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
    from forecast.data.calendar import save_trade_calendar
    from forecast.data.sources import reference
    from forecast.data.store import TRADE_CAL_EXCHANGE

    path = workspace.trade_calendar_file(TRADE_CAL_EXCHANGE)
    moment = _now(now)
    if path.is_file() and moment.timestamp() - path.stat().st_mtime <= REFRESH_AFTER.total_seconds():
        return False
    made = _make_client(client, have_cache=True,  # no token: the stored calendar, else exchange-calendars', answers
                        instead="the stored copy, over a day old" if path.is_file() else "exchange-calendars' XSHG calendar")
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


