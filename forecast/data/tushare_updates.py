"""How a tushare update gets and writes its rows: one ticker's span, a market's missing days, the facts after.

``update_from_tushare`` (``fetching``) decides which tickers need what; the
work is here. ``fetch_one`` fetches one ticker's new rows (re-fetching the
last ``OVERLAP_SESSIONS`` stored days, older history when asked, every factor
when tushare rebased them) and ``commit_pending`` writes them under the store lock,
merging onto whatever another process wrote since. ``fetch_by_date`` fetches
the days many stored tickers miss with whole-market calls shared by all of
them. ``refresh_trading_facts`` then refreshes the trading rules' facts of
the tickers written. A ticker's rows are all fetched before any of them is written.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.data.calendar import CHINA_CALENDAR, TradingCalendar
from forecast.data.series_writes import FetchReport, Incoming, merge_rows, read_stored, save_series
from forecast.data.sources import tushare_pro
from forecast.data.store import MarketStore, StoredHead, StoredSeries
from forecast.data.tickers import Ticker
from forecast.errors import UnknownTickerError

OVERLAP_SESSIONS = 3  # re-fetched stored days: they reveal revised rows and rebased factors
TUSHARE_CALENDAR = TradingCalendar(CHINA_CALENDAR)  # every code tushare serves trades on the Shanghai/Shenzhen calendar


def _overlap_start(last: pd.Timestamp) -> pd.Timestamp:
    recent = TUSHARE_CALENDAR.sessions_between(last - pd.Timedelta(days=30), last)
    return recent[-OVERLAP_SESSIONS] if len(recent) >= OVERLAP_SESSIONS else last


def needs_backfill(stored_first: pd.Timestamp, start) -> bool:
    """True when the user asked (--start) for history older than what is stored."""
    return start is not None and pd.Timestamp(start) < stored_first


@dataclass
class PendingWrite:
    """Rows fetched for one ticker (network work done, nothing written yet)."""

    ticker: Ticker
    merged: pd.DataFrame  # the new series, merged onto the snapshot read before fetching
    incoming: pd.DataFrame  # the fetched rows alone
    snapshot: StoredSeries | None
    report: FetchReport


def commit_pending(store: MarketStore, pending: PendingWrite, strict: bool) -> FetchReport:
    """Write one fetched series under the store lock, held only for this write.

    If another process wrote the ticker since the snapshot was read, the
    fetched rows are merged onto what it wrote, so neither loses rows.
    """
    with store.writing():
        merged = pending.merged
        snapshot = pending.snapshot
        if snapshot is not None:
            current = read_stored(store, pending.ticker)
            if current is not None and current.updated_at != snapshot.updated_at:
                merged = merge_rows(current.frame, pending.incoming)[0]
                merged["adj_factor"] = merged["adj_factor"].ffill()
        save_series(store, pending.ticker, merged, "tushare", "raw", pending.report, strict, TUSHARE_CALENDAR)
    return pending.report


def fetch_one(client: tushare_pro.TushareClient, ticker: Ticker, stored: StoredSeries | None,
               start, end: pd.Timestamp, backfill_from=None) -> PendingWrite:
    """Fetch one ticker's rows from tushare and merge them onto its stored series; nothing is written (``commit_pending`` does)."""
    calls_before = client.calls
    report = FetchReport(ticker=str(ticker), source="tushare")
    if stored is not None and stored.source == "tushare":
        frame_from = _overlap_start(stored.frame["date"].iloc[-1])
        incoming = tushare_pro.fetch_ticker_range(client, str(ticker), frame_from, end)
        first = stored.frame["date"].iloc[0]
        if needs_backfill(first, backfill_from):
            older = tushare_pro.fetch_ticker_range(client, str(ticker), backfill_from, first - pd.Timedelta(days=1))
            incoming = pd.concat([older, incoming], ignore_index=True)
            report.notes.append(f"backfilled {len(older)} older bars from {pd.Timestamp(backfill_from).date()}")
        old = stored.frame.set_index("date")["adj_factor"]
        new = incoming.set_index("date")["adj_factor"]
        common = old.index.intersection(new.index)
        if not np.allclose(old.loc[common], new.loc[common], rtol=1e-9, equal_nan=True):
            # tushare rebased its factors: refresh all of them so one series keeps one base.
            factors = tushare_pro.fetch_factors(client, str(ticker), stored.frame["date"].iloc[0], end)
            base = stored.frame.drop(columns="adj_factor").merge(factors, on="date", how="left")
            report.notes.append("adjustment factors were rebased upstream; all factors refreshed")
        else:
            base = stored.frame
        merged, report.new_rows, report.revised_rows = merge_rows(base, incoming.drop(columns="ts_code"))
    else:
        incoming = tushare_pro.fetch_ticker_range(client, str(ticker), start, end)
        if incoming.empty:
            raise UnknownTickerError(f"tushare has no bars for {ticker} from {pd.Timestamp(start).date()} to {end.date()}: unknown or not yet listed")
        if stored is not None:
            report.notes.append(f"replaced the {stored.source} series with tushare's")
        merged, report.new_rows, report.revised_rows = merge_rows(None, incoming.drop(columns="ts_code"))
    merged["adj_factor"] = merged["adj_factor"].ffill()  # a factor not yet published: the last one holds
    report.calls = client.calls - calls_before
    return PendingWrite(ticker, merged, incoming.drop(columns="ts_code"), stored, report)


