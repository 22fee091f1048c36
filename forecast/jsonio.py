"""Strict JSON for everything the tool prints or stores: NaN and infinities become null."""

from __future__ import annotations

import json
import math

import numpy as np


def finite(value):
    """Return ``value`` with NaN/inf as None and numpy scalars as Python numbers."""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value, indent: int | None = 2) -> str:
    return json.dumps(finite(value), indent=indent, ensure_ascii=False, default=str, allow_nan=False)
