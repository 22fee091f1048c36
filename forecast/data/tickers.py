"""Ticker normalisation: ``600519``, ``sh600519``, ``600519.sh`` -> ``600519.SH``.

China A-share codes are six digits plus an exchange suffix. The exchange is
implied by the leading digits. Indices are known by rule (``Ticker.is_index``):
SSE indices are 000xxx.SH (SSE stocks are 60x/68x, funds 5xx), SZSE indices
399xxx.SZ, Beijing indices 899xxx.BJ, and tushare files the China Securities
Index company's own indices under ``.CSI`` (930050.CSI).

A bare 000xxx code is in principle both an SSE index and an SZSE stock. It is
read as the stock, except for the indices users type by number (CSI 300 is
``000300``; ``COMMON_INDICES``): with the cached listing of A-shares at hand
(``listed``), such a code is the index when no SZSE stock has it, and refused
with both readings when one does; without it, it is refused with both readings.
Anything that is not a China code (``AAPL``, ``SPX``, ``^GSPC``) is kept,
upper-cased, for CSV imports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from forecast.errors import AmbiguousTickerError, BadInputError

# The SSE/CSI indices that users type by number, with the SZSE stock of the same digits
# (its name as of 2026, for the message when no cached listing names it). The listing
# decides whether the stock still exists; every other bare 000xxx code is read as the stock.
COMMON_INDICES = {
    "000001": ("SSE Composite index", "Ping An Bank"),
    "000002": ("SSE A-share index", "Vanke A"),
    "000009": ("SSE 380 index", "China Baoan"),
    "000010": ("SSE 180 index", "Meili Cloud"),
    "000016": ("SSE 50 index", "Konka Group"),
    "000300": ("CSI 300 index", "(SZSE code 000300)"),
    "000852": ("CSI 1000 index", "(SZSE code 000852)"),
    "000905": ("CSI 500 index", "(SZSE code 000905)"),
}

_SUFFIXED = re.compile(r"^(\d{6})\.(SH|SZ|BJ|CSI)$")
_PREFIXED = re.compile(r"^(SH|SZ|BJ)\.?(\d{6})$")
_BARE = re.compile(r"^\d{6}$")
_OTHER = re.compile(r"^[\^A-Z][A-Z0-9.\-=^]{0,14}$")


@dataclass(frozen=True)
class Ticker:
    """A normalised symbol. ``exchange`` is SH/SZ/BJ (CSI for the index company's own indices) for China codes, else None."""

    symbol: str
    exchange: str | None

    @property
    def is_china(self) -> bool:
        return self.exchange is not None

    @property
    def is_index(self) -> bool:
        """True for an index code: 000xxx.SH, 399xxx.SZ, 899xxx.BJ or any .CSI code (tushare's ``index_daily``)."""
        code = self.symbol[:6]
        return {"SH": code.startswith("000"), "SZ": code.startswith("399"), "BJ": code.startswith("899"),
                "CSI": True}.get(self.exchange or "", False)

    def __str__(self) -> str:
        return self.symbol


def exchange_for_code(code: str) -> str:
    """Return SH, SZ or BJ for a bare six-digit code, by its leading digits."""
    if code.startswith(("6", "5", "9")) and not code.startswith("920"):
        return "SH"
    if code.startswith(("0", "3", "1", "2")):
        return "SZ"
    if code.startswith(("4", "8", "920")):
        return "BJ"
    raise BadInputError(f"cannot tell the exchange of code {code!r}; add a suffix such as .SH or .SZ")


def parse_ticker(text: str, listed: Mapping[str, str] | None = None) -> Ticker:
    """Return the normalised Ticker for what a user typed, or raise with the readings.

    ``listed``: {ts_code: name} of the cached A-share listing, when there is
    one; it settles the bare codes of COMMON_INDICES (see the module docstring).
    """
    raw = text.strip().upper()
    if not raw:
        raise BadInputError("empty ticker")
    if m := _SUFFIXED.match(raw):
        return Ticker(f"{m[1]}.{m[2]}", m[2])
    if m := _PREFIXED.match(raw):
        return Ticker(f"{m[2]}.{m[1]}", m[1])
    if _BARE.match(raw):
        if raw in COMMON_INDICES:
            index_name, stock_name = COMMON_INDICES[raw]
            if listed:  # a listing that is there but empty says nothing
                if f"{raw}.SZ" not in listed:
                    return Ticker(f"{raw}.SH", "SH")
                stock_name = listed[f"{raw}.SZ"]
            raise AmbiguousTickerError(
                f"{raw} is ambiguous: {raw}.SH is the {index_name}, {raw}.SZ is {stock_name}; "
                f"type {raw}.SH or {raw}.SZ"
            )
        exchange = exchange_for_code(raw)
        return Ticker(f"{raw}.{exchange}", exchange)
    if _OTHER.match(raw):
        return Ticker(raw, None)
    raise BadInputError(f"not a ticker: {text!r} (expected e.g. 600519.SH, sh600519, 600519 or AAPL)")
