"""Ticker normalisation: ``600519``, ``sh600519``, ``600519.sh`` -> ``600519.SH``.

China A-share codes are six digits plus an exchange suffix. The exchange is
implied by the leading digits, except where an SSE index and an SZSE stock
share the same bare code (``000001`` is both the SSE Composite and Ping An
Bank): those are refused with both readings. Anything that is not a China code
(``AAPL``, ``SPX``, ``^GSPC``) is kept, upper-cased, for CSV imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forecast.errors import AmbiguousTickerError, BadInputError

# SSE/CSI index codes that collide with an SZSE stock of the same six digits.
# Not exhaustive: the commonly quoted ones that users actually type.
SSE_INDEX_COLLISIONS = {
    "000001": ("SSE Composite index", "Ping An Bank"),
    "000002": ("SSE A-share index", "Vanke A"),
    "000009": ("SSE 380 index", "China Baoan"),
    "000010": ("SSE 180 index", "Meili Cloud"),
    "000016": ("SSE 50 index", "Konka Group"),
    "000300": ("CSI 300 index", "(SZSE code 000300)"),
    "000905": ("CSI 500 index", "(SZSE code 000905)"),
}

_SUFFIXED = re.compile(r"^(\d{6})\.(SH|SZ|BJ)$")
_PREFIXED = re.compile(r"^(SH|SZ|BJ)\.?(\d{6})$")
_BARE = re.compile(r"^\d{6}$")
_OTHER = re.compile(r"^[\^A-Z][A-Z0-9.\-=^]{0,14}$")


@dataclass(frozen=True)
class Ticker:
    """A normalised symbol. ``exchange`` is SH/SZ/BJ for China codes, else None."""

    symbol: str
    exchange: str | None

    @property
    def is_china(self) -> bool:
        return self.exchange is not None

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


def parse_ticker(text: str) -> Ticker:
    """Return the normalised Ticker for what a user typed, or raise with the readings."""
    raw = text.strip().upper()
    if not raw:
        raise BadInputError("empty ticker")
    if m := _SUFFIXED.match(raw):
        return Ticker(f"{m[1]}.{m[2]}", m[2])
    if m := _PREFIXED.match(raw):
        return Ticker(f"{m[2]}.{m[1]}", m[1])
    if _BARE.match(raw):
        if raw in SSE_INDEX_COLLISIONS:
            index_name, stock_name = SSE_INDEX_COLLISIONS[raw]
            raise AmbiguousTickerError(
                f"{raw} is ambiguous: {raw}.SH is the {index_name}, {raw}.SZ is {stock_name}; "
                f"type {raw}.SH or {raw}.SZ"
            )
        exchange = exchange_for_code(raw)
        return Ticker(f"{raw}.{exchange}", exchange)
    if _OTHER.match(raw):
        return Ticker(raw, None)
    raise BadInputError(f"not a ticker: {text!r} (expected e.g. 600519.SH, sh600519, 600519 or AAPL)")
