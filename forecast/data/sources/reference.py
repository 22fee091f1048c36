"""tushare's reference data: listings (``stock_basic``), index constituents (``index_weight``)
and the exchange's calendar (``trade_cal``). Index bars are bars: ``tushare_pro`` serves them.

Each function calls the retrying ``TushareClient`` (so errors are classified as
for ``daily``: AuthError for a bad token or too few points, naming the
endpoint; RateLimitError; SourceError) and returns a frame with fixed columns
and parsed types. Paging is by ``offset``: these endpoints answer at most a
few thousand rows per call, and an offset page never splits or repeats a day.
"""

from __future__ import annotations

import pandas as pd

from forecast.data.sources.tushare_pro import TushareClient
from forecast.data.sources.tushare_wire import tushare_date
from forecast.errors import SourceError

STOCK_BASIC_FIELDS = "ts_code,symbol,name,area,industry,market,list_status,list_date,delist_date"
INDEX_WEIGHT_FIELDS = "index_code,con_code,trade_date,weight"
TRADE_CAL_FIELDS = "exchange,cal_date,is_open,pretrade_date"
LIST_STATUSES = ("L", "D", "P")  # listed, delisted, paused (suspended from listing)
LISTING_COLUMNS = ["ts_code", "name", "industry", "market", "list_status", "list_date", "delist_date"]
CONSTITUENT_COLUMNS = ["index_code", "con_code", "trade_date", "weight"]


def _dates(column: pd.Series) -> pd.Series:
    """Parse YYYYMMDD text (None for no date) into Timestamps (NaT)."""
    return pd.to_datetime(column.astype("string").str.strip().replace("", pd.NA), format="%Y%m%d", errors="coerce")


def _unreadable(api_name: str, exc: Exception) -> SourceError:
    return SourceError(f"tushare sent '{api_name}' rows this version cannot read ({type(exc).__name__}: {exc}); try again later")


def fetch_listings(client: TushareClient) -> pd.DataFrame:
    """Return every A-share ever listed: LISTING_COLUMNS, one row per ts_code (3 calls: L, D, P)."""
    parts = [client.query_paged("stock_basic", STOCK_BASIC_FIELDS, list_status=status, exchange="") for status in LIST_STATUSES]
    frame = pd.concat([p for p in parts if len(p.columns)], ignore_index=True)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c.endswith("_date") else object) for c in LISTING_COLUMNS})
    try:
        out = pd.DataFrame({
            "ts_code": frame["ts_code"].astype(str),
            "name": frame["name"].fillna("").astype(str),
            "industry": frame["industry"].fillna("").astype(str) if "industry" in frame else "",
            "market": frame["market"].fillna("").astype(str) if "market" in frame else "",
            "list_status": frame["list_status"].astype(str),
            "list_date": _dates(frame["list_date"]),
            "delist_date": _dates(frame["delist_date"]) if "delist_date" in frame else pd.NaT,
        })
    except (KeyError, ValueError, TypeError) as exc:
        raise _unreadable("stock_basic", exc) from None
    return out.drop_duplicates("ts_code", keep="first").sort_values("ts_code").reset_index(drop=True)


def fetch_index_weights(client: TushareClient, index_code: str, start, end) -> pd.DataFrame:
    """Return the index's constituent snapshots in [start, end]: CONSTITUENT_COLUMNS, oldest first.

    tushare publishes one snapshot a month (the weights at a month's first or
    last trading day). Queried a year at a time: a year of CSI 500 is 6,000 rows.
    """
    parts = []
    begin, finish = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    year_start = begin
    while year_start <= finish:
        year_end = min(finish, pd.Timestamp(year=year_start.year, month=12, day=31))
        parts.append(client.query_paged("index_weight", INDEX_WEIGHT_FIELDS, index_code=index_code,
                                 start_date=tushare_date(year_start), end_date=tushare_date(year_end)))
        year_start = year_end + pd.Timedelta(days=1)
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    if frame is None:
        return pd.DataFrame({"index_code": pd.Series(dtype=object), "con_code": pd.Series(dtype=object),
                             "trade_date": pd.Series(dtype="datetime64[ns]"), "weight": pd.Series(dtype=float)})
    try:
        out = pd.DataFrame({
            "index_code": frame["index_code"].astype(str),
            "con_code": frame["con_code"].astype(str),
            "trade_date": _dates(frame["trade_date"]),
            "weight": pd.to_numeric(frame["weight"], errors="coerce"),
        })
    except (KeyError, ValueError, TypeError) as exc:
        raise _unreadable("index_weight", exc) from None
    return out.drop_duplicates(["con_code", "trade_date"]).sort_values(["trade_date", "con_code"]).reset_index(drop=True)


def fetch_trade_calendar(client: TushareClient, start, end, exchange: str = "SSE") -> pd.DataFrame:
    """Return ``cal_date`` (Timestamp) and ``is_open`` (bool) for every calendar day in [start, end], oldest first."""
    frame = client.query_paged("trade_cal", TRADE_CAL_FIELDS, exchange=exchange, start_date=tushare_date(start), end_date=tushare_date(end))
    if frame.empty:
        return pd.DataFrame({"cal_date": pd.Series(dtype="datetime64[ns]"), "is_open": pd.Series(dtype=bool)})
    try:
        out = pd.DataFrame({"cal_date": _dates(frame["cal_date"]), "is_open": frame["is_open"].astype(int) == 1})
    except (KeyError, ValueError, TypeError) as exc:
        raise _unreadable("trade_cal", exc) from None
    if out["cal_date"].isna().any():
        raise _unreadable("trade_cal", ValueError("a cal_date that is not YYYYMMDD"))
    return out.drop_duplicates("cal_date").sort_values("cal_date").reset_index(drop=True)
