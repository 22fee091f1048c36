"""Which model serves a ticker, and why: ``workflow.serving.model_for``, the one place that decides it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from forecast.choices import ModelKind
from forecast.cli import app
from forecast.errors import CorruptFileError, ModelNotFoundError
from forecast.models.card import GlobalCard, ModelCard
from forecast.models.pooled.card import GlobalRegistry
from forecast.models.registry import ModelRegistry
from forecast.models.train_config import DEFAULT
from forecast.workflow.serving import NO_MODEL_OF_ITS_OWN, model_for
from forecast.workspace import Workspace

OWN, OTHER = "600519.SH", "000001.SZ"


def ticker_card(model_id: str, ticker: str = OWN, created: str = "2026-01-01T00:00:00+00:00") -> ModelCard:
    return ModelCard(model_id, ticker, created, DEFAULT, tuple(DEFAULT.features),
                     {"features": {"kind": "standard", "shift": [0.0], "scale": [1.0]},
                      "target": {"kind": "standard", "shift": [0.0], "scale": [1.0]}},
                     {"range": ["2020-01-01", "2020-12-31"]}, {},
                     {"scale_window": 60, "quantiles": {"0.8": [1.0] * DEFAULT.horizon}})


def universe_card(model_id: str, universe: str, tickers: tuple[str, ...], created: str) -> GlobalCard:
    return GlobalCard(model_id, universe, tickers, created, {"lookback": 10, "horizon": 3},
                      {"sequence": [], "static": []}, {"range": ["2020-01-01", "2020-12-31"]}, {"rank_ic": 0.01},
                      {"slope": [0.01] * 3, "intercept": [0.0] * 3}, {"method": "test", "quantiles": {"0.8": [[-1.0, 1.0]] * 3}})


def no_weights(path) -> None:
    path.write_bytes(b"")  # routing reads cards only


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace.at(tmp_path)


def test_a_ticker_with_no_model_at_all_is_told_how_to_train_one(workspace):
    with pytest.raises(ModelNotFoundError, match=r"forecast train 600519\.SH"):
        model_for(workspace, "600519")


def test_a_ticker_with_its_own_model_is_served_by_its_latest_then_by_its_pin(workspace):
    registry = ModelRegistry(workspace)
    registry.save(ticker_card("old"), no_weights)
    registry.save(ticker_card("new", created="2026-02-01T00:00:00+00:00"), no_weights)
    GlobalRegistry(workspace).save(universe_card("u-global-1", "csi300", (OWN,), "2026-03-01T00:00:00+00:00"), no_weights)
    assert model_for(workspace, "600519") == model_for(workspace, OWN)
    served = model_for(workspace, OWN)
    assert (served.kind, served.model_id, served.reason) == (ModelKind.NETWORK, "new", "latest")
    registry.pin("old")
    assert (model_for(workspace, OWN).model_id, model_for(workspace, OWN).reason) == ("old", "pinned")
    assert model_for(workspace, OWN, "new").reason == "--model"


def test_a_ticker_with_no_model_of_its_own_is_served_by_the_universe_model_that_saw_it(workspace):
    universe = GlobalRegistry(workspace)
    universe.save(universe_card("a-global-1", "a", (OWN,), "2026-01-01T00:00:00+00:00"), no_weights)
    universe.save(universe_card("b-global-1", "b", (OTHER,), "2026-02-01T00:00:00+00:00"), no_weights)
    served = model_for(workspace, OWN)
    assert (served.kind, served.model_id, served.reason, served.universe) == (ModelKind.GLOBAL, "a-global-1", NO_MODEL_OF_ITS_OWN, "a")
    assert model_for(workspace, "600000.SH").model_id == "b-global-1"  # none saw it: the newest
    assert model_for(workspace, OWN, universe="b").model_id == "b-global-1"  # the universe named: its latest
    named = model_for(workspace, OWN, "global")
    assert (named.kind, named.reason) == (ModelKind.GLOBAL, "--model")
    assert model_for(workspace, OWN, "b-global-1").model_id == "b-global-1"
    assert model_for(workspace, OWN, "naive").kind is ModelKind.BASELINE


def test_a_broken_pin_is_said_and_never_bypassed_by_the_universe_model(workspace):
    GlobalRegistry(workspace).save(universe_card("a-global-1", "a", (OWN,), "2026-01-01T00:00:00+00:00"), no_weights)
    pin = workspace.pin_file(OWN)
    pin.parent.mkdir(parents=True, exist_ok=True)
    pin.write_text("gone-model\n")
    with pytest.raises(ModelNotFoundError, match="pinned to a model that is gone"):
        model_for(workspace, OWN)
    pin.write_text("../../x\n")
    with pytest.raises(CorruptFileError):
        model_for(workspace, OWN)


def test_models_show_of_a_ticker_served_by_the_universe_model_says_so(home):
    workspace = Workspace.at(home)
    GlobalRegistry(workspace).save(universe_card("a-global-1", "a", (OWN,), "2026-01-01T00:00:00+00:00"), no_weights)
    runner = CliRunner()
    shown = runner.invoke(app, ["models", "show", OWN])
    assert shown.exit_code == 0, shown.output
    assert "predict uses a-global-1, the global model of a (global (no model of its own))" in shown.stdout
    as_json = json.loads(runner.invoke(app, ["models", "show", OWN, "--json"]).stdout)
    assert as_json["id"] == "a-global-1" and as_json["in_use"] is True and as_json["in_use_because"] == NO_MODEL_OF_ITS_OWN
