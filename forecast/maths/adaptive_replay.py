"""An adaptive-interval method run over a history of forecasts, in time order, as it would have run live; pure, no I/O.

``replay`` feeds each step's state (``adaptive_state``) the outcomes known at
each origin, never one before it is known, and scales the model's bands by
the multiplier ``adaptive_intervals`` shows then. The backtest scores the
adaptive bands with it; ``predict`` catches each stored state up with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from forecast.errors import BadInputError
from forecast.maths.adaptive_intervals import apply_score, cached_multiplier, cached_shown_multiplier, new_state
from forecast.maths.adaptive_state import DEFAULT_METHOD, DEFAULT_WINDOW, AdaptiveState, check_level, check_state
from forecast.maths.band_scores import FloatArray, band_scores, scale_band


@dataclass
class Replay:
    """What ``replay`` returns: adjusted bands (n, H), the multiplier each shows (n, H), the one the method asked for
    (n, H; larger where an infinite or capped band is shown narrower, see ``shown_multiplier``; the count of misses
    judges this one), and each step's final state."""

    lower: FloatArray
    upper: FloatArray
    multipliers: FloatArray
    wanted: FloatArray
    states: list[AdaptiveState | None]


def _as_matrix(name: str, values: ArrayLike, shape: tuple[int, ...] | None = None) -> FloatArray:
    array = np.asarray(values, dtype="float64")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or (shape is not None and array.shape != shape):
        raise BadInputError(f"{name} must have the shape of the points, {shape}, not {array.shape}")
    return array


def replay(points: ArrayLike, lowers: ArrayLike, uppers: ArrayLike, actuals: ArrayLike, level: float, method: str = DEFAULT_METHOD, *, gamma: float | None = None,
           gammas: Sequence[float] | None = None, eta: float | None = None, window: int = DEFAULT_WINDOW,
           warmup: int | None = None, space: str = "log", origins: ArrayLike | None = None,
           states: Sequence[AdaptiveState | None] | None = None) -> Replay:
    """Run one method over a history of forecasts, in time order, as it would have run live.

    ``points``, ``lowers``, ``uppers`` (n, H): the model's forecasts and its
    ``level`` band at n origins for H steps; ``actuals`` (n, H) the realised
    values (NaN where not known yet). The outcome of origin j's step k (1-based)
    is used from origin i on when ``origins[j] + k <= origins[i]`` (``origins``:
    the origins' row numbers; consecutive rows if None), never before: the
    band at origin i rests only on outcomes known at i. Each step has its own
    state, started fresh or from ``states`` (one per step, e.g. the last
    replay's). ``method`` "fixed" returns the model's bands unchanged.
    """
    level = check_level(level)
    p = _as_matrix("points", points)
    shape = p.shape
    lo, hi, y = (_as_matrix(name, a, shape) for name, a in (("lowers", lowers), ("uppers", uppers), ("actuals", actuals)))
    n, horizon = shape
    rows = np.arange(n) if origins is None else np.asarray(origins)
    if rows.shape != (n,):
        raise BadInputError(f"origins must have one row number per forecast, {n}, not {rows.shape}")
    if n > 1 and np.any(np.diff(rows) <= 0):
        raise BadInputError("origins must increase")
    if method == "fixed":
        return Replay(lo.copy(), hi.copy(), np.ones(shape), np.ones(shape), [None] * horizon)
    if states is not None and len(states) != horizon:
        raise BadInputError(f"states must hold one state per step, {horizon}, not {len(states)}")
    out_lo, out_hi, used, wanted = np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape)
    finals: list[AdaptiveState | None] = []
    scores = band_scores(y, lo, hi, p, space)
    for k in range(horizon):
        given = None if states is None else states[k]
        if given is not None:
            check_state(given)
        state = given.copy() if given is not None else new_state(level, method, gamma=gamma, gammas=gammas, eta=eta,
                                                                window=window, warmup=warmup, space=space)
        known_at = rows + (k + 1)  # the row at which each forecast's step-k outcome is known
        nxt = 0
        for i in range(n):
            while nxt < i and known_at[nxt] <= rows[i]:  # every outcome known by origin i, oldest first
                apply_score(state, scores[nxt, k])
                nxt += 1
            used[i, k] = cached_shown_multiplier(state)
            wanted[i, k] = cached_multiplier(state)
        out_lo[:, k], out_hi[:, k] = scale_band(lo[:, k], hi[:, k], p[:, k], used[:, k], space)
        while nxt < n:  # the outcomes that came after the last origin: the state carries them on
            apply_score(state, scores[nxt, k])
            nxt += 1
        finals.append(state)
    return Replay(out_lo, out_hi, used, wanted, finals)
