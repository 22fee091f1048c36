"""Writing fetched rows into stored series: merge, validate, and commit many tickers per lock.

``commit_many`` is the write half of the nightly whole-market update and of
the backfill's commit. It holds the store lock once per batch of
``BATCH_TICKERS`` tickers (not once per ticker: 5,400 lock round trips cost
more than the writes), and reads each file under the lock (a batch on a few
threads), so rows another process wrote since the fetch began are merged, not
lost. A batch's new files are written and fsynced together, then renamed, then
the folder is fsynced once (``atomic.AtomicBatch``): each file is still
replaced by one atomic rename, so a reader sees a ticker's old file or its new
one, and a kill mid-batch leaves each file whole (the next run finishes it).

When every incoming date is after the stored last date (the nightly case),
the rows are appended to the stored Arrow table with no pandas round trip, and
only the new rows are validated, with the last stored row as context for the
one-day-move check; the stored findings are carried over. A ticker with no
stored series (a backfill) is written the same way. The validation of these
rows is first a numpy screen (``_Screen``: the checks of ``validate_bars``,
exactly); only a ticker it flags pays for the pandas validation, so the stored
findings read as on the per-ticker path. Anything else (revised rows, a gap
filled, a foreign file) goes through ``merge_rows`` and a full validation, as
a single-ticker fetch does.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from forecast.data.bars import PRICE_COLUMNS, STORED_COLUMNS, adjust_prices, collapse_duplicate_dates, conform
from forecast.data.calendar import TradingCalendar
from forecast.data.store import MarketStore, StoredSeries, series_table
from forecast.data.tickers import Ticker
from forecast.data.validation import JUMP_THRESHOLD, MAX_EXAMPLES, Finding, ValidationReport, refuse_unusable, validate_bars
from forecast.errors import BadInputError, CorruptFileError, ForecastError, NoDataError, ValidationFailed

log = logging.getLogger(__name__)

BATCH_TICKERS = 256  # writes per hold of the store lock: short enough that a CSV import waits seconds, not minutes
_COMPARED = [*PRICE_COLUMNS, "volume"]
_FUTURE = "dates in the future"
_NS_PER_DAY = 86_400 * 10**9
_CANONICAL_DTYPES = ["datetime64[ns]", *["float64"] * (len(STORED_COLUMNS) - 1)]  # the one check whose verdict on stored rows changes with time


@dataclass
class FetchReport:
    ticker: str
    source: str
    new_rows: int = 0
    revised_rows: int = 0
    dropped_rows: int = 0  # stored dates a whole-file import did not hold: gone from the series (--replace)
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
    store.write_table(ticker, *checked_series(ticker, frame, source, basis, report, strict, calendar, origin))


def checked_series(ticker: Ticker, frame: pd.DataFrame, source: str, basis: str, report: FetchReport, strict: bool,
                   calendar: TradingCalendar, origin: str | None = None) -> tuple:
    """Return (table, meta) of a whole validated series as the store writes it, filling ``report``; raise to refuse."""
    frame, dropped = collapse_duplicate_dates(frame)
    if dropped:
        report.notes.append(f"{dropped} row(s) repeated an earlier date; kept the last row of each date")
    validation = check_series(frame, basis, ticker, strict, calendar)
    _fill(report, calendar, len(frame), frame["date"].iloc[0], frame["date"].iloc[-1], validation)
    return series_table(ticker, frame, source, basis, validation, calendar, origin)


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
    own). A failing ticker (validation under ``strict``) fails alone. Per
    batch: the files are read on a few threads, each new series is built in
    memory and handed to a thread that writes and fsyncs it, and leaving the
    batch renames them all (``store.batch_writes``: one atomic rename per file,
    one folder fsync per batch).
    """
    reports: list[FetchReport] = []
    failures: list[TickerFailure] = []
    screen = _Screen(calendar)
    for batch in _batches(items):
        with store.writing(), store.batch_writes() as writes:
            for item, stored in zip(batch, store.read_tables([i.ticker for i in batch])):
                try:
                    table, meta = _new_series(item, stored, strict, calendar, source, screen)
                except ForecastError as exc:
                    failures.append(TickerFailure(str(item.ticker), exc))
                    continue
                writes.write_table(item.ticker, table, meta)
                reports.append(item.report)
    return reports, failures


