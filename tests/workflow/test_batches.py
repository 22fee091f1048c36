"""``workflow.batches``: many tickers through one executor, the backtest's settings from its flags, and the notes
``train`` makes about each new model beside the model in use.

Real jobs on a real serial executor, the sample imported into an empty home for the backtest, and real model
cards in a real registry (no weights: the notes read cards only).
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from forecast.choices import DEFAULT_REFIT_EVERY
from forecast.data import fetching
from forecast.data.store import MarketStore
from forecast.errors import NotFoundError
from forecast.models.registry import ModelRegistry
from forecast.workflow.batches import InUseNotes, backtest_settings, backtest_tickers, map_with_progress
from forecast.workflow.executors import SerialExecutor
from forecast.workspace import Workspace
from tests.workflow.test_serving import no_weights, ticker_card

TICKER = "600519.SH"


@pytest.fixture
def workspace(home) -> Workspace:
    return Workspace.at(home)


def progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "forecast.progress"]


# ---------------------------------------------------------------- map_with_progress


def shout(item: str) -> str:
    if item == "bad":
        raise NotFoundError("no such thing")
    return item.upper()


def test_every_item_is_run_in_order_and_reported_once(caplog):
    seen = []
    with caplog.at_level(logging.INFO, logger="forecast.progress"):
        outcomes = map_with_progress(SerialExecutor(), shout, ["a", "bad", "c"], "lines", "train", seen.append)
    assert [o.item for o in outcomes] == ["a", "bad", "c"]
    assert [o.value for o in outcomes] == ["A", None, "C"]
    assert outcomes[1].error == "no such thing" and outcomes[1].exit_code == 4
    assert [o.item for o in seen] == ["a", "bad", "c"]
    lines = progress_lines(caplog)  # a failed item is counted, but its own error line reports it
    assert len(lines) == 2
    assert lines[0].startswith("train 1/3: a") and lines[1].startswith("train 3/3: c")


def test_a_single_item_has_no_count_above_it(caplog):
    with caplog.at_level(logging.INFO, logger="forecast.progress"):
        outcomes = map_with_progress(SerialExecutor(), shout, ["a"], "lines", "train", lambda _: None)
    assert [o.value for o in outcomes] == ["A"]
    assert progress_lines(caplog) == []


def test_nothing_to_run_is_no_outcome():
    assert map_with_progress(SerialExecutor(), shout, [], "lines", "train", lambda _: None) == []


# ---------------------------------------------------------------- backtest settings


def test_backtest_settings_take_the_flags_and_refit_every_20_origins_by_default():
    settings = backtest_settings(["naive", "drift"], 60, None, 5, None, "close", "qfq", (0.8,), {"epochs": 3, "seed": None})
    assert settings.models == ("naive", "drift")
    assert settings.refit_every == DEFAULT_REFIT_EVERY == 20
    assert (settings.test_days, settings.horizon, settings.window, settings.target, settings.adjust, settings.levels) == (
        60, 5, None, "close", "qfq", (0.8,))
    assert settings.network_overrides == {"epochs": 3}  # overrides given as None are left out


def test_an_explicit_refit_every_is_kept():
    assert backtest_settings(["naive"], 60, 7, 5, 250, "close", "hfq", (0.8,), {}).refit_every == 7


# ---------------------------------------------------------------- backtest_tickers


def test_each_ticker_is_backtested_and_an_unknown_one_fails_on_its_own(workspace):
    fetching.import_sample(MarketStore(workspace))
    settings = backtest_settings(["naive", "drift"], 40, None, 3, None, "close", "qfq", (0.8,), {})
    guarded = []

    def guard(job):
        def wrapped(ticker):
            guarded.append(ticker)
            return job(ticker)
        return wrapped

    outcomes = backtest_tickers(workspace, settings, [TICKER, "000001.SZ"], SerialExecutor(), guard, "none", lambda _: None)
    assert guarded == [TICKER, "000001.SZ"]  # the guard wraps every job
    ok, missing = outcomes
    assert ok.ok and ok.value.ticker == TICKER
    assert ok.value.scores["naive"]["n"] == 40  # one origin a test day
    assert ok.value.scores["naive"]["skill_vs_naive"] == 0.0  # naive against itself
    assert not missing.ok and missing.exit_code == 4 and "forecast fetch 000001.SZ" in missing.error


def test_a_guard_can_refuse_a_ticker_before_its_job_runs(workspace):
    settings = backtest_settings(["naive"], 40, None, 3, None, "close", "qfq", (0.8,), {})

    def stored_only(job):
        def wrapped(ticker):
            raise NotFoundError(f"{ticker} is not stored")
        return wrapped

    [outcome] = backtest_tickers(workspace, settings, [TICKER], SerialExecutor(), stored_only, "none", lambda _: None)
    assert outcome.error == f"{TICKER} is not stored"


# ---------------------------------------------------------------- InUseNotes


def card(model_id: str, skill: float | None, created: str):
    return dataclasses.replace(ticker_card(model_id, TICKER, created), validation={"skill_vs_naive": skill})


@pytest.fixture
def registry(workspace) -> ModelRegistry:
    return ModelRegistry(workspace)


def test_a_first_model_gets_no_note(workspace, registry):
    notes = InUseNotes(workspace, [TICKER])
    new = card("m-new", 0.05, "2026-02-01T00:00:00+00:00")
    registry.save(new, no_weights)
    assert notes.note(TICKER, new) is None
    assert notes.get("m-new") is None


def test_a_model_worse_than_the_one_in_use_is_noted_with_how_to_keep_the_old_one(workspace, registry):
    registry.save(card("m-old", 0.10, "2026-01-01T00:00:00+00:00"), no_weights)
    notes = InUseNotes(workspace, [TICKER])  # read before the new model is saved, as train does
    new = card("m-new", 0.02, "2026-02-01T00:00:00+00:00")
    registry.save(new, no_weights)
    note = notes.note(TICKER, new)
    assert note is not None
    assert note.startswith("m-new is worse on validation than the model in use")
    assert "+2.0%" in note and "+10.0%" in note
    assert note.endswith("to keep the previous one: forecast models use m-old")
    assert notes.get("m-new") == note


def test_a_better_model_than_the_one_in_use_gets_no_note(workspace, registry):
    registry.save(card("m-old", 0.02, "2026-01-01T00:00:00+00:00"), no_weights)
    notes = InUseNotes(workspace, [TICKER])
    new = card("m-new", 0.10, "2026-02-01T00:00:00+00:00")
    registry.save(new, no_weights)
    assert notes.note(TICKER, new) is None


def test_a_pin_keeps_the_old_model_and_the_note_says_how_to_use_the_new_one(workspace, registry):
    registry.save(card("m-old", 0.02, "2026-01-01T00:00:00+00:00"), no_weights)
    registry.pin("m-old")
    notes = InUseNotes(workspace, [TICKER])
    new = card("m-new", 0.10, "2026-02-01T00:00:00+00:00")
    registry.save(new, no_weights)
    assert notes.note(TICKER, new) == "predict and run keep the pinned m-old; to use the new one: forecast models use m-new"


def test_a_worse_model_beside_a_pin_says_the_pin_is_kept(workspace, registry):
    registry.save(card("m-old", 0.10, "2026-01-01T00:00:00+00:00"), no_weights)
    registry.pin("m-old")
    notes = InUseNotes(workspace, [TICKER])
    new = card("m-new", -0.05, "2026-02-01T00:00:00+00:00")
    registry.save(new, no_weights)
    note = notes.note(TICKER, new)
    assert "worse on validation" in note and "-5.0%" in note
    assert note.endswith("predict and run keep the pinned m-old")


def test_without_a_skill_to_compare_no_model_is_called_worse(workspace, registry):
    registry.save(card("m-old", None, "2026-01-01T00:00:00+00:00"), no_weights)
    notes = InUseNotes(workspace, [TICKER])
    new = card("m-new", -0.5, "2026-02-01T00:00:00+00:00")
    registry.save(new, no_weights)
    assert notes.note(TICKER, new) is None


def test_text_that_is_no_ticker_has_no_model_in_use(workspace):
    notes = InUseNotes(workspace, ["not a ticker!"])
    assert notes.before == {"not a ticker!": None}
    assert notes.note("not a ticker!", card("m-new", 0.1, "2026-02-01T00:00:00+00:00")) is None
