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
- ``"fixed"`` (``replay`` only): the model's band as it is, for comparison.

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
can miss where the counted err does not (``Replay.wanted`` says where).

**Cold start.** Until a state holds ``warmup`` scores the methods that read
scores show the model's own band and only collect scores (no alpha moves): the
conformal quantile of a handful of scores is noise. A state can instead be
seeded with the model's held-out scores (``new_state(..., seed_scores=...)``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from forecast.errors import BadInputError

METHODS = ("aci", "dtaci", "tracker")  # what a state can run; replay also takes "fixed"
SPACES = ("log", "linear")
# chosen in benchmarks/interval_adaptive.py on 120 S&P 500 selection series (naive's and drift's bands, last 500 days)
# by a rule fixed before the run: of the methods whose pooled coverage is within 1.5 points of nominal and whose
# per-series coverage is within 5 points on 90 % of the series, in every step and level, the lowest mean Winkler ratio
DEFAULT_METHOD = "tracker"
DEFAULT_ETA = 0.02  # the tracker's step, in multiplier units: a miss at 80 % widens the band by 1.6 %, a hit narrows it 0.4 %
DEFAULT_GAMMA = 0.002  # ACI's step size: the same rule's pick among the ACI step sizes tried
DEFAULT_GAMMAS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128)  # DtACI's experts (the paper's grid)
DEFAULT_WINDOW = 500  # scores kept: two years of daily outcomes, as many as the split-conformal band rests on
DTACI_INTERVAL = 100  # DtACI's I: the span (outcomes) over which its regret is controlled; sets eta and sigma
MIN_WARMUP = 20
SHOWN_CAP = 3.0  # an ACI band is shown at most this times the recent scores' quantile at the nominal level
STATE_VERSION = 1
FloatArray = NDArray[np.float64]


def _check_level(level: object) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < float(level) < 1:
        raise BadInputError(f"an interval level must be a number strictly between 0 and 1 (0.8 for 80 %), not {level!r}")
    return float(level)


def _check_step(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value) or value <= 0:
        raise BadInputError(f"{name} must be a finite number above 0, not {value!r}")
    return float(value)


def default_warmup(level: float) -> int:
    """Return how many scores a state collects before it moves: enough for the level's quantile to rest on two scores."""
    return max(MIN_WARMUP, math.ceil(2 / (1 - level)))


