"""Import daily bars from CSV files in the formats people actually have.

Detected by header:

* tushare legacy ``get_k_data``: unnamed index, ``date,open,close,high,low,volume,code``,
  qfq prices, volume in lots;
* tushare Pro ``daily`` dumps: ``ts_code,trade_date,...,vol,amount``, ``YYYYMMDD``
  dates, newest first, raw prices, lots and thousands of CNY;
* Yahoo-style ``Date,Open,High,Low,Close,Adj Close,Volume``;
* anything else through an explicit column mapping (``date=Day,close=Last``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.errors import BadInputError, CorruptFileError, DateFormatError, NotFoundError

LEGACY_COLUMNS = {"date", "open", "close", "high", "low", "volume", "code"}
PRO_COLUMNS = {"ts_code", "trade_date", "open", "high", "low", "close", "vol"}
YAHOO_COLUMNS = {"Date", "Open", "High", "Low", "Close", "Volume"}
CANONICAL_TARGETS = ("date", "open", "high", "low", "close", "volume", "amount")
TICKER_COLUMNS = ("ts_code", "ticker", "symbol", "Name")  # looked for in this order, then the same names in any case


@dataclass(frozen=True)
class CsvImport:
    """What an import produced: canonical rows (STORED_COLUMNS) and how to read them."""

    frame: pd.DataFrame
    layout: str  # legacy | pro | yahoo | generic
    price_basis: str  # qfq | none | raw (raw = factors are present)
    code_in_file: str | None


def parse_column_map(text: str | None) -> dict[str, str]:
    """Parse ``date=Day,close=Last`` into {canonical name: file column}."""
    if not text:
        return {}
    mapping = {}
    for part in text.split(","):
        if "=" not in part:
            raise BadInputError(f"bad --columns entry {part!r}; expected NAME=COLUMN, e.g. date=Day,close=Last")
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in CANONICAL_TARGETS:
            raise BadInputError(f"--columns: unknown field {key!r}; fields are {', '.join(CANONICAL_TARGETS)}")
        mapping[key] = value
    return mapping


_SEPARATED = re.compile(r"^\s*(\d{1,4})[-/.](\d{1,2})[-/.](\d{1,4})\s*$")


def infer_date_format(values: pd.Series) -> str:
    """Return a strptime format that reads every value, judged from the whole column.

    Day-first versus month-first is decided by any field above 12; if no row
    decides it, refuse rather than guess.
    """
    # the answer depends only on the distinct values, taken in the order they first appear (the examples in the
    # messages are the same): a long file of 3 M rows holds a few thousand dates, and a copy of each row costs GBs
    text = values.drop_duplicates().astype(str).str.strip().drop_duplicates()
    if text.str.fullmatch(r"\d{8}").all():
        return "%Y%m%d"
    parts = text.str.extract(_SEPARATED)
    if parts.isna().any().any():
        bad = text[parts.isna().any(axis=1)].iloc[0]
        raise DateFormatError(f"cannot read date {bad!r}; pass --date-format (e.g. %Y-%m-%d)")
    a, b, _ = (parts[i].astype(int) for i in range(3))
    separators = text.str.extract(r"\d([-/.])")[0]
    sep = separators.iloc[0]
    year_first, year_last = parts[0].str.len() == 4, parts[2].str.len() == 4
    if separators.nunique() > 1 or (not year_first.all() and not year_last.all() and (year_first | year_last).any()):
        other = text[(separators != sep) | (year_first != year_first.iloc[0])].iloc[0]
        raise DateFormatError(f"dates mix formats (e.g. {text.iloc[0]!r} and {other!r}); fix the file or pass --date-format")
    if year_first.all():
        return f"%Y{sep}%m{sep}%d"
    if not year_last.all():
        raise DateFormatError(f"two-digit years are ambiguous (e.g. {text.iloc[0]!r}); pass --date-format")
    first_is_day, second_is_day = (a > 12).any(), (b > 12).any()
    if first_is_day and second_is_day:
        raise DateFormatError("dates have days above 12 in both positions; pass --date-format")
    if first_is_day:
        return f"%d{sep}%m{sep}%Y"
    if second_is_day:
        return f"%m{sep}%d{sep}%Y"
    raise DateFormatError(
        f"dates like {text.iloc[0]!r} could be day-first or month-first and no row decides it; "
        f"pass --date-format %d{sep}%m{sep}%Y or %m{sep}%d{sep}%Y"
    )


def _parse_dates(values: pd.Series, date_format: str | None) -> pd.Series:
    fmt = date_format or infer_date_format(values)
    try:
        parsed = pd.to_datetime(values.astype(str).str.strip(), format=fmt)
        if parsed.isna().any():  # "nan", "" or "NaT" parse as NaT under an explicit format
            raise DateFormatError(f"cannot read date {values[parsed.isna()].iloc[0]!r}; every row needs a date")
        if ((parsed < pd.Timestamp.min) | (parsed > pd.Timestamp.max)).any():  # pandas may parse them at a coarser unit
            raise pd.errors.OutOfBoundsDatetime
        return parsed
    except pd.errors.OutOfBoundsDatetime:
        raise DateFormatError("dates must lie between 1677 and 2262 (pandas' range); fix the file's dates") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise DateFormatError(f"dates do not match {fmt!r}: {str(exc).splitlines()[0]}") from None


def _numeric(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna() & (frame[column].astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        number = int(frame.index[row]) + 1  # the file's data row: one ticker's rows of a long file keep their place
        raise CorruptFileError(f"{name}: column {column!r} has a non-number {frame[column].iloc[row]!r} in data row {number}")
    return values.astype("float64")


def _detect_layout(columns: list[str], mapping: dict[str, str]) -> str:
    names = set(columns)
    if mapping:
        return "generic"
    if names >= PRO_COLUMNS:
        return "pro"
    if names >= LEGACY_COLUMNS:
        return "legacy"
    if names >= YAHOO_COLUMNS:
        return "yahoo"
    lowered = {c.lower() for c in names}
    if {"date", "close"} <= lowered:
        return "generic"
    raise CorruptFileError(
        f"unrecognised columns {', '.join(columns[:8])}; pass --columns date=...,close=... to map them"
    )


def _generic_mapping(columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    lower = {c.lower(): c for c in columns}
    result = {k: lower[k] for k in CANONICAL_TARGETS if k in lower}
    result.update(mapping)
    for needed in ("date", "close"):
        if needed not in result:
            raise BadInputError(f"no {needed!r} column; map it with --columns {needed}=COLUMN")
    missing = [v for v in result.values() if v not in columns]
    if missing:
        raise BadInputError(f"--columns names {missing[0]!r}, which the file does not have (it has {', '.join(columns[:8])})")
    return result


def layout_of(columns: list[str], column_map: str | None = None) -> str:
    """Return the layout (legacy, pro, yahoo, generic) of a file with these columns, or raise what the file lacks."""
    mapping = parse_column_map(column_map)
    layout = _detect_layout(columns, mapping)
    if layout == "generic":
        _generic_mapping(columns, mapping)
    return layout


def find_ticker_column(columns: list[str], named: str | None = None) -> str | None:
    """Return the file's ticker column: ``named`` (which must exist), else the first of TICKER_COLUMNS present."""
    if named is not None:
        if named not in columns:
            raise BadInputError(f"--ticker-column {named!r}: the file has no such column (it has {', '.join(columns[:10])})")
        return named
    for name in TICKER_COLUMNS:
        if name in columns:
            return name
    lowered = {c.lower(): c for c in columns}
    return next((lowered[n.lower()] for n in TICKER_COLUMNS if n.lower() in lowered), None)


