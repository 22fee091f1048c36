from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "fixtures"  # slices of the course's files; see fixtures/README.md
FIXTURES = DATA  # tests/fixtures/ from a test at any depth (issue 24: tests live in folders)
COURSE_FILE = DATA / "moutai_qfq_with_negative_prices.csv"
COURSE_POSITIVE = DATA / "moutai_qfq.csv"
SAMPLE_FILE = REPO / "forecast" / "sample" / "600519.SH.csv"

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty workspace; FORECAST_HOME points at it."""
    monkeypatch.setenv("FORECAST_HOME", str(tmp_path))
    monkeypatch.delenv("TUSHARE_TOKEN", raising=False)
    monkeypatch.delenv("TS_TOKEN", raising=False)
    return tmp_path


@pytest.fixture
def sample_home(home) -> Path:
    """``home`` with the bundled sample (600519.SH) fetched into it."""
    from typer.testing import CliRunner

    from forecast.cli import app

    assert CliRunner().invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    return home


@pytest.fixture
def fake_tushare(monkeypatch):
    """The fake tushare server, with the real client pointed at it and a valid token set."""
    from fake_tushare import FakeTushare, market_from_sample, serve
    from tushare.pro.client import DataApi

    fake = FakeTushare(market_from_sample(SAMPLE_FILE))
    server, url = serve(fake)
    monkeypatch.setattr(DataApi, "_DataApi__http_url", url)
    monkeypatch.setenv("TUSHARE_TOKEN", fake.valid_token)
    fake.url = url
    yield fake
    server.shutdown()


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes: compare two snapshots to prove a shared home was only read."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def subprocess_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update({k: str(v) for k, v in extra.items()})
    return env