@dataclass
class AdaptiveState:
    """One series' recalibration for one model, horizon step and level; stored as JSON (``to_dict``), never pickled.

    ``alphas`` are the experts' current miscoverage levels (one for "aci"),
    ``weights`` their weights ("dtaci"), ``multiplier`` the tracker's m
    ("tracker"), ``scores`` the last ``window`` scores, oldest first.
    ``updates`` counts the outcomes that moved the state (after the warm-up),
    ``misses`` those of them that fell outside the band the state gave then:
    ``misses / updates`` is the long-run miscoverage the promise is about.
    """

    level: float
    method: str = DEFAULT_METHOD
    gammas: tuple[float, ...] = (DEFAULT_GAMMA,)
    alphas: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    multiplier: float = 1.0
    scores: list[float] = field(default_factory=list)
    window: int = DEFAULT_WINDOW
    warmup: int = MIN_WARMUP
    space: str = "log"
    seen: int = 0
    updates: int = 0
    misses: int = 0
    _sorted: list[float] | None = field(default=None, repr=False, compare=False)  # cache: scores in order

    @property
    def alpha(self) -> float:
        """The nominal miscoverage, 1 - level."""
        return 1.0 - self.level

    @property
    def current_alpha(self) -> float:
        """The miscoverage level today's band is drawn at ("aci", "dtaci"); the nominal one for "tracker"."""
        if self.method == "tracker" or not self.alphas:
            return self.alpha
        if self.method == "dtaci":
            return float(np.dot(self.weights, self.alphas))
        return self.alphas[0]

    @property
    def miscoverage(self) -> float:
        """misses / updates: the long-run miscoverage so far (NaN before any update)."""
        return self.misses / self.updates if self.updates else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Return the state as strict JSON types: floats as they are (JSON keeps a float exactly, so a reloaded
        state decides the same), an infinite score (an outcome off a zero half-width) as null."""
        return {"version": STATE_VERSION, "level": self.level, "method": self.method, "gammas": list(self.gammas),
                "alphas": list(self.alphas), "weights": list(self.weights), "multiplier": self.multiplier,
                "scores": [float(s) if math.isfinite(s) else None for s in self.scores], "window": self.window, "warmup": self.warmup,
                "space": self.space, "seen": self.seen, "updates": self.updates, "misses": self.misses}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptiveState:
        """Return the state ``to_dict`` wrote; raise BadInputError (one line) on anything else."""
        try:
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version') if isinstance(data, dict) else None!r}")
            state = cls(level=float(data["level"]), method=str(data["method"]),
                        gammas=tuple(float(g) for g in data["gammas"]), alphas=[float(a) for a in data["alphas"]],
                        weights=[float(w) for w in data["weights"]], multiplier=float(data["multiplier"]),
                        scores=[math.inf if s is None else float(s) for s in data["scores"]], window=int(data["window"]), warmup=int(data["warmup"]),
                        space=str(data["space"]), seen=int(data["seen"]), updates=int(data["updates"]),
                        misses=int(data["misses"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"an adaptive interval state cannot be read ({type(exc).__name__}: {exc})") from None
        _check_state(state)
        return state

    def copy(self) -> AdaptiveState:
        # the sorted cache is not copied: the copy sorts its own scores when first asked, so it can never be stale
        return AdaptiveState(self.level, self.method, self.gammas, list(self.alphas), list(self.weights), self.multiplier,
                             list(self.scores), self.window, self.warmup, self.space, self.seen, self.updates, self.misses)


def _check_state(state: AdaptiveState) -> None:
    _check_level(state.level)
    if state.method not in METHODS:
        raise BadInputError(f"unknown adaptive interval method {state.method!r}; use one of {', '.join(METHODS)}")
    if state.space not in SPACES:
        raise BadInputError(f"unknown score space {state.space!r}; use log or linear")
    if not state.gammas:
        raise BadInputError("an adaptive interval state needs at least one step size")
    for g in state.gammas:
        _check_step("each step size (gamma, eta)", g)
    if state.window < 1 or state.warmup < 0:
        raise BadInputError(f"window must be at least 1 and warmup at least 0, not {state.window} and {state.warmup}")
    if state.method != "tracker" and len(state.alphas) != len(state.gammas):
        raise BadInputError("an adaptive interval state needs one alpha per step size")
    if state.method == "dtaci" and len(state.weights) != len(state.gammas):
        raise BadInputError("a dtaci state needs one weight per expert")
    if not all(math.isfinite(v) for v in (*state.alphas, *state.weights, state.multiplier)) or any(w < 0 for w in state.weights):
        raise BadInputError("an adaptive interval state holds a non-finite alpha, weight or multiplier, or a negative weight")
    if any(not s >= 0 for s in state.scores):  # NaN or negative: no score is either
        raise BadInputError("an adaptive interval state's scores must be numbers of at least 0")


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
    level = _check_level(level)
    if method not in METHODS:
        raise BadInputError(f"unknown adaptive interval method {method!r}; use one of {', '.join(METHODS)}")
    if method == "aci":
        steps: tuple[float, ...] = (_check_step("gamma", DEFAULT_GAMMA if gamma is None else gamma),)
    elif method == "dtaci":
        steps = tuple(_check_step("each gamma", g) for g in (DEFAULT_GAMMAS if gammas is None else gammas))
        if not steps:
            raise BadInputError("dtaci needs at least one gamma")
    else:
        steps = (_check_step("eta", DEFAULT_ETA if eta is None else eta),)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise BadInputError(f"window must be a whole number of scores, at least 1, not {window!r}")
    if space not in SPACES:
        raise BadInputError(f"unknown score space {space!r}; use log or linear")
    alpha = 1 - level
    state = AdaptiveState(level=level, method=method, gammas=steps,
                          alphas=[] if method == "tracker" else [alpha] * len(steps),
                          weights=[1 / len(steps)] * len(steps) if method == "dtaci" else [],
                          window=int(window), warmup=default_warmup(level) if warmup is None else int(warmup), space=space)
    _check_state(state)
    seeds = np.asarray(seed_scores, dtype="float64").ravel()
    seeds = seeds[np.isfinite(seeds) & (seeds >= 0)][-state.window:]
    if method == "tracker":  # it keeps no scores: the seeds' conformal quantile is where its multiplier starts
        start = _quantile(sorted(float(s) for s in seeds), alpha) if len(seeds) else 1.0
        state.multiplier = start if math.isfinite(start) else 1.0
    else:
        state.scores = [float(s) for s in seeds]
    return state


# --- scores and bands ------------------------------------------------------------------------------

def _to_space(values: ArrayLike, space: str) -> FloatArray:
    values = np.asarray(values, dtype="float64")
    if space == "linear":
        return values
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)  # no log of a non-price: unscored


def band_scores(realised: ArrayLike, lower: ArrayLike, upper: ArrayLike, point: ArrayLike, space: str = "log") -> FloatArray:
    """Return each outcome's distance from its point in half-widths of its band on that side (>= 0; NaN where unscorable).

    A half-width of zero scores 0 for an outcome on the point and infinity
    for any other on that side; a non-positive value in log space, or any NaN,
    scores NaN (the outcome is skipped, not counted as a hit or a miss).
    """
    if space not in SPACES:
        raise BadInputError(f"unknown score space {space!r}; use log or linear")
    y, lo, hi, p = (_to_space(a, space) for a in (realised, lower, upper, point))
    below, above = p - lo, hi - p
    distance = y - p
    half = np.where(distance < 0, below, above)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.abs(distance) / half
    score = np.where(distance == 0, 0.0, score)  # on the point: covered by any band, even the empty one
    score = np.where((half == 0) & (distance != 0), np.inf, score)
    bad = ~(np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(p)) | (below < 0) | (above < 0)
    return np.where(bad, np.nan, score)


def scale_band(lower: ArrayLike, upper: ArrayLike, point: ArrayLike, multiplier: ArrayLike,
               space: str = "log") -> tuple[FloatArray, FloatArray]:
    """Return (lower, upper): both halves of the band around ``point`` times ``multiplier`` (in ``space``)."""
    lo, hi, p = (_to_space(a, space) for a in (lower, upper, point))
    m = np.asarray(multiplier, dtype="float64")
    with np.errstate(invalid="ignore", over="ignore"):
        new_lo, new_hi = p - m * (p - lo), p + m * (hi - p)
        if space == "log":
            new_lo, new_hi = np.exp(new_lo), np.exp(new_hi)
    # where the band cannot be scaled (a non-positive price in log space, a NaN), it stays the model's own
    keep = ~(np.isfinite(new_lo) & np.isfinite(new_hi))
    return (np.where(keep, np.asarray(lower, dtype="float64"), new_lo),
            np.where(keep, np.asarray(upper, dtype="float64"), new_hi))


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


def _multiplier(state: AdaptiveState) -> float:
    if state.method == "tracker":
        return max(state.multiplier, 0.0)  # below 0 the band is empty: the point alone
    if _warming(state):
        return 1.0
    return _quantile(_sorted_scores(state), state.current_alpha)


def _cap(state: AdaptiveState) -> float:
    """Return the widest multiplier a score-quantile band is shown with: SHOWN_CAP times the nominal quantile, at least 1."""
    ordered = [s for s in _sorted_scores(state) if math.isfinite(s)]
    nominal = _quantile(ordered, state.alpha) if ordered else math.inf
    return max(1.0, SHOWN_CAP * nominal) if math.isfinite(nominal) else max([1.0, *ordered[-1:]])


def _shown(state: AdaptiveState) -> float:
    m = _multiplier(state)
    if state.method == "tracker" or _warming(state):
        return m
    # ACI's band near alpha_t = 0 is the top few of the stored scores, and alpha_t <= 0 asks for an infinite one;
    # a single glitch (a day at half price scores 30) would then make the band absurd for weeks. So a band is
    # shown at most SHOWN_CAP times the scores' quantile at the nominal level (the infinite one too)
    return min(m, _cap(state))


def multiplier(state: AdaptiveState) -> float:
    """Return the factor today's band is scaled by: 1 while warming up; inf where ACI asks for an infinite band."""
    state._sorted = None  # a caller may have changed the scores: sort them afresh (500 of them: microseconds)
    return _multiplier(state)