def missing_sessions(head: StoredHead | None, end: pd.Timestamp) -> pd.DatetimeIndex | None:
    """Return the sessions after the stored last bar up to ``end``; None if nothing usable is stored."""
    if head is None or head.source != "tushare":
        return None
    return TUSHARE_CALENDAR.sessions_between(head.last_date + pd.Timedelta(days=1), end)


def fetch_by_date(client, tickers: list[Ticker], days: pd.DatetimeIndex) -> list[Incoming]:
    """One whole-market call per endpoint and day, shared by every ticker."""
    codes = {str(t) for t in tickers}
    calls_before = client.calls
    per_day = [tushare_pro.fetch_market_day(client, day, codes) for day in days]
    traded = [rows for rows in per_day if len(rows)] or per_day[:1]  # an empty day's columns carry no dtypes
    incoming = pd.concat(traded, ignore_index=True) if traded else pd.DataFrame(columns=["ts_code"])
    shared_calls = client.calls - calls_before
    # one stable sort and a slice per code, not a groupby: 5,400 groups cost seconds; each code's days stay in order
    incoming = incoming.sort_values("ts_code", kind="stable", ignore_index=True)
    code_of = incoming["ts_code"].to_numpy()
    body = incoming.drop(columns="ts_code")
    starts = [0, *(np.flatnonzero(code_of[1:] != code_of[:-1]) + 1).tolist(), len(code_of)]
    by_code = {str(code_of[a]): body.iloc[a:b] for a, b in itertools.pairwise(starts)}
    empty = body.iloc[0:0]
    items = []
    for ticker in tickers:
        rows = by_code.get(str(ticker), empty)
        report = FetchReport(ticker=str(ticker), source="tushare", calls=0,
                             notes=[f"whole-market fetch by trade_date: {shared_calls} calls shared by {len(tickers)} tickers"])
        if len(rows) == 0:
            report.notes.append("no new bars (suspended?)")
        items.append(Incoming(ticker, rows, report, note_factor_change=True))
    if items:
        items[0].report.calls = shared_calls
    return items


def facts_spans(store: MarketStore, facts_from: dict[str, pd.Timestamp],
                 heads: dict[Ticker, StoredHead | None]) -> dict[str, pd.Timestamp]:
    """Return each ticker's first day of facts to fetch: its new days, or its whole stored history when no facts
    of it were ever fetched (the facts came after its bars)."""
    from forecast.data.trading_facts import known_tickers

    known = known_tickers(store.workspace)
    stored_first = {str(t): head.first_date for t, head in heads.items() if head is not None}
    return {ticker: first if ticker in known or ticker not in stored_first else min(first, stored_first[ticker])
            for ticker, first in facts_from.items()}


def refresh_trading_facts(client: tushare_pro.TushareClient, store: MarketStore, facts_from: dict[str, pd.Timestamp],
                           end_day: pd.Timestamp, reports: list[FetchReport]) -> None:
    """Refresh the trading facts of the tickers written, in two spans: the updated ones' new days, the rest's history.

    Two groups, not one span from the oldest day: a single new ticker must not
    turn a universe's few whole-market calls into one call per ticker.
    """
    from forecast.data.trading_facts import refresh_facts

    history_start = min(facts_from.values())
    groups: dict[pd.Timestamp, list[str]] = {}
    recent = [d for d in facts_from.values() if d > history_start]
    recent_start = min(recent) if recent else history_start
    for ticker, first in facts_from.items():
        groups.setdefault(recent_start if first >= recent_start else history_start, []).append(ticker)
    first_report = {r.ticker: r for r in reports}
    for first, tickers in sorted(groups.items()):
        report = first_report[tickers[0]]
        calls_before = client.calls
        try:
            facts_notes = refresh_facts(client, store.workspace, tickers, first, end_day)
        except tushare_pro.SourceError as exc:  # the bars are stored: the rules fall back until the next fetch
            facts_notes = [f"not refreshed ({exc})"]
        report.notes.extend(f"trading facts: {note}" for note in facts_notes)
        report.calls += client.calls - calls_before
