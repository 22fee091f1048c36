"""The local market-data store under ``<home>/data/``.

One Parquet file per ticker (``data/bars/600519.SH.parquet``) holds the rows
as the source gave them (raw prices plus adjustment factors where known) and,
in the Parquet schema metadata, where they came from and what validation
found. One file per ticker means one atomic rename per write: readers never
see a half-written series, and no lock is needed to read.

Writers take ``data/.lock`` so that overlapping runs (two cron jobs) queue up
instead of losing each other's rows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from forecast.atomic import AtomicBatch, atomic_open
from forecast.data.bars import STORED_COLUMNS, Bars, adjust_prices, conform
from forecast.data.calendar import (
    CHINA_CALENDAR,
    SERIES_CALENDAR_ATTR,
    TradingCalendar,
    default_calendar,
    get_calendar,
    use_trade_calendar,
)
from forecast.data.tickers import Ticker, parse_ticker
from forecast.data.validation import ValidationReport
from forecast.errors import CorruptFileError, ForecastError, NoDataError
from forecast.locks import hold_lock
from forecast.workspace import Workspace

_META_KEY = b"forecast"
_READ_THREADS = 4  # small files: decoding releases the GIL, and the disk waits overlap
TRADE_CAL_EXCHANGE = "SSE"  # tushare's name for the Shanghai exchange, whose calendar XSHG series follow


@dataclass(frozen=True)
class StoredSeries:
    """One ticker's stored rows (STORED_COLUMNS) and what is known about them."""

    ticker: str
    frame: pd.DataFrame
    source: str
    price_basis: str
    updated_at: str
    validation: ValidationReport
    calendar: str | None = None  # the trading calendar its dates follow; None: a file from before calendars were recorded
    origin: str | None = None  # the file a CSV import came from, as an absolute path

    @property
    def trading_calendar(self) -> TradingCalendar:
        """Return the recorded calendar, else the old rule: XSHG for China codes, business days otherwise."""
        if self.calendar:
            return TradingCalendar(self.calendar)  # validated when written
        try:
            return default_calendar(parse_ticker(self.ticker))
        except ForecastError:  # a file named by no ticker this version parses
            return default_calendar(None)

    def bars(self, adjust: str) -> Bars:
        frame = adjust_prices(self.frame, self.price_basis, adjust)
        frame.attrs[SERIES_CALENDAR_ATTR] = self.trading_calendar.name  # forecast dates follow the series' calendar
        return Bars(self.ticker, adjust, self.source, frame)

    def summary(self) -> dict:
        dates = self.frame["date"]
        return {
            "ticker": self.ticker,
            "rows": len(self.frame),
            "first_date": dates.iloc[0].date().isoformat() if len(dates) else None,
            "last_date": dates.iloc[-1].date().isoformat() if len(dates) else None,
            "source": self.source,
            "origin": self.origin,
            "calendar": self.trading_calendar.name,
            "price_basis": self.price_basis,
            "adjust": "qfq" if self.price_basis == "raw" else self.price_basis,
            "adjustments_available": ["qfq", "hfq", "none"] if self.price_basis == "raw" else [self.price_basis],
            "updated_at": self.updated_at,
            "validation": self.validation.to_dict(),
        }


def _check_stored_schema(table) -> None:
    """Raise ValueError unless ``table`` has the columns and types this store writes, and at least one row."""
    import pyarrow as pa

    _check_schema(table.schema, table.num_rows)
    dates = table.column("date").cast(pa.timestamp("ns"))  # raises on dates pandas cannot hold (after 2262)
    del dates


def _check_schema(schema, rows: int) -> None:
    """Raise ValueError unless ``schema`` has the columns and types this store writes and ``rows`` > 0."""
    import pyarrow as pa

    names = set(schema.names)
    missing = [c for c in STORED_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)}")
    if not pa.types.is_timestamp(schema.field("date").type):
        raise ValueError("date is not a timestamp column")
    for column in STORED_COLUMNS[1:]:
        if not (pa.types.is_floating(schema.field(column).type) or pa.types.is_integer(schema.field(column).type)):
            raise ValueError(f"{column} is not numeric")
    if rows == 0:
        raise ValueError("no rows")


@dataclass(frozen=True)
class StoredHead:
    """What a stored file says about itself, read from its footer alone (no rows): cheap at 5,400 tickers."""

    ticker: str
    source: str
    price_basis: str
    updated_at: str
    rows: int
    first_date: pd.Timestamp
    last_date: pd.Timestamp
    calendar: str | None
    validation: ValidationReport