def shown_multiplier(state: AdaptiveState) -> float:
    """Return ``multiplier(state)`` as a band is shown: for "aci" and "dtaci" at most ``SHOWN_CAP`` times the stored
    scores' quantile at the nominal level (an infinite band too), and never capped below 1 (the model's band)."""
    state._sorted = None
    return _shown(state)


def adjust(state: AdaptiveState, lower: ArrayLike, upper: ArrayLike, point: ArrayLike) -> tuple[Any, Any]:
    """Return today's (lower, upper): the model's band around ``point`` scaled by the state's multiplier.

    Widened where the model's recent outcomes fell outside its band more often
    than ``1 - level``, narrowed where less often. Scalars or arrays (each
    element scaled by the same factor).
    """
    _check_state(state)
    lo, hi = scale_band(lower, upper, point, shown_multiplier(state), state.space)
    return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)


# --- one outcome -----------------------------------------------------------------------------------

def _pinball(beta: float, theta: float, alpha: float) -> float:
    """DtACI's loss of an expert at ``theta`` when ``beta`` was the largest alpha that covered: the alpha-pinball loss."""
    d = beta - theta
    return alpha * d - min(0.0, d)


def _dtaci_rates(state: AdaptiveState) -> tuple[float, float]:
    """Return DtACI's (eta, sigma) for the state's level and experts (Gibbs and Candès 2022, section 3)."""
    a, k, span = state.alpha, len(state.gammas), DTACI_INTERVAL
    eta = math.sqrt(3 / span) * math.sqrt((math.log(k * span) + 2) / ((1 - a) ** 2 * a ** 3 + a ** 2 * (1 - a) ** 3))
    return eta, 1 / (2 * span)


