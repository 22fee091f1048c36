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
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from forecast.data.membership import IndexMembership, Listing, Member, Span, Universe, UniverseInfo, UniverseMember
from forecast.data.tickers import parse_ticker
from forecast.data.universe_cache import (
    _META_KEY,
    ClientSource,
    _now,
    cached_names,
    load_index,
    load_listings,
    refresh_trade_calendar,
)
from forecast.errors import BadInputError, SourceError, UnknownUniverseError
from forecast.workspace import Workspace

__all__ = ["ALL", "INDEX_ALIASES", "STORED", "WATCHLIST", "IndexMembership", "Listing", "Member", "Span", "Universe",
           "UniverseInfo", "UniverseMember", "cached_names", "index_code_for", "known_universes", "load_index",
           "load_listings", "refresh_trade_calendar", "resolve"]

log = logging.getLogger(__name__)

INDEX_ALIASES = {"csi300": "000300.SH", "sse50": "000016.SH", "csi500": "000905.SH"}
ALL, WATCHLIST, STORED = "all", "watchlist", "stored"


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
            client: ClientSource = None, now: dt.datetime | None = None,
            watchlist: Callable[[], Sequence[str]] | None = None) -> Universe:
    """Return the universe ``name`` on ``day`` (default: now), its members sorted by code, with company names.

    ``client`` (a TushareClient, or a function that makes one) is used only
    when listings or constituents must be fetched or are over a day old.
    ``watchlist`` returns the app's watchlist (forecast.toml's ``tickers``): the
    data layer does not read the app's settings, and reads it only for
    ``watchlist``. Raises UnknownUniverseError for a name that names nothing,
    or whose members cannot be known.
    """
    workspace = Workspace.at(home)
    kind = _kind(name)
    as_of = pd.Timestamp(day).date() if day is not None else None
    if kind == WATCHLIST:
        tickers = [str(parse_ticker(t)) for t in (watchlist() if watchlist is not None else ())]
        if not tickers:
            raise UnknownUniverseError(f"the watchlist is empty: list tickers in {workspace.config_file} "
                                       "(tickers = [\"600519.SH\"])")
        note = f"the tickers of {workspace.config_file.name}"
    elif kind == STORED:
        from forecast.data.store import MarketStore

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