def _batches(items: list[Incoming]) -> Iterator[list[Incoming]]:
    """Split ``items`` into batches of at most BATCH_TICKERS holding each ticker once (a repeat waits for the next batch)."""
    batch: list[Incoming] = []
    seen: set[str] = set()
    for item in items:
        if len(batch) == BATCH_TICKERS or str(item.ticker) in seen:
            yield batch
            batch, seen = [], set()
        batch.append(item)
        seen.add(str(item.ticker))
    if batch:
        yield batch


def _new_series(item: Incoming, stored, strict: bool, calendar: TradingCalendar, source: str, screen: _Screen) -> tuple:
    """Return (table, meta) of the ticker's series with the item's rows merged in, filling its report; raise to refuse."""
    report = item.report
    table, meta = None, {}
    if isinstance(stored, CorruptFileError):
        log.warning("%s: %s; replacing it", item.ticker, stored)
        report.notes.append("replaced an unreadable stored file (it was not a series this version can read)")
    elif not isinstance(stored, NoDataError):
        table, meta = stored
    if table is not None and meta["source"] != source:
        raise BadInputError(f"{item.ticker} is stored from {meta['source']}; left as it is")
    rows = _collapsed(item.rows)
    if table is not None and item.note_factor_change and len(rows):
        last_factor = table.column("adj_factor")[-1].as_py()
        if last_factor is not None and not np.isclose(rows["adj_factor"].iloc[0], last_factor):
            report.notes.append("adjustment factor changed (dividend or split): qfq prices are rebased on read")
    written = (_append(item.ticker, table, meta, rows, report, strict, calendar, screen) if table is not None
               else _fresh(item.ticker, rows, report, source, calendar, screen))
    if written is not None:
        return written
    previous = table.to_pandas() if table is not None else None
    merged, report.new_rows, report.revised_rows = merge_rows(previous, rows)
    merged["adj_factor"] = merged["adj_factor"].ffill()  # a factor not yet published: the last one holds
    return checked_series(item.ticker, merged, source, "raw", report, strict, calendar)


def _collapsed(rows: pd.DataFrame) -> pd.DataFrame:
    """``collapse_duplicate_dates(rows)``, with no pandas work in the common case: canonical columns, dates strictly rising at midnight."""
    if list(rows.columns) == STORED_COLUMNS and [str(d) for d in rows.dtypes] == _CANONICAL_DTYPES:
        ns = rows["date"].to_numpy().view("int64")
        if bool((np.diff(ns) > 0).all() and (ns % _NS_PER_DAY == 0).all()):
            return rows  # any index: the paths below read columns, and conform() renumbers what it keeps
    return collapse_duplicate_dates(rows)[0]


@functools.cache
def _canonical_schema():
    import pyarrow as pa

    return pa.schema([pa.field("date", pa.timestamp("ns")), *[pa.field(c, pa.float64()) for c in STORED_COLUMNS[1:]]])


