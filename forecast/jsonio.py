"""Strict JSON for everything the tool prints or stores: NaN and infinities become null."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson

# orjson writes NaN and infinities as null itself, and numpy scalars as numbers. Dates and dataclasses are passed to
# ``default`` (str) as the standard library's encoder gave them, not orjson's own spelling of them.
_OPTIONS = (orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
            | orjson.OPT_PASSTHROUGH_DATACLASS)


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
    """``value`` as JSON text, indented by two spaces (``indent=None``: compact), non-ASCII as it is.

    orjson (C) writes it: a 15 MB forecast payload in a tenth of the standard
    library's time. Floats may be spelled differently (1e-05 / 0.00001). numpy
    values are written as JSON values, where the standard library's path wrote
    some as text: an array is a list, ``np.bool_`` a boolean, ``np.float32(0.1)``
    the 0.1 it shows (the product converts what it stores to Python floats and
    strings first, so no stored or printed number changes). What orjson refuses
    (an integer past 64 bits) goes to the standard library's encoder.
    """
    if indent not in (2, None):  # orjson indents by two spaces only
        return _stdlib_dumps(value, indent)
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS | (orjson.OPT_INDENT_2 if indent else 0)).decode()
    except orjson.JSONEncodeError:
        return _stdlib_dumps(value, indent)


def loads(data: bytes | str):
    """The value of JSON text (orjson: strict JSON, so NaN is refused); raises ValueError on anything else."""
    return orjson.loads(data)


def _stdlib_dumps(value, indent: int | None) -> str:
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
