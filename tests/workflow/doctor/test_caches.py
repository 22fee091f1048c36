"""``forecast doctor`` and the universe and calendar caches: a damaged one is named with the command that makes it
again, ``--repair`` moves it into quarantine/, and the next fetch writes it again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
from forecast.data.universe import refresh_trade_calendar
from forecast.errors import CorruptFileError, ExitCode
from forecast.workspace import Workspace

runner = CliRunner()
LISTINGS = [
    ("600519.SH", "贵州茅台", "白酒", "主板", "L", "20010827", None),
    ("600036.SH", "招商银行", "银行", "主板", "L", "20020409", None),
    ("600087.SH", "退市长油", "水运", "主板", "D", "19970610", "20140605"),
]
SNAPSHOTS = {"20200102": ["600519.SH", "600036.SH"], "20200203": ["600519.SH"]}
CACHES = {  # the cache, its path under the home, and the command doctor must name to make it again
    "listings": ("data/universe/listings.parquet", "forecast universe show all"),
    "index": ("data/universe/index-000300.SH.parquet", "forecast universe show 000300.SH"),
    "calendar": ("data/calendar/SSE.parquet", "forecast fetch --universe"),
}


def cli(*args: str):
    return runner.invoke(app, list(args))


def client(fake) -> TushareClient:
    return TushareClient(fake.valid_token, timeout=2.0, retry=RetryPolicy(sleep=lambda s: None))


def write_caches(home: Path, fake) -> None:
    """The caches as the commands write them, from the fake tushare server: listings, CSI 300 snapshots, SSE's calendar."""
    assert cli("universe", "show", "all").exit_code == 0
    assert cli("universe", "show", "000300.SH").exit_code == 0
    assert refresh_trade_calendar(Workspace.at(home), client(fake))


@pytest.fixture
def cached(home, fake_tushare) -> Path:
    """A home holding the three caches, each written by the product itself."""
    from fake_tushare import index_weight_frame, listings_frame, trade_cal_frame

    market = fake_tushare.market
    market.stock_basic = listings_frame(LISTINGS)
    market.index_weight = index_weight_frame("000300.SH", SNAPSHOTS)
    market.trade_cal = trade_cal_frame("2026-12-01", "2027-01-31", closed=("2027-01-01",))
    write_caches(home, fake_tushare)
    for _, (rel, _) in CACHES.items():
        assert (home / rel).is_file(), rel
    return home


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def renamed_columns(path: Path) -> None:
    """Every column renamed (``ts_code`` -> ``ts_code_x``...), the file otherwise as forecast wrote it (its metadata too)."""
    table = pq.read_table(path)
    pq.write_table(table.rename_columns([f"{name}_x" for name in table.column_names]), path)


def no_dates(path: Path) -> None:
    """The date column the reader parses turned into words."""
    table = pq.read_table(path)
    column = {"listings": "list_date", "index": "trade_date", "SSE": "cal_date"}[path.stem.split("-")[0]]
    words = pa.array(["not a day"] * table.num_rows)
    pq.write_table(table.set_column(table.column_names.index(column), column, words), path)