class _Screen:
    """The validation checks of ``validate_bars`` on the new rows of an append, in numpy, per ticker.

    Exact, not approximate: it computes the qfq prices as ``adjust_prices``
    does and applies the same masks, so a clean screen means ``validate_bars``
    would find nothing; a flagged ticker gets the full pandas validation (the
    stored findings then read exactly as on the per-ticker path).
    """

    def __init__(self, calendar: TradingCalendar):
        self.calendar = calendar
        self.future_after = (pd.Timestamp.now().normalize() + pd.Timedelta(days=1)).value
        self._sessions: dict[int, bool] = {}

    def is_session(self, days_ns: np.ndarray) -> np.ndarray:
        """The calendar's verdict per day, asked once per distinct day of the whole commit (5,400 tickers share one)."""
        days = days_ns.tolist()
        unknown = sorted({d for d in days if d not in self._sessions})
        if unknown:
            mask = self.calendar.is_session_mask(pd.DatetimeIndex(np.asarray(unknown, dtype="datetime64[ns]")))
            self._sessions.update(zip(unknown, (bool(m) for m in mask)))
        return np.fromiter((self._sessions[d] for d in days), dtype=bool, count=len(days))

    def clean(self, days_ns: np.ndarray, prices: np.ndarray, volume: np.ndarray, factors: np.ndarray,
              last_close: float | None) -> bool:
        """True when none of the rows would raise a finding or a refusal.

        prices: (n, 4) raw open/high/low/close; volume: (n,); factors: filled,
        (n + 1,) with the stored last factor first when ``last_close`` (the
        stored last close, the context of the first move) is given, else (n,).
        """
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            scale = factors / factors[-1]  # as adjust_prices divides them, the context row's factor included
            adjusted = prices * scale[-len(prices):, None]
            close = adjusted[:, 3] if last_close is None else np.concatenate([[last_close * scale[0]], adjusted[:, 3]])
            change = close[1:] / close[:-1] - 1.0
        values = np.column_stack([adjusted, volume])
        return bool(np.isfinite(values).all() and (adjusted > 0).all() and (adjusted[:, 1] >= adjusted[:, 2]).all()
                    and np.isfinite(close).all() and (np.abs(change) <= JUMP_THRESHOLD).all()
                    and (days_ns <= self.future_after).all() and self.is_session(days_ns).all())


def _append(ticker: Ticker, table, meta: dict, rows: pd.DataFrame, report: FetchReport, strict: bool,
            calendar: TradingCalendar, screen: _Screen) -> tuple | None:
    """Return (table, meta) with ``rows`` appended to the stored table, validating only them; None when this fast path does not apply."""
    import pyarrow as pa

    stored = table.select(STORED_COLUMNS).replace_schema_metadata(None)
    old_report = ValidationReport.from_dict(meta["validation"])
    if (not len(rows) or meta["price_basis"] != "raw" or meta.get("calendar") != calendar.name
            or stored.schema != _canonical_schema() or any(f.check == _FUTURE for f in old_report.findings)):
        return None
    last = stored.num_rows - 1
    last_ns = stored.column("date")[last].value
    last_close, last_factor = stored.column("close")[last].as_py(), stored.column("adj_factor")[last].as_py()
    days_ns = rows["date"].to_numpy().view("int64")
    if not (days_ns[0] > last_ns and last_close is not None and last_close > 0 and last_factor is not None
            and np.isfinite(last_factor) and last_factor > 0 and screen.is_session(np.asarray([last_ns]))[0]):
        return None  # revised or older rows, or a context row that would raise findings of its own: the full path
    new = _float_columns(rows)
    new["adj_factor"] = _filled(np.concatenate([[last_factor], new["adj_factor"]]))[1:]
    prices = np.column_stack([new[c] for c in PRICE_COLUMNS])
    if screen.clean(days_ns, prices, new["volume"], np.concatenate([[last_factor], new["adj_factor"]]), last_close):
        validation = _carried(old_report, ValidationReport(len(rows), []), stored.num_rows + len(rows))
    else:
        validation = _validate_appended(ticker, stored, rows, new, old_report, calendar)
    _refuse_if_strict(validation, ticker, strict)
    appended = pa.concat_tables([stored, _arrow(days_ns, new)])
    report.new_rows, report.revised_rows = len(rows), 0
    _fill(report, calendar, appended.num_rows, stored.column("date")[0].value, days_ns[-1], validation)
    return appended, {**meta, "validation": validation.to_dict()}


