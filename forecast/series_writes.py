"""Writing fetched rows into stored series: merge, validate, and commit many tickers per lock.

``commit_many`` is the write half of the nightly whole-market update and of
the backfill's commit. It holds the store lock once per batch of
``BATCH_TICKERS`` tickers (not once per ticker: 5,400 lock round trips cost
more than the writes), and reads each file under the lock, so rows another
process wrote since the fetch began are merged, not lost. Every file is still
replaced by one atomic rename: a reader sees a ticker's old file or its new
one, and a kill mid-batch leaves each file whole (the next run finishes it).

When every incoming date is after the stored last date (the nightly case),
the rows are appended to the stored Arrow table with no pandas round trip, and
only the new rows are validated, with the last stored row as context for the
one-day-move check; the stored findings are carried over. Anything else
(revised rows, a gap filled, a foreign file) goes through ``merge_rows`` and a
full validation, as a single-ticker fetch does.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from forecast.bars import PRICE_COLUMNS, STORED_COLUMNS, adjust_prices, collapse_duplicate_dates, conform
from forecast.calendar import TradingCalendar
from forecast.errors import BadInputError, CorruptFileError, ForecastError, NoDataError, ValidationFailed
from forecast.store import MarketStore, StoredSeries
from forecast.tickers import Ticker
from forecast.validation import MAX_EXAMPLES, Finding, ValidationReport, refuse_unusable, validate_bars

log = logging.getLogger(__name__)

BATCH_TICKERS = 256  # writes per hold of the store lock: short enough that a CSV import waits seconds, not minutes
_COMPARED = [*PRICE_COLUMNS, "volume"]
_FUTURE = "dates in the future"  # the one check whose verdict on stored rows changes with time


@dataclass
class FetchReport:
    ticker: str
    source: str
    new_rows: int = 0
    revised_rows: int = 0
    rows: int = 0
    first_date: str | None = None
    last_date: str | None = None
    calls: int = 0
    last_close: float | None = None
    adjust: str | None = None
    calendar: str | None = None  # the trading calendar the stored series follows (XSHG, XNYS, business-days, ...)
    notes: list[str] = field(default_factory=list)
    validation: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TickerFailure:
    ticker: str
    error: ForecastError


@dataclass
class Incoming:
    """One ticker's fetched rows (STORED_COLUMNS, nothing written yet) and the report they will fill."""

    ticker: Ticker
    rows: pd.DataFrame
    report: FetchReport
    note_factor_change: bool = False  # say so when the first new factor differs from the stored last one


