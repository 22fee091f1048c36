"""Volatility-normalised split-conformal prediction intervals: pure numpy.

At training time, the held-out validation windows' residuals (in the target's
own space: log-returns or price levels) are divided by the volatility known at
each origin. Per horizon step, the quantile ``q`` of those normalised residuals
gives the interval ``point ± q * volatility(origin)``: wider in turbulent
weeks, narrower in calm ones.

How the volatility is measured is the model's ``scale``, stored on its card:
``std60`` (the standard deviation of the previous 60 daily changes; every
model trained before scales were named uses it), ``ewma0.94`` (RiskMetrics:
an exponentially weighted mean of squared daily changes, lambda 0.94, which
reacts within days of a shock), or ``ewma0.94+std250``: the root of the mean
of that EWMA variance and the variance of the last 250 changes, which reacts
to a shock but does not forget the long run in a calm spell (a GARCH-like
pull toward the long-run level, with fixed weights). ``range:`` before any of
them measures each day's move by the day's range instead of its close-to-close
change: Parkinson's estimate of the day's volatility, ln(high / low) /
sqrt(4 ln 2), several times more efficient than one squared return, with the
day's absolute change wherever the range cannot tell (a high or low missing or
inverted, or one price all day: a close-only file, a limit-locked or halted
A-share day); the long part is then the root mean square of those moves, not
a standard deviation. ``DEFAULT_SCALE`` is the one new models get:
``range:ewma0.94+std250``, the same blend on the range (benchmarks/
interval_range_scale.py chose it over the close-to-close ``ewma0.94+std250``,
chosen in benchmarks/interval_scales.py, on data outside every reported test
window; the overnight gap added to the range scored worse: an earnings gap is
one day's news, not a lasting level of volatility).

What it promises: if normalised errors behave as they did in the calibration
period (exchangeability), a fresh price falls inside the ``level`` interval
with probability of at least ``level``. What it does not: a regime never seen
in calibration (a crash, a limit-down run, a trading halt) can break it, and
coverage holds on average over many forecasts, not for each one. The
walk-forward backtest measures the coverage actually reached.

Where a network's quantiles come from (``network_intervals``): a network's
held-out windows are only its validation part, about 15 % of its history (a
few hundred origins, a hundred on four years of bars), and the 95 % quantile
of so few residuals is noisy: at 300 normal errors its standard error is
about 5 % of its value, more with fat tails, and 1.7 times that at 100. So
each quantile is the mean of two estimates of it: the network's own
split-conformal quantile on its validation windows (recent, but noisy), and
an anchored one (``anchored_quantiles``): the tails of the last
``CALIBRATION_ORIGINS`` origins of "no change" errors (the naive forecast has
no parameters, so every one of them is out of sample), rescaled per step by
how large the network's validation errors are against naive's on the same
windows (the ratio of their root mean squares; 0.95 to 1.00 for the default
preset on the selection series). What that adds to the promise above: the
anchored half assumes the network's normalised errors have naive's tails,
rescaled; and since the validation windows also chose the best epoch, its
ratio leans a little toward the network, as the validation quantiles
themselves always did. Both estimates stay on the card. ``NETWORK_QUANTILES``
names the one used ("blend"; "validation" reproduces the method before, for
benchmarks). benchmarks/interval_calibration.py shows how the choice was
made, on data outside every reported test window.
"""

from __future__ import annotations

import importlib
import math
import re
from types import ModuleType

import numpy as np

from forecast.errors import MissingExtraError

DEFAULT_LEVELS = (0.8, 0.95)
SCALE_WINDOW = 60  # trading days of history behind each origin's volatility (the std scale)
MIN_SCALE_ROWS = 5
DEFAULT_SCALE = "range:ewma0.94+std250"  # what new models calibrate with; benchmarks/interval_range_scale.py chose it
RANGE_PREFIX = "range:"  # the day's move measured by its high and low (Parkinson), not its close-to-close change
MIN_RANGE_SHARE = 0.5  # bars with a usable range a model needs to calibrate on the range (else: close to close)
EWMA_SEED_ROWS = 20  # the EWMA starts from the mean square of the first changes, then forgets it
# 500, not 250: the 95 % quantile of 250 residuals rests on 13 of them (benchmarks/interval_scales.py)
CALIBRATION_ORIGINS = 500  # the out-of-sample origins behind baselines' quantiles and networks' tails
NETWORK_QUANTILES = "blend"  # the mean of the two; "validation" or "anchored" alone (benchmarks/interval_calibration.py)
NETWORK_METHOD = ("split-conformal, volatility-normalised: the mean of the validation windows' quantiles and naive's "
                  "over the last origins times the network's validation error ratio")
