"""Online recalibration of any model's prediction interval from its realised errors: pure numpy, no I/O.

A split-conformal band (intervals.py) is fixed when the model is fit; between
refits it cannot notice that its errors have grown or shrunk. The methods here
watch each past forecast's outcome and widen or narrow the band that the model
gives today, per series, horizon step and level, with no assumption on the
model: a network, a baseline, GARCH or ETS all hand over a point and a band.

**The score.** A forecast's band ``[lower, upper]`` around its ``point`` is
read as two half-widths, ``point - lower`` and ``upper - point`` (unequal for a
log-return model's price band). The realised value's *score* is its distance
from the point in units of the half-width on its own side: 0.5 is halfway to
the bound, 1 on it, 2 twice as far. An adjusted band is the model's band with
both halves multiplied by one number ``m``; it covers the outcome exactly when
the score is at most ``m``. The base band is ``m = 1``. Scores are taken on
the log scale by default (``space="log"``: a price band from a log-return
model is symmetric there, and a widened band never crosses zero).

**The methods** (``METHODS``):

- ``"aci"``: adaptive conformal inference (Gibbs and Candès, 2021). The band
  at time t uses ``m_t``, the ``(1 - alpha_t)`` conformal quantile of the
  recent scores (rank ``ceil((n + 1)(1 - alpha_t))`` of n), and after each
  outcome ``alpha_{t+1} = alpha_t + gamma (alpha - err_t)``, where ``alpha`` is
  the nominal miscoverage and ``err_t`` is 1 on a miss. ``alpha_t <= 0`` (the
  quantile's rank passes the number of scores) asks for an infinite band,
  ``alpha_t >= 1`` for an empty one (``m = 0``: the point alone).
  **Promise**, on every series, whatever the data and the model:
  ``|mean(err) - alpha| <= (max(alpha_1, 1 - alpha_1) + gamma) / (gamma T)``
  after T updates, where ``err`` is counted by the rule above (an infinite
  band covers). It is a long-run frequency, not a per-forecast probability.
- ``"dtaci"``: the aggregate of ACI experts with different step sizes
  ``gammas`` (Gibbs and Candès, 2022, "dynamically-tuned" ACI; the idea of
  Zaffran et al.'s AgACI): each expert runs ACI; the experts are weighted by
  exponentiated pinball loss of their alpha against the largest alpha that
  would have covered, with fixed-share mixing so that a forgotten expert can
  come back after a regime change; the band uses the weighted mean alpha.
  It chooses the step size online. Its promise is the experts' (each keeps
  the bound above with its own gamma) plus a regret bound on the pinball
  loss; the deterministic mean used here, rather than the paper's random
  draw, keeps the same forecasts on every run but is outside that theorem.
- ``"tracker"``: a quantile tracker on the multiplier itself, the P part of
  the conformal PID controller (Angelopoulos, Candès and Tibshirani, 2023):
  ``m_{t+1} = m_t + eta (err_t - alpha)``, starting at the model's own band
  (m = 1). Promise: if scores stay below B,
  ``|mean(err) - alpha| <= (B + eta) / (eta T)``. It needs no stored scores
  (the state is one number), but a single step size in multiplier units.
- ``"fixed"`` (``adaptive_replay.replay`` only): the model's band as it is, for comparison.

**Which one** (``DEFAULT_METHOD``): the tracker with ``eta = 0.02``, chosen
in benchmarks/interval_adaptive.py on 120 S&P 500 series (naive's and drift's
bands, the last 500 days, refit every 20) by a rule fixed beforehand, and
reported on 119 others. The product's bands are already volatility-scaled, so what is left
to correct is a steady bias per series (BAC's 80 % band covering 84 %), which
a small smooth step fixes at no cost in Winkler score; ACI's quantile of a
few hundred scores moves the 95 % band more noisily (+1 to 6 % Winkler), and
the aggregate's fast experts, fed outcomes five days late at step 5,
under-cover there. The tracker also reacts to how often a band misses, not
by how far, so one glitch in the prices moves it by one step.

**Delays.** The outcome of a step-k forecast is known k bars after its origin,
so at any origin the last k - 1 forecasts of that step are still open.
``update`` takes an outcome whenever it arrives; ``err`` is judged against the
band the state would give *now* (its current alpha or multiplier and scores),
so the state never needs the bands it gave in the past, and the bounds above
hold for that err sequence exactly. The bands actually shown were made up to
k - 1 updates earlier; at step 1 with daily origins the two are the same.

**What is not promised.** Coverage conditional on a day, a price level or a
volatility regime; coverage over a short span (the bound is loose for small
T); that a new record outcome is covered where the theory's infinite band
would have been: a band cannot be shown infinite, and near alpha_t = 0 ACI's
quantile is the largest few scores, where one data glitch (a day at half
price) would make the band absurd; so ACI's shown band is at most
``SHOWN_CAP`` times the stored scores' quantile at the nominal level, and it
can miss where the counted err does not (``adaptive_replay.Replay.wanted`` says where).

**Cold start.** Until a state holds ``warmup`` scores the methods that read
scores show the model's own band and only collect scores (no alpha moves): the
conformal quantile of a handful of scores is noise. A state can instead be
seeded with the model's held-out scores (``new_state(..., seed_scores=...)``).

**Where.** This module holds the methods' rules: a fresh state
(``new_state``), today's band (``adjust``) and one outcome's move
(``update``). The score and a band's scaling are ``band_scores``'; the
state's fields, JSON form and checks ``adaptive_state``'s; a whole history,
run as it would have run live, ``adaptive_replay``'s.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from forecast.errors import BadInputError
from forecast.maths.adaptive_state import (
    DEFAULT_ETA,
    DEFAULT_GAMMA,
    DEFAULT_GAMMAS,
    DEFAULT_METHOD,
    DEFAULT_WINDOW,
    METHODS,
    MIN_WARMUP,
    AdaptiveState,
    check_level,
    check_state,
    check_step,
)
from forecast.maths.band_scores import SPACES, band_scores, scale_band

DTACI_INTERVAL = 100  # DtACI's I: the span (outcomes) over which its regret is controlled; sets eta and sigma
SHOWN_CAP = 3.0  # an ACI band is shown at most this times the recent scores' quantile at the nominal level


def default_warmup(level: float) -> int:
    """Return how many scores a state collects before it moves: enough for the level's quantile to rest on two scores."""
    return max(MIN_WARMUP, math.ceil(2 / (1 - level)))


