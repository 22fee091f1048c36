"""Bring bars into the store: from tushare (incrementally), a CSV file, or the sample.

This is the library behind ``forecast fetch``. Every path validates before it
writes, writes atomically under the store lock, and stores nothing partial:
a ticker's new rows are written whole or not at all.

A CSV file or the sample is imported here. For tushare, ``update_from_tushare``
decides what each ticker needs (nothing when the calendar says no new bar can
exist, the days many stored tickers miss by whole-market calls, else the
ticker's own span); ``tushare_updates`` fetches those rows and writes them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from forecast.data.bars import collapse_duplicate_dates
from forecast.data.calendar import (
    CalendarChoice,
    TradingCalendar,
    default_calendar,
    get_calendar,
    infer_calendar,
)
from forecast.data.series_writes import (
    FetchReport,
    TickerFailure,
    commit_many,
    merge_rows,
    read_stored,
    save_series,
)
from forecast.data.sources import tushare_pro
from forecast.data.sources.csv_file import CsvImport, bars_from_rows, find_ticker_column, read_csv_rows
from forecast.data.store import MarketStore, StoredHead
from forecast.data.tickers import Ticker, parse_ticker
from forecast.data.tushare_updates import (
    TUSHARE_CALENDAR,
    commit_pending,
    facts_spans,
    fetch_by_date,
    fetch_one,
    missing_sessions,
    needs_backfill,
    refresh_trading_facts,
)
from forecast.errors import BadInputError, CorruptFileError, NoDataError, UnknownTickerError, ValidationFailed

log = logging.getLogger(__name__)

BY_DATE_MIN_TICKERS = 6  # "more than a handful": from here whole-market calls may win
SAMPLE_TICKER = "600519.SH"
DEFAULT_HISTORY_START = "2005-01-01"


def _up_to_date_report(head: StoredHead, note: str) -> FetchReport:
    calendar = head.calendar or default_calendar(parse_ticker(head.ticker)).name  # as StoredSeries.trading_calendar
    return FetchReport(
        ticker=head.ticker, source=head.source, rows=head.rows, first_date=head.first_date.date().isoformat(),
        last_date=head.last_date.date().isoformat(), calendar=calendar, notes=[note], validation=head.validation.to_dict(),
    )


def _head(store: MarketStore, ticker: Ticker) -> StoredHead | None:
    """The stored file's footer; None when there is none or it is unreadable (a full read then says so)."""
    try:
        return store.head(ticker)
    except (NoDataError, CorruptFileError):
        return None


SHRINK_GUARD = 0.5  # an import that keeps less than this share of the stored rows needs --replace


def import_csv(store: MarketStore, ticker_text: str | None, path: Path, *, date_format: str | None = None,
               column_map: str | None = None, strict: bool = False, source: str = "csv", replace: bool = False,
               calendar: str | None = None) -> FetchReport:
    """Replace a ticker's series with a CSV file's rows (a file is a whole snapshot).

    A snapshot replaces rather than merges because two downloads of qfq prices
    have different adjustment bases, and one series must never mix bases. A
    file with less than half the stored rows is refused unless ``replace``:
    a truncated download must not silently throw years of history away.

    The series' trading calendar is ``calendar`` when given, else inferred from
    the file's dates (``calendar.infer_calendar``); when the dates do not tell,
    a calendar recorded for the stored series is kept, else the ticker's rule.
    The file's path is recorded, so that a later ``fetch`` can say how to refresh it.
    """
    chosen = CalendarChoice(get_calendar(calendar), "given with --calendar", inferred=False) if calendar else None
    raw = read_csv_rows(path)
    ticker = parse_ticker(ticker_text) if ticker_text is not None else None
    picked = _rows_of(raw, ticker, Path(path).name) if ticker is not None else None
    imported = bars_from_rows(raw if picked is None else picked.rows, Path(path).name, date_format=date_format,
                              column_map=column_map)
    if ticker is None:
        if imported.code_in_file is None:
            raise BadInputError(f"{Path(path).name} does not name its ticker; pass one, e.g. forecast fetch AAPL --source csv --file ...")
        ticker = parse_ticker(imported.code_in_file)
    origin = str(Path(path).resolve()) if source == "csv" else None
    report = store_csv_import(store, ticker, imported, source=source, origin=origin, strict=strict, replace=replace, chosen=chosen)
    if picked is not None and picked.other_tickers:
        report.notes.insert(0, f"{len(picked.rows)} of {len(raw)} rows: {ticker}'s, by column {picked.column} "
                               f"({picked.other_tickers} other ticker(s) left out)")
    return report


@dataclass(frozen=True)
class TickerRows:
    """One ticker's rows of a file whose ticker column names it, and what was left out."""

    rows: pd.DataFrame
    column: str
    other_tickers: int


