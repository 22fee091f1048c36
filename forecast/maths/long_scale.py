"""A per-ticker volatility scale for many tickers' bars laid end to end: the universe model's layout.

``long_origin_scale`` gives, at any rows of a long-order layout (ticker, then
date, each ticker's rows contiguous), the same figures as
``intervals.origin_scale`` on each ticker's own bars, without a loop over
tickers: the EWMA steps every ticker at once, one step per row position, and
each trailing window is summed on its own, so a ticker's figure never depends
on the tickers laid out beside it. Pure numpy.
"""

from __future__ import annotations

import math
import re

import numpy as np

from forecast.maths.intervals import EWMA_SEED_ROWS, MIN_SCALE_ROWS, parse_scale


def long_origin_scale(close: np.ndarray, log_range: np.ndarray, start: np.ndarray, rows: np.ndarray, scale: str,
                      block_rows: int = 1 << 20) -> np.ndarray:
    """Return (len(rows),) ``origin_scale`` at ``rows`` of many tickers' bars laid end to end (long order), log returns.

    ``close`` and ``log_range`` (N,): each bar's close and ln(high / low) (NaN
    where it has none); ``start`` (N,): the first row of each row's ticker, as
    the universe model's pooled data keeps them. Each ticker's figures are
    ``origin_scale``'s on its own bars, to rounding (sums run in another order),
    without a loop over tickers: the EWMA takes one step per row position for
    every ticker at once. NaN where ``origin_scale`` would fall back (too little
    history, no movement): the caller chooses the fallback.

    Only the tickers of ``rows`` are read, each up to its last row asked, in
    blocks of whole tickers of about ``block_rows`` bars: a universe's ten years
    cost a block's memory, not ten temporaries of every bar. A ticker's figures
    never depend on the others, so the blocks give the same bits as one pass.
    """
    m = parse_scale(scale)
    close, log_range = np.asarray(close, dtype="float64"), np.asarray(log_range, dtype="float64")
    start, rows = np.asarray(start, dtype=int), np.asarray(rows, dtype=int)
    out = np.full(len(rows), np.nan)
    if not len(rows):
        return out
    firsts, which = np.unique(start[rows], return_inverse=True)  # the tickers asked, by their first row
    ends = np.zeros(len(firsts), dtype=int)
    np.maximum.at(ends, which, rows + 1)  # each read up to its last row asked
    lengths = ends - firsts
    begin = 0
    while begin < len(firsts):
        stop = begin + max(1, int(np.searchsorted(np.cumsum(lengths[begin:]), block_rows, side="right")))
        offsets = np.r_[0, np.cumsum(lengths[begin:stop])[:-1]]
        index = np.repeat(firsts[begin:stop] - offsets, lengths[begin:stop]) + np.arange(int(lengths[begin:stop].sum()))
        mine = (which >= begin) & (which < stop)
        out[mine] = _one_block(close[index], log_range[index], np.repeat(offsets, lengths[begin:stop]),
                               offsets[which[mine] - begin] + rows[mine] - start[rows[mine]], m)
        begin = stop
    return out


def _one_block(close: np.ndarray, log_range: np.ndarray, start: np.ndarray, rows: np.ndarray, m: re.Match) -> np.ndarray:
    """``long_origin_scale`` over one block of whole tickers (``m``: the scale, parsed)."""
    position = np.arange(len(close)) - start
    with np.errstate(invalid="ignore", divide="ignore"):
        log_close = np.log(close)
        moves = np.full(len(close), np.nan)
        moves[1:] = log_close[1:] - log_close[:-1]
        moves[position == 0] = np.nan  # a ticker's first bar has no move: its previous row is another ticker's
        on_range = bool(m[1])
        if on_range:  # range_moves' rule: the range where it can tell (finite and above zero), else the close move
            usable = np.isfinite(log_range) & (log_range > 0) & (position > 0)
            moves = np.where(usable, log_range / math.sqrt(4 * math.log(2)), np.abs(moves))
    if m[2]:
        out = _long_window(moves, start, rows, int(m[2]), demean=not on_range)
    else:
        variance = _long_ewma(moves, start, float(m[3]))
        out = np.where(position[rows] >= MIN_SCALE_ROWS, np.sqrt(variance[rows]), np.nan)
    if m[4]:
        out = np.sqrt((out ** 2 + _long_window(moves, start, rows, int(m[4]), demean=not on_range) ** 2) / 2)
    return np.where(np.isfinite(out) & (out > 0), out, np.nan)


def _long_ewma(moves: np.ndarray, start: np.ndarray, lam: float) -> np.ndarray:
    """``ewma_variance`` of each ticker's moves in long order, every ticker stepped together (one step per position)."""
    n = len(moves)
    squares = moves ** 2
    finite = np.isfinite(squares)
    firsts = np.flatnonzero(np.arange(n) == start)
    ticker = np.cumsum(np.arange(n) == start) - 1
    lengths = np.diff(np.r_[firsts, n])
    seen = np.cumsum(finite) - np.r_[0, np.cumsum(finite)][start]  # finite moves of the ticker up to the row
    seed = finite & (seen <= EWMA_SEED_ROWS)
    with np.errstate(invalid="ignore", divide="ignore"):  # a ticker with no finite move: NaN, as ewma_variance gives
        level = (np.bincount(ticker, np.where(seed, squares, 0.0), len(firsts))
                 / np.bincount(ticker, seed, len(firsts)))
    out = np.empty(n)
    order = np.argsort(-lengths, kind="stable")  # longest first: the tickers still going at a position are a prefix
    firsts, lengths, level = firsts[order], lengths[order], level[order]
    going = len(firsts)
    for step in range(int(lengths.max()) if n else 0):
        while lengths[going - 1] <= step:
            going -= 1
        at = firsts[:going] + step
        value = squares[at]
        level[:going] = np.where(finite[at], lam * level[:going] + (1 - lam) * value, level[:going])
        out[at] = level[:going]
    return out


def _long_window(moves: np.ndarray, start: np.ndarray, rows: np.ndarray, window: int, demean: bool,
                 chunk: int = 1 << 14) -> np.ndarray:
    """``_rolling_std`` in long order: the std (``demean``) or root mean square of each row's ticker's last
    ``window`` finite moves up to the row; NaN with fewer than ``MIN_SCALE_ROWS``.

    Each window is summed on its own (in chunks of rows), not as a difference of running sums over the whole
    layout: a ticker's figure then depends on its own bars only, whichever tickers are laid out before it.
    """
    out = np.full(len(rows), np.nan)
    back = np.arange(window - 1, -1, -1)
    for begin in range(0, len(rows), chunk):
        at = rows[begin: begin + chunk]
        index = at[:, None] - back[None, :]  # (n, window): each row's last ``window`` rows, oldest first
        inside = index > start[at][:, None]  # a ticker's moves start at its second bar
        values = moves[np.maximum(index, 0)]
        present = inside & np.isfinite(values)
        values = np.where(present, values, 0.0)
        count = present.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_square = (values ** 2).sum(axis=1) / count
            value = np.sqrt(np.maximum(mean_square - (values.sum(axis=1) / count) ** 2, 0.0)) if demean else np.sqrt(mean_square)
        out[begin: begin + chunk] = np.where(count >= MIN_SCALE_ROWS, value, np.nan)
    return out