def merge_rows(existing: pd.DataFrame | None, incoming: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Return (merged, new rows, revised rows); incoming rows win on the same date.

    Each side is first collapsed to one row per date (the last one), so a
    series stored with duplicates by an older version can still be merged.
    """
    incoming, _ = collapse_duplicate_dates(incoming)
    if existing is None or existing.empty:
        return incoming, len(incoming), 0
    existing, _ = collapse_duplicate_dates(existing)
    old = existing.set_index("date")
    new = incoming.set_index("date")
    common = old.index.intersection(new.index)
    before, after = old.loc[common, _COMPARED].to_numpy(), new.loc[common, _COMPARED].to_numpy()
    changed = ~np.isclose(before, after, rtol=1e-9, equal_nan=True).all(axis=1)
    merged = pd.concat([old.drop(index=common), new]).sort_index().reset_index()
    return merged, int(new.index.difference(old.index).size), int(changed.sum())


def check_series(store_frame: pd.DataFrame, price_basis: str, ticker: Ticker, strict: bool,
                 calendar: TradingCalendar) -> ValidationReport:
    default_adjust = "qfq" if price_basis == "raw" else price_basis
    adjusted = adjust_prices(conform(store_frame), price_basis, default_adjust)
    refuse_unusable(adjusted, ticker)
    report = validate_bars(adjusted, ticker, calendar)
    _refuse_if_strict(report, ticker, strict)
    for finding in report.findings:
        log.info("%s: %s", ticker, finding.describe())
    return report


def _refuse_if_strict(report: ValidationReport, ticker: Ticker, strict: bool) -> None:
    if strict and not report.ok:
        raise ValidationFailed(f"{ticker}: " + "; ".join(f.describe() for f in report.findings) + " (stored nothing: --strict)")


def save_series(store: MarketStore, ticker: Ticker, frame: pd.DataFrame, source: str, basis: str, report: FetchReport,
                strict: bool, calendar: TradingCalendar, origin: str | None = None) -> None:
    """Validate and write a whole series (call inside ``store.writing()``), filling ``report``."""
    frame, dropped = collapse_duplicate_dates(frame)
    if dropped:
        report.notes.append(f"{dropped} row(s) repeated an earlier date; kept the last row of each date")
    validation = check_series(frame, basis, ticker, strict, calendar)
    store.write(ticker, frame, source, basis, validation, calendar=calendar, origin=origin)
    _fill(report, calendar, len(frame), frame["date"].iloc[0], frame["date"].iloc[-1], validation)


def _fill(report: FetchReport, calendar: TradingCalendar, rows: int, first, last, validation: ValidationReport) -> None:
    report.calendar = calendar.name
    report.rows = rows
    report.first_date = pd.Timestamp(first).date().isoformat()
    report.last_date = pd.Timestamp(last).date().isoformat()
    report.validation = validation.to_dict()


def read_stored(store: MarketStore, ticker: Ticker | str, report: FetchReport | None = None) -> StoredSeries | None:
    """Return the stored series, or None when there is none or it is unreadable (then a re-fetch replaces it)."""
    if not store.has(ticker):
        return None
    try:
        return store.read(ticker)
    except CorruptFileError as exc:
        log.warning("%s: %s; replacing it", ticker, exc)
        if report is not None:
            report.notes.append("replaced an unreadable stored file (it was not a series this version can read)")
        return None


def commit_many(store: MarketStore, items: list[Incoming], *, strict: bool, calendar: TradingCalendar,
                source: str = "tushare") -> tuple[list[FetchReport], list[TickerFailure]]:
    """Merge each item's rows onto its stored series and write it, holding the store lock per batch.

    A series stored from another source is left as it is (a failure of its
    own). A failing ticker (validation under ``strict``) fails alone.
    """
    reports: list[FetchReport] = []
    failures: list[TickerFailure] = []
    for begin in range(0, len(items), BATCH_TICKERS):
        with store.writing():
            for item in items[begin: begin + BATCH_TICKERS]:
                try:
                    reports.append(_commit_one(store, item, strict, calendar, source))
                except ForecastError as exc:
                    failures.append(TickerFailure(str(item.ticker), exc))
    return reports, failures


def _commit_one(store: MarketStore, item: Incoming, strict: bool, calendar: TradingCalendar, source: str) -> FetchReport:
    report = item.report
    try:
        table, meta = store.read_table(item.ticker)
    except NoDataError:
        table, meta = None, {}
    except CorruptFileError as exc:
        log.warning("%s: %s; replacing it", item.ticker, exc)
        report.notes.append("replaced an unreadable stored file (it was not a series this version can read)")
        table, meta = None, {}
    if table is not None and meta["source"] != source:
        raise BadInputError(f"{item.ticker} is stored from {meta['source']}; left as it is")
    rows, _ = collapse_duplicate_dates(item.rows)
    if table is not None and item.note_factor_change and len(rows):
        last_factor = table.column("adj_factor")[-1].as_py()
        if last_factor is not None and not np.isclose(rows["adj_factor"].iloc[0], last_factor):
            report.notes.append("adjustment factor changed (dividend or split): qfq prices are rebased on read")
    if table is not None and _append(store, item.ticker, table, meta, rows, report, strict, calendar):
        return report
    stored = table.to_pandas() if table is not None else None
    merged, report.new_rows, report.revised_rows = merge_rows(stored, rows)
    merged["adj_factor"] = merged["adj_factor"].ffill()  # a factor not yet published: the last one holds
    save_series(store, item.ticker, merged, source, "raw", report, strict, calendar)
    return report


def _canonical_schema():
    import pyarrow as pa

    return pa.schema([pa.field("date", pa.timestamp("ns")), *[pa.field(c, pa.float64()) for c in STORED_COLUMNS[1:]]])


def _append(store: MarketStore, ticker: Ticker, table, meta: dict, rows: pd.DataFrame, report: FetchReport, strict: bool,
            calendar: TradingCalendar) -> bool:
    """Append ``rows`` to the stored table and write it, validating only them; False when this fast path does not apply."""
    import pyarrow as pa

    stored = table.select(STORED_COLUMNS).replace_schema_metadata(None)
    old_report = ValidationReport.from_dict(meta["validation"])
    if (not len(rows) or meta["price_basis"] != "raw" or meta.get("calendar") != calendar.name
            or stored.schema != _canonical_schema() or any(f.check == _FUTURE for f in old_report.findings)):
        return False
    context = stored.slice(stored.num_rows - 1).to_pandas()
    last_date, last_close, last_factor = context["date"].iloc[0], context["close"].iloc[0], context["adj_factor"].iloc[0]
    if not (rows["date"].iloc[0] > last_date and last_close > 0 and np.isfinite(last_factor) and last_factor > 0
            and calendar.is_session_mask(pd.DatetimeIndex([last_date]))[0]):
        return False  # revised or older rows, or a context row that would raise findings of its own: the full path
    new = rows.copy()
    new["adj_factor"] = pd.concat([pd.Series([last_factor]), new["adj_factor"]], ignore_index=True).ffill().iloc[1:].to_numpy()
    # the context row is the stored last bar made clean (it was judged when stored): only its close matters, for the move check
    clean = context.assign(open=last_close, high=last_close, low=last_close, volume=1.0)
    adjusted = adjust_prices(pd.concat([clean, new], ignore_index=True), "raw", "qfq")
    refuse_unusable(adjusted, ticker)
    validation = _carried(old_report, validate_bars(adjusted, ticker, calendar), stored.num_rows + len(new))
    _refuse_if_strict(validation, ticker, strict)
    appended = pa.concat_tables([stored, pa.Table.from_pandas(new, schema=_canonical_schema(), preserve_index=False)
                                 .replace_schema_metadata(None)])
    store.write_table(ticker, appended, {**meta, "validation": validation.to_dict()})
    report.new_rows, report.revised_rows = len(new), 0
    _fill(report, calendar, appended.num_rows, stored.column("date")[0].as_py(), new["date"].iloc[-1], validation)
    return True


def _carried(old: ValidationReport, new: ValidationReport, rows: int) -> ValidationReport:
    """Stored findings plus the new rows' ones, as one validation of the whole series would count them."""
    merged: dict[str, Finding] = {f.check: f for f in old.findings}
    for finding in new.findings:
        log.info("%s", finding.describe())
        before = merged.get(finding.check)
        merged[finding.check] = finding if before is None else Finding(
            finding.check, before.count + finding.count, (before.examples + finding.examples)[:MAX_EXAMPLES])
    return ValidationReport(rows=rows, findings=list(merged.values()))