def new_state(level: float, method: str = DEFAULT_METHOD, *, gamma: float | None = None,
              gammas: Sequence[float] | None = None, eta: float | None = None, window: int = DEFAULT_WINDOW,
              warmup: int | None = None, space: str = "log", seed_scores: Sequence[float] = ()) -> AdaptiveState:
    """Return a fresh state for one model, step and level.

    ``gamma`` is ACI's step size, ``gammas`` DtACI's experts', ``eta`` the
    tracker's. ``seed_scores`` (a model's held-out scores, ``band_scores`` of
    its calibration errors) skip the warm-up: with them the first band is the
    split-conformal band of those scores (the tracker's multiplier starts at
    their conformal quantile; it stores no scores).
    """
    level = check_level(level)
    if method not in METHODS:
        raise BadInputError(f"unknown adaptive interval method {method!r}; use one of {', '.join(METHODS)}")
    if method == "aci":
        steps: tuple[float, ...] = (check_step("gamma", DEFAULT_GAMMA if gamma is None else gamma),)
    elif method == "dtaci":
        steps = tuple(check_step("each gamma", g) for g in (DEFAULT_GAMMAS if gammas is None else gammas))
        if not steps:
            raise BadInputError("dtaci needs at least one gamma")
    else:
        steps = (check_step("eta", DEFAULT_ETA if eta is None else eta),)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise BadInputError(f"window must be a whole number of scores, at least 1, not {window!r}")
    if space not in SPACES:
        raise BadInputError(f"unknown score space {space!r}; use log or linear")
    alpha = 1 - level
    state = AdaptiveState(level=level, method=method, gammas=steps,
                          alphas=[] if method == "tracker" else [alpha] * len(steps),
                          weights=[1 / len(steps)] * len(steps) if method == "dtaci" else [],
                          window=int(window), warmup=default_warmup(level) if warmup is None else int(warmup), space=space)
    check_state(state)
    seeds = np.asarray(seed_scores, dtype="float64").ravel()
    seeds = seeds[np.isfinite(seeds) & (seeds >= 0)][-state.window:]
    if method == "tracker":  # it keeps no scores: the seeds' conformal quantile is where its multiplier starts
        start = _quantile(sorted(float(s) for s in seeds), alpha) if len(seeds) else 1.0
        state.multiplier = start if math.isfinite(start) else 1.0
    else:
        state.scores = [float(s) for s in seeds]
    return state