def _bom_encoding(path: Path) -> str | None:
    """UTF-16 when the file starts with its byte-order mark (Excel's "Unicode text"), else None (pandas' UTF-8)."""
    if path.suffix.lower() in (".gz", ".zip", ".bz2", ".xz"):
        return None
    with open(path, "rb") as handle:
        start = handle.read(2)
    return "utf-16" if start in (b"\xff\xfe", b"\xfe\xff") else None


COMPACT_TEXT = "string[pyarrow]"  # text held in Arrow buffers: a third of the memory of one Python str per field


def read_csv_rows(path: Path, compact: bool = False) -> pd.DataFrame:
    """Return a CSV file's rows as text (str column names, index = data row number from 0), or raise a one-line error.

    ``compact``: the columns are ``COMPACT_TEXT`` (missing values ``pd.NA``)
    instead of objects (missing values NaN): for a long file of millions of
    rows, whose slices go through ``plain_rows`` before ``bars_from_rows``.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no such file: {path}")
    dtype = COMPACT_TEXT if compact else str
    try:
        try:
            raw = pd.read_csv(path, dtype=dtype, skipinitialspace=True, encoding=_bom_encoding(path))
        except UnicodeDecodeError:  # not UTF-8: China exports are often GBK, which GB18030 reads
            raw = pd.read_csv(path, dtype=dtype, skipinitialspace=True, encoding="gb18030")
    except UnicodeDecodeError:
        raise CorruptFileError(f"{path.name} is not UTF-8, UTF-16 or GB18030 text (Latin-1?); save it as UTF-8, "
                               f"e.g. iconv -f latin1 -t utf-8 {path.name} > utf8.csv") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CorruptFileError(f"{path.name} is not a readable CSV: {str(exc).strip().splitlines()[0]}") from None
    except (EOFError, OSError) as exc:  # a truncated or damaged .gz
        raise CorruptFileError(f"{path.name} is not a readable CSV: {type(exc).__name__}: {exc}") from None
    if raw.empty:
        raise CorruptFileError(f"{path.name} has no data rows")
    if not isinstance(raw.index, pd.RangeIndex):  # pandas takes the extra leading fields of every row as an index
        extra = raw.index.nlevels
        raise CorruptFileError(f"{path.name}: its rows have {extra} field(s) more than its header names "
                               f"({len(raw.columns)}); fix the header or the rows")
    raw.columns = [str(c) for c in raw.columns]
    return raw


def plain_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of a ``compact`` read as ``read_csv_rows`` gives them by default: objects, NaN where a field is missing."""
    return rows.astype(object).where(rows.notna(), np.nan)


