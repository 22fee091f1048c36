"""The canonical bar frame and the maths of price adjustment.

Every source produces the same schema (one row per trading day, ascending):

=========  =========================================================
date       datetime64, tz-naive, midnight
open..close float prices, on the basis named by ``price_basis``
volume     float, in shares (not lots)
amount     float, in CNY (NaN where the source has none)
adj_factor float, tushare-style cumulative factor (NaN where unknown)
=========  =========================================================

``price_basis`` says how stored prices are adjusted: ``raw`` (with factors, so
qfq/hfq/none can be computed on read), or ``qfq``/``hfq``/``none`` as imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.errors import BadInputError

PRICE_COLUMNS = ["open", "high", "low", "close"]
STORED_COLUMNS = ["date", *PRICE_COLUMNS, "volume", "amount", "adj_factor"]
BAR_COLUMNS = ["date", *PRICE_COLUMNS, "volume", "amount"]
ADJUSTMENTS = ("qfq", "hfq", "none")
_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class Bars:
    """Daily bars of one ticker on one adjustment basis (columns BAR_COLUMNS)."""

    ticker: str
    adjust: str
    source: str
    frame: pd.DataFrame = field(repr=False)

    @property
    def first_date(self) -> pd.Timestamp:
        return self.frame["date"].iloc[0]

    @property
    def last_date(self) -> pd.Timestamp:
        return self.frame["date"].iloc[-1]

    def __len__(self) -> int:
        return len(self.frame)


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly STORED_COLUMNS, canonical dtypes, sorted by date."""
    if _is_conformed(frame):
        return frame  # the common case (frames read back from the store): no copy, no parsing
    out = pd.DataFrame(index=range(len(frame)))
    out["date"] = pd.to_datetime(frame["date"].to_numpy()).normalize().as_unit("ns")
    for col in STORED_COLUMNS[1:]:
        values = frame[col] if col in frame else np.nan
        out[col] = pd.to_numeric(pd.Series(values, index=frame.index), errors="coerce").to_numpy(dtype="float64")
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def collapse_duplicate_dates(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Return (frame with one row per date, rows dropped). The rule: the LAST row given for a date wins.

    A later row for the same day is a correction (a re-download, a revised
    bar), the same rule ``merge_rows`` applies when new rows meet stored ones.
    """
    frame = conform(frame)
    duplicated = frame["date"].duplicated(keep="last").to_numpy()
    if not duplicated.any():
        return frame, 0
    return frame[~duplicated].reset_index(drop=True), int(duplicated.sum())


def _is_conformed(frame: pd.DataFrame) -> bool:
    return (
        list(frame.columns) == STORED_COLUMNS
        and isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1
        and frame["date"].dtype == "datetime64[ns]"
        and all(frame[c].dtype == "float64" for c in STORED_COLUMNS[1:])
        and frame["date"].is_monotonic_increasing
        and bool((frame["date"].to_numpy().view("int64") % _NS_PER_DAY == 0).all())  # all at midnight
    )


def adjust_prices(stored: pd.DataFrame, price_basis: str, adjust: str) -> pd.DataFrame:
    """Return the stored frame's bars (BAR_COLUMNS) on the ``adjust`` basis.

    qfq = raw * f(t) / f(latest stored); hfq = raw * f(t); none = raw.
    Imported series whose raw prices are unknown only come on their own basis.
    """
    if adjust not in ADJUSTMENTS:
        raise BadInputError(f"unknown adjustment {adjust!r}; use one of {', '.join(ADJUSTMENTS)}")
    bars = stored[BAR_COLUMNS].copy()
    if price_basis != "raw":
        if adjust != price_basis:
            raise BadInputError(
                f"this series was imported already {price_basis}-adjusted; it can only be read with --adjust {price_basis}"
            )
        return bars
    if adjust == "none":
        return bars
    factors = stored["adj_factor"].ffill().bfill()
    if factors.isna().all():
        raise BadInputError("no adjustment factors are stored; read it with --adjust none")
    scale = factors if adjust == "hfq" else factors / factors.iloc[-1]
    for col in PRICE_COLUMNS:
        bars[col] = bars[col] * scale.to_numpy()
    return bars