def _rows_of(raw: pd.DataFrame, ticker: Ticker, name: str) -> TickerRows | None:
    """Return the rows of ``raw`` that its ticker column gives to ``ticker``; None when the file names no ticker.

    A long file holds many tickers: importing it whole as one of them would
    store the other tickers' prices under this one's name, one row per date
    chosen by file order. A file whose ticker column names only other tickers
    is refused rather than imported under a name it contradicts.
    """
    column = find_ticker_column(list(raw.columns))
    if column is None:
        return None
    codes = raw[column].fillna("").astype(str).str.strip()
    named = sorted(set(codes) - {""})
    if not named:
        return None
    owners = {code: _same_ticker(code, ticker) for code in named}
    mine = raw[codes.map(lambda code: owners.get(code, False))]
    if mine.empty:
        shown = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
        raise BadInputError(f"{name}: column {column} names {shown}, not {ticker}; name one of those, "
                            f"or no ticker to import every one")
    return TickerRows(mine, column, sum(not owned for owned in owners.values()))


def _same_ticker(code: str, ticker: Ticker) -> bool:
    try:
        return parse_ticker(code) == ticker
    except BadInputError:  # an ambiguous or malformed code names no ticker we can match
        return False


def store_csv_import(store: MarketStore, ticker: Ticker, imported: CsvImport, *, source: str, origin: str | None,
                     strict: bool, replace: bool, chosen: CalendarChoice | None) -> FetchReport:
    """Replace ``ticker``'s series with ``imported``'s rows under the store lock (see ``import_csv``); return what it did.

    ``chosen`` is a calendar given by the user (None: inferred from the rows,
    else the stored series' one, else the ticker's rule); ``origin`` is the
    file's absolute path, recorded so that a later fetch can say how to refresh it.
    """
    label = Path(origin).name if origin else f"the {source} file"
    choice = chosen or infer_calendar(imported.frame["date"], default_calendar(ticker))  # outside the lock: ~1 s, once
    report = FetchReport(ticker=str(ticker), source=source, notes=[
        f"{imported.layout} layout, " + {"none": "raw prices", "raw": "raw prices with adjustment factors"}.get(
            imported.price_basis, f"{imported.price_basis} prices")])
    with store.writing():
        stored = read_stored(store, ticker, report)
        previous = stored.frame if stored is not None else None
        incoming_rows = len(collapse_duplicate_dates(imported.frame)[0])
        if previous is not None and not replace and incoming_rows < SHRINK_GUARD * len(previous):
            raise BadInputError(f"{label} has {incoming_rows} rows of {ticker} but {len(previous)} are stored; "
                                f"importing them would drop the rest. Pass --replace if that is what you want")
        _, report.new_rows, report.revised_rows = merge_rows(previous, imported.frame)
        if previous is not None:  # a file is a whole snapshot: what it lacks is dropped, and said
            report.dropped_rows = int((~previous["date"].isin(imported.frame["date"])).sum())
        if not choice.inferred and chosen is None and stored is not None and stored.calendar:
            choice = CalendarChoice(TradingCalendar(stored.calendar), f"kept from the stored series ({choice.reason})", inferred=False)
        report.notes.append(choice.describe())
        save_series(store, ticker, imported.frame, source, imported.price_basis, report, strict, choice.calendar, origin)
    return report


def sample_path() -> Path:
    return Path(str(resources.files("forecast") / "sample" / f"{SAMPLE_TICKER}.csv"))


def import_sample(store: MarketStore, ticker_text: str = SAMPLE_TICKER, strict: bool = False,
                  calendar: str | None = None) -> FetchReport:
    """Store the bundled, offline sample (real Moutai bars, 2010-12-27 to 2020-12-25)."""
    ticker = parse_ticker(ticker_text)
    if str(ticker) != SAMPLE_TICKER:
        raise UnknownTickerError(f"the bundled sample has only {SAMPLE_TICKER}, not {ticker}")
    report = import_csv(store, SAMPLE_TICKER, sample_path(), strict=strict, source="sample", calendar=calendar)
    log.info("%s: stored %d sample bars %s..%s, %d new", ticker, report.rows, report.first_date, report.last_date,
             report.new_rows)
    return report


def add_last_close(store: MarketStore, report: FetchReport, adjust: str) -> FetchReport:
    """Fill ``report.last_close`` on the ``adjust`` basis where the series has factors, else on its own basis."""
    stored = store.read(report.ticker)
    basis = adjust if stored.price_basis in ("raw", adjust) else stored.price_basis  # a file's prices are as it gave them
    report.last_close = float(stored.bars(basis).frame["close"].iloc[-1])
    report.adjust = basis
    return report


def not_on_tushare(store: MarketStore, ticker: Ticker) -> BadInputError:
    """Return the error for a ticker tushare cannot serve: where its stored series came from, and how to refresh it."""
    stored = read_stored(store, ticker)
    refusal = f"{ticker} is not a China A-share code, so tushare cannot fetch it"
    if stored is None:
        return BadInputError(f"{refusal}; import it from a CSV file: forecast fetch {ticker} --source csv --file PATH")
    summary = stored.summary()
    came_from = f"the CSV file {stored.origin}" if stored.origin else f"a {stored.source} import"
    return BadInputError(f"{refusal}; its {summary['rows']} stored bars (to {summary['last_date']}) came from {came_from} "
                         f"on {stored.updated_at[:10]}. Refresh it with: forecast fetch {ticker} --source csv --file "
                         f"{stored.origin or 'PATH'}")


