"""The trading rules' facts from tushare, stored under ``<home>/data/trading/<kind>.parquet``.

Three kinds, one Parquet file each, for every ticker fetched: ``stk_limit``
(the exchange's limit prices per day), ``suspend_d`` (suspensions) and
``namechange`` (names, whence the ST days), with tushare's field names and
dates as Timestamps. ``load_facts`` reads what is stored (None for a kind with
nothing), and a damaged file is one line (``CorruptFileError``).
``refresh_facts`` fetches a span for some tickers and merges it in, each file
replaced atomically under the store lock: rows of the fetched tickers and
span replace the stored ones (tushare revises announced suspensions), others
are kept.

A token without the points for an endpoint is no failure: that kind is
skipped for the rest of the call with one note, and the rules fall back
(limits by rule, suspensions from missing bars, no ST days). The calls are
few: ``suspend_d`` asks for up to ``CODES_PER_CALL`` tickers at once;
``stk_limit`` asks per ticker, or per day for the whole market when that is
fewer calls (a daily update of a universe); ``namechange`` asks a ticker's
whole history once, then only for the changes announced near the span.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecast.atomic import atomic_open
from forecast.data.calendar import CHINA_CALENDAR, TradingCalendar
from forecast.data.sources import tushare_pro
from forecast.data.trading_rules import board_of
from forecast.errors import CorruptFileError
from forecast.locks import hold_lock
from forecast.workspace import Workspace

STK_LIMIT = "stk_limit"
SUSPEND_D = "suspend_d"
NAMECHANGE = "namechange"
FACT_KINDS = (STK_LIMIT, SUSPEND_D, NAMECHANGE)
FIELDS = {STK_LIMIT: tushare_pro.STK_LIMIT_FIELDS, SUSPEND_D: tushare_pro.SUSPEND_D_FIELDS,
          NAMECHANGE: tushare_pro.NAMECHANGE_FIELDS}
KEYS = {STK_LIMIT: ["ts_code", "trade_date"], SUSPEND_D: ["ts_code", "trade_date", "suspend_type"],
        NAMECHANGE: ["ts_code", "start_date"]}
DATE_COLUMNS = ("trade_date", "start_date", "end_date", "ann_date")
PRICE_COLUMNS = ("pre_close", "up_limit", "down_limit")
CODES_PER_CALL = 100  # suspend_d takes several comma-joined codes; a hundred keeps the request small
STK_LIMIT_PAGES_PER_DAY = 2  # a whole market's day is ~7,000 rows: two pages of 5,800
ANNOUNCED_BEFORE = pd.Timedelta(days=31)  # a name change is announced days (rarely weeks) before it takes effect
FALLBACK = {STK_LIMIT: "limits by rule", SUSPEND_D: "suspensions from missing bars",
            NAMECHANGE: "no ST days known, ST names get the ordinary limit"}
_META_KEY = b"forecast"
_CALENDAR = TradingCalendar(CHINA_CALENDAR)


@dataclass(frozen=True)
class TradingFacts:
    """What is stored of each kind (None: nothing), in the shape ``trading_status.trading_status`` takes."""

    stk_limit: pd.DataFrame | None
    suspensions: pd.DataFrame | None
    names: pd.DataFrame | None


@dataclass(frozen=True)
class _Stored:
    frame: pd.DataFrame | None
    asked: frozenset[str]  # tickers refreshed at least once (namechange: whose whole history was fetched)


def load_facts(workspace: Workspace, tickers: Sequence[str] | None = None) -> TradingFacts:
    """Return the stored facts, of ``tickers`` only when given; a damaged file raises CorruptFileError."""
    wanted = None if tickers is None else {str(t) for t in tickers}
    if wanted is not None and not wanted:
        return TradingFacts(None, None, None)

    def read(kind: str) -> pd.DataFrame | None:
        frame = _read(workspace.trading_file(kind), only=wanted).frame
        return frame if frame is not None and len(frame) else None

    return TradingFacts(stk_limit=read(STK_LIMIT), suspensions=read(SUSPEND_D), names=read(NAMECHANGE))


def known_tickers(workspace: Workspace) -> frozenset[str]:
    """Return the tickers whose facts were ever refreshed (so a later refresh may ask for new days only)."""
    import pyarrow.parquet as pq

    asked: set[str] = set()
    for kind in FACT_KINDS:
        path = workspace.trading_file(kind)
        try:  # the footer only: the rows may be millions
            meta = json.loads((pq.read_schema(path).metadata or {}).get(_META_KEY, b"{}"))
        except Exception:  # none, or damaged: its tickers count as never refreshed
            continue
        asked.update(str(t) for t in meta.get("asked", []))
    return frozenset(asked)


def refresh_facts(client: tushare_pro.TushareClient, workspace: Workspace, tickers: Sequence[str], start,
                  end) -> list[str]:
    """Fetch the facts of ``tickers`` over [start, end] and merge them into the stored files; return notes.

    Only A-share stocks have facts: indices and other tickers are left out.
    A kind the token cannot read is skipped with a note. Any other failure
    (network, rate limit) raises SourceError; the kinds written before it stay.
    """
    codes = sorted({str(t) for t in tickers if board_of(str(t))})
    if not codes:
        return []
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    notes: list[str] = []
    for kind, fetch in ((STK_LIMIT, _fetch_stk_limit), (SUSPEND_D, _fetch_suspensions), (NAMECHANGE, _fetch_names)):
        try:
            rows, replaced, asked = fetch(client, workspace, codes, first, last)
        except tushare_pro.NoPointsError:
            notes.append(f"{kind}: this token cannot read it; {FALLBACK[kind]}")
            continue
        if _merge(workspace, kind, rows, replaced, asked):
            notes.append(f"{kind}: the stored file was unreadable and is replaced by these rows")
        notes.append(f"{kind}: {0 if rows is None else len(rows)} rows for {len(codes)} ticker(s)")
    return notes


# --- fetching: each returns (rows, which stored rows they replace, the tickers refreshed) ------------

def _fetch_stk_limit(client, workspace, codes: list[str], first: pd.Timestamp, last: pd.Timestamp):
    sessions = _CALENDAR.sessions_between(first, last)
    if STK_LIMIT_PAGES_PER_DAY * len(sessions) < len(codes):  # a few new days of many tickers: whole-market days
        days = [tushare_pro.fetch_stk_limit(client, None, day, day) for day in sessions]
        found = [d[d["ts_code"].isin(codes)] for d in days if len(d)]
    else:
        found = [f for f in (tushare_pro.fetch_stk_limit(client, code, first, last) for code in codes) if len(f)]
    rows = pd.concat(found, ignore_index=True) if found else None
    return rows, _in_span(codes, "trade_date", first, last), frozenset(codes)


def _fetch_suspensions(client, workspace, codes: list[str], first: pd.Timestamp, last: pd.Timestamp):
    batches = [codes[i: i + CODES_PER_CALL] for i in range(0, len(codes), CODES_PER_CALL)]
    found = [f for f in (tushare_pro.fetch_suspensions(client, ",".join(b), first, last) for b in batches) if len(f)]
    rows = pd.concat(found, ignore_index=True) if found else None
    return rows, _in_span(codes, "trade_date", first, last), frozenset(codes)


def _fetch_names(client, workspace, codes: list[str], first: pd.Timestamp, last: pd.Timestamp):
    asked = _read(workspace.trading_file(NAMECHANGE), quiet=True).asked
    new = [c for c in codes if c not in asked]
    known = [c for c in codes if c in asked]
    found = [f for f in (tushare_pro.fetch_name_changes(client, code) for code in new) if len(f)]
    if known:  # one call: every change announced near the span, kept for these tickers
        recent = tushare_pro.fetch_name_changes(client, None, announced_from=first - ANNOUNCED_BEFORE, announced_to=last)
        found.append(recent[recent["ts_code"].isin(known)])
    found = [f for f in found if len(f)]
    rows = pd.concat(found, ignore_index=True) if found else None

    def replaced(stored: pd.DataFrame) -> pd.Series:
        # a new ticker's whole history replaces its rows; a known one's changes replace the same names (by start)
        whole = stored["ts_code"].isin(new)
        if rows is None:
            return whole
        same = stored.set_index(KEYS[NAMECHANGE]).index.isin(rows.set_index(KEYS[NAMECHANGE]).index)
        return whole | pd.Series(same, index=stored.index)

    return rows, replaced, frozenset(new)


def _in_span(codes: list[str], column: str, first: pd.Timestamp, last: pd.Timestamp):
    def replaced(stored: pd.DataFrame) -> pd.Series:
        return stored["ts_code"].isin(codes) & stored[column].between(first, last)
    return replaced


# --- the files -------------------------------------------------------------------------------------

def _merge(workspace: Workspace, kind: str, rows: pd.DataFrame | None, replaced, asked: frozenset[str]) -> bool:
    """Merge fetched rows into ``kind``'s file under the store lock, replacing it atomically.

    Return True when the stored file was unreadable (it is then replaced by the fetched rows).
    """
    path = workspace.trading_file(kind)
    with hold_lock(workspace.store_lock, workspace.lock_timeout_s,
                   f"another forecast process is writing to {workspace.data_dir} "
                   f"(waited {workspace.lock_timeout_s:g} s); try again later"):
        stored = _read(path, quiet=True)
        damaged = stored.frame is None and path.is_file()
        parts = []
        if stored.frame is not None and len(stored.frame):
            parts.append(stored.frame[~replaced(stored.frame).to_numpy()])
        if rows is not None and len(rows):
            parts.append(rows)
        parts = [p for p in parts if len(p)]
        if not parts and stored.frame is None and not asked:
            return damaged  # nothing stored, nothing fetched: no empty file
        merged = pd.concat(parts, ignore_index=True) if parts else _empty(kind, stored.frame, rows)
        merged = (merged.drop_duplicates(KEYS[kind], keep="last")
                  .sort_values(KEYS[kind], ignore_index=True))
        _write(path, merged, {"kind": kind, "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                              "asked": sorted(stored.asked | asked)})
    return damaged


def _empty(kind: str, *frames: pd.DataFrame | None) -> pd.DataFrame:
    for frame in frames:
        if frame is not None:
            return frame.iloc[0:0]
    return pd.DataFrame(columns=FIELDS[kind].split(","))


def _write(path: Path, frame: pd.DataFrame, meta: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    # an empty or all-None column is written as type null, which a filter on read cannot compare: give it its type
    for i, name in enumerate(table.schema.names):
        if pa.types.is_null(table.schema.field(name).type):
            kind = pa.timestamp("ns") if name in DATE_COLUMNS else pa.float64() if name in PRICE_COLUMNS else pa.string()
            table = table.set_column(i, name, table.column(name).cast(kind))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
    with atomic_open(path) as handle:
        pq.write_table(table, handle)


def _read(path: Path, quiet: bool = False, only: set[str] | None = None) -> _Stored:
    """Return a stored file (the rows of ``only``'s tickers when given); none: (None, {}).

    Damaged: CorruptFileError, or with ``quiet`` (a refresh rewrites it) nothing stored.
    """
    import pyarrow.parquet as pq

    if not path.is_file():
        return _Stored(None, frozenset())
    try:
        # a universe's limit prices are millions of rows: read only the tickers asked for
        table = pq.read_table(path, filters=[("ts_code", "in", sorted(only))] if only else None)
        meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
        frame = table.to_pandas()
        if "ts_code" not in frame:
            raise ValueError("no ts_code column")
        return _Stored(frame, frozenset(str(t) for t in meta.get("asked", [])))
    except Exception as exc:  # damaged or foreign: pyarrow's, json's and our own errors alike
        if quiet:
            return _Stored(None, frozenset())
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise CorruptFileError(f"{path} cannot be read ({type(exc).__name__}: {reason}); remove it, and "
                               "forecast fetch fetches the trading facts again") from None

