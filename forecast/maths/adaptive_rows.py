"""The tracker run over many series' past forecasts at once, as it would have run live: a universe's tracks over a backtest.

Pure numpy, no I/O. A universe model's track (``adaptive_batch``) moves each
ticker's multiplier, per level and step, by ``adaptive_intervals.tracker_step``
after each outcome, oldest forecast first; the band a forecast is shown with
rests only on outcomes known at its origin. ``tracker_over_rows`` replays that
over a whole history of forecasts, every series at once: one numpy step per
forecast column rather than a Python loop per series, so 5,400 tickers x 250
days cost about as much as one.

It equals ``adaptive_replay.replay(..., method="tracker")`` run on each series
alone with the series' bar numbers as ``origins`` (a test checks it), and the
batches' tracks when a batch is forecast at every bar.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from forecast.maths.adaptive_intervals import tracker_shown, tracker_step
from forecast.maths.band_scores import FloatArray


def tracker_over_rows(series: ArrayLike, positions: ArrayLike, scores: ArrayLike, alpha: ArrayLike, eta: float) -> FloatArray:
    """Return (n, L, H): the multiplier each row's band is shown with by a tracker started fresh (m = 1) per series.

    ``series`` (n,): which series each row (one forecast) belongs to, any labels; ``positions`` (n,): its origin's
    bar number within its series (distinct per series); ``scores`` (n, L, H): its outcome at each level and step in
    half-widths of its own band (``band_scores``; NaN: not known, moves nothing); ``alpha`` (L,): each level's nominal
    miscoverage. The outcome of a forecast at bar p moves step k's state from bar p + k on, so the band at bar q rests
    on the step-k outcomes of the forecasts at bars up to q - k, applied in the order of their bars. Rows may come in
    any order; the result is in theirs.
    """
    scores = np.asarray(scores, dtype="float64")
    n, levels, horizon = scores.shape
    if n == 0:
        return np.ones((0, levels, horizon))
    _, code = np.unique(np.asarray(series), return_inverse=True)
    position = np.asarray(positions, dtype="int64")
    order = np.lexsort((position, code))  # by series, then by bar
    code, position = code[order], position[order]
    first = np.r_[0, np.flatnonzero(np.diff(code)) + 1]  # each series' first row (in sorted order)
    column = np.empty(n, dtype="int64")
    column[order] = np.arange(n) - first[code]  # each row's place in its series, in the rows' own order
    width = int(column.max()) + 1
    grid = np.full((len(first), width, levels, horizon), np.nan)
    grid[code[np.argsort(order)], column] = scores
    alphas = np.asarray(alpha, dtype="float64")[None, :, None]
    # moved[:, j]: each series' multipliers after the outcomes of its first j forecasts (fed per step, oldest first)
    moved = np.empty((len(first), width + 1, levels, horizon))
    moved[:, 0] = 1.0
    for j in range(width):
        moved[:, j + 1], _ = tracker_step(moved[:, j], grid[:, j], eta, alphas)
    # how many of a series' forecasts are at bars up to q - k: a search on (series, bar) keys, sorted above
    span = int(position.max() - position.min()) + horizon + 1  # so that a key minus k never reaches the series before
    keys = code * span + (position - position.min())
    out = np.empty((n, levels, horizon))
    for k in range(1, horizon + 1):
        applied = np.searchsorted(keys, keys - k, side="right") - first[code]
        out[order, :, k - 1] = tracker_shown(moved[code, applied, :, k - 1])
    return out
