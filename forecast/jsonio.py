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
    try:  # the common case, no NaN anywhere: one pass of the encoder instead of a copy of the whole value first
        return json.dumps(value, indent=indent, ensure_ascii=False, default=_plain, allow_nan=False)
    except ValueError:  # a NaN or infinity somewhere: the copy that makes them null
        return json.dumps(finite(value), indent=indent, ensure_ascii=False, default=str, allow_nan=False)


def _plain(value):
    """What ``finite`` makes of a value the encoder does not know (numpy scalars; anything else as text)."""
    if isinstance(value, (np.floating, np.integer)):
        converted = finite(value)
        if converted is None:
            raise ValueError("not finite")  # send the whole value down the copying path
        return converted
    return str(value)
