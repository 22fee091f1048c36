"""How numbers and tables look in text output: one function per kind, so every command prints them alike.

Standard library only, so any layer may use it (the CLI, the backtest table,
the chart footer) without importing anything heavy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MISSING = "-"  # what a table shows for a value that is not there (NaN, None)


def format_percent(fraction: float | None, digits: int = 1, sign: bool = False) -> str:
    """Return ``fraction`` as a percentage, e.g. ``0.0123`` -> ``1.2%``; ``-`` when it is missing or not finite.

    A value that rounds to zero is ``0.0%`` whatever its sign, never ``-0.0%``.
    With ``sign``, a value that does not round to zero carries its sign
    (``+1.2%``), for skills and changes.
    """
    if fraction is None or isinstance(fraction, bool):
        return MISSING
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(value):
        return MISSING
    rounded = round(value * 100, digits)
    if rounded == 0:
        return f"{0:.{digits}f}%"
    return f"{rounded:+.{digits}f}%" if sign else f"{rounded:.{digits}f}%"


def format_number(value: float | None, digits: int = 2, thousands: bool = False) -> str:
    """Return ``value`` with ``digits`` decimals (and ``,`` between thousands if asked); ``-`` when missing, never ``nan``."""
    if value is None or isinstance(value, bool):
        return MISSING
    try:
        number = float(value)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(number):
        return MISSING
    text = f"{number:,.{digits}f}" if thousands else f"{number:.{digits}f}"
    return text if text.strip("-0.,") else text.lstrip("-")  # no "-0.00"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """Return a plain-text table: a header row, then one line per row, columns padded to line up.

    ``align`` has one letter per column, ``l`` or ``r`` (default: left for the
    first column, right for the others, as numbers read best). Cells are
    printed with ``str``; ``None`` becomes ``-``. Trailing spaces are trimmed.
    """
    aligns = align or ("l" + "r" * (len(headers) - 1))
    if len(aligns) != len(headers):
        raise ValueError(f"align has {len(aligns)} letters for {len(headers)} columns")
    cells = [[MISSING if c is None else str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in zip(values, widths, aligns)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in cells)])
