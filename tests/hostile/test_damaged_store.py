"""Hostile state, a damaged store: ``backtest --universe stored`` (cross-sectional) with unreadable members.

A synthetic market of 12 tickers is laid down as fetches leave it; then one
ticker's Parquet is truncated, one is replaced by garbage, one is a directory
and one is empty. The backtest must run on the readable tickers and name each
skipped one (the same result as a store that never held them), or fail in one
line with a documented exit code; never a traceback. ``doctor`` names each
damaged file, and after ``doctor --repair`` the backtest runs without a word
about them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from synthetic_market import synthetic_bars, write_store
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.store import MarketStore
from forecast.workspace import Workspace

runner = CliRunner()
BACKTEST = ["backtest", "--universe", "stored", "--models", "momentum_20,reversal", "--test-days", "60", "--json"]
DAMAGES = {"600001.SH": "truncated", "600002.SH": "garbage", "000003.SZ": "directory", "000004.SZ": "empty"}


def cli(home: Path, *args: str):
    return runner.invoke(app, list(args), env={"FORECAST_HOME": str(home)})


@pytest.fixture(scope="module")
def market():
    return synthetic_bars(12, 400, seed=11)


def make_home(root: Path, bars, codes=None) -> Path:
    write_store(MarketStore(Workspace.at(root)), bars, codes=codes)
    return root


def damage(home: Path) -> None:
    for ticker, how in DAMAGES.items():
        path = home / "data" / "bars" / f"{ticker}.parquet"
        if how == "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        elif how == "garbage":
            path.write_bytes(b"PAR1 this is no parquet file at all PAR1")
        elif how == "directory":
            path.unlink()
            path.mkdir()
            (path / "part-0.parquet").write_bytes(b"PAR1")
        else:
            path.write_bytes(b"")


def models_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["models"]


def test_a_cross_sectional_backtest_on_a_damaged_store_runs_on_the_readable_tickers_and_names_the_others(tmp_path, market):
    home = make_home(tmp_path / "damaged", market)
    damage(home)
    clean = make_home(tmp_path / "clean", market, codes=[c for c in market.codes if c not in DAMAGES])

    result = cli(home, *BACKTEST)
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    assert result.exit_code == 0, result.output  # runs on the 8 readable tickers ...
    for ticker in DAMAGES:  # ... and names each one it skipped
        assert ticker in result.stderr, (ticker, result.stderr)
    assert "skipped 4 of 12" in result.stderr
    assert models_of(result) == models_of(cli(clean, *BACKTEST))  # the same as a store that never held them

    text = cli(home, *BACKTEST[:-1])  # the table, too, says what it skipped
    assert text.exit_code == 0 and all(t in text.stderr for t in DAMAGES), text.output


def test_doctor_names_each_damaged_file_and_after_repair_the_backtest_is_quiet(tmp_path, market):
    home = make_home(tmp_path / "home", market)
    damage(home)
    checked = cli(home, "doctor", "--json")
    assert checked.exit_code == 3, checked.output
    named = {Path(f["path"]).relative_to(home).as_posix() for f in json.loads(checked.stdout)["findings"]}
    assert {f"data/bars/{t}.parquet" for t in DAMAGES} <= named, named
    assert not {n for n in named if not any(t in n for t in DAMAGES)}, named  # nothing good is named
    repaired = cli(home, "doctor", "--repair", "--json")
    assert repaired.exit_code == 0 and json.loads(repaired.stdout)["healthy"], repaired.output
    assert cli(home, "doctor").exit_code == 0
    result = cli(home, *BACKTEST)
    assert result.exit_code == 0 and "skipped" not in result.stderr, result.output
    assert sorted(MarketStore(home).tickers()) == sorted(c for c in market.codes if c not in DAMAGES)


def test_every_member_unreadable_is_one_line_not_found(tmp_path, market):
    home = make_home(tmp_path / "home", market, codes=market.codes[:3])
    for path in (home / "data" / "bars").glob("*.parquet"):
        path.write_bytes(b"garbage")
    result = cli(home, *BACKTEST[:-1])
    assert result.exit_code in (3, 4), result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.stderr
    shutil.rmtree(home)


def test_the_json_of_a_cross_sectional_backtest_names_the_skipped_tickers_in_its_notes(tmp_path, market):
    home = make_home(tmp_path / "damaged", market)
    damage(home)
    result = cli(home, *BACKTEST)
    assert result.exit_code == 0, result.output
    notes = " ".join(json.loads(result.stdout)["notes"])
    assert all(ticker in notes for ticker in DAMAGES), notes
