"""Which model serves a ticker, and why: the one place that decides it for ``predict``, ``models show`` and ``rank``.

A ticker is served by, in this order:

1. the model ``--model`` names: a baseline (``naive``...), ``global`` (the
   universe model) or a model id, per-ticker or universe-wide (reason ``--model``);
2. its pinned model (``forecast models use``; a broken pin is said, never bypassed);
3. its latest per-ticker model;
4. with no model of its own, a universe (global) model: the universe's latest
   when a universe is named, else the newest that saw the ticker, else the
   newest of all (a global model forecasts tickers it never trained on).

None of these: ModelNotFoundError, saying how to train one.

The answer without ``--model`` is the model *in use* for the ticker: its
forecast is the ticker's **forecast of record** (what ``plot``, the report and
``run`` show); a forecast by any other model is kept apart (``of_record``
False, ``results.save_forecast``), unless no model serves the ticker at all
(then a ``--model`` baseline's is all there is, and of record).
``of_record`` answers that for many tickers and one model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from forecast.choices import UNIVERSE_MODEL, ModelKind
from forecast.data.tickers import parse_ticker
from forecast.errors import ForecastError, ModelNotFoundError
from forecast.models.card import GlobalCard
from forecast.models.forecasters import is_baseline
from forecast.models.pooled.card import GlobalRegistry
from forecast.models.registry import CHOSEN, ModelChoice, ModelRegistry
from forecast.workspace import Workspace

NO_MODEL_OF_ITS_OWN = f"{UNIVERSE_MODEL} (no model of its own)"  # why a universe model serves a ticker nobody chose it for


@dataclass(frozen=True)
class Serving:
    """The model that serves a ticker: its kind (network, baseline, global), its id, and why it was chosen."""

    ticker: str
    kind: ModelKind
    model_id: str
    reason: str  # "--model", "pinned", "latest" or NO_MODEL_OF_ITS_OWN
    universe: str | None = None  # a global model's universe

    def to_dict(self) -> dict[str, str | None]:
        return {"ticker": self.ticker, "kind": str(self.kind), "model_id": self.model_id, "reason": self.reason,
                "universe": self.universe}


class Router:
    """Answers ``model_for`` for many tickers, reading the universe models' cards once."""

    def __init__(self, workspace: Workspace, model: str | None = None, universe: str | None = None):
        self.workspace = workspace
        self.model = model or None
        self.universe = universe
        self.own = ModelRegistry(workspace)
        self.universe_models = GlobalRegistry(workspace)

    @cached_property
    def _universe_cards(self) -> list[GlobalCard]:
        return self.universe_models.cards()

    @cached_property
    def names_universe_model(self) -> bool:
        """Whether ``--model`` names the universe model (``global``) or one of its ids."""
        return self.model == UNIVERSE_MODEL or (self.model is not None and self.model in self.universe_models.ids())

    def _global(self, ticker: str, reason: str) -> Serving:
        card = self.universe_card(ticker)
        return Serving(ticker, ModelKind.GLOBAL, card.id, reason, card.universe)

    def universe_card(self, ticker: str) -> GlobalCard:
        """The universe model for ``ticker``: the one named, else the universe's latest, else the newest that saw it, else any."""
        if self.model is not None and self.model != UNIVERSE_MODEL:
            return self._card(self.model)
        if self.universe:
            latest = self._universe_latest
            if latest:
                return self._card(latest)
        cards = self._universe_cards
        if not cards:
            where = f" for {self.universe}" if self.universe else ""
            raise ModelNotFoundError(f"no global model{where}; train one: forecast train --universe {self.universe or 'NAME'} "
                                     "--preset global")
        saw = [c for c in cards if ticker in self._seen(c)]
        return max(saw or cards, key=lambda c: c.created_at)

    @cached_property
    def _universe_latest(self) -> str | None:
        return self.universe_models.latest_id(self.universe) if self.universe else None

    def _card(self, model_id: str) -> GlobalCard:
        """A universe model's card, read once per Router (a card of 5,400 tickers, parsed per ticker, was seconds)."""
        cache = self.__dict__.setdefault("_cards", {})
        if model_id not in cache:
            cache[model_id] = self.universe_models.card(model_id)
        return cache[model_id]

    def _seen(self, card: GlobalCard) -> frozenset[str]:
        """The tickers ``card`` trained on, as a set (a tuple's ``in`` over 5,400 names, for each of 5,400 tickers, is seconds)."""
        cache = self.__dict__.setdefault("_seen_sets", {})
        if card.id not in cache:
            cache[card.id] = frozenset(card.tickers)
        return cache[card.id]

    def serve(self, ticker_text: str) -> Serving:
        """Who serves ``ticker_text`` (see the module docstring); ForecastError when nobody can."""
        if self.model is not None and is_baseline(self.model):
            return Serving(str(parse_ticker(ticker_text)), ModelKind.BASELINE, self.model, CHOSEN)
        ticker = str(parse_ticker(ticker_text))
        if self.names_universe_model:
            return self._global(ticker, CHOSEN)
        if self.model is not None:
            choice = self.own.choice(ticker, self.model)
            return Serving(ticker, ModelKind.NETWORK, choice.model_id, choice.reason)
        if self._own_in_use(ticker) is None and not self._pinned(ticker):  # a broken pin is the user's: said below
            try:
                return self._global(ticker, NO_MODEL_OF_ITS_OWN)
            except ModelNotFoundError:
                pass
        choice = self.own.choice(ticker)  # raises: no trained model, or a broken pin
        return Serving(ticker, ModelKind.NETWORK, choice.model_id, choice.reason)

    @cached_property
    def _owners(self) -> frozenset[str]:
        """The tickers with a per-ticker model, from one pass over the cards (not one per ticker with none)."""
        return frozenset(card.ticker for card in self.own.cards())

    @cached_property
    def _pin_names(self) -> frozenset[str]:
        """The names in the pins' folder, listed once (a pin's path checked and stat'ed per ticker was 0.3 s at 5,400)."""
        try:
            return frozenset(os.listdir(self.workspace.pinned_dir))
        except (FileNotFoundError, NotADirectoryError):  # no pin yet
            return frozenset()

    def _pinned(self, ticker: str) -> bool:
        """Whether ``ticker``'s pin file exists; only a name in the pins' folder is checked (a link may lead nowhere)."""
        return ticker in self._pin_names and self.workspace.pin_file(ticker).exists()

    def _own_in_use(self, ticker: str) -> ModelChoice | None:
        """``ModelRegistry.in_use``, answered at once for a ticker with no model of its own and no pin."""
        if ticker not in self._owners and not self._pinned(ticker):
            return None
        return self.own.in_use(ticker)

    def serve_all(self, tickers: Iterable[str]) -> dict[str, Serving | ForecastError]:
        """{ticker as given: its Serving, or the error that says why none}."""
        out: dict[str, Serving | ForecastError] = {}
        for ticker in tickers:
            try:
                out[ticker] = self.serve(ticker)
            except ForecastError as exc:
                out[ticker] = exc
        return out


