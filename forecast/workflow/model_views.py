"""What ``models show MODEL_ID|TICKER`` shows: a model named by its id (universe-wide or per-ticker), or the model that
serves a ticker and why (``workflow.serving``'s answer when a universe model serves it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forecast.workflow.serving import Serving
from forecast.workspace import Workspace


@dataclass(frozen=True)
class ModelView:
    """A per-ticker model (``card`` and the ``choice`` in use for its ticker), or a universe model's card as stored
    (``universe_card``), with the ``served`` answer when a ticker was named."""

    card: Any = None  # ModelCard
    choice: Any = None  # ModelChoice or None
    universe_card: dict[str, Any] | None = None
    served: Serving | None = None


def _model_or_in_use(registry: Any, text: str) -> tuple[Any, Any]:
    """(card, ModelChoice or None): the model ``text`` names, or the one in use for the ticker ``text`` names."""
    from forecast.data.tickers import parse_ticker
    from forecast.errors import ForecastError, ModelNotFoundError

    try:
        card = registry.card(text)
    except ModelNotFoundError:
        try:
            ticker = str(parse_ticker(text))
        except ForecastError:
            raise ModelNotFoundError(f"no model or ticker {text!r}; see: forecast models list") from None
        choice = registry.choice(ticker)
        return registry.card(choice.model_id), choice
    return card, registry.in_use(card.ticker)


def _served_by_universe_model(workspace: Workspace, text: str) -> Serving | None:
    """The Serving of the ticker ``text`` names when a universe (global) model serves it; None otherwise."""
    from forecast.choices import ModelKind
    from forecast.errors import ForecastError
    from forecast.workflow.serving import model_for

    try:
        served = model_for(workspace, text)
    except ForecastError:
        return None
    return served if served.kind is ModelKind.GLOBAL else None


def model_view(workspace: Workspace, text: str) -> ModelView:
    """The model ``text`` names (an id), or the one that serves the ticker it names; ModelNotFoundError when neither."""
    from forecast.errors import ModelNotFoundError
    from forecast.models.pooled.card import GlobalRegistry
    from forecast.models.registry import ModelRegistry

    universe_models = GlobalRegistry(workspace)
    if text in universe_models.ids():  # a universe model's card as it is stored
        return ModelView(universe_card=universe_models.card(text).to_dict())
    try:
        card, choice = _model_or_in_use(ModelRegistry(workspace), text)
    except ModelNotFoundError:
        served = _served_by_universe_model(workspace, text)
        if served is None:
            raise
        return ModelView(universe_card=universe_models.card(served.model_id).to_dict(), served=served)
    return ModelView(card, choice)


def pin_model(workspace: Workspace, model_id: str) -> Any:
    """Pin ``model_id`` for its ticker (``models use``); its card. ModelNotFoundError says how to unpin instead when
    ``model_id`` is a ticker."""
    from forecast.data.tickers import parse_ticker
    from forecast.errors import ForecastError, ModelNotFoundError
    from forecast.models.registry import ModelRegistry

    try:
        return ModelRegistry(workspace).pin(model_id)
    except ModelNotFoundError:
        hint = ""
        try:
            ticker = str(parse_ticker(model_id))
            hint = f"; to use {ticker}'s newest model: forecast models use {ticker} --latest"
        except ForecastError:
            pass
        raise ModelNotFoundError(f"no model {model_id!r}; see: forecast models list{hint}") from None


def unpin_model(workspace: Workspace, text: str) -> tuple[str, str | None, Any]:
    """Unpin the ticker ``text`` names (a ticker or any of its models): (the ticker, the model that was pinned or None,
    the ModelChoice now in use or None)."""
    from forecast.data.tickers import parse_ticker
    from forecast.errors import ModelNotFoundError
    from forecast.models.registry import ModelRegistry

    registry = ModelRegistry(workspace)
    try:
        ticker = registry.card(text).ticker
    except ModelNotFoundError:
        ticker = str(parse_ticker(text))
    previous = registry.unpin(ticker)
    return ticker, previous, registry.in_use(ticker)


def model_summaries(workspace: Workspace) -> tuple[list[dict[str, Any]], int]:
    """Every per-ticker model's summary, oldest first, and how many model folders have an unreadable card."""
    from forecast.models.registry import ModelRegistry

    registry = ModelRegistry(workspace)
    summaries = sorted(registry.summaries(), key=lambda s: s["created_at"])
    return summaries, len(registry.ids()) - len(summaries)


def models_of(workspace: Workspace, summaries: list[dict[str, Any]], ticker: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``summaries`` and the universe models' summaries (oldest first), with a ticker only those of (or trained on) it."""
    from forecast.data.tickers import parse_ticker
    from forecast.jsonio import finite
    from forecast.models.pooled.card import GlobalRegistry

    name = str(parse_ticker(ticker)) if ticker is not None else None
    if name is not None:
        summaries = [s for s in summaries if s["ticker"] == name]
    cards = sorted(GlobalRegistry(workspace).cards(), key=lambda c: c.created_at)
    if name is not None:
        cards = [c for c in cards if name in c.tickers]
    return summaries, [finite(c.summary()) for c in cards]