def _apply(state: AdaptiveState, score: float) -> None:
    """Move ``state`` (in place) by one outcome's score; NaN leaves it as it was."""
    if math.isnan(score):  # nothing known about this forecast
        return
    state.seen += 1
    alpha = state.alpha
    if state.method == "tracker":
        err = 1.0 if score > max(state.multiplier, 0.0) else 0.0
        state.multiplier += state.gammas[0] * (err - alpha)  # Angelopoulos et al.'s quantile tracker: a miss widens
        state.updates += 1
        state.misses += int(err)
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
    _check_state(state)
    out = state.copy()
    _apply(out, float(band_scores(realised, lower, upper, point, state.space)))
    return out


# --- a whole history -------------------------------------------------------------------------------

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
    level = _check_level(level)
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
            _check_state(given)
        state = given.copy() if given is not None else new_state(level, method, gamma=gamma, gammas=gammas, eta=eta,
                                                                window=window, warmup=warmup, space=space)
        known_at = rows + (k + 1)  # the row at which each forecast's step-k outcome is known
        nxt = 0
        for i in range(n):
            while nxt < i and known_at[nxt] <= rows[i]:  # every outcome known by origin i, oldest first
                _apply(state, scores[nxt, k])
                nxt += 1
            used[i, k] = _shown(state)
            wanted[i, k] = _multiplier(state)
        out_lo[:, k], out_hi[:, k] = scale_band(lo[:, k], hi[:, k], p[:, k], used[:, k], space)
        while nxt < n:  # the outcomes that came after the last origin: the state carries them on
            _apply(state, scores[nxt, k])
            nxt += 1
        finals.append(state)
    return Replay(out_lo, out_hi, used, wanted, finals)
