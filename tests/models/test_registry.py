"""One registry base for both families (FolderRegistry), one card validator, and the typed model summary."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES

from forecast.errors import CorruptFileError, ModelNotFoundError
from forecast.models.card import GlobalCard, ModelCard
from forecast.models.pooled.card import GlobalRegistry
from forecast.models.registry import FolderRegistry, ModelRegistry
from forecast.models.results import ForecastResult, ModelSummary
from tests.workflow.test_serving import no_weights, ticker_card, universe_card

FIXTURE = FIXTURES / "home_before_relayout" / "forecasts" / "600519.SH" / "latest.json"


@pytest.mark.parametrize("family", ["ticker", "universe"])
def test_both_families_save_read_point_and_remove_through_one_base(tmp_path, family):
    if family == "ticker":
        registry: FolderRegistry = ModelRegistry(tmp_path)
        old, new, key = ticker_card("m-1"), ticker_card("m-2", created="2026-02-01T00:00:00+00:00"), "600519.SH"
    else:
        registry = GlobalRegistry(tmp_path)
        old = universe_card("u-1", "csi300", ("600519.SH",), "2026-01-01T00:00:00+00:00")
        new, key = universe_card("u-2", "csi300", ("600519.SH",), "2026-02-01T00:00:00+00:00"), "csi300"
    registry.save(old, no_weights)
    registry.save(new, no_weights)
    assert registry.ids() == [old.id, new.id] and registry.latest_id(key) == new.id
    assert registry.card(new.id) == new and [c.id for c in registry.cards()] == [old.id, new.id]
    assert registry.model_file(new.id).is_file()
    registry.remove(new.id)
    assert registry.latest_id(key) == old.id  # the pointer went with it: the newest card left
    with pytest.raises(ModelNotFoundError):
        registry.card(new.id)
    with pytest.raises(ModelNotFoundError):
        registry.remove(new.id)
    registry.card_file(old.id).write_text("{not json")
    with pytest.raises(CorruptFileError, match="unreadable"):
        registry.card(old.id)
    assert registry.cards() == []


def test_the_two_registries_never_list_each_others_models(tmp_path):
    ModelRegistry(tmp_path).save(ticker_card("m-1"), no_weights)
    GlobalRegistry(tmp_path).save(universe_card("u-1", "csi300", ("600519.SH",), "2026-01-01T00:00:00+00:00"), no_weights)
    assert ModelRegistry(tmp_path).ids() == ["m-1"] and GlobalRegistry(tmp_path).ids() == ["u-1"]


def test_both_cards_share_one_validator_and_one_summary():
    ticker, universe = ticker_card("m-1"), universe_card("u-1", "csi300", ("A", "B"), "2026-01-01T00:00:00+00:00")
    for card in (ticker, universe):
        summary = card.summary()
        assert {"id", "kind", "horizon", "created_at", "data_range"} <= set(summary)
        assert summary["data_range"] == ["2020-01-01", "2020-12-31"]
    assert (ticker.summary()["kind"], universe.summary()["kind"]) == ("network", "global")
    for cls, card in ((ModelCard, ticker), (GlobalCard, universe)):
        broken = card.to_dict() | {"data": {"range": ["2020-01-01"]}}
        with pytest.raises(CorruptFileError, match=r"data\.range must be two dates"):
            cls.from_dict(broken)
        with pytest.raises(CorruptFileError, match="field 'created_at' has the wrong type"):
            cls.from_dict(card.to_dict() | {"created_at": 5})


def test_a_forecast_written_before_the_typed_summary_reads_and_writes_the_same_keys():
    stored = json.loads(FIXTURE.read_text())
    result = ForecastResult.from_dict(stored)
    assert isinstance(result.model_summary, ModelSummary)
    assert result.summary.kind == "network" and result.summary.data_range == ("2010-12-27", "2020-12-25")
    assert result.family == "default" and result.adjust == "qfq"
    assert result.to_dict()["model_summary"] == stored["model_summary"]


def test_a_summary_keeps_keys_it_does_not_know_and_reads_a_damaged_one_as_unknown():
    summary = ModelSummary.from_dict({"kind": "global", "universe": "csi300", "trained_on_ticker": False, "later": [1]})
    assert summary.to_dict() == {"kind": "global", "universe": "csi300", "trained_on_ticker": False, "later": [1]}
    assert ModelSummary.from_dict("nonsense") == ModelSummary()
    assert ModelSummary.from_dict({"data_range": "2020", "validation_skill_vs_naive": "x"}).to_dict() == {}
    built = ForecastResult("A", "m", "close", "2020-01-01", 1.0, 1.0, [], "", model_summary={"kind": "baseline", "family": "naive"})
    assert built.family == "naive" and built.summary.kind == "baseline"


def test_a_cross_sectional_backtest_is_one_typed_record_with_its_columns_named_once(tmp_path):
    import pandas as pd

    from forecast.maths.cross_section import CrossSectionReport, ModelCrossSection
    from forecast.models.backtest_records import (
        CUMULATIVE_RANK_IC_COLUMN,
        RANK_IC_COLUMN,
        CrossBacktestRecord,
        cross_column,
        cross_columns,
        load_cross_backtest,
        load_cross_curves,
        save_cross_backtest,
    )

    scores = ModelCrossSection(0.01, 0.02, 0.1, 0.2, 1.0, 0.9, 0.001, 0.3, 40)
    record = CrossBacktestRecord("csi300", "refit every 60", ("2020-01-01", "2020-06-30"), CrossSectionReport(5, 5, 10, {"global": scores}))
    daily = pd.DataFrame({cross_column("global", RANK_IC_COLUMN): [0.1, 0.2], cross_column("global", CUMULATIVE_RANK_IC_COLUMN): [0.1, 0.3]},
                         index=pd.Index(["2020-01-02", "2020-01-03"], name="date"))
    assert list(cross_columns(daily, RANK_IC_COLUMN).columns) == ["global"]  # not fooled by the cumulative column
    save_cross_backtest(tmp_path, record, daily)
    again = load_cross_backtest(tmp_path, "csi300")
    assert again == record and again.models["global"]["rank_ic"] == 0.02
    assert load_cross_curves(tmp_path, "csi300")["global"].tolist() == [0.1, 0.3]
    assert load_cross_backtest(tmp_path, "other") is None
    with pytest.raises(CorruptFileError, match="damaged"):
        CrossBacktestRecord.from_dict({"universe": "csi300", "models": {"global": {"ic": 1}}})
