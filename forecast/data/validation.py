"""Checks run on every write to the store, reported as counts and examples."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from forecast.data.bars import PRICE_COLUMNS
from forecast.data.calendar import TradingCalendar, as_calendar
from forecast.data.tickers import Ticker
from forecast.errors import ValidationFailed

# A-share daily limits are 10 % (20 % on STAR/ChiNext, 30 % in Beijing); an
# adjusted close moving more than this in a day is worth a look.
JUMP_THRESHOLD = 0.35
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Finding:
    check: str
    count: int
    examples: list[str]  # ISO dates

    def describe(self) -> str:
        more = ", ..." if self.count > len(self.examples) else ""
        return f"{self.check}: {self.count} row(s), e.g. {', '.join(self.examples)}{more}"


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict:
        return {"rows": self.rows, "findings": [asdict(f) for f in self.findings]}

    @classmethod
    def from_dict(cls, data: dict) -> ValidationReport:
        return cls(rows=data["rows"], findings=[Finding(**f) for f in data["findings"]])


def _finding(check: str, dates: pd.Series, mask: np.ndarray) -> Finding | None:
    count = int(mask.sum())
    if count == 0:
        return None
    examples = [d.date().isoformat() for d in dates[mask].iloc[:MAX_EXAMPLES]]
    return Finding(check, count, examples)


def refuse_unusable(bars: pd.DataFrame, ticker: Ticker | str | None) -> None:
    """Raise ValidationFailed for rows no model can use, whatever --strict says.

    Infinite prices or volumes (an overflowing ``1e400``), and a series whose
    prices are all missing (an ``Adj Close`` of 0 makes every adjusted price
    NaN) are refused before anything is stored.
    """
    values = bars[[*PRICE_COLUMNS, "volume"]].to_numpy(dtype="float64")
    infinite = np.isinf(values).any(axis=1)
    if infinite.any():
        dates = ", ".join(d.date().isoformat() for d in bars["date"][infinite].iloc[:MAX_EXAMPLES])
        raise ValidationFailed(f"{ticker}: {int(infinite.sum())} row(s) hold an infinite or overflowing price or volume "
                               f"(e.g. {dates}); stored nothing")
    close = bars["close"].to_numpy(dtype="float64")
    if len(bars) and np.isnan(close).all():
        raise ValidationFailed(f"{ticker}: every close price is missing after adjustment (an adjustment factor of 0?); stored nothing")
    # A few non-positive qfq closes are real (a long-adjusted history can go below zero); all of them is a broken source.
    if len(bars) and (np.nan_to_num(close, nan=1.0) <= 0).all():
        raise ValidationFailed(f"{ticker}: every close price is zero or negative (e.g. {close[0]:g}); the source sent no "
                               "usable prices; stored nothing")


def _volume_if_known(bars: pd.DataFrame) -> list[str]:
    """["volume"] where some bar has one: a file without volume (a close-only CSV) is a layout, not a value missing on
    every row, and is not flagged on each of them."""
    return ["volume"] if bars["volume"].notna().any() else []


def validate_bars(bars: pd.DataFrame, ticker: Ticker | None, calendar: TradingCalendar | None = None) -> ValidationReport:
    """Return what is suspicious in ``bars`` (BAR_COLUMNS, any order of rows).

    Rows on non-trading days are judged by ``calendar`` (default: the ticker's
    rule, XSHG for China codes, business days otherwise).
    """
    sessions = calendar or as_calendar(ticker)
    dates = bars["date"].reset_index(drop=True)
    prices = bars[PRICE_COLUMNS].to_numpy(dtype="float64")
    close = bars["close"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        prev = np.concatenate([[np.nan], close[:-1]])
        change = np.where(prev > 0, close / prev - 1.0, np.nan)
    checks = [
        ("duplicate dates", dates.duplicated(keep=False).to_numpy()),
        ("non-positive close prices", close <= 0),
        ("other non-positive prices (open/high/low)", (prices <= 0).any(axis=1) & (close > 0)),
        ("high below low", (bars["high"] < bars["low"]).to_numpy()),
        ("negative volume", (bars["volume"] < 0).to_numpy()),
        ("missing values", bars[[*PRICE_COLUMNS, *_volume_if_known(bars)]].isna().any(axis=1).to_numpy()),
        (f"one-day moves over {JUMP_THRESHOLD:.0%}", np.abs(np.nan_to_num(change)) > JUMP_THRESHOLD),
        ("rows on non-trading days", ~sessions.is_session_mask(pd.DatetimeIndex(dates))),
        ("dates in the future", (dates > pd.Timestamp.now().normalize() + pd.Timedelta(days=1)).to_numpy()),
    ]
    findings = [f for name, mask in checks if (f := _finding(name, dates, np.asarray(mask))) is not None]
    return ValidationReport(rows=len(bars), findings=findings)