# --- scores and bands ------------------------------------------------------------------------------

def _sorted_scores(state: AdaptiveState) -> list[float]:
    if state._sorted is None or len(state._sorted) != len(state.scores):
        state._sorted = sorted(state.scores)
    return state._sorted


def _quantile(ordered: list[float], alpha_t: float) -> float:
    """Return the (1 - alpha_t) conformal quantile of ``ordered`` scores: inf past the largest rank, 0 at alpha_t >= 1."""
    if alpha_t >= 1:
        return 0.0  # the empty band: the point alone
    n = len(ordered)
    rank = math.ceil((n + 1) * (1 - alpha_t) - 1e-12)  # -1e-12: (n + 1) * 0.8 is 400.00000000000006 in floats
    return math.inf if rank > n else ordered[max(rank, 1) - 1]


def _warming(state: AdaptiveState) -> bool:
    return state.method != "tracker" and len(state.scores) < state.warmup


def cached_multiplier(state: AdaptiveState) -> float:
    """Return ``multiplier(state)``, trusting the state's sorted scores (only ``apply_score`` has moved it since)."""
    if state.method == "tracker":
        return float(tracker_shown(state.multiplier))
    if _warming(state):
        return 1.0
    return _quantile(_sorted_scores(state), state.current_alpha)


def _cap(state: AdaptiveState) -> float:
    """Return the widest multiplier a score-quantile band is shown with: SHOWN_CAP times the nominal quantile, at least 1."""
    ordered = [s for s in _sorted_scores(state) if math.isfinite(s)]
    nominal = _quantile(ordered, state.alpha) if ordered else math.inf
    return max(1.0, SHOWN_CAP * nominal) if math.isfinite(nominal) else max([1.0, *ordered[-1:]])


def cached_shown_multiplier(state: AdaptiveState) -> float:
    """Return ``shown_multiplier(state)``, trusting the state's sorted scores (only ``apply_score`` has moved it since)."""
    m = cached_multiplier(state)
    if state.method == "tracker" or _warming(state):
        return m
    # ACI's band near alpha_t = 0 is the top few of the stored scores, and alpha_t <= 0 asks for an infinite one;
    # a single glitch (a day at half price scores 30) would then make the band absurd for weeks. So a band is
    # shown at most SHOWN_CAP times the scores' quantile at the nominal level (the infinite one too)
    return min(m, _cap(state))


def multiplier(state: AdaptiveState) -> float:
    """Return the factor today's band is scaled by: 1 while warming up; inf where ACI asks for an infinite band."""
    state._sorted = None  # a caller may have changed the scores: sort them afresh (500 of them: microseconds)
    return cached_multiplier(state)


def shown_multiplier(state: AdaptiveState) -> float:
    """Return ``multiplier(state)`` as a band is shown: for "aci" and "dtaci" at most ``SHOWN_CAP`` times the stored
    scores' quantile at the nominal level (an infinite band too), and never capped below 1 (the model's band)."""
    state._sorted = None
    return cached_shown_multiplier(state)


def adjust(state: AdaptiveState, lower: ArrayLike, upper: ArrayLike, point: ArrayLike) -> tuple[Any, Any]:
    """Return today's (lower, upper): the model's band around ``point`` scaled by the state's multiplier.

    Widened where the model's recent outcomes fell outside its band more often
    than ``1 - level``, narrowed where less often. Scalars or arrays (each
    element scaled by the same factor).
    """
    check_state(state)
    lo, hi = scale_band(lower, upper, point, shown_multiplier(state), state.space)
    return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)


# --- one outcome -----------------------------------------------------------------------------------

def tracker_shown(multiplier: ArrayLike) -> Any:
    """Return the factor a tracker's band is shown with: its multiplier, or 0 below 0 (the empty band: the point alone)."""
    return np.maximum(multiplier, 0.0)


