"""The data: every stored series (``data/bars/``), and the universe and calendar caches the commands read."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

from forecast.data.sources.reference import LISTING_COLUMNS
from forecast.data.store import MarketStore, recorded_source
from forecast.errors import ForecastError
from forecast.workflow.doctor.findings import Finding, _entries, _why
from forecast.workspace import Workspace

_REFETCH = {"tushare": "re-fetch: forecast fetch {t}", "csv": "re-import: forecast fetch {t} --source csv --file <FILE>",
            "sample": "re-fetch: forecast fetch --source sample"}


def _store(workspace: Workspace) -> Iterator[Finding]:
    store = MarketStore(workspace)
    for ticker in store.tickers():
        path = workspace.bars_dir / f"{ticker}.parquet"
        try:
            store.read(ticker)
        except ForecastError as exc:
            yield Finding("store", path, _why(exc), _refetch(path, ticker))


def _refetch(path: Path, ticker: str) -> str:
    """The command that makes the series again, from its source if the file still names it."""
    try:
        source: str | None = recorded_source(path)
    except Exception:  # the file is damaged: its provenance may be too
        source = None
    return _REFETCH.get(source or "", "re-fetch or re-import {t}").format(t=ticker)


# The caches of data/universe/ and data/calendar/, as their readers take them (data/universe_cache.py, data/calendar.py):
# the columns each reader uses, those it reads as dates, and whether it needs universe_cache's fetch record.
_LISTINGS = (tuple(LISTING_COLUMNS), ("list_date", "delist_date"), True)  # universe_cache._listings_from
_INDEX = (("con_code", "trade_date"), ("trade_date",), True)  # IndexMembership.from_snapshots, universe_cache._refresh_index
_CALENDAR = (("cal_date", "is_open"), ("cal_date",), False)  # calendar.cached_trade_calendar
_FETCH_RECORD = b"forecast"  # universe_cache's key in the file's schema metadata: {"fetched_at": ISO time, ...}
_CALENDAR_ADVICE = ("re-fetch: forecast fetch --universe csi300 (or any index, or all) writes it again; "
                    "meanwhile exchange-calendars answers")


# (columns its reader needs, of which dates, whether a fetch record is needed) for each trading-facts file
_TRADING = {"stk_limit": (("trade_date", "ts_code", "up_limit", "down_limit"), ("trade_date",), False),
            "suspend_d": (("ts_code", "trade_date"), ("trade_date",), False),
            "namechange": (("ts_code", "name", "start_date"), ("start_date",), False)}
_TRADING_ADVICE = ("moved aside, the limits come from the rules until the next forecast fetch of those tickers "
                   "fetches the facts again")


def _caches(workspace: Workspace) -> Iterator[Finding]:
    """The universe and calendar caches: each Parquet file must read as its reader reads it, with the columns it needs.

    A damaged universe cache makes ``universe show`` and ``fetch --universe``
    fail without a token; a damaged calendar is passed over for
    exchange-calendars', and a fetch leaves it for a day before it replaces it.
    Moved aside, the next fetch writes each again. Only the names the readers read:
    ``listings.parquet`` and ``index-<CODE>.parquet`` in ``data/universe/``,
    ``<EXCHANGE>.parquet`` in ``data/calendar/``, the trading facts in
    ``data/trading/``; any other file there is not the product's and is left alone.
    """
    caches: list[tuple[Path, tuple[tuple[str, ...], tuple[str, ...], bool], str]] = []
    for path in _entries(workspace.universe_dir):
        if path == workspace.listings_file:
            caches.append((path, _LISTINGS, "re-fetch: forecast universe show all"))
        elif path.name.startswith("index-") and path.name.endswith(".parquet"):
            caches.append((path, _INDEX, f"re-fetch: forecast universe show {path.name[len('index-'):-len('.parquet')]}"))
    caches += [(path, _CALENDAR, _CALENDAR_ADVICE) for path in _entries(workspace.calendar_dir) if path.suffix == ".parquet"]
    # the A-share trading facts: predict, rank and the portfolio backtest read them for every China ticker
    caches += [(workspace.trading_file(kind), shape, _TRADING_ADVICE) for kind, shape in _TRADING.items()
               if workspace.trading_file(kind).exists()]
    for path, (columns, dates, recorded), advice in caches:
        problem = _cache_problem(path, columns, dates, recorded)
        if problem is not None:
            yield Finding("cache", path, problem, advice)


def _cache_problem(path: Path, columns: tuple[str, ...], dates: tuple[str, ...], recorded: bool) -> str | None:
    """Why a cache's reader could not use it, or None: unreadable as Parquet, a column missing or holding no dates,
    or (``recorded``) no fetch record where universe_cache looks for one."""
    import pandas as pd
    import pyarrow.parquet as pq

    if not path.is_file():
        return "not a regular file"
    try:
        table = pq.read_table(path)
        frame = table.to_pandas()
    except Exception as exc:  # pyarrow's errors for a file that is not (whole) Parquet: the readers would fail too
        return f"unreadable ({type(exc).__name__})"
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        return f"lacks the column(s) its reader needs: {', '.join(missing)}"
    for column in dates:
        try:
            with warnings.catch_warnings():  # pandas' advice on formats, for a column of words
                warnings.simplefilter("ignore")
                pd.to_datetime(frame[column])
        except (ValueError, TypeError, OverflowError) as exc:
            return f"its column {column} holds no dates ({type(exc).__name__})"
    if recorded:
        try:
            dt.datetime.fromisoformat(str(json.loads((table.schema.metadata or {})[_FETCH_RECORD])["fetched_at"]))
        except (KeyError, TypeError, ValueError, UnicodeDecodeError):
            return "it has no record of when it was fetched: not a cache forecast wrote"
    return None
