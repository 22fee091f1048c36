"""Many tickers' bars in one frame: the whole-universe read a global model trains on.

``load_panel`` reads each ticker's Parquet file with pyarrow on a few threads
(Parquet decoding releases the GIL), adjusts prices per ticker with numpy on
the same rules as ``MarketStore.read_bars``, concatenates the Arrow tables and
converts to pandas once. The result is indexed by (date, ticker), sorted by
date then ticker: qlib's (datetime, instrument) layout.

A file that cannot be read, or cannot be served on the asked basis (an
imported qfq series asked for hfq), is skipped and named in ``problems``, and
a warning says how many: one corrupt file must not stop training on 5,000.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.bars import ADJUSTMENTS, BAR_COLUMNS, PRICE_COLUMNS
from forecast.errors import BadInputError, ForecastError
from forecast.store import MarketStore

log = logging.getLogger(__name__)

PANEL_COLUMNS = BAR_COLUMNS[1:]  # open, high, low, close, volume, amount
INDEX_NAMES = ["date", "ticker"]
_READ_THREADS = 8  # file reads wait on the disk as much as on the CPU: a few more threads than cores help


@dataclass
class Panel:
    frame: pd.DataFrame  # (date, ticker) MultiIndex, PANEL_COLUMNS
    problems: list[str] = field(default_factory=list)  # "TICKER: why it was skipped"


def _basis_for(price_basis: str, adjust: str) -> str:
    """The basis ``read_bars`` serves: an imported series comes only on its own basis, and qfq asks for it."""
    if price_basis != "raw" and adjust == "qfq":
        return price_basis
    if price_basis != "raw" and adjust != price_basis:
        raise BadInputError(f"imported already {price_basis}-adjusted; it can only be read with --adjust {price_basis}")
    return adjust


def _scale(factors: np.ndarray, basis: str) -> np.ndarray | None:
    """The multiplier of raw prices on ``basis`` (None: none needed), as ``bars.adjust_prices`` computes it."""
    if basis not in ("qfq", "hfq"):
        return None
    filled = pd.Series(factors).ffill().bfill().to_numpy()
    if np.isnan(filled).all():
        raise BadInputError("no adjustment factors are stored; read it with --adjust none")
    return filled if basis == "hfq" else filled / filled[-1]


def _one(store: MarketStore, ticker: str, adjust: str, start, end):
    """Return the ticker's adjusted rows in [start, end] as an Arrow table (date, ticker, PANEL_COLUMNS)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table, meta = store.read_table(ticker)
    raw = meta["price_basis"] == "raw"
    basis = _basis_for(str(meta["price_basis"]), adjust)
    dates = table.column("date").cast(pa.timestamp("ns"))
    scale = _scale(table.column("adj_factor").to_numpy(zero_copy_only=False).astype("float64"), basis) if raw else None
    keep = None
    if start is not None:
        keep = pc.greater_equal(dates, pa.scalar(pd.Timestamp(start), pa.timestamp("ns")))
    if end is not None:
        before = pc.less_equal(dates, pa.scalar(pd.Timestamp(end), pa.timestamp("ns")))
        keep = before if keep is None else pc.and_(keep, before)
    columns = {"date": dates}
    for name in PANEL_COLUMNS:
        values = table.column(name).to_numpy(zero_copy_only=False).astype("float64")
        if scale is not None and name in PRICE_COLUMNS:
            values = values * scale
        columns[name] = pa.array(values)
    out = pa.table(columns)
    if keep is not None:
        out = out.filter(keep)
    return out.append_column("ticker", pa.array(np.full(out.num_rows, ticker, dtype=object), pa.string()))


def load_panel(store: MarketStore, tickers: list[str] | None = None, *, start=None, end=None, adjust: str = "qfq",
               threads: int | None = None) -> Panel:
    """Read ``tickers`` (None: every stored one) into one (date, ticker)-indexed frame; see the module docstring."""
    import pyarrow as pa

    if adjust not in ADJUSTMENTS:
        raise BadInputError(f"unknown adjustment {adjust!r}; use one of {', '.join(ADJUSTMENTS)}")
    names = store.tickers() if tickers is None else [str(t) for t in tickers]
    problems: list[str] = []

    def read(ticker: str):
        try:
            return _one(store, ticker, adjust, start, end)
        except ForecastError as exc:
            return f"{ticker}: {exc}"

    workers = threads or min(_READ_THREADS, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(read, names))
    tables = []
    for result in results:
        if isinstance(result, str):
            problems.append(result)
        elif result.num_rows:
            tables.append(result)
    if problems:
        log.warning("read_panel skipped %d of %d ticker(s): %s", len(problems), len(names),
                    "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
    if not tables:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in PANEL_COLUMNS},
                             index=pd.MultiIndex.from_arrays([pd.DatetimeIndex([]), pd.Index([], dtype=object)], names=INDEX_NAMES))
        return Panel(empty, problems)
    table = pa.concat_tables(tables)
    table = table.sort_by([("date", "ascending"), ("ticker", "ascending")])  # Arrow sorts in C++, on all cores
    frame = table.select(["date", "ticker", *PANEL_COLUMNS]).to_pandas(split_blocks=True, self_destruct=True)
    return Panel(frame.set_index(INDEX_NAMES), problems)