def doctor_json() -> tuple[int, dict]:
    result = cli("doctor", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_caches_written_by_the_product_are_healthy(cached):
    result = cli("doctor")
    assert result.exit_code == 0 and result.stdout.strip() == "healthy", result.output


@pytest.mark.parametrize("cache", list(CACHES))
@pytest.mark.parametrize("damage", [truncated, renamed_columns, no_dates], ids=["truncated", "wrong-columns", "no-dates"])
def test_a_damaged_cache_is_named_with_its_command_and_repair_quarantines_it(cached, cache, damage):
    home = cached
    rel, command = CACHES[cache]
    path = home / rel
    damage(path)
    damaged = path.read_bytes()

    result = cli("doctor")
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("cache: ")]
    assert line.startswith(f"cache: {rel}: ") and command in line
    code, report = doctor_json()
    assert code == ExitCode.BAD_INPUT and report["healthy"] is False
    (finding,) = report["findings"]
    assert finding["kind"] == "cache" and os.path.relpath(finding["path"], home) == rel and command in finding["advice"]

    repaired = cli("doctor", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert not path.exists()
    (moved,) = (home / "quarantine").rglob(path.name)
    assert moved.relative_to(home / "quarantine").parts[1:] == Path(rel).parts  # quarantine/<stamp>/<its path>
    assert moved.read_bytes() == damaged  # kept, not deleted
    again = cli("doctor")
    assert again.exit_code == 0 and again.stdout.strip() == "healthy", again.output


@pytest.mark.parametrize("cache", ["listings", "index"])
def test_a_universe_cache_without_its_fetch_record_is_named(cached, cache):
    """Parquet with the right columns but not written by forecast: universe_cache reads it as unreadable."""
    home = cached
    rel, command = CACHES[cache]
    pq.write_table(pq.read_table(home / rel).replace_schema_metadata(None), home / rel)
    code, report = doctor_json()
    assert code == ExitCode.BAD_INPUT
    (finding,) = report["findings"]
    assert os.path.relpath(finding["path"], home) == rel and "fetched" in finding["problem"] and command in finding["advice"]


def test_the_next_fetch_writes_the_quarantined_caches_again(cached, fake_tushare):
    home = cached
    for rel, _ in CACHES.values():
        truncated(home / rel)
    code, report = doctor_json()
    assert code == ExitCode.BAD_INPUT and sorted(os.path.relpath(f["path"], home) for f in report["findings"]) == sorted(
        rel for rel, _ in CACHES.values())
    assert cli("doctor", "--repair").exit_code == 0
    write_caches(home, fake_tushare)  # the commands doctor named
    result = cli("doctor")
    assert result.exit_code == 0 and result.stdout.strip() == "healthy", result.output
    shown = cli("universe", "show", "000300.SH", "--json")
    assert shown.exit_code == 0 and [m["ticker"] for m in json.loads(shown.stdout)["members"]] == ["600519.SH"]


def test_a_cache_that_is_a_folder_is_named(home):
    folder = Workspace.at(home).listings_file
    folder.mkdir(parents=True)
    code, report = doctor_json()
    assert code == ExitCode.BAD_INPUT
    (finding,) = report["findings"]
    assert finding["path"] == str(folder) and finding["problem"] == "not a regular file"
    assert cli("doctor", "--repair").exit_code == 0 and not folder.exists()
    assert cli("doctor").stdout.strip() == "healthy"


def test_files_no_reader_reads_are_left_alone(home):
    """Only the names the readers read are the product's: a note or a backup beside them is not a finding."""
    workspace = Workspace.at(home)
    for path in (workspace.universe_dir / "notes.txt", workspace.universe_dir / "old-listings.parquet",
                 workspace.calendar_dir / "README"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not parquet")
    result = cli("doctor")
    assert result.exit_code == 0 and result.stdout.strip() == "healthy", result.output


def test_a_damaged_trading_facts_file_is_named_and_repair_moves_it_so_predict_works_again(home):
    """The A-share trading facts (data/trading/*.parquet) are read by predict for every China ticker: doctor checks them."""
    import json as json_module

    import pandas as pd

    from forecast.data.trading_facts import load_facts
    from forecast.workspace import Workspace

    workspace = Workspace.at(home)
    workspace.trading_dir.mkdir(parents=True)
    good = pd.DataFrame({"ts_code": ["600519.SH"], "name": ["贵州茅台"], "start_date": [pd.Timestamp("2001-08-27")],
                         "end_date": [pd.NaT], "ann_date": [pd.NaT], "change_reason": [""]})
    good.to_parquet(workspace.trading_file("namechange"))
    workspace.trading_file("stk_limit").write_bytes(b"PAR1 not really")
    found = runner.invoke(app, ["doctor", "--json"])
    assert found.exit_code == ExitCode.BAD_INPUT, found.output
    named = [Path(f["path"]) for f in json_module.loads(found.stdout)["findings"]]
    assert named == [workspace.trading_file("stk_limit")]  # the good file is not named
    with pytest.raises(CorruptFileError):
        load_facts(workspace, ["600519.SH"])  # what predict and rank meet until it is repaired
    repaired = runner.invoke(app, ["doctor", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert not workspace.trading_file("stk_limit").exists() and workspace.trading_file("namechange").exists()
    assert load_facts(workspace, ["600519.SH"]).stk_limit is None  # the rules stand in until the next fetch
    assert runner.invoke(app, ["doctor"]).exit_code == 0