_SCALE = re.compile(r"(range:)?(?:std(\d+)|ewma(0\.\d+))(?:\+std(\d+))?")


def scale_name(window: int = SCALE_WINDOW) -> str:
    """Return the scale of a card that only records its window (every card before scales were named): "std60"."""
    return f"std{int(window)}"


def parse_scale(scale: str) -> re.Match:
    """Return ``scale``'s parts (range: prefix, std window, EWMA lambda, long window) once ``check_scale`` accepts it."""
    m = _SCALE.fullmatch(check_scale(scale))
    assert m is not None  # check_scale refuses whatever does not match
    return m


def check_scale(scale: str) -> str:
    """Return ``scale`` if it names a volatility measure (``std<days>``, ``ewma<lambda>``), else raise BadInputError."""
    from forecast.errors import BadInputError

    m = _SCALE.fullmatch(str(scale))
    if not m or any(w and int(w) < MIN_SCALE_ROWS for w in (m[2], m[4])) or (m[3] and not 0 < float(m[3]) < 1):
        raise BadInputError(f"unknown interval scale {scale!r}; use std<days> (e.g. std60), ewma<lambda> (e.g. ewma0.94) "
                            "or either plus a long std (ewma0.94+std250: the root of the two variances' mean), "
                            "each on the daily range with range: before it (range:ewma0.94+std250)")
    return str(scale)


def _rolling_std(moves: np.ndarray, origins: np.ndarray, window: int, demean: bool = True) -> np.ndarray:
    """Return (n,) the std (``demean``) or root mean square of the last ``window`` finite moves before each origin."""
    out = np.full(len(origins), np.nan)
    for i, origin in enumerate(origins):  # n origins, each O(window): cheap
        recent = moves[max(0, origin - window): origin]
        recent = recent[np.isfinite(recent)]
        if len(recent) >= MIN_SCALE_ROWS:
            out[i] = recent.std() if demean else math.sqrt(float(np.mean(recent ** 2)))
    return out


def daily_changes(prices: np.ndarray, transform: str) -> np.ndarray:
    """Return (T - 1,) daily changes in the residuals' units: log-returns, or price differences for level targets."""
    prices = np.asarray(prices, dtype="float64")
    if transform == "log-return":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diff(np.log(prices))
    return np.diff(prices)


def range_moves(prices: np.ndarray, high: np.ndarray | None, low: np.ndarray | None, transform: str) -> np.ndarray:
    """Return (T - 1,) each day's move measured by its range: Parkinson's ln(high / low) / sqrt(4 ln 2), in the residuals' units.

    Row i is the day of ``prices[i + 1]``, as in ``daily_changes``. A day whose
    range cannot tell (high or low missing, not positive, or high <= low: one
    price all day, as a close-only file or a limit-locked day has it) counts
    its absolute close-to-close change instead; without ``high`` and ``low``
    every day does. Level targets get the move in price units (times the close).
    """
    changes = np.abs(daily_changes(prices, transform))
    if high is None or low is None:
        return changes
    high, low = np.asarray(high, dtype="float64"), np.asarray(low, dtype="float64")
    if not len(high) == len(low) == len(prices):
        raise ValueError(f"high ({len(high)}) and low ({len(low)}) must be row for row with the prices ({len(prices)})")
    high, low = high[1:], low[1:]
    usable = usable_range(high, low)
    with np.errstate(invalid="ignore", divide="ignore"):
        parkinson = np.log(np.where(usable, high, 1.0) / np.where(usable, low, 1.0)) / math.sqrt(4 * math.log(2))
    if transform != "log-return":
        parkinson = parkinson * np.asarray(prices, dtype="float64")[1:]
    return np.where(usable, parkinson, changes)


