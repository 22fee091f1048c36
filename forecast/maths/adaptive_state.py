"""One series' adaptive-interval state: its fields, its JSON form, and the checks a state must pass; pure, no I/O.

``AdaptiveState`` is what ``adaptive_intervals``' methods read and move (one
per series, model, horizon step and level); ``to_dict``/``from_dict`` are its
only stored form (strict JSON, never pickled), and ``from_dict`` refuses
anything ``to_dict`` could not have written with a one-line BadInputError.
The methods' names and default step sizes live here, beside the fields they
fill; the score spaces are ``band_scores``'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecast.errors import BadInputError
from forecast.maths.band_scores import SPACES

METHODS = ("aci", "dtaci", "tracker")  # what a state can run; replay also takes "fixed"
# chosen in benchmarks/interval_adaptive.py on 120 S&P 500 selection series (naive's and drift's bands, last 500 days)
# by a rule fixed before the run: of the methods whose pooled coverage is within 1.5 points of nominal and whose
# per-series coverage is within 5 points on 90 % of the series, in every step and level, the lowest mean Winkler ratio
DEFAULT_METHOD = "tracker"
DEFAULT_ETA = 0.02  # the tracker's step, in multiplier units: a miss at 80 % widens the band by 1.6 %, a hit narrows it 0.4 %
DEFAULT_GAMMA = 0.002  # ACI's step size: the same rule's pick among the ACI step sizes tried
DEFAULT_GAMMAS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128)  # DtACI's experts (the paper's grid)
DEFAULT_WINDOW = 500  # scores kept: two years of daily outcomes, as many as the split-conformal band rests on
MIN_WARMUP = 20
STATE_VERSION = 1


def check_level(level: object) -> float:
    """Return ``level`` as a float strictly between 0 and 1; raise BadInputError otherwise."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < float(level) < 1:
        raise BadInputError(f"an interval level must be a number strictly between 0 and 1 (0.8 for 80 %), not {level!r}")
    return float(level)


def check_step(name: str, value: object) -> float:
    """Return the step size ``value`` (called ``name`` in the error) as a finite float above 0; raise BadInputError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value) or value <= 0:
        raise BadInputError(f"{name} must be a finite number above 0, not {value!r}")
    return float(value)


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
        check_state(state)
        return state

    def copy(self) -> AdaptiveState:
        # the sorted cache is not copied: the copy sorts its own scores when first asked, so it can never be stale
        return AdaptiveState(self.level, self.method, self.gammas, list(self.alphas), list(self.weights), self.multiplier,
                             list(self.scores), self.window, self.warmup, self.space, self.seen, self.updates, self.misses)


def check_state(state: AdaptiveState) -> None:
    """Raise BadInputError (one line) unless ``state``'s method, space, level, steps, alphas, weights and scores are valid."""
    check_level(state.level)
    if state.method not in METHODS:
        raise BadInputError(f"unknown adaptive interval method {state.method!r}; use one of {', '.join(METHODS)}")
    if state.space not in SPACES:
        raise BadInputError(f"unknown score space {state.space!r}; use log or linear")
    if not state.gammas:
        raise BadInputError("an adaptive interval state needs at least one step size")
    for g in state.gammas:
        check_step("each step size (gamma, eta)", g)
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

