"""The universe model's bands recalibrated online, per ticker: the tracks on disk and their use on a batch.

``forecasts/@<UNIVERSE>/adaptive/<MODEL>.json`` (``Workspace.batch_adaptive_state_file``)
holds ``maths.adaptive_batch.Tracks``: per ticker the tracker's multiplier and
counts per level and step, and its last forecasts whose outcomes are not all
in (each a path and a scale: the card's quantiles give the band). ``recalibrate`` moves each ticker's track by the
outcomes its bars show since, keeps today's raw band, and scales today's band
by what the track shows: the same rule and step size as every per-ticker
model's (``adaptive_state.DEFAULT_METHOD``).

The file is replaced atomically before the batch's forecasts are stored, and
moving a track is idempotent (outcomes up to ``through`` are never applied
twice; today's band replaces one kept for the same bar), so a run killed
between the two writes gives, when run again, the forecast an unbroken run
gives. Another command's batch may write the same file meanwhile: the write
merges under the batch's lock, ticker by ticker (two batches that moved the
same ticker from the same state wrote the same track).

One file for the whole universe, one array per field (JSON, a row per
ticker, about 1.5 MB for 5,400): 5,400 files cost this disk seconds to
create, and 5,400 small objects a second to read; the daily batch reads and
writes it once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from forecast.atomic import atomic_write_text
from forecast.jsonio import dumps, loads
from forecast.locks import hold_lock
from forecast.maths.adaptive_batch import TRACK_FIELDS, BandShape, Tracks, advance, forecast_records, fresh, shown
from forecast.maths.adaptive_state import DEFAULT_ETA, DEFAULT_METHOD
from forecast.maths.band_scores import scale_band
from forecast.workspace import Workspace

log = logging.getLogger(__name__)

TRACKS_VERSION = 1
_DATES = ("through", "origins")


def _header(model_id: str, level_keys: list[str], horizon: int) -> dict[str, Any]:
    return {"version": TRACKS_VERSION, "model_id": model_id, "method": DEFAULT_METHOD, "eta": DEFAULT_ETA,
            "horizon": horizon, "levels": level_keys}


def _decode(data: Any, levels: int, horizon: int) -> tuple[Tracks, list[str]]:
    """Return (the tracks a file's content holds, the tickers whose rows were damaged and start again); raise
    ValueError, KeyError or TypeError when the content is no tracks this version wrote."""
    tickers = data["tickers"]
    if not isinstance(tickers, list) or not all(isinstance(t, str) for t in tickers) or len(set(tickers)) != len(tickers):
        raise TypeError("its tickers are not a list of distinct names")
    n = len(tickers)
    shapes = {"through": (n,), "multiplier": (n, levels, horizon), "updates": (n, levels, horizon),
              "misses": (n, levels, horizon), "origins": (n, horizon), "point": (n, horizon, horizon), "scale": (n, horizon)}
    fields = {}
    for name in TRACK_FIELDS:
        given = data[name]
        if not isinstance(given, list) or (not n and given):
            raise TypeError(f"{name} is not one row per ticker")
        # null (an empty slot) reads as NaT or NaN
        values = np.array(given if n else np.empty(shapes[name]), dtype="datetime64[D]" if name in _DATES else "float64")
        if values.shape != shapes[name]:
            raise ValueError(f"{name} has shape {values.shape}, not {shapes[name]}")
        fields[name] = values
    kept = ~np.isnat(fields["origins"])
    counts_ok = ((fields["updates"] == np.round(fields["updates"])) & (fields["updates"] >= 0)
                 & (fields["misses"] == np.round(fields["misses"])) & (fields["misses"] >= 0)
                 & (fields["misses"] <= fields["updates"])).all(axis=(1, 2))
    bands_ok = np.isfinite(fields["multiplier"]).all(axis=(1, 2)) & ~np.isnat(fields["through"])
    for name in ("point", "scale"):  # a kept forecast's path and scale are finite and positive (ratios to a close)
        values = fields[name].reshape(n, horizon, -1)
        bands_ok &= ((np.isfinite(values) & (values > 0)).all(axis=2) | ~kept).all(axis=1)
    fields["updates"] = np.nan_to_num(fields["updates"]).astype("int64")
    fields["misses"] = np.nan_to_num(fields["misses"]).astype("int64")
    tracks = Tracks(list(tickers), **fields)
    damaged = ~(counts_ok & bands_ok)
    if damaged.any():
        blank = fresh([tickers[i] for i in np.flatnonzero(damaged)], levels, horizon)
        for name in TRACK_FIELDS:
            getattr(tracks, name)[damaged] = getattr(blank, name)
    return tracks, [tickers[i] for i in np.flatnonzero(damaged)]


def _encode(tracks: Tracks) -> dict[str, Any]:
    out: dict[str, Any] = {"tickers": tracks.tickers}
    for name in TRACK_FIELDS:
        values = getattr(tracks, name)
        out[name] = np.asarray(np.where(np.isnat(values), None, values.astype(str))).tolist() if name in _DATES else values
    return out  # orjson writes the float arrays, NaN as null


def _stored(path: Path, model_id: str, level_keys: list[str], horizon: int,
            warn: bool = True) -> tuple[Tracks, list[str], str | None]:
    """Return (the stored tracks, the damaged tickers among them, None), or (none, [], why: new, unreadable, other
    settings); ``warn``: say so in the log when the file is unreadable."""
    empty = fresh([], len(level_keys), horizon)
    if not path.is_file():
        return empty, [], "new"
    try:
        data = loads(path.read_bytes())
        if _header(model_id, level_keys, horizon) != {key: data[key] for key in _header(model_id, level_keys, horizon)}:
            return empty, [], "other settings"  # another model, method, step size, horizon or levels: started again
        tracks, damaged = _decode(data, len(level_keys), horizon)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if warn:
            log.warning("the universe model's recalibration %s is unreadable (%s); started again", path, _why(exc))
        return empty, [], "unreadable"
    return tracks, damaged, None


def _why(exc: Exception) -> str:
    return f"no {exc}" if isinstance(exc, KeyError) else str(exc)


def _damaged(tickers: list[str]) -> str:
    shown_ = ", ".join(sorted(tickers)[:5]) + (", ..." if len(tickers) > 5 else "")
    return f"the recalibration of {len(tickers)} ticker(s) ({shown_}) cannot be read"


def read_tracks(path: Path, model_id: str, level_keys: list[str], horizon: int) -> tuple[Tracks, str | None]:
    """Return (the stored tracks, None), or (none, why none is used); a damaged ticker's row starts again with a warning."""
    tracks, damaged, why = _stored(path, model_id, level_keys, horizon)
    if damaged:
        log.warning("%s: %s; started again for them", path, _damaged(damaged))
    return tracks, why


def tracks_problem(path: Path) -> str | None:
    """Return what in a tracks file ``predict`` would pass over with a warning (the file, or some tickers'), or None.

    Judged against the settings the file names: one kept for another model or levels is no damage (predict starts
    again for its own and leaves it).
    """
    try:
        data = loads(path.read_bytes())
        _, damaged = _decode(data, len(data["levels"]), int(data["horizon"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable ({_why(exc)})"
    return _damaged(damaged) if damaged else None


def merged(old: Tracks, new: Tracks) -> Tracks:
    """Return ``old`` with each of ``new``'s tickers' rows replaced (or added)."""
    replaced = set(new.tickers)
    rest = old.rows(np.array([i for i, t in enumerate(old.tickers) if t not in replaced], dtype=int))
    return Tracks(rest.tickers + new.tickers,
                  *(np.concatenate([getattr(rest, name), getattr(new, name)]) for name in TRACK_FIELDS))


def write_tracks(workspace: Workspace, universe: str, model_id: str, level_keys: list[str], horizon: int,
                 tracks: Tracks) -> Path:
    """Store ``tracks`` over the same tickers' old ones, keeping every other ticker's; atomic, under the batch's lock."""
    path = workspace.batch_adaptive_state_file(universe, model_id)
    with hold_lock(workspace.forecast_batch_lock(universe), workspace.lock_timeout_s,
                   f"the forecasts of {universe} are being written by another command; try again shortly"):
        stored, _, _ = _stored(path, model_id, level_keys, horizon, warn=False)  # another batch may have moved others
        payload = {**_header(model_id, level_keys, horizon), **_encode(merged(stored, tracks))}
        atomic_write_text(path, dumps(payload, indent=None))
    return path


def recalibrate(tracks: Tracks, tickers: list[str], dates: np.ndarray, closes: np.ndarray, point: np.ndarray,
                scale: np.ndarray, shape: BandShape, level_keys: list[str],
                rebuilt: str | None = None) -> tuple[Tracks, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Return (the tracks of ``tickers`` moved, today's lower and upper recalibrated, each ticker's ``adaptive`` record).

    ``point`` (n, H) and ``scale`` (n,): today's forecasts of ``tickers``, paths as ratios to the last close, bands
    ``shape.bands(point, scale)``; ``dates`` and ``closes`` (n, R): each ticker's bars up to today's, the last column
    today's, NaT-padded on the left. ``tracks``: the stored ones, any tickers. ``rebuilt``: why the file gave none
    (said in the records of the tickers it starts).
    """
    where = {ticker: i for i, ticker in enumerate(tracks.tickers)}
    found = np.array([where.get(t, -1) for t in tickers], dtype=int)
    mine = tracks.rows(np.maximum(found, 0)) if len(tracks) else fresh(list(tickers), len(level_keys), point.shape[1])
    mine.tickers = list(tickers)
    if (found < 0).any():  # new to the file: a fresh row
        blank = fresh([t for t, f in zip(tickers, found) if f < 0], len(level_keys), point.shape[1])
        for name in TRACK_FIELDS:
            getattr(mine, name)[found < 0] = getattr(blank, name)
    levels = np.array([float(k) for k in level_keys])
    moved, applied, why = advance(mine, dates, closes, point, scale, shape, levels, DEFAULT_ETA)
    if rebuilt is not None:
        why = [rebuilt if w == "new" else w for w in why]
    lower, upper = shape.bands(point, scale)
    new_lower, new_upper = scale_band(lower, upper, np.repeat(point[:, None, :], len(level_keys), axis=1), shown(moved))
    return moved, new_lower, new_upper, forecast_records(DEFAULT_METHOD, DEFAULT_ETA, moved, applied, level_keys, why)
