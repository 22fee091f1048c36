"""The universe model's bands recalibrated online, per ticker: the tracks on disk and their use on a batch.

``forecasts/@<UNIVERSE>/adaptive/<MODEL>.json`` (``Workspace.batch_adaptive_state_file``)
holds ``maths.adaptive_batch.Tracks``: per ticker the tracker's multiplier and
counts per level and step, and its last forecasts whose outcomes are not all
in (each a path and a scale: the card's quantiles give the band). ``recalibrate`` moves each ticker's track by the
outcomes its bars show since, keeps today's raw band, and scales today's band
by what the track shows: the same rule and step size as every per-ticker
model's (``adaptive_state.DEFAULT_METHOD``). A newly trained model's tracks
start from the previous model's of the same universe (``carried``).

The file is replaced atomically before the batch's forecasts are stored, and
moving a track is idempotent (outcomes up to ``through`` are never applied
twice; today's band replaces one kept for the same bar), so a run killed
between the two writes gives, when run again, the bands an unbroken run
gives (its record says it applied nothing: the killed run had). Another command's batch may write the same file meanwhile: the write
merges under the batch's lock, ticker by ticker (two batches that moved the
same ticker from the same state wrote the same track).

One file for the whole universe, one array per field (JSON, a row per
ticker: 66 numbers each, about 5 MB for 5,400 tickers): 5,400 files cost
this disk seconds to create, and 5,400 small objects a second to read; the
daily batch reads and writes it once. A ticker's row that cannot be read is
left out with a warning: the ticker starts again, and the batch's write
drops the row.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from forecast.atomic import atomic_write_text
from forecast.jsonio import dumps, loads
from forecast.locks import hold_lock
from forecast.maths.adaptive_batch import REWRITTEN, TRACK_FIELDS, BandShape, Tracks, advance, forecast_records, fresh, shown
from forecast.maths.adaptive_state import DEFAULT_ETA, DEFAULT_METHOD
from forecast.maths.band_scores import scale_band
from forecast.workspace import Workspace

log = logging.getLogger(__name__)

TRACKS_VERSION = 1
_DATES = ("through", "origins")


def _header(model_id: str, level_keys: list[str], horizon: int) -> dict[str, Any]:
    return {"version": TRACKS_VERSION, "model_id": model_id, "method": DEFAULT_METHOD, "eta": DEFAULT_ETA,
            "horizon": horizon, "levels": level_keys}


MAX_COUNT = 10**12  # more outcomes than any series has days: a count past it was not written by predict
MAX_MULTIPLIER = 1e6  # the tracker moves its multiplier by eta per outcome; one this far out was not written by predict


def _decode(data: Any, levels: int, horizon: int) -> tuple[Tracks, list[str]]:
    """Return (the tracks a file's content holds, the tickers whose rows are damaged, left out); raise ValueError,
    KeyError or TypeError when the content is no tracks this version wrote."""
    tickers = data["tickers"]
    if not isinstance(tickers, list) or not all(isinstance(t, str) for t in tickers) or len(set(tickers)) != len(tickers):
        raise TypeError("its tickers are not a list of distinct names")
    n = len(tickers)
    shapes = {"through": (n,), "multiplier": (n, levels, horizon), "updates": (n, levels, horizon),
              "misses": (n, levels, horizon), "origins": (n, horizon), "point": (n, horizon, horizon), "scale": (n, horizon)}
    fields, unparsed = {}, np.zeros(n, dtype=bool)
    for name in TRACK_FIELDS:
        given = data[name]
        if not isinstance(given, list) or len(given) != n:
            raise TypeError(f"{name} is not one row per ticker")
        fields[name], bad = _field(given, shapes[name], "datetime64[D]" if name in _DATES else "float64")
        unparsed |= bad
    every = tuple(range(1, 3))
    updates, misses = fields["updates"], fields["misses"]
    counts_ok = ((updates == np.round(updates)) & (updates >= 0) & (updates <= MAX_COUNT)
                 & (misses == np.round(misses)) & (misses >= 0) & (misses <= updates)).all(axis=every)
    rows_ok = ~unparsed & counts_ok & (np.abs(fields["multiplier"]) <= MAX_MULTIPLIER).all(axis=every) & ~np.isnat(fields["through"])
    kept = ~np.isnat(fields["origins"])
    # kept forecasts fill the first slots, oldest first, each with a finite positive path and a finite scale of 0 or more
    order = np.diff(fields["origins"].astype("int64"), axis=1)
    rows_ok &= (kept[:, :-1] | ~kept[:, 1:]).all(axis=1) & ((order > 0) | ~kept[:, 1:]).all(axis=1)
    rows_ok &= ((np.isfinite(fields["point"]) & (fields["point"] > 0)).all(axis=2) | ~kept).all(axis=1)
    rows_ok &= ((np.isfinite(fields["scale"]) & (fields["scale"] >= 0)) | ~kept).all(axis=1)
    fields["updates"] = np.where(counts_ok[:, None, None], updates, 0).astype("int64")
    fields["misses"] = np.where(counts_ok[:, None, None], misses, 0).astype("int64")
    tracks = Tracks(list(tickers), **fields)
    return tracks.rows(np.flatnonzero(rows_ok)), [tickers[i] for i in np.flatnonzero(~rows_ok)]


def _field(rows: list[Any], shape: tuple[int, ...], dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (one field of every ticker as an array of ``shape``, which rows could not be read: left as NaN or NaT).

    The whole field at once (milliseconds for 5,400 rows); row by row only when that fails, so that one ticker's
    wrong value (text, a list of the wrong length, a number where a date is written) costs that ticker alone.
    """
    try:
        values = _row_values(rows, shape, dtype)
        return values, np.zeros(len(rows), dtype=bool)
    except (ValueError, TypeError):
        values = np.full(shape, np.datetime64("NaT") if dtype.startswith("datetime") else np.nan, dtype=dtype)
        bad = np.zeros(len(rows), dtype=bool)
        for i, row in enumerate(rows):
            try:
                values[i] = _row_values([row], (1, *shape[1:]), dtype)[0]
            except (ValueError, TypeError):
                bad[i] = True
        return values, bad


def _row_values(rows: list[Any], shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if not rows:
        return np.empty(shape, dtype=dtype)
    dates = dtype.startswith("datetime")  # dates are written as text (null: an empty slot), never as numbers
    if dates and not all(d is None or isinstance(d, str) for d in np.asarray(rows, dtype=object).ravel()):
        raise TypeError("something other than dates")
    values = np.array(rows, dtype=dtype)  # null (an empty slot) reads as NaN or NaT
    if values.shape != shape:
        raise ValueError(f"shape {values.shape}, not {shape}")
    return values


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


def read_tracks(path: Path, model_id: str, level_keys: list[str], horizon: int) -> tuple[Tracks, str | None, set[str]]:
    """Return (the stored tracks, why there are none or None, the tickers whose rows were damaged and are left out:
    they start again, with a warning, and the batch's write drops them)."""
    tracks, damaged, why = _stored(path, model_id, level_keys, horizon)
    if damaged:
        log.warning("%s: %s; they start again", path, _damaged(damaged))
    return tracks, why, set(damaged)


def with_carried(tracks: Tracks, path: Path, model_id: str, level_keys: list[str], horizon: int, tickers: Collection[str],
                 registered: Collection[str] | None = None) -> tuple[Tracks, dict[str, str]]:
    """Return (``tracks`` with a row for each of ``tickers`` it lacks that the previous model of the same universe had,
    {such ticker: that model's id}). So a newly trained model starts from the previous model's tracks (``carried``),
    and a batch of one ticker first does not cost the others their carry. Give it a model's readable or new file's
    tracks only: a damaged file's tickers start again at the model's own bands."""
    missing = set(tickers) - set(tracks.tickers)
    found = carried(path.parent, model_id, level_keys, horizon, registered) if missing else None
    if found is None:
        return tracks, {}
    before, source = found
    rows = np.array([i for i, t in enumerate(before.tickers) if t in missing], dtype=int)
    return merged(before.rows(rows), tracks), {before.tickers[i]: source for i in rows}


def carried(folder: Path, model_id: str, level_keys: list[str], horizon: int,
            registered: Collection[str] | None = None) -> tuple[Tracks, str] | None:
    """Return (the tracks of the newest model before ``model_id`` in ``folder`` that kept the same method, step size,
    horizon and levels, and its id), or None when there is none. Ids sort by the time the models were trained; with
    ``registered``, only those models count (a removed model's tracks are not carried). Each ticker keeps its
    multiplier, counts and ``through``; its kept forecasts are dropped (they are the old model's).

    Why: what a ticker's multiplier has learned is how the pooled band fits that ticker (its tails against the
    universe's quantiles times its own volatility), which a model retrained on the same universe shares
    (benchmarks/universe_track_carry.py); a per-ticker model's state is rebuilt warm from its new bands instead,
    which a universe model cannot afford."""
    earlier = [p for p in folder.glob("*.json") if p.stem < model_id and (registered is None or p.stem in registered)] \
        if folder.is_dir() else []
    for previous in sorted(earlier, key=lambda p: p.stem, reverse=True):
        tracks, _, why = _stored(previous, previous.stem, level_keys, horizon, warn=False)
        if why is None and len(tracks):
            tracks.origins[:] = np.datetime64("NaT")
            tracks.point[:] = np.nan
            tracks.scale[:] = np.nan
            return tracks, previous.stem
    return None


def tracks_problem(path: Path) -> str | None:
    """Return why ``predict`` could not read a tracks file at all, or None.

    Judged against the settings the file names: one kept for another model or levels is no damage (predict starts
    again for its own and leaves it). A damaged ticker's row is no finding either: predict starts that ticker again
    and its next write drops the row, where quarantining the file would cost every other ticker its track.
    """
    try:
        data = loads(path.read_bytes())
        levels, horizon = data["levels"], data["horizon"]
        if not isinstance(levels, list) or isinstance(horizon, bool) or not isinstance(horizon, int) or not 0 < horizon <= 1000:
            raise TypeError("its levels or horizon are none this version writes")
        _decode(data, len(levels), horizon)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable ({_why(exc)[:160]})"
    return None


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
                rebuilt: str | None = None, damaged: set[str] | None = None,
                carried_from: dict[str, str] | None = None) -> tuple[Tracks, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Return (the tracks of ``tickers`` moved, today's lower and upper recalibrated, each ticker's ``adaptive`` record).

    ``point`` (n, H) and ``scale`` (n,): today's forecasts of ``tickers``, paths as ratios to the last close, bands
    ``shape.bands(point, scale)``; ``dates`` and ``closes`` (n, R): each ticker's bars up to today's, the last column
    today's, NaT-padded on the left. ``tracks``: the stored ones, any tickers. ``rebuilt``: why the file gave none
    (said in the records of the tickers it starts); ``damaged``: the tickers whose stored rows could not be read;
    ``carried_from``: {ticker: the previous model whose track it goes on with} (``with_carried``), said in its record.
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
    carried_from = carried_from or {}
    # a carried track whose last bar is gone (the old model last ran long ago) starts again as a new model's would
    why = ["unreadable" if t in (damaged or ()) else "new" if w == REWRITTEN and t in carried_from
           else rebuilt if w == "new" and rebuilt else w for t, w in zip(tickers, why)]
    lower, upper = shape.bands(point, scale)
    new_lower, new_upper = scale_band(lower, upper, np.repeat(point[:, None, :], len(level_keys), axis=1), shown(moved))
    records = forecast_records(DEFAULT_METHOD, DEFAULT_ETA, moved, applied, level_keys, why)
    for ticker, record, restarted in zip(tickers, records, why):
        if ticker in carried_from and restarted is None:
            record["carried_from"] = carried_from[ticker]  # the model whose track this one goes on with
    return moved, new_lower, new_upper, records
