"""tushare's wire format in the library's terms: request dates, ``daily`` rows as canonical bars, fact rows typed.

No network (``tushare_pro`` asks; this reads what came back). ``tushare_date``
writes a day as tushare does (YYYYMMDD); ``to_canonical`` joins ``daily`` rows
with their ``adj_factor`` rows and converts units (lots -> shares, kCNY ->
CNY); ``span_params`` is a span's request params; ``dated_rows`` keeps exactly the
fields asked for and reads their YYYYMMDD columns as Timestamps. A reply this
version cannot read is a one-line SourceError, never a half-converted frame.
"""

from __future__ import annotations

import pandas as pd

from forecast.errors import SourceError


def tushare_date(day) -> str:
    """Return a day as tushare writes dates in requests and rows (YYYYMMDD)."""
    return pd.Timestamp(day).strftime("%Y%m%d")


def to_canonical(daily: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    """Join daily rows with their factors and convert units (lots -> shares, kCNY -> CNY)."""
    if daily.empty:
        return pd.DataFrame(columns=["ts_code", "date", "open", "high", "low", "close", "volume", "amount", "adj_factor"])
    try:
        return _converted(daily, factors)
    except (KeyError, ValueError, TypeError) as exc:  # a reply without a column, or text where numbers belong
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""  # pandas appends lines of advice
        raise SourceError(f"tushare sent a reply this version cannot read ({type(exc).__name__}: {first_line}); "
                          "try again later") from None


def _converted(daily: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    merged = daily.merge(factors[["ts_code", "trade_date", "adj_factor"]], on=["ts_code", "trade_date"], how="left")
    out = pd.DataFrame(
        {
            "ts_code": merged["ts_code"].astype(str),
            "date": pd.to_datetime(merged["trade_date"].astype(str), format="%Y%m%d"),
            "open": merged["open"].astype(float),
            "high": merged["high"].astype(float),
            "low": merged["low"].astype(float),
            "close": merged["close"].astype(float),
            "volume": merged["vol"].astype(float) * 100.0,
            "amount": merged["amount"].astype(float) * 1000.0,
            "adj_factor": pd.to_numeric(merged["adj_factor"], errors="coerce"),
        }
    )
    return out.sort_values(["ts_code", "date"]).reset_index(drop=True)


def span_params(ts_code: str | None, start, end) -> dict[str, str]:
    """The params of a span; one day of the whole market asks by ``trade_date``, as tushare's examples do."""
    span = {"start_date": tushare_date(start), "end_date": tushare_date(end)}
    if ts_code:
        return {"ts_code": ts_code, **span}
    return {"trade_date": span["start_date"]} if span["start_date"] == span["end_date"] else span


def dated_rows(frame: pd.DataFrame, fields: str, date_columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """Return ``frame`` with exactly ``fields`` as columns and its YYYYMMDD columns as Timestamps (NaT for none)."""
    columns = fields.split(",")
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in date_columns else object) for c in columns})
    try:
        out = frame[columns].copy()
        for column in date_columns:
            text = out[column].astype(object).where(out[column].notna(), None)
            out[column] = pd.to_datetime(text, format="%Y%m%d", errors="raise")
        out["ts_code"] = out["ts_code"].astype(str)
        return out.reset_index(drop=True)
    except (KeyError, ValueError, TypeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SourceError(f"tushare sent {what} rows this version cannot read ({type(exc).__name__}: {first_line}); "
                          "try again later") from None
