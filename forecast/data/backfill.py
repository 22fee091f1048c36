"""Whole-market backfill by trade_date, resumable; and fetching a universe by name.

A backfill asks tushare for whole-market days (``daily`` + ``adj_factor``,
two calls a day whatever the number of tickers) and works in two phases:

1. **Stage.** Each day's rows go to ``<home>/data/backfill/days/<YYYYMMDD>.parquet``
   (an atomic write), then the day is appended to the journal
   ``<home>/data/backfill/market.journal`` (one line, fsynced). No store lock is
   held: this phase is all network calls. A day in the journal is never asked
   for again; a kill loses at most the day in flight.
2. **Commit.** When every day of the range is staged, each ticker's rows are
   merged onto its stored series in one atomic write (``series_writes.commit_many``,
   the store lock held per batch of writes). A ticker thus receives its whole
   range or nothing: an interrupted backfill never leaves a gap in the middle
   of a ticker's history. Merging is idempotent, so a kill during the commit
   is finished by running the backfill again. After a full commit the staged
   days are removed. Memory stays bounded at any range: the staged days are
   scanned with pyarrow once per group of tickers, a group holding at most
   ``COMMIT_ROWS`` rows (10 years of 5,400 tickers is 13 M rows; a group of
   800 tickers over 2,500 days is 2 M).

Two backfills of one home queue on ``data/backfill/.lock`` (not the store lock).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecast.atomic import atomic_open
from forecast.choices import BackfillPlan
from forecast.data import universe as universes
from forecast.data.fetching import DEFAULT_HISTORY_START, update_from_tushare
from forecast.data.series_writes import FetchReport, Incoming, TickerFailure, commit_many
from forecast.data.sources import tushare_pro
from forecast.data.store import MarketStore
from forecast.data.tickers import Ticker, parse_ticker
from forecast.data.tushare_updates import TUSHARE_CALENDAR
from forecast.errors import ForecastError, UnknownTickerError
from forecast.locks import hold_lock

log = logging.getLogger(__name__)

JOURNAL = "market"  # one journal of staged whole-market days per home: staged days serve any universe
LOG_EVERY_DAYS = 20  # one log line per chunk of this many days
COMMIT_ROWS = 2_000_000  # staged rows held at once in the commit: ~150 MB as pandas
_BACKFILL_LOCK_WAIT_S = 600.0

ClientSource = tushare_pro.TushareClient | Callable[[], tushare_pro.TushareClient]


class _OneClient:
    """Make the client at most once, and only when a call needs it (a stored-only universe needs no token)."""

    def __init__(self, source: ClientSource):
        self._source = source
        self._client: tushare_pro.TushareClient | None = source if isinstance(source, tushare_pro.TushareClient) else None

    def __call__(self) -> tushare_pro.TushareClient:
        if self._client is None:
            assert not isinstance(self._source, tushare_pro.TushareClient)
            self._client = self._source()
        return self._client


@dataclass
class BackfillReport:
    days: int  # trading days in the range
    fetched_days: int  # days asked for in this run (the others were in the journal)
    calls: int
    tickers: int  # tickers written
    reports: list[FetchReport]
    failures: list[TickerFailure]

    def to_dict(self) -> dict:
        return {"days": self.days, "fetched_days": self.fetched_days, "calls": self.calls, "tickers": self.tickers,
                "results": [r.to_dict() for r in self.reports],
                "failures": [{"ticker": f.ticker, "error": str(f.error)} for f in self.failures]}


def _journal_days(path: Path) -> set[str]:
    """Return the YYYYMMDD days the journal lists; a torn last line (a kill mid-append) is ignored."""
    if not path.is_file():
        return set()
    return {line for line in path.read_text(encoding="utf-8").splitlines() if len(line) == 8 and line.isdigit()}


def _append_journal(path: Path, day: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(day + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _stage_day(client: tushare_pro.TushareClient, day: pd.Timestamp, path: Path) -> int:
    """Fetch one whole-market day into ``path``; return its rows (0 on a day with no trading)."""
    rows = tushare_pro.fetch_whole_market_day(client, day)
    with atomic_open(path) as handle:
        rows.to_parquet(handle, index=False)
    return len(rows)


def backfill(store: MarketStore, tickers: list[str], client: ClientSource, *, start=None, end=None,
             now: dt.datetime | None = None, strict: bool = False) -> BackfillReport:
    """Bring ``tickers`` their bars over [start, end] from whole-market days; resume what a killed run staged.

    Returns one report per written ticker; a ticker with no rows in the range
    (not listed then) is a failure of its own.
    """
    workspace = store.workspace
    published = TUSHARE_CALENDAR.latest_published_session(now)
    end_day = min(pd.Timestamp(end).normalize(), published) if end else published
    days = TUSHARE_CALENDAR.sessions_between(pd.Timestamp(start or DEFAULT_HISTORY_START), end_day)
    journal = workspace.backfill_journal(JOURNAL)
    staging = workspace.backfill_dir / "days"
    staging.mkdir(parents=True, exist_ok=True)
    one_client = client if isinstance(client, _OneClient) else _OneClient(client)
    lock = workspace.backfill_lock
    with hold_lock(lock, _BACKFILL_LOCK_WAIT_S, f"another backfill is running on {workspace.root}; try again later"):
        done = _journal_days(journal)
        todo = [d for d in days if d.strftime("%Y%m%d") not in done or not (staging / f"{d:%Y%m%d}.parquet").is_file()]
        calls = 0
        if todo:
            made = one_client()
            before = made.calls
            for i, day in enumerate(todo, 1):
                key = day.strftime("%Y%m%d")
                _stage_day(made, day, staging / f"{key}.parquet")
                _append_journal(journal, key)
                if i % LOG_EVERY_DAYS == 0 or i == len(todo):
                    log.info("backfill: %d of %d days fetched (%s), %d calls", i, len(todo), day.date(), made.calls - before)
            calls = made.calls - before
        reports, failures = _commit_all(store, [parse_ticker(t) for t in tickers], staging, days, strict)
        journal.unlink(missing_ok=True)  # first the journal: a kill between the two leaves days that are fetched again
        shutil.rmtree(staging, ignore_errors=True)
    if reports:
        reports[0].calls = calls
    return BackfillReport(len(days), len(todo), calls, len(reports), reports, failures)


def _commit_all(store: MarketStore, tickers: list[Ticker], staging: Path, days: pd.DatetimeIndex,
                strict: bool) -> tuple[list[FetchReport], list[TickerFailure]]:
    """Merge every ticker's staged rows onto its stored series, a bounded group of tickers at a time."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    files = [str(staging / f"{day:%Y%m%d}.parquet") for day in days]
    # the schema is given, not inferred: a day with no trading is staged with untyped (null) columns
    schema = pa.schema([("ts_code", pa.string()), ("date", pa.timestamp("ns")),
                        *[(c, pa.float64()) for c in ("open", "high", "low", "close", "volume", "amount", "adj_factor")]])
    staged = ds.dataset(files, format="parquet", schema=schema) if files else None
    per_group = max(1, COMMIT_ROWS // max(1, len(days)))
    span = f"{days[0].date() if len(days) else '-'} to {days[-1].date() if len(days) else '-'}"
    reports: list[FetchReport] = []
    failures: list[TickerFailure] = []
    for begin in range(0, len(tickers), per_group):
        group = tickers[begin: begin + per_group]
        by_code = _rows_by_code(staged, group) if staged is not None else {}
        items = []
        for ticker in group:
            incoming = by_code.get(str(ticker))
            if incoming is None or incoming.empty:
                failures.append(TickerFailure(str(ticker), UnknownTickerError(
                    f"tushare has no bars for {ticker} from {span}: not listed then, or unknown")))
                continue
            items.append(Incoming(ticker, incoming, FetchReport(ticker=str(ticker), source="tushare",
                                                                notes=[f"backfilled by trade_date over {len(days)} days"])))
        written, failed = commit_many(store, items, strict=strict, calendar=TUSHARE_CALENDAR)
        reports.extend(written)
        failures.extend(failed)
    return reports, failures


def _rows_by_code(staged, group: list[Ticker]) -> dict[str, pd.DataFrame]:
    """Return each ticker's staged rows (STORED_COLUMNS, by date), sliced from one frame sorted by Arrow: no groupby."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as ds

    table = staged.to_table(filter=ds.field("ts_code").isin(pa.array([str(t) for t in group], pa.string())))
    if not table.num_rows:
        return {}
    table = table.sort_by([("ts_code", "ascending"), ("date", "ascending")])
    codes = table.column("ts_code").to_numpy(zero_copy_only=False)
    frame = table.drop_columns(["ts_code"]).to_pandas()
    starts = np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1, [len(codes)]])
    return {str(codes[a]): frame.iloc[a:b].reset_index(drop=True) for a, b in itertools.pairwise(starts)}


def fetch_universe(store: MarketStore, name: str, client: ClientSource, *, start=None, end=None,
                   now: dt.datetime | None = None, strict: bool = False, plan: str = BackfillPlan.AUTO,
                   watchlist: Callable[[], Sequence[str]] | None = None,
                   trading_facts: bool = False) -> tuple[list[FetchReport], list[TickerFailure]]:
    """Bring every ticker of universe ``name`` (today's members) up to date.

    ``trading_facts``: the incremental updates also refresh the A-share trading facts (``update_from_tushare``);
    a ticker backfilled by trade_date gets its whole history's facts on its next update (none were fetched yet).

    Tickers with no tushare series yet (or, with ``start``, none reaching back
    that far) are backfilled the cheaper way (``backfill_plan``): by trade_date
    when there are more of them than days (two calls a day for any number of
    tickers: a whole market), else ticker by ticker (two calls each for up to
    6,000 bars: an index of 300 over 10 years is 600 calls, not 5,000). Index
    codes always go ticker by ticker (whole-market days hold stocks only). The
    others are updated incrementally (``fetching.update_from_tushare``,
    whole-market days when many miss the same few days). ``plan`` forces
    ``by-date`` or ``by-ticker`` instead of ``auto``; ``watchlist`` is as for ``universe.resolve``.
    """
    plan = str(BackfillPlan.parse(plan, "backfill plan"))
    one_client = _OneClient(client)
    if universes.index_code_for(name) is not None or name.strip().lower() == universes.ALL:
        universes.refresh_trade_calendar(store.workspace, one_client, now)  # before any date question: it may extend XSHG
    members = universes.resolve(name, home=store.workspace, client=one_client, now=now, watchlist=watchlist).tickers
    to_backfill = []
    for code in members:
        try:
            head = store.head(code)  # the footer alone: cheap at 5,400 tickers
        except ForecastError:  # nothing stored, or a file this store cannot read (replaced by the fetch)
            head = None
        # a series from a CSV is replaced ticker by ticker, as `fetch TICKER` does
        if head is None or (head.source == "tushare" and start is not None and pd.Timestamp(start) < head.first_date):
            to_backfill.append(code)
    reports: list[FetchReport] = []
    failures: list[TickerFailure] = []
    by_day, by_ticker = backfill_plan(to_backfill, start, end, now, plan)
    if by_day:
        filled = backfill(store, by_day, one_client, start=start, end=end, now=now, strict=strict)
        reports.extend(filled.reports)
        failures.extend(filled.failures)
    done = {r.ticker for r in reports} | {f.ticker for f in failures}
    rest = [c for c in members if c not in done]
    if rest:
        # by_ticker members are in rest: with no stored series, update_from_tushare fetches each from ``start``
        more, more_failures = update_from_tushare(store, rest, one_client, start=start if by_ticker else None,
                                                  end=end, now=now, strict=strict, trading_facts=trading_facts)
        reports.extend(more)
        failures.extend(more_failures)
    return reports, failures


def backfill_plan(tickers: list[str], start, end, now: dt.datetime | None,
                  plan: str = BackfillPlan.AUTO) -> tuple[list[str], list[str]]:
    """Split tickers to backfill into (by trade_date, ticker by ticker), whichever needs fewer calls.

    By trade_date: 2 calls per trading day in the range, shared by every
    ticker. Ticker by ticker: 2 calls per ticker per 6,000 bars.
    """
    if not tickers:
        return [], []
    stocks = [t for t in tickers if not parse_ticker(t).is_index]
    indices = [t for t in tickers if parse_ticker(t).is_index]
    if plan != BackfillPlan.AUTO:
        return (stocks, indices) if plan == BackfillPlan.BY_DATE else ([], stocks + indices)
    published = TUSHARE_CALENDAR.latest_published_session(now)
    end_day = min(pd.Timestamp(end).normalize(), published) if end else published
    days = len(TUSHARE_CALENDAR.sessions_between(pd.Timestamp(start or DEFAULT_HISTORY_START), end_day))
    pages_per_ticker = max(1, -(-days // tushare_pro.PAGE_LIMIT))
    if len(stocks) * pages_per_ticker > days:
        return stocks, indices
    return [], stocks + indices
