"""A global model's forecasts stored as one batch file: the newest forecast of a ticker wins, wherever it is stored."""

from __future__ import annotations

import json

import pytest

from forecast.errors import CorruptFileError
from forecast.models.results import (
    ForecastPoint,
    ForecastResult,
    forecast_tickers,
    load_forecast,
    save_forecast,
    save_forecast_batch,
    stored_forecast,
)
from forecast.workspace import Workspace


def result(ticker: str, model: str, created: str, value: float = 10.0) -> ForecastResult:
    return ForecastResult(ticker=ticker, model_id=model, target="close", last_date="2020-12-30", last_close=value,
                          last_value=value, points=[ForecastPoint("2020-12-31", value * 1.01, {"0.8": [value * 0.9, value * 1.1]})],
                          created_at=created, model_summary={"kind": "global", "data_range": ["2019-01-02", "2020-12-30"]})


def test_a_batch_is_one_file_and_a_later_subset_keeps_the_rest(tmp_path):
    save_forecast_batch(tmp_path, "csi300", [result(t, "g1", "2026-01-01T00:00:00+00:00") for t in ("A.SH", "B.SH", "C.SH")])
    workspace = Workspace.at(tmp_path)
    assert workspace.forecast_batch_files() == [workspace.forecast_batch_file("csi300")]
    assert not workspace.forecast_file("A.SH").exists()
    save_forecast_batch(tmp_path, "csi300", [result("B.SH", "g2", "2026-01-02T00:00:00+00:00", value=20.0)])
    assert load_forecast(tmp_path, "A.SH").model_id == "g1"
    again = load_forecast(tmp_path, "B.SH")
    assert again.model_id == "g2" and again.points[0].intervals["0.8"] == pytest.approx([18.0, 22.0])
    assert again.summary.data_range == ("2019-01-02", "2020-12-30")
    assert forecast_tickers(tmp_path) == ["A.SH", "B.SH", "C.SH"]
    assert load_forecast(tmp_path, "D.SH") is None


def test_the_newest_forecast_wins_between_a_tickers_own_file_and_the_batches(tmp_path):
    save_forecast_batch(tmp_path, "csi300", [result("A.SH", "global-old", "2026-01-01T00:00:00+00:00")])
    save_forecast(tmp_path, result("A.SH", "own", "2026-01-02T00:00:00+00:00"))
    found, path = stored_forecast(tmp_path, "A.SH")
    assert found.model_id == "own" and path == Workspace.at(tmp_path).forecast_file("A.SH")
    save_forecast_batch(tmp_path, "sse50", [result("A.SH", "global-new", "2026-01-03T00:00:00+00:00")])
    found, path = stored_forecast(tmp_path, "A.SH")
    assert found.model_id == "global-new" and path == Workspace.at(tmp_path).forecast_batch_file("sse50")


def test_a_damaged_batch_is_a_one_line_error_and_the_next_batch_replaces_it(tmp_path):
    path = save_forecast_batch(tmp_path, "csi300", [result("A.SH", "g1", "2026-01-01T00:00:00+00:00")])
    path.write_text(json.dumps({"universe": "csi300"}))  # no forecasts in it
    with pytest.raises(CorruptFileError, match="no forecasts"):
        load_forecast(tmp_path, "A.SH")
    assert forecast_tickers(tmp_path) == []
    save_forecast_batch(tmp_path, "csi300", [result("B.SH", "g2", "2026-01-02T00:00:00+00:00")])
    assert forecast_tickers(tmp_path) == ["B.SH"] and load_forecast(tmp_path, "B.SH").model_id == "g2"


def test_doctor_names_a_damaged_batch_once_and_how_to_make_it_again(tmp_path):
    from forecast.workflow.doctor import examine

    path = save_forecast_batch(tmp_path, "csi300", [result(t, "g1", "2026-01-01T00:00:00+00:00") for t in ("A.SH", "B.SH")])
    assert examine(Workspace.at(tmp_path)) == []
    path.write_text("{not json")
    findings = examine(Workspace.at(tmp_path))
    assert [(f.kind, f.path) for f in findings] == [("forecast", path)]
    assert "forecast predict --universe csi300 --model global" in findings[0].advice


def test_to_dict_stores_every_field_and_reads_back_equal():
    from dataclasses import fields

    original = result("A.SH", "g1", "2026-01-01T00:00:00+00:00")
    stored = original.to_dict()
    assert set(stored) == {f.name for f in fields(ForecastResult)}  # a new field must not be silently left out
    assert ForecastResult.from_dict(json.loads(json.dumps(stored))) == original


def test_a_damaged_batch_does_not_hide_a_tickers_own_forecast(tmp_path):
    save_forecast(tmp_path, result("A.SH", "own", "2026-01-01T00:00:00+00:00"))
    path = save_forecast_batch(tmp_path, "csi300", [result("B.SH", "g1", "2026-01-02T00:00:00+00:00")])
    path.write_text("{not json")
    assert load_forecast(tmp_path, "A.SH").model_id == "own"
    with pytest.raises(CorruptFileError):
        load_forecast(tmp_path, "B.SH")  # nothing else holds B: the damage is the answer


def test_forecasts_made_at_different_offsets_compare_by_the_instant():
    save_at = "2026-01-01T09:00:00+08:00"  # 01:00 UTC
    later = "2026-01-01T02:00:00+00:00"
    from forecast.models.results import forecast_time

    assert forecast_time(result("A.SH", "x", later)) > forecast_time(result("A.SH", "x", save_at))
    assert forecast_time(result("A.SH", "x", "not a time")) == 0.0


def test_a_batch_being_written_by_another_command_is_waited_for_then_refused(tmp_path):
    from forecast.errors import StoreBusyError
    from forecast.locks import hold_lock

    workspace = Workspace.at(tmp_path, lock_timeout_s=0.2)
    with hold_lock(workspace.forecast_batch_lock("csi300"), 1.0, "busy"), pytest.raises(StoreBusyError, match="csi300"):
        save_forecast_batch(workspace, "csi300", [result("A.SH", "g1", "2026-01-01T00:00:00+00:00")])
    assert not workspace.forecast_batch_file("csi300").exists()  # refused, nothing half-written
    save_forecast_batch(workspace, "csi300", [result("A.SH", "g1", "2026-01-01T00:00:00+00:00")])
    assert load_forecast(workspace, "A.SH").model_id == "g1"


def test_a_forecast_csv_says_which_price_it_forecasts(home, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from forecast.cli import app

    cli = CliRunner()
    assert cli.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    out = tmp_path / "next.csv"
    assert cli.invoke(app, ["predict", "600519.SH", "--model", "naive", "--out", str(out)]).exit_code == 0
    frame = pd.read_csv(out)
    assert list(frame.columns[:4]) == ["ticker", "date", "target", "predicted"] and set(frame["target"]) == {"close"}