def read_bars_csv(path: Path, date_format: str | None = None, column_map: str | None = None) -> CsvImport:
    """Read one CSV file into canonical bars (not yet validated or stored)."""
    return bars_from_rows(read_csv_rows(path), Path(path).name, date_format=date_format, column_map=column_map)


def bars_from_rows(raw: pd.DataFrame, name: str, date_format: str | None = None, column_map: str | None = None) -> CsvImport:
    """Return canonical bars from CSV rows read as text (``read_csv_rows``); ``name`` labels the rows in messages.

    The rows of one ticker of a long-format file convert the same way as a
    whole single-ticker file.
    """
    columns = list(raw.columns)
    mapping = parse_column_map(column_map)
    layout = _detect_layout(columns, mapping)
    code = None
    factor = None
    if layout == "legacy":
        picked = {k: k for k in ("date", "open", "high", "low", "close", "volume")}
        volume_scale, amount_scale, basis = 100.0, 1.0, "qfq"
        code = raw["code"].dropna().iloc[0].strip() if raw["code"].notna().any() else None
    elif layout == "pro":
        picked = {"date": "trade_date", "open": "open", "high": "high", "low": "low", "close": "close", "volume": "vol"}
        if "amount" in columns:
            picked["amount"] = "amount"
        volume_scale, amount_scale, basis = 100.0, 1000.0, "none"
        code = raw["ts_code"].dropna().iloc[0].strip() if raw["ts_code"].notna().any() else None
        if "adj_factor" in columns:
            factor = _numeric(raw, "adj_factor", name)
            basis = "raw"
    elif layout == "yahoo":
        picked = {"date": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"}
        volume_scale, amount_scale, basis = 1.0, 1.0, "none"
        if "Adj Close" in columns:
            # Adj Close / Close is a factor relative to the newest bar, i.e. qfq-style.
            factor = _numeric(raw, "Adj Close", name) / _numeric(raw, "Close", name)
            basis = "raw"
    else:
        picked = _generic_mapping(columns, mapping)
        volume_scale, amount_scale, basis = 1.0, 1.0, "none"
    out = pd.DataFrame({"date": _parse_dates(raw[picked["date"]], date_format).to_numpy()})
    for column in ("open", "high", "low", "close", "volume", "amount"):
        if column in picked:
            out[column] = _numeric(raw, picked[column], name).to_numpy()
        elif column in ("open", "high", "low"):
            out[column] = _numeric(raw, picked["close"], name).to_numpy()  # close-only files: a flat bar
        else:
            out[column] = np.nan
    out["volume"] *= volume_scale
    out["amount"] *= amount_scale
    out["adj_factor"] = factor.to_numpy() if factor is not None else np.nan
    out = out.sort_values("date", kind="stable").reset_index(drop=True)
    return CsvImport(frame=out, layout=layout, price_basis=basis, code_in_file=code)
