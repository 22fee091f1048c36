"""``workflow.model_views``: what ``models show/use/list`` answer, on real cards in real registries of an empty home.

A model named by its id (universe-wide or per-ticker), or the model that serves a ticker and why; a pin and an
unpin by model or ticker; the summaries oldest first with a count of unreadable cards; and ModelNotFoundError
with a hint wherever the text names nothing.
"""

from __future__ import annotations

import pytest

from forecast.choices import ModelKind
from forecast.errors import ModelNotFoundError
from forecast.models.pooled.card import GlobalRegistry
from forecast.models.registry import LATEST, PINNED, ModelRegistry
from forecast.workflow.model_views import model_summaries, model_view, models_of, pin_model, unpin_model
from forecast.workflow.serving import NO_MODEL_OF_ITS_OWN
from forecast.workspace import Workspace
from tests.workflow.test_serving import no_weights, ticker_card, universe_card

OWN, OTHER, UNIVERSE_ONLY = "600519.SH", "000001.SZ", "600036.SH"
JAN, FEB, MAR = "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"


@pytest.fixture
def workspace(home) -> Workspace:
    ws = Workspace.at(home)
    registry = ModelRegistry(ws)
    registry.save(ticker_card("own-old", OWN, JAN), no_weights)
    registry.save(ticker_card("own-new", OWN, MAR), no_weights)
    registry.save(ticker_card("other-1", OTHER, FEB), no_weights)
    GlobalRegistry(ws).save(universe_card("u-global-1", "csi300", (OWN, UNIVERSE_ONLY), FEB), no_weights)
    return ws


# ---------------------------------------------------------------- model_view


def test_a_universe_model_named_by_its_id_is_shown_as_stored(workspace):
    view = model_view(workspace, "u-global-1")
    assert view.card is None and view.served is None
    assert view.universe_card["id"] == "u-global-1"
    assert view.universe_card == GlobalRegistry(workspace).card("u-global-1").to_dict()


def test_a_per_ticker_model_is_shown_with_the_choice_in_use_for_its_ticker(workspace):
    view = model_view(workspace, "own-old")
    assert view.card.id == "own-old"
    assert (view.choice.model_id, view.choice.reason) == ("own-new", LATEST)  # the newest serves, not the one shown


def test_a_ticker_is_shown_the_model_in_use_for_it(workspace):
    for text in (OWN, "600519"):
        view = model_view(workspace, text)
        assert view.card.id == "own-new" and view.choice.reason == LATEST
    ModelRegistry(workspace).pin("own-old")
    assert model_view(workspace, OWN).card.id == "own-old"
    assert model_view(workspace, OWN).choice.reason == PINNED


def test_a_ticker_with_no_model_of_its_own_is_shown_the_universe_model_that_serves_it(workspace):
    view = model_view(workspace, UNIVERSE_ONLY)
    assert view.card is None
    assert view.universe_card["id"] == "u-global-1"
    assert view.served.kind is ModelKind.GLOBAL and view.served.reason == NO_MODEL_OF_ITS_OWN


def test_text_that_is_neither_a_model_nor_a_ticker_is_not_found(workspace):
    with pytest.raises(ModelNotFoundError, match="no model or ticker 'nonsense!'; see: forecast models list"):
        model_view(workspace, "nonsense!")


def test_a_ticker_no_model_serves_is_not_found(home):
    with pytest.raises(ModelNotFoundError):
        model_view(Workspace.at(home), OWN)


# ---------------------------------------------------------------- pin and unpin


def test_pinning_a_model_makes_it_the_one_in_use(workspace):
    card = pin_model(workspace, "own-old")
    assert card.id == "own-old"
    choice = ModelRegistry(workspace).in_use(OWN)
    assert (choice.model_id, choice.reason) == ("own-old", PINNED)


def test_pinning_a_ticker_instead_of_a_model_says_how_to_use_its_newest(workspace):
    with pytest.raises(ModelNotFoundError, match=r"forecast models use 600519\.SH --latest"):
        pin_model(workspace, "600519")


def test_pinning_a_model_that_is_not_there_says_where_to_look(workspace):
    with pytest.raises(ModelNotFoundError, match=r"see: forecast models list$"):
        pin_model(workspace, "no-such-model!")


@pytest.mark.parametrize("text", [OWN, "own-old", "own-new"])
def test_unpinning_by_ticker_or_any_of_its_models_goes_back_to_the_latest(workspace, text):
    pin_model(workspace, "own-old")
    ticker, previous, now = unpin_model(workspace, text)
    assert (ticker, previous) == (OWN, "own-old")
    assert (now.model_id, now.reason) == ("own-new", LATEST)


def test_unpinning_a_ticker_that_was_not_pinned_says_none_was(workspace):
    ticker, previous, now = unpin_model(workspace, OTHER)
    assert (ticker, previous, now.model_id) == (OTHER, None, "other-1")


# ---------------------------------------------------------------- listing


def test_summaries_come_oldest_first_and_unreadable_cards_are_counted(workspace):
    summaries, unreadable = model_summaries(workspace)
    assert [s["id"] for s in summaries] == ["own-old", "other-1", "own-new"]  # Jan, Feb, Mar
    assert unreadable == 0
    ModelRegistry(workspace).card_file("other-1").write_text("{not json", encoding="utf-8")
    summaries, unreadable = model_summaries(workspace)
    assert [s["id"] for s in summaries] == ["own-old", "own-new"]
    assert unreadable == 1


def test_models_of_a_ticker_are_its_own_and_the_universe_models_trained_on_it(workspace):
    summaries, _ = model_summaries(workspace)
    own, universe = models_of(workspace, summaries, "600519")
    assert [s["id"] for s in own] == ["own-old", "own-new"]
    assert [u["id"] for u in universe] == ["u-global-1"]
    own, universe = models_of(workspace, summaries, OTHER)
    assert [s["id"] for s in own] == ["other-1"] and universe == []


def test_without_a_ticker_every_model_is_listed(workspace):
    summaries, _ = model_summaries(workspace)
    own, universe = models_of(workspace, summaries, None)
    assert own == summaries
    assert [u["id"] for u in universe] == ["u-global-1"]