def _float_columns(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The stored float columns of ``rows`` as numpy arrays, in one conversion (a pandas column access costs ~0.1 ms;
    eight a ticker were a sixth of a 5,400-ticker nightly commit)."""
    block = rows[list(STORED_COLUMNS[1:])].to_numpy(dtype="float64")
    return {c: np.ascontiguousarray(block[:, i]) for i, c in enumerate(STORED_COLUMNS[1:])}


def _filled(values: np.ndarray) -> np.ndarray:
    """``values`` with each NaN replaced by the last number before it (pandas' ffill), in numpy."""
    missing = np.isnan(values)
    if not missing.any():
        return values
    last = np.where(~missing, np.arange(len(values)), 0)
    return values[np.maximum.accumulate(last)]


def _arrow(days_ns: np.ndarray, columns: dict[str, np.ndarray]):
    """The rows as an Arrow table of the canonical schema: dates (int64 ns) and the float columns, no pandas."""
    import pyarrow as pa

    return pa.table({"date": pa.array(days_ns.view("datetime64[ns]"), pa.timestamp("ns")),
                     **{c: pa.array(columns[c], pa.float64()) for c in STORED_COLUMNS[1:]}}, schema=_canonical_schema())


def _fresh(ticker: Ticker, rows: pd.DataFrame, report: FetchReport, source: str, calendar: TradingCalendar,
           screen: _Screen) -> tuple | None:
    """Return (table, meta) of a first series whose rows the screen finds clean (a backfill's common case); None: the full path."""

    if not len(rows):
        return None
    days_ns = rows["date"].to_numpy().view("int64")
    new = _float_columns(rows)
    new["adj_factor"] = _filled(new["adj_factor"])  # stored forward-filled: a factor not yet published, the last one holds
    factors = _filled(new["adj_factor"][::-1])[::-1] if np.isnan(new["adj_factor"]).any() else new["adj_factor"]  # and read back-filled
    if not screen.clean(days_ns, np.column_stack([new[c] for c in PRICE_COLUMNS]), new["volume"], factors, None):
        return None
    validation = ValidationReport(len(rows), [])
    report.new_rows, report.revised_rows = len(rows), 0
    _fill(report, calendar, len(rows), days_ns[0], days_ns[-1], validation)
    return _arrow(days_ns, new), {"ticker": str(ticker), "source": source, "price_basis": "raw", "calendar": calendar.name, "origin": None,
                   "validation": validation.to_dict()}


def _validate_appended(ticker: Ticker, stored, rows: pd.DataFrame, new: dict, old_report: ValidationReport,
                       calendar: TradingCalendar) -> ValidationReport:
    """The full validation of the new rows, with the stored last bar as context for the one-day-move check."""
    context = stored.slice(stored.num_rows - 1).to_pandas()
    last_close = context["close"].iloc[0]
    # the context row is the stored last bar made clean (it was judged when stored): only its close matters, for the move check
    clean = context.assign(open=last_close, high=last_close, low=last_close, volume=1.0)
    fresh = pd.DataFrame({"date": rows["date"].to_numpy(), **new})
    adjusted = adjust_prices(pd.concat([clean, fresh], ignore_index=True), "raw", "qfq")
    refuse_unusable(adjusted, ticker)
    return _carried(old_report, validate_bars(adjusted, ticker, calendar), stored.num_rows + len(rows))


def _carried(old: ValidationReport, new: ValidationReport, rows: int) -> ValidationReport:
    """Stored findings plus the new rows' ones, as one validation of the whole series would count them."""
    merged: dict[str, Finding] = {f.check: f for f in old.findings}
    for finding in new.findings:
        log.info("%s", finding.describe())
        before = merged.get(finding.check)
        merged[finding.check] = finding if before is None else Finding(
            finding.check, before.count + finding.count, (before.examples + finding.examples)[:MAX_EXAMPLES])
    return ValidationReport(rows=rows, findings=list(merged.values()))