def model_for(workspace: Workspace, ticker: str, model: str | None = None, universe: str | None = None) -> Serving:
    """The model that serves ``ticker`` and why (see the module docstring); ForecastError when none does."""
    return Router(workspace, model, universe).serve(ticker)


def of_record(workspace: Workspace, tickers: Iterable[str], model_id: str, universe: str | None = None) -> set[str]:
    """The tickers among ``tickers`` whose model in use (``model_for`` without ``--model``, the universe the command
    named) is ``model_id``: those whose forecast by it is their forecast of record; the rest's is kept apart."""
    served = Router(workspace, None, universe).serve_all(tickers)
    return {ticker for ticker, answer in served.items() if isinstance(answer, Serving) and answer.model_id == model_id}


def universe_model(workspace: Workspace, model: str | None = None, universe: str | None = None) -> GlobalCard:
    """The universe model ``rank`` uses: the one ``model`` names, else ``universe``'s latest (no other universe's),
    else, with no universe, the newest of all; ModelNotFoundError when there is none."""
    registry = GlobalRegistry(workspace)
    if model and model != UNIVERSE_MODEL:
        return registry.card(model)
    if universe:
        latest = registry.latest_id(universe)
        if latest is None:
            raise ModelNotFoundError(f"no global model for {universe}; train one: forecast train --universe {universe} "
                                     "--preset global (or name one with --model)")
        return registry.card(latest)
    return Router(workspace).universe_card("")
