"""``forecast doctor``: every kind of damage is found, --repair moves it into quarantine/ and deletes nothing."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import tree_snapshot
from typer.testing import CliRunner

from forecast.cli import app
from forecast.jsonio import dumps
from forecast.locks import hold_lock
from forecast.models.card import ModelCard
from forecast.models.train_config import DEFAULT
from forecast.workspace import CARD_FILE, MODEL_FILE, Workspace

runner = CliRunner()
DEAD_PID = 999_999_999  # no such process: what a killed writer leaves in its file names


def _card(model_id: str, ticker: str) -> ModelCard:
    return ModelCard(model_id, ticker, "2026-01-01T00:00:00+00:00", DEFAULT, tuple(DEFAULT.features),
                     {"features": {"kind": "standard", "shift": [0.0], "scale": [1.0]},
                      "target": {"kind": "standard", "shift": [0.0], "scale": [1.0]}},
                     {"range": ["2020-01-01", "2020-12-31"]}, {},
                     {"scale_window": 60, "quantiles": {"0.8": [1.0] * DEFAULT.horizon}})


def register(home: Path, model_id: str, ticker: str, card: dict | bytes | None = None, model: bytes | None = None,
             point: bool = True) -> Path:
    """A model folder as training leaves it, without TensorFlow: a card and a small zip as model.keras."""
    workspace = Workspace.at(home)
    folder = workspace.model_dir(model_id)
    folder.mkdir(parents=True)
    data = card if card is not None else _card(model_id, ticker).to_dict()
    (folder / CARD_FILE).write_bytes(data if isinstance(data, bytes) else dumps(data).encode())
    if model is None:
        with zipfile.ZipFile(folder / MODEL_FILE, "w") as archive:
            archive.writestr("config.json", "{}")
    else:
        (folder / MODEL_FILE).write_bytes(model)
    if point:
        workspace.latest_pointer(ticker).parent.mkdir(parents=True, exist_ok=True)
        workspace.latest_pointer(ticker).write_text(model_id + "\n")
    return folder


@pytest.fixture
def good_home(home):
    """Two stored series (600519.SH from the sample, 000858.SZ a copy of it) and one good model."""
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    workspace = Workspace.at(home)
    shutil.copyfile(workspace.bars_file("600519.SH"), workspace.bars_file("000858.SZ"))
    register(home, "000858.SZ-default-gru-20260101T000000-aaaa", "000858.SZ")
    return home


def doctor(*args: str):
    return runner.invoke(app, ["doctor", *args])


def test_a_healthy_home_is_healthy(good_home):
    result = doctor()
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == ["healthy"]
    result = doctor("--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"findings": [], "healthy": True}
    assert not (good_home / "quarantine").exists()


def test_every_kind_of_damage_is_found_and_repair_moves_it_aside_deleting_nothing(good_home):
    home, workspace = good_home, Workspace.at(good_home)
    bars = workspace.bars_file("600519.SH")
    bars.write_bytes(bars.read_bytes()[:300])  # truncated
    workspace.bars_file("601318.SH").write_bytes(b"\x00" * 4096)  # zeroed
    register(home, "600519.SH-default-gru-20260101T000000-bbbb", "600519.SH", card=b"{garbled")
    register(home, "600519.SH-default-gru-20260101T000000-cccc", "600519.SH",
             card={**_card("600519.SH-default-gru-20260101T000000-cccc", "600519.SH").to_dict(), "ticker": "../../etc/passwd"},
             point=False)
    register(home, "000858.SZ-default-gru-20260101T000000-dddd", "000858.SZ", model=b"", point=False)
    (workspace.latest_dir / "601318.SH").write_bytes(b"\x00\xff\xfe binary")
    (workspace.latest_dir / "000001.SZ").write_text("000001.SZ-default-gru-gone\n")
    (workspace.latest_dir / "not-a-ticker").write_text("whatever\n")
    (workspace.bars_dir / f".600519.SH.parquet.{DEAD_PID}.tmp").write_bytes(b"half a write")
    staging = workspace.models_dir / ".staging-x"
    staging.mkdir()
    (staging / MODEL_FILE).write_bytes(b"half a model")
    workspace.forecast_file("600519.SH").parent.mkdir(parents=True)
    workspace.forecast_file("600519.SH").write_text('{"ticker": "600519.SH"}')
    workspace.backtest_json("600519.SH").parent.mkdir(parents=True)
    workspace.backtest_json("600519.SH").write_bytes(b"\xff\xfe")
    copy = workspace.outdir(None) / "latest" / ".summary.json.copy"
    copy.parent.mkdir(parents=True)
    copy.write_text("{")
    expected = {"data/bars/600519.SH.parquet": "store", "data/bars/601318.SH.parquet": "store",
                "models/600519.SH-default-gru-20260101T000000-bbbb": "model",
                "models/600519.SH-default-gru-20260101T000000-cccc": "model",
                "models/000858.SZ-default-gru-20260101T000000-dddd": "model",
                "models/latest/600519.SH": "pointer", "models/latest/601318.SH": "pointer",
                "models/latest/000001.SZ": "pointer", "models/latest/not-a-ticker": "pointer",
                f"data/bars/.600519.SH.parquet.{DEAD_PID}.tmp": "debris", "models/.staging-x": "debris",
                "daily/latest/.summary.json.copy": "debris",
                "forecasts/600519.SH/latest.json": "forecast", "backtests/600519.SH/latest.json": "backtest"}

    result = doctor("--json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    found = {str(Path(f["path"]).relative_to(home)): f for f in report["findings"]}
    assert report["healthy"] is False and {k: f["kind"] for k, f in found.items()} == expected
    assert all(f["moved_to"] is None for f in found.values())
    assert found["models/600519.SH-default-gru-20260101T000000-bbbb"]["advice"] == "retrain: forecast train 600519.SH"  # from its pointer
    assert "forecast train 000858.SZ" in found["models/000858.SZ-default-gru-20260101T000000-dddd"]["advice"]
    assert "empty" in found["models/000858.SZ-default-gru-20260101T000000-dddd"]["problem"]
    assert "<TICKER>" in found["models/600519.SH-default-gru-20260101T000000-cccc"]["advice"]
    assert "re-fetch or re-import 600519.SH" in found["data/bars/600519.SH.parquet"]["advice"]
    assert "forecast predict 600519.SH" in found["forecasts/600519.SH/latest.json"]["advice"]
    text = doctor()
    assert text.exit_code == 3 and text.stdout.strip().splitlines()[-1].startswith(f"{len(expected)} problem(s)")

    before = tree_snapshot(home)
    result = doctor("--repair")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    stamp = lines[-1].split("quarantine/")[1].rstrip("/")
    assert lines[-1] == f"{len(expected)} moved to quarantine/{stamp}/" and len(lines) == len(expected) + 1
    assert all("moved to quarantine/" in line for line in lines[:-1])
    after = tree_snapshot(home)
    quarantine = Path("quarantine") / stamp
    for rel, data in before.items():  # every byte is still there: in place, or under quarantine/<stamp>/
        moved = any(rel == p or rel.startswith(p + os.sep) for p in expected)
        assert after[str(quarantine / rel) if moved else rel] == data, rel
    new = set(after) - {str(quarantine / r) for r in before} - set(before)
    assert new <= {"data/.lock", "models/.lock", ".run.lock"}, new

    assert doctor().stdout.strip() == "healthy"
    assert runner.invoke(app, ["data", "list"]).exit_code == 0
    models = runner.invoke(app, ["models", "list", "--json"])
    assert models.exit_code == 0 and [m["ticker"] for m in json.loads(models.stdout)] == ["000858.SZ"]
    assert runner.invoke(app, ["predict", "000858.SZ", "--model", "naive"]).exit_code == 0


def test_debris_under_a_held_lock_is_left_and_reported(good_home, monkeypatch):
    monkeypatch.setenv("FORECAST_LOCK_TIMEOUT", "0.05")
    workspace = Workspace.at(good_home)
    tmp = workspace.bars_dir / f".600519.SH.parquet.{DEAD_PID}.tmp"
    tmp.write_bytes(b"half a write")
    with hold_lock(workspace.store_lock, 1, "held by the test"):
        result = doctor("--repair")
    assert result.exit_code == 3, result.output
    assert "left in place: a writer holds data/.lock" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "nothing moved; 1 left in place"
    assert tmp.read_bytes() == b"half a write" and not list((good_home / "quarantine").rglob("*.tmp"))


def test_a_file_whose_writer_still_runs_is_not_debris(good_home):
    workspace = Workspace.at(good_home)
    (workspace.bars_dir / f".600519.SH.parquet.{os.getpid()}.tmp").write_bytes(b"being written")
    (workspace.models_dir / f".staging-600519.SH-default-gru-x-{os.getpid()}").mkdir()
    assert doctor("--repair").stdout.strip() == "healthy"
    assert (workspace.bars_dir / f".600519.SH.parquet.{os.getpid()}.tmp").exists()


def test_examine_only_reads(good_home):
    from forecast.workflow.doctor import examine

    workspace = Workspace.at(good_home)
    workspace.bars_file("600519.SH").write_bytes(b"PAR1 not really")
    before = tree_snapshot(good_home)
    assert [f.kind for f in examine(workspace)] == ["store"]
    assert tree_snapshot(good_home) == before
