"""Long-format CSV import: one file holding many tickers, each stored as its own series.

The file is a tushare ``daily`` dump across many stocks (``ts_code,trade_date,
open,high,low,close,vol,amount``, maybe ``adj_factor``), a US-style file
(``date,open,high,low,close,volume,Name``, as Kaggle's S&P 500 set), or any
layout ``csv_file`` reads, plus a ticker column: the first of ``csv_file.TICKER_COLUMNS``
present, or the one named.

What it promises: each ticker's rows are converted, validated and written
exactly as a single-ticker import of them would be (``fetching.import_csv``:
the same checks, the same shrink guard, the same atomic write under the store
lock, ``fetching.store_csv_import``: whole or not at all). A ticker that cannot be imported (a code that is not a ticker, a
non-number, a date that cannot be read, ``--strict`` findings) is refused on
its own with a one-line reason; the others go on. One summary covers them all.
A file whose ticker column names a single ticker is a single-ticker file and
is imported as one, unchanged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecast.data.calendar import CalendarChoice, get_calendar
from forecast.data.fetching import import_csv, store_csv_import
from forecast.data.series_writes import FetchReport
from forecast.data.sources.csv_file import bars_from_rows, find_ticker_column, infer_date_format, layout_of, plain_rows, read_csv_rows
from forecast.data.store import MarketStore
from forecast.data.tickers import Ticker, parse_ticker
from forecast.data.validation import ValidationReport
from forecast.errors import BadInputError, DateFormatError, ForecastError

NO_TICKER = "(no ticker)"


@dataclass(frozen=True)
class Refusal:
    """A ticker of the file that was not stored, and why (one line)."""

    ticker: str
    reason: str
    exit_code: int
    rows: int


@dataclass
class LongImport:
    """What one long-format import did: a report per stored ticker, a refusal per other one."""

    file: str
    ticker_column: str | None
    reports: list[FetchReport] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    single: bool = False  # the file named one ticker: it was imported as a single-ticker file

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.reports)

    def examples(self, check: str, limit: int = 3) -> list[str]:
        """Where a validation finding was seen: up to ``limit`` ``TICKER DATE`` pairs, in ticker order."""
        found = []
        for report in sorted(self.reports, key=lambda r: r.ticker):
            for finding in ValidationReport.from_dict(report.validation).findings if report.validation else []:
                if finding.check == check:
                    found += [f"{report.ticker} {day}" for day in finding.examples]
        return found[:limit]

    def problems(self) -> list[tuple[str, int, int]]:
        """Return (check, tickers, rows) for each validation finding across the stored tickers, most rows first."""
        tickers: Counter[str] = Counter()
        rows: Counter[str] = Counter()
        for report in self.reports:
            if report.validation:
                for finding in ValidationReport.from_dict(report.validation).findings:
                    tickers[finding.check] += 1
                    rows[finding.check] += finding.count
        return sorted(((check, tickers[check], rows[check]) for check in rows), key=lambda p: (-p[2], p[0]))

    def summary(self) -> dict:
        return {
            "file": self.file, "ticker_column": self.ticker_column, "tickers_imported": len(self.reports),
            "rows": self.rows, "new_rows": sum(r.new_rows for r in self.reports),
            "revised_rows": sum(r.revised_rows for r in self.reports),
            "problems": [{"check": c, "tickers": t, "rows": n, "examples": self.examples(c)} for c, t, n in self.problems()],
            "refused": [{"ticker": r.ticker, "rows": r.rows, "error": r.reason, "exit_code": r.exit_code} for r in self.refused],
        }


def import_long_csv(store: MarketStore, path: Path, *, ticker_column: str | None = None, date_format: str | None = None,
                    column_map: str | None = None, strict: bool = False, replace: bool = False,
                    calendar: str | None = None) -> LongImport:
    """Import every ticker of a long-format CSV file; return what was stored and what was refused.

    Raises only for the file as a whole (missing, unreadable, no ticker column and no ticker in it).
    """
    path = Path(path)
    raw = read_csv_rows(path, compact=True)  # 200 MB of CSV: about 1.5 GB as Python strings, a third of it as Arrow text
    column = find_ticker_column(list(raw.columns), ticker_column)
    codes = raw[column].fillna("").str.strip() if column is not None else None
    if codes is None or (ticker_column is None and codes[codes != ""].nunique() <= 1):
        report = import_csv(store, None, path, date_format=date_format, column_map=column_map, strict=strict,
                            replace=replace, calendar=calendar)
        return LongImport(path.name, column, reports=[report], single=True)
    layout_of(list(raw.columns), column_map)  # a file-wide problem (no close column) is one error, not one per ticker
    result = LongImport(path.name, column)
    groups, unreadable = _tickers_of(codes)
    for text, rows in unreadable.items():
        result.refused.append(Refusal(text or NO_TICKER, rows[1], int(BadInputError.exit_code), len(rows[0])))
    fmt = date_format or _file_date_format(raw, column_map)  # one reading of the dates for the whole file, when it decides
    chosen = CalendarChoice(get_calendar(calendar), "given with --calendar", inferred=False) if calendar else None
    for ticker, index in groups.items():
        try:
            imported = bars_from_rows(plain_rows(raw.loc[index]), f"{path.name} [{ticker}]", fmt, column_map)
            result.reports.append(store_csv_import(store, ticker, imported, source="csv", origin=str(path.resolve()), strict=strict,
                                                   replace=replace, chosen=chosen))
        except ForecastError as exc:
            result.refused.append(Refusal(str(ticker), str(exc), int(exc.exit_code), len(index)))
    return result


def _tickers_of(codes: pd.Series) -> tuple[dict[Ticker, pd.Index], dict[str, tuple[pd.Index, str]]]:
    """Return the rows of each ticker (600519 and 600519.SH are one), and of each text that is no ticker, with why."""
    groups: dict[Ticker, list[pd.Index]] = {}
    unreadable: dict[str, tuple[pd.Index, str]] = {}
    for text, index in codes.groupby(codes, sort=True).groups.items():
        try:
            if not text:
                raise BadInputError(f"{len(index)} row(s) have no ticker in the ticker column")
            ticker = parse_ticker(str(text))
        except BadInputError as exc:  # also an ambiguous bare code: refused, never guessed
            unreadable[str(text)] = (pd.Index(index), str(exc))
            continue
        groups.setdefault(ticker, []).append(pd.Index(index))
    return {t: parts[0].append(parts[1:]).sort_values() for t, parts in groups.items()}, unreadable


def _file_date_format(raw: pd.DataFrame, column_map: str | None) -> str | None:
    """Return the date format that reads the whole file's date column; None (each ticker decides) when it does not."""
    from forecast.data.sources.csv_file import PRO_COLUMNS, YAHOO_COLUMNS, parse_column_map

    mapped = parse_column_map(column_map).get("date")
    names = set(raw.columns)
    date_column = mapped or ("trade_date" if names >= PRO_COLUMNS else "Date" if names >= YAHOO_COLUMNS else None)
    date_column = date_column or next((c for c in raw.columns if c.lower() == "date"), None)
    if date_column is None or date_column not in names:
        return None
    try:
        return infer_date_format(raw[date_column].dropna())
    except DateFormatError:
        return None