def tracker_step(multiplier: ArrayLike, score: ArrayLike, eta: float, alpha: ArrayLike) -> tuple[Any, Any]:
    """Return (the multipliers after one outcome each, whether each missed): the tracker's rule, elementwise.

    ``m + eta * (err - alpha)`` (Angelopoulos et al.'s quantile tracker: a miss widens), ``err`` 1 where the score
    passes the band shown now (``tracker_shown``); a NaN score (nothing known) moves nothing and misses nothing.
    Scalars or arrays: ``apply_score`` moves one state with it, a universe model's batch thousands at once.
    """
    m = np.asarray(multiplier, dtype="float64")
    s = np.asarray(score, dtype="float64")
    known = ~np.isnan(s)
    with np.errstate(invalid="ignore"):
        missed = known & (s > tracker_shown(m))
    return np.where(known, m + eta * (missed - alpha), m), missed


def _pinball(beta: float, theta: float, alpha: float) -> float:
    """DtACI's loss of an expert at ``theta`` when ``beta`` was the largest alpha that covered: the alpha-pinball loss."""
    d = beta - theta
    return alpha * d - min(0.0, d)


def _dtaci_rates(state: AdaptiveState) -> tuple[float, float]:
    """Return DtACI's (eta, sigma) for the state's level and experts (Gibbs and Candès 2022, section 3)."""
    a, k, span = state.alpha, len(state.gammas), DTACI_INTERVAL
    eta = math.sqrt(3 / span) * math.sqrt((math.log(k * span) + 2) / ((1 - a) ** 2 * a ** 3 + a ** 2 * (1 - a) ** 3))
    return eta, 1 / (2 * span)


def apply_score(state: AdaptiveState, score: float) -> None:
    """Move ``state`` (in place) by one outcome's score; NaN leaves it as it was."""
    if math.isnan(score):  # nothing known about this forecast
        return
    state.seen += 1
    alpha = state.alpha
    if state.method == "tracker":
        moved, missed = tracker_step(state.multiplier, score, state.gammas[0], alpha)
        state.multiplier = float(moved)
        state.updates += 1
        state.misses += int(missed)
        return  # the tracker reads no scores: its state stays a few numbers
    if not _warming(state):
        ordered = _sorted_scores(state)
        err = 1.0 if score > _quantile(ordered, state.current_alpha) else 0.0
        if state.method == "dtaci":
            # beta: the largest alpha whose band would have covered this outcome (j scores lie strictly below it)
            beta = 1 - bisect.bisect_left(ordered, score) / (len(ordered) + 1)
            eta, sigma = _dtaci_rates(state)
            losses = [_pinball(beta, a, alpha) for a in state.alphas]
            low = min(losses)  # subtracted before exp: same weights, no underflow
            raw = [w * math.exp(-eta * (loss - low)) for w, loss in zip(state.weights, losses)]
            total = sum(raw)
            k = len(raw)
            # fixed share: every expert keeps sigma / k of the weight, so one that was wrong before a shift can lead after it
            mixed = [(1 - sigma) * r / total + sigma / k for r in raw]
            state.weights = [w / sum(mixed) for w in mixed]
        state.alphas = [a + g * (alpha - (1.0 if score > _quantile(ordered, a) else 0.0))
                        for a, g in zip(state.alphas, state.gammas)]
        state.updates += 1
        state.misses += int(err)
    _push(state, score)


def _push(state: AdaptiveState, score: float) -> None:
    ordered = _sorted_scores(state)
    state.scores.append(score)
    bisect.insort(ordered, score)
    if len(state.scores) > state.window:  # forget the oldest: the quantile follows the recent errors
        oldest = state.scores.pop(0)
        del ordered[bisect.bisect_left(ordered, oldest)]
    state._sorted = ordered


def update(state: AdaptiveState, realised: float, lower: float, upper: float, point: float) -> AdaptiveState:
    """Return a new state that has seen one past forecast's outcome: its model band, point and the realised value.

    Give the model's own band (before any adjustment), as it was forecast; the
    outcome is judged against the band the state would give now. A NaN or
    unscorable outcome returns an unchanged copy.
    """
    check_state(state)
    out = state.copy()
    apply_score(out, float(band_scores(realised, lower, upper, point, state.space)))
    return out