def update_from_tushare(store: MarketStore, ticker_texts: list[str],
                        client: tushare_pro.TushareClient | Callable[[], tushare_pro.TushareClient], *,
                        start=None, end=None, now: dt.datetime | None = None,
                        strict: bool = False, trading_facts: bool = False) -> tuple[list[FetchReport], list[TickerFailure]]:
    """Bring each ticker up to date from tushare; return reports and per-ticker failures.

    A ticker tushare does not cover (not a China A-share code) fails on its own,
    naming where its stored series came from; the others go on. ``client`` may
    be a function that makes one: it is called only when a ticker needs the
    network, so a fetch that needs none needs no token. A ticker is skipped
    with no network call when the calendar says no new bar can exist yet. When
    many stored tickers miss the same few days, those days are fetched
    whole-market by trade_date (two calls a day) instead of two calls per
    ticker. An authentication failure stops everything at once.

    ``trading_facts``: also refresh the A-share trading rules' facts
    (``trading_facts.refresh_facts``: limit prices, suspensions, names) of the
    stocks written, over the span fetched; their notes go to the first
    report, and a failure there is a note, not a failed ticker. Off by
    default: it costs calls of other endpoints.
    """
    parsed = [parse_ticker(t) for t in ticker_texts]
    failures: list[TickerFailure] = [TickerFailure(str(t), not_on_tushare(store, t)) for t in parsed if not t.is_china]
    tickers = [t for t in parsed if t.is_china]
    reports: list[FetchReport] = []
    if not tickers:
        return reports, failures
    published = TUSHARE_CALENDAR.latest_published_session(now)
    end_day = min(pd.Timestamp(end).normalize(), published) if end else published
    start_day = pd.Timestamp(start or DEFAULT_HISTORY_START)
    # The network work happens outside the store lock; the writes take it per ticker (commit_pending) or per batch (commit_many).
    notes: dict[Ticker, FetchReport] = {t: FetchReport(ticker=str(t), source="tushare") for t in tickers}
    heads = {t: _head(store, t) for t in tickers}  # footers only: 5,400 full reads would cost seconds
    pending: list[Ticker] = []
    gaps: dict[Ticker, pd.DatetimeIndex] = {}
    for t in tickers:
        head = heads[t]
        missing = missing_sessions(head, end_day)
        if head is not None and missing is not None and start is not None and needs_backfill(head.first_date, start):
            missing = None  # older history was asked for: a per-ticker fetch, whatever the new days
        if head is not None and missing is not None and len(missing) == 0:
            reports.append(_up_to_date_report(head, f"up to date: no trading day after the stored last bar up to {end_day.date()}"))
        else:
            pending.append(t)
            if missing is not None:
                gaps[t] = missing
    if not pending:
        return reports, failures
    if not isinstance(client, tushare_pro.TushareClient):
        client = client()  # raises AuthError without a token: it stops everything
    union = pd.DatetimeIndex(sorted(set().union(*gaps.values()))) if gaps else pd.DatetimeIndex([])
    by_date = [t for t in pending if t in gaps]
    facts_from: dict[str, pd.Timestamp] = {}  # ticker -> the first day whose facts this fetch refreshes
    if len(by_date) >= BY_DATE_MIN_TICKERS and len(union) < len(by_date) and start is None:
        try:
            items = fetch_by_date(client, by_date, union)
        except tushare_pro.SourceError as exc:  # the shared calls failed: each of their tickers says so
            items = []
            failures.extend(TickerFailure(str(t), exc) for t in by_date)
        written, failed = commit_many(store, items, strict=strict, calendar=TUSHARE_CALENDAR)
        reports.extend(written)
        failures.extend(failed)
        facts_from.update({str(t): union[0] for t in by_date if len(union) and str(t) in {r.ticker for r in written}})
        pending = [t for t in pending if t not in gaps]
    for t in pending:
        try:
            stored = read_stored(store, t, notes[t])
            write = fetch_one(client, t, stored, start_day, end_day, backfill_from=start)
            write.report.notes[:0] = notes[t].notes  # e.g. "replaced an unreadable stored file"
            reports.append(commit_pending(store, write, strict))
            updated = t in gaps and len(gaps[t]) > 0  # a stored series brought up to date: only its new days
            facts_from[str(t)] = gaps[t][0] if updated else pd.Timestamp(start or start_day)
        except (UnknownTickerError, tushare_pro.SourceError, ValidationFailed, BadInputError) as exc:
            failures.append(TickerFailure(str(t), exc))
    if trading_facts and facts_from:
        refresh_trading_facts(client, store, facts_spans(store, facts_from, heads), end_day, reports)
    return reports, failures