def _date_bounds(meta, path: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and last date from the date column's statistics, else from that column alone."""
    import pyarrow.parquet as pq

    position = meta.schema.to_arrow_schema().get_field_index("date")
    lows, highs = [], []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(position).statistics
        if stats is None or not stats.has_min_max:
            dates = pq.read_table(path, columns=["date"]).column("date").to_pandas()
            return pd.Timestamp(dates.min()), pd.Timestamp(dates.max())
        lows.append(pd.Timestamp(stats.min))
        highs.append(pd.Timestamp(stats.max))
    return min(lows), max(highs)


def recorded_source(path: Path) -> str:
    """Return the source a stored file says it came from, reading only its schema (raises when unreadable)."""
    import pyarrow.parquet as pq

    return str(json.loads((pq.read_schema(path).metadata or {})[_META_KEY])["source"])


class MarketStore:
    def __init__(self, home: Workspace | Path | str | None = None, lock_timeout_s: float | None = None):
        self.workspace = Workspace.at(home, lock_timeout_s)
        self.home = self.workspace.root
        self.root = self.workspace.data_dir
        self.lock_timeout_s = self.workspace.lock_timeout_s
        # the exchange's own calendar cached in this home (tushare trade_cal) answers first for XSHG
        use_trade_calendar(CHINA_CALENDAR, self.workspace.trade_calendar_file(TRADE_CAL_EXCHANGE))

    def path_for(self, ticker: Ticker | str) -> Path:
        return self.workspace.bars_file(ticker)

    def writing(self):
        """Hold the store's write lock, waiting at most ``lock_timeout_s``."""
        return hold_lock(self.workspace.store_lock, self.lock_timeout_s,
                         f"another forecast process is writing to {self.root} (waited {self.lock_timeout_s:g} s); try again later")

    def has(self, ticker: Ticker | str) -> bool:
        return self.path_for(ticker).is_file()

    def tickers(self) -> list[str]:
        folder = self.workspace.bars_dir
        if not folder.is_dir():
            return []
        return sorted(p.name[: -len(".parquet")] for p in folder.glob("*.parquet") if not p.name.startswith("."))

    def read(self, ticker: Ticker | str) -> StoredSeries:
        """Return the stored series, or raise NoDataError if there is none."""
        table, meta = self.read_table(ticker)
        try:
            return StoredSeries(
                ticker=str(ticker),
                frame=table.to_pandas(),
                source=str(meta["source"]),
                price_basis=str(meta["price_basis"]),
                updated_at=str(meta["updated_at"]),
                validation=ValidationReport.from_dict(meta["validation"]),
                calendar=str(meta["calendar"]) if meta.get("calendar") else None,
                origin=str(meta["origin"]) if meta.get("origin") else None,
            )
        except Exception as exc:  # a file not written by us, or damaged: say which, not a traceback
            raise CorruptFileError(f"stored file {self.path_for(ticker)} is unreadable ({type(exc).__name__}); re-fetch {ticker}") from None

    def read_table(self, ticker: Ticker | str):
        """Return (the stored pyarrow table, its metadata dict) with no pandas round trip; raise as ``read``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path_for(ticker)
        if not path.is_file():
            raise NoDataError(f"no stored data for {ticker}; run: forecast fetch {ticker}")
        try:
            with open(path, "rb") as handle:  # one read of the whole small file: pyarrow's own small reads of it cost 0.34 ms a file, not 0.2
                data = handle.read()
            # ParquetFile, not pq.read_table: the dataset layer behind read_table costs ~10x the decoding of one small file
            with pq.ParquetFile(pa.py_buffer(data)) as parquet:
                table = parquet.read(use_threads=False)  # one small file: threads cost more than they save
            meta = json.loads(table.schema.metadata[_META_KEY])
            _check_stored_schema(table)
            if not {"source", "price_basis", "updated_at", "validation"} <= meta.keys():
                raise ValueError("metadata without its source, basis or validation")  # not a file this store wrote
            return table, meta
        except Exception as exc:  # a file not written by us, or damaged: say which, not a traceback
            raise CorruptFileError(f"stored file {path} is unreadable ({type(exc).__name__}); re-fetch {ticker}") from None

    def head(self, ticker: Ticker | str) -> StoredHead:
        """Return the stored series' metadata, row count and date span without reading its rows.

        Raises NoDataError when nothing is stored and CorruptFileError when the
        file is not one this store wrote (the same files ``read`` refuses).
        """
        import pyarrow.parquet as pq

        path = self.path_for(ticker)
        if not path.is_file():
            raise NoDataError(f"no stored data for {ticker}; run: forecast fetch {ticker}")
        try:
            footer = pq.read_metadata(path)
            schema = footer.schema.to_arrow_schema()
            _check_schema(schema, footer.num_rows)
            meta = json.loads((schema.metadata or {})[_META_KEY])
            first, last = _date_bounds(footer, path)
            return StoredHead(
                ticker=str(ticker), source=str(meta["source"]), price_basis=str(meta["price_basis"]),
                updated_at=str(meta["updated_at"]), rows=footer.num_rows, first_date=first, last_date=last,
                calendar=str(meta["calendar"]) if meta.get("calendar") else None,
                validation=ValidationReport.from_dict(meta["validation"]),
            )
        except Exception as exc:  # as read(): a file not written by us, or damaged
            raise CorruptFileError(f"stored file {path} is unreadable ({type(exc).__name__}); re-fetch {ticker}") from None

    def read_bars(self, ticker: Ticker | str, adjust: str = "qfq") -> Bars:
        """Return the ticker's bars on the ``adjust`` basis (qfq against the newest stored factor)."""
        return self._on_basis(self.read(ticker), adjust)

    @staticmethod
    def _on_basis(stored: StoredSeries, adjust: str) -> Bars:
        if stored.price_basis != "raw" and adjust == "qfq":
            adjust = stored.price_basis  # an imported series only comes on its own basis
        return stored.bars(adjust)

    def describe(self, ticker: Ticker | str, adjust: str = "qfq") -> dict:
        """Return the series' summary plus its last bar on the ``adjust`` basis (``data show``)."""
        stored = self.read(ticker)
        summary = stored.summary()
        bars = self._on_basis(stored, adjust)
        summary["adjust"] = bars.adjust
        last = bars.frame.iloc[-1].to_dict()
        summary["last_bar"] = {k: (last[k].date().isoformat() if k == "date" else float(last[k])) for k in bars.frame.columns}
        return summary

    def write(self, ticker: Ticker | str, frame: pd.DataFrame, source: str, price_basis: str, validation: ValidationReport,
              calendar: TradingCalendar | str | None = None, origin: str | None = None) -> None:
        """Atomically replace the ticker's series. Call inside ``writing()``.

        ``calendar`` (default: the ticker's rule, XSHG for China codes, else
        business days) and ``origin`` (the imported file) go into the metadata.
        """
        self.write_table(ticker, *series_table(ticker, frame, source, price_basis, validation, calendar, origin))

    def write_table(self, ticker: Ticker | str, table, meta: dict) -> None:
        """Atomically replace the ticker's file with ``table`` (STORED_COLUMNS) and ``meta`` (stamped now). Call inside ``writing()``."""

        stamped = _stamped(table, meta, _now())
        with atomic_open(self.path_for(ticker)) as handle:
            _write_parquet(stamped, handle)

    def batch_writes(self) -> TableBatch:
        """Return a batch of file replacements: ``with store.batch_writes() as batch: batch.write_table(...)``. Call inside ``writing()``.

        Each ``write_table`` starts writing and fsyncing its file on a thread at
        once; leaving the block renames them all and fsyncs the folder once
        (``atomic.AtomicBatch``): each file is still replaced by one atomic
        rename, old or new after a kill, never torn.
        """
        self.workspace.bars_dir.mkdir(parents=True, exist_ok=True)
        return TableBatch(self)

    def read_tables(self, tickers: list) -> Iterator:
        """Yield ``read_table``'s answer per ticker, in order: (table, meta), or the NoDataError/CorruptFileError it raised.

        Parquet decoding releases the GIL, so a few threads read a batch in
        about the time of its slowest share.
        """
        def one(ticker):
            try:
                return self.read_table(ticker)
            except (NoDataError, CorruptFileError) as exc:
                return exc

        if len(tickers) < 2:
            yield from (one(t) for t in tickers)
            return
        with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
            yield from pool.map(one, tickers)  # in order, each as soon as it is read: the caller works while the rest are read


class TableBatch(AtomicBatch):
    """Tickers' files replaced together (see ``MarketStore.batch_writes``)."""

    def __init__(self, store: MarketStore):
        super().__init__()
        self._store = store
        self._stamp = _now()

    def write_table(self, ticker: Ticker | str, table, meta: dict) -> None:
        """Start replacing the ticker's file with ``table`` and ``meta``, as ``MarketStore.write_table`` would."""
        self.add(self._store.path_for(ticker), partial(_write_parquet, _stamped(table, meta, self._stamp)))


def series_table(ticker: Ticker | str, frame: pd.DataFrame, source: str, price_basis: str, validation: ValidationReport,
                 calendar: TradingCalendar | str | None = None, origin: str | None = None) -> tuple:
    """Return (Arrow table, metadata) of a whole series as ``MarketStore.write`` stores it."""
    import pyarrow as pa

    if calendar is None:
        calendar = default_calendar(ticker if isinstance(ticker, Ticker) else parse_ticker(str(ticker)))
    table = pa.Table.from_pandas(conform(frame), preserve_index=False)
    meta = {
        "ticker": str(ticker),
        "source": source,
        "price_basis": price_basis,
        "calendar": calendar.name if isinstance(calendar, TradingCalendar) else get_calendar(calendar).name,
        "origin": origin,
        "validation": validation.to_dict(),
    }
    return table, meta


def _write_parquet(table, handle) -> None:
    import pyarrow.parquet as pq

    # No dictionary encoding: prices and volumes are nearly all distinct, so building a dictionary and then
    # falling back to plain costs 3x the write for a bigger file.
    pq.write_table(table, handle, use_dictionary=False)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _stamped(table, meta: dict, updated_at: str):
    meta = {**meta, "updated_at": updated_at}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