def usable_range(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Return a bool per bar: whether its range can tell its volatility (both finite, low positive, high above low)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(high) & np.isfinite(low) & (low > 0) & (high > low)


def scale_for_range_share(share: float) -> str:
    """Return ``DEFAULT_SCALE`` when ``share`` (of the bars behind a calibration, those with a usable range) reaches
    ``MIN_RANGE_SHARE``, else its close-to-close form."""
    return DEFAULT_SCALE if share >= MIN_RANGE_SHARE else DEFAULT_SCALE.removeprefix(RANGE_PREFIX)


def calibration_scale(high: np.ndarray | None, low: np.ndarray | None, rows: int = CALIBRATION_ORIGINS) -> str:
    """Return the scale new bands are calibrated on: ``DEFAULT_SCALE`` where most of the last ``rows`` bars have a usable range, else its close-to-close form.

    The card records it, so it says what the quantiles rest on: a model trained
    on a close-only file (every bar one price) keeps the close-to-close scale
    when its bars later gain highs and lows, where the range scale would be
    about 15 % narrower than the moves its quantiles were measured in.
    """
    share = 0.0 if high is None or low is None or not len(high) else \
        float(np.mean(usable_range(np.asarray(high, dtype="float64")[-rows:], np.asarray(low, dtype="float64")[-rows:])))
    return scale_for_range_share(share)


def bars_range(bars) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return (high, low) as float arrays from a table of bars (a DataFrame), or (None, None) where it has no range."""
    if "high" not in bars or "low" not in bars:
        return None, None
    return np.asarray(bars["high"], dtype="float64"), np.asarray(bars["low"], dtype="float64")


def ewma_variance(changes: np.ndarray, lam: float) -> np.ndarray:
    """Return (len(changes),): v[t] = lam * v[t-1] + (1 - lam) * changes[t]**2, RiskMetrics' recursion.

    Starts from the mean square of the first ``EWMA_SEED_ROWS`` finite changes;
    a non-finite change leaves the variance as it was. v[t] uses changes up to t only.
    A plain loop (about 1 ms for ten years of days): scipy.signal's filter would cost
    predict a second of import time.
    """
    squares = np.asarray(changes, dtype="float64") ** 2
    finite = np.isfinite(squares)
    if not finite.any():
        return np.full(len(squares), np.nan)
    v = float(np.mean(squares[finite][:EWMA_SEED_ROWS]))
    out = np.empty(len(squares))
    for t, x in enumerate(squares.tolist()):
        if x == x and x != math.inf:  # finite (NaN != NaN)
            v = lam * v + (1 - lam) * x
        out[t] = v
    return out


def origin_scale(prices: np.ndarray, origins: np.ndarray, transform: str, window: int = SCALE_WINDOW,
                 scale: str | None = None, high: np.ndarray | None = None, low: np.ndarray | None = None) -> np.ndarray:
    """Return (n,) volatility at each origin, from the daily moves up to it (inclusive).

    ``scale`` "std<W>" (default ``std{window}``): the std of the last W daily
    changes; "ewma<lambda>": the square root of their exponentially weighted
    mean square. log-return targets use daily log-returns, level targets daily
    price changes (the residuals' units). With "range:", each day's move is
    ``range_moves`` (``high`` and ``low`` are the bars' own, row for row with
    ``prices``) and a long window takes their root mean square. Uses bars up
    to each origin only.
    """
    origins = np.asarray(origins, dtype=int)
    m = parse_scale(scale or scale_name(window))
    on_range = bool(m[1])
    moves = range_moves(prices, high, low, transform) if on_range else daily_changes(prices, transform)
    if m[2]:
        out = _rolling_std(moves, origins, int(m[2]), demean=not on_range)
    else:
        out = np.full(len(origins), np.nan)
        variance = ewma_variance(moves, float(m[3]))
        known = origins >= MIN_SCALE_ROWS  # moves[origin - 1] is the last one known at the origin
        out[known] = np.sqrt(variance[origins[known] - 1])
    if m[4]:  # half the variance from a long window: pulls a calm spell's scale toward the long run
        out = np.sqrt((out ** 2 + _rolling_std(moves, origins, int(m[4]), demean=not on_range) ** 2) / 2)
    usable = np.isfinite(out) & (out > 0)
    fallback = float(np.median(out[usable])) if usable.any() else 1.0  # a flat series has no volatility: unit scale, not 0/0
    out = np.where(usable, out, fallback)
    return out


def conformal_quantiles(residuals: np.ndarray, levels=DEFAULT_LEVELS) -> dict[str, list[float]]:
    """Return {"0.8": [q_step1, ...], ...} from residuals of shape (n, horizon).

    Uses the finite-sample rank ceil((n + 1) * level) of the absolute residuals.
    """
    residuals = np.abs(np.asarray(residuals, dtype="float64"))
    if residuals.ndim == 1:
        residuals = residuals[:, None]
    n = len(residuals)
    out = {}
    for level in levels:
        rank = min(n, max(1, math.ceil((n + 1) * level)))
        out[level_key(level)] = [float(v) for v in np.sort(residuals, axis=0)[rank - 1]] if n else [float("nan")] * residuals.shape[1]
    return out


def naive_residuals(prices: np.ndarray, origins: np.ndarray, horizon: int, transform: str) -> np.ndarray:
    """Return (n, horizon) errors of "no change" at ``origins`` in target space: log(P[t+k] / P[t]), or P[t+k] - P[t]."""
    from forecast.maths.windows import target_matrix

    prices = np.asarray(prices, dtype="float64")
    origins = np.asarray(origins, dtype=int)
    truth = target_matrix(prices, horizon, transform)[origins]
    return truth if transform == "log-return" else truth - prices[origins, None]


def calibration_origins(rows: int, horizon: int, first: int = 0) -> np.ndarray:
    """Return the last ``CALIBRATION_ORIGINS`` origins of ``rows`` bars whose ``horizon`` steps are all known, none before ``first``."""
    return np.arange(max(first, rows - horizon - CALIBRATION_ORIGINS), rows - horizon)


def _root_mean_square(values: np.ndarray) -> np.ndarray:
    """Return (H,) the root mean square of each column's finite values; NaN for a column with none."""
    squares = np.asarray(values, dtype="float64") ** 2
    finite = np.isfinite(squares)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0: no finite error at that step
        return np.sqrt(np.where(finite, squares, 0.0).sum(axis=0) / finite.sum(axis=0))


def anchored_quantiles(model_errors: np.ndarray, naive_errors: np.ndarray, naive_long: np.ndarray,
                       levels=DEFAULT_LEVELS) -> tuple[dict[str, list[float]], list[float]]:
    """Return (quantiles, ratio): naive's conformal quantiles on a long set, rescaled to the model's error size.

    ``model_errors`` and ``naive_errors`` (n, H) are the model's and "no change"'s
    normalised residuals on the same held-out windows; ``naive_long`` (m, H)
    naive's normalised residuals over many more origins. ``ratio[k]`` is the
    root mean square of the model's errors at step k over naive's, and each
    quantile is ``ratio[k]`` times naive's conformal quantile at that step.
    A step where naive's errors are all zero (a flat series) or the long set is
    empty keeps the model's own validation quantile. Rows of ``naive_long`` with a
    non-finite value (a gap in the prices) are left out.
    """
    model_errors, naive_errors = np.atleast_2d(model_errors), np.atleast_2d(naive_errors)
    naive_long = np.asarray(naive_long, dtype="float64")
    naive_long = naive_long[np.isfinite(naive_long).all(axis=1)]  # a gap in the prices is no error of anyone's
    own = conformal_quantiles(model_errors, levels)
    long = conformal_quantiles(naive_long, levels) if len(naive_long) else own
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = _root_mean_square(model_errors) / _root_mean_square(naive_errors)
    usable = np.isfinite(ratio) & (ratio > 0) & bool(len(naive_long))
    quantiles = {key: [float(r * q) if ok else own_q for r, q, ok, own_q in zip(ratio, long[key], usable, own[key])]
                 for key in own}
    return quantiles, [float(r) if ok else float("nan") for r, ok in zip(ratio, usable)]


def network_intervals(prices: np.ndarray, val_origins: np.ndarray, val_residuals: np.ndarray, transform: str,
                      levels=DEFAULT_LEVELS, high: np.ndarray | None = None, low: np.ndarray | None = None) -> dict:
    """Return a network card's ``intervals``: the mean of its validation and anchored quantiles, both, and what they rest on.

    ``val_residuals`` (n, H) are the network's errors in target space at its
    validation ``val_origins`` (rows of ``prices``, the training prices);
    ``high`` and ``low``, the same rows' range, feed the range scale.
    """
    val_origins = np.asarray(val_origins, dtype=int)
    val_residuals = np.asarray(val_residuals, dtype="float64").reshape(len(val_origins), -1)
    horizon = val_residuals.shape[1]
    scale = calibration_scale(high, low)
    val_scale = origin_scale(prices, val_origins, transform, scale=scale, high=high, low=low)[:, None]
    # from the first origin whose EWMA no longer rests on its seed (the mean square of the first changes, later ones included)
    long_origins = calibration_origins(len(prices), horizon, first=EWMA_SEED_ROWS)
    long_scale = origin_scale(prices, long_origins, transform, scale=scale, high=high, low=low)[:, None]
    model_errors = val_residuals / val_scale
    own = conformal_quantiles(model_errors, levels)
    anchored, ratio = anchored_quantiles(model_errors, naive_residuals(prices, val_origins, horizon, transform) / val_scale,
                                         naive_residuals(prices, long_origins, horizon, transform) / long_scale, levels)
    used = {"validation": own, "anchored": anchored,
            "blend": {key: [(a + b) / 2 for a, b in zip(own[key], anchored[key])] for key in own}}[NETWORK_QUANTILES]
    # "scale_window" stays for readers that predate "scale"; a card without "scale" was calibrated with std<window>
    return {"method": NETWORK_METHOD if NETWORK_QUANTILES == "blend" else f"split-conformal, {NETWORK_QUANTILES} quantiles",
            "space": transform, "scale": scale, "scale_window": SCALE_WINDOW, "quantiles": used,
            "validation_quantiles": own, "anchored_quantiles": anchored, "error_ratio": ratio,
            "validation_windows": len(val_origins), "naive_origins": len(long_origins)}


SHOWN_LEVEL = 0.8  # the one range a one-number view (rank, a summary table) shows when several are computed


def preferred_level(keys) -> str:
    """The level key to show alone: 80 % when computed, else the narrowest there is."""
    keys = list(keys)
    wanted = level_key(SHOWN_LEVEL)
    return wanted if wanted in keys else sorted(keys, key=float)[0]


def level_key(level: float | str) -> str:
    """Return how a level is keyed in stored artefacts: 0.8 -> "0.8"."""
    return f"{float(level):g}"


def level_percent(level: float | str) -> str:
    """Return a level as a percentage without a sign, for column names and labels: "0.8" -> "80", 0.575 -> "57.5"."""
    return f"{float(level) * 100:.10g}"


def level_label(level: float | str) -> str:
    """Return a level as people read it: "0.8" -> "80%"."""
    return f"{level_percent(level)}%"


def band_columns(level: float | str) -> tuple[str, str]:
    """Return the CSV column names of a level's band: ("lower_80", "upper_80")."""
    pct = level_percent(level)
    return f"lower_{pct}", f"upper_{pct}"


def check_levels(levels) -> tuple[float, ...]:
    """Return interval levels as a sorted tuple of floats in (0, 1), or raise BadInputError."""
    from forecast.errors import BadInputError

    if not isinstance(levels, (list, tuple)) or not levels:
        raise BadInputError(f"levels must be a list such as [0.8, 0.95], not {levels!r}")
    out = []
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
            raise BadInputError(f"each level must be a number between 0 and 1 (0.8 for 80 %), not {level!r}")
        out.append(float(level))
    if len(set(out)) < len(out):
        raise BadInputError(f"levels must differ from each other, not {levels!r}")
    return tuple(sorted(out))


def interval_bounds(point: np.ndarray, quantile: np.ndarray, scale: np.ndarray, last_price: np.ndarray,
                    transform: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (lower, upper) prices: points (n, H) in target space ± quantile (H,) x scale (n,)."""
    halfwidth = np.asarray(quantile)[None, :] * np.asarray(scale)[:, None]
    lo, hi = point - halfwidth, point + halfwidth
    if transform == "log-return":
        return last_price[:, None] * np.exp(lo), last_price[:, None] * np.exp(hi)
    return lo, hi


EXTRA = "intervals"  # pip install forecast[intervals]: arch for garch, statsforecast for ets


def import_extra(module: str, model: str) -> ModuleType:
    """Return the imported ``module``, or raise MissingExtraError naming the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MissingExtraError(f"the {model} model needs {package}, an optional extra: pip install forecast[{EXTRA}]") from None
