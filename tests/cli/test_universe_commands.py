"""``--universe`` on train, predict, backtest and run; company names in tables, JSON and chart titles.

Universes are cached through the loopback fake (tests/fake_tushare.py) and the
real tushare client; charts are checked through their title text, with a real
CJK font built for the test (none need be installed) and without one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from conftest import SAMPLE_FILE
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data import universe_cache
from forecast.data.store import MarketStore
from forecast.errors import ExitCode
from forecast.models.registry import ModelRegistry

runner = CliRunner()
TINY_TRAIN = ("--epochs", "1", "--units", "4", "--lookback", "10", "--horizon", "2", "--quiet")
LISTINGS = [
    ("600519.SH", "贵州茅台", "白酒", "主板", "L", "20010827", None),
    ("600036.SH", "招商银行", "银行", "主板", "L", "20020409", None),
    ("000001.SZ", "平安银行", "银行", "主板", "L", "19910403", None),
]
CSI300_SNAPSHOTS = {  # today's members: 600519.SH and 600036.SH (000001.SZ left in April)
    "20200302": ["600519.SH", "000001.SZ", "600036.SH"],
    "20200401": ["600519.SH", "600036.SH"],
}


def cli(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def market(fake_tushare):
    """The fake serving listings, CSI 300 snapshots and daily bars for all three codes."""
    from fake_tushare import index_weight_frame, listings_frame, market_from_sample

    m = fake_tushare.market
    m.stock_basic = listings_frame(LISTINGS)
    m.index_weight = index_weight_frame("000300.SH", CSI300_SNAPSHOTS)
    sample = market_from_sample(SAMPLE_FILE, codes=("600519.SH", "600036.SH", "000001.SZ"))
    m.daily, m.factors = sample.daily, sample.factors
    return fake_tushare


@pytest.fixture
def cached_csi300(home, market, monkeypatch):
    """A home whose CSI 300 members and listings are cached, with 600519.SH stored and no token left in the environment."""
    shown = cli("universe", "show", "csi300")
    assert shown.exit_code == 0, shown.output
    assert cli("fetch", "--source", "sample").exit_code == 0
    monkeypatch.delenv("TUSHARE_TOKEN")
    return home


def store_copy_of_the_sample(ticker: str) -> None:
    result = cli("fetch", ticker, "--source", "csv", "--file", str(SAMPLE_FILE))
    assert result.exit_code == 0, result.output


# --- tickers or --universe -------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["train"], ["predict", "--model", "naive"], ["backtest", "--models", "naive"], ["run"]])
def test_tickers_and_a_universe_together_are_a_usage_error(home, command):
    result = cli(*command, "600519.SH", "--universe", "stored")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stderr.strip().splitlines() == ["Error: name tickers or --universe NAME, not both"]
    assert not (home / "daily").exists(), "a usage error of run publishes no summary"


@pytest.mark.parametrize("command", [["train"], ["predict"], ["backtest"]])
def test_neither_tickers_nor_a_universe_is_a_usage_error(home, command):
    result = cli(*command)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "--universe NAME" in result.stderr


@pytest.mark.parametrize("command", ["train", "predict", "backtest", "run"])
def test_every_command_that_takes_tickers_mentions_universe_in_its_help(command):
    result = cli(command, "--help")
    assert result.exit_code == 0 and "--universe NAME" in result.stdout and "csi300" in result.stdout


def test_an_unknown_universe_is_exit_4_before_any_work(home):
    result = cli("predict", "--universe", "csi3000", "--model", "naive")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stderr.strip().splitlines() == [line for line in result.stderr.strip().splitlines() if line.startswith("Error: ")]
    assert "unknown universe 'csi3000'" in result.stderr


# --- predict and backtest over a universe ----------------------------------------------------------

def test_predict_a_cached_index_forecasts_every_member_and_an_unfetched_one_fails_with_the_fetch_hint(cached_csi300):
    result = cli("predict", "--universe", "csi300", "--model", "naive", "--json")
    assert result.exit_code == ExitCode.PARTIAL, result.output
    payload = json.loads(result.stdout)
    assert [r["ticker"] for r in payload["results"]] == ["600519.SH"]
    assert payload["results"][0]["name"] == "贵州茅台"
    (failure,) = payload["failures"]
    assert failure["ticker"] == "600036.SH" and failure["exit_code"] == ExitCode.NOT_FOUND
    assert "forecast fetch --universe csi300" in failure["error"]
    assert "Error: 600036.SH: " in result.stderr
    store_copy_of_the_sample("600036.SH")
    table = cli("predict", "--universe", "csi300", "--model", "naive")
    assert table.exit_code == 0, table.output
    assert "600036.SH 招商银行: model naive" in table.stdout and "600519.SH 贵州茅台: model naive" in table.stdout


def test_a_stale_cache_resolves_without_a_token(cached_csi300, monkeypatch):
    monkeypatch.setattr(universe_cache, "REFRESH_AFTER", dt.timedelta(0))  # every cache is stale now
    result = cli("predict", "--universe", "csi300", "--model", "naive", "--json")
    assert result.exit_code == ExitCode.PARTIAL, result.output  # still both members: the cached snapshot
    assert {r["ticker"] for r in json.loads(result.stdout)["results"]} == {"600519.SH"}


def test_predict_and_backtest_give_a_null_name_when_the_listings_do_not_know_it(home):
    assert cli("fetch", "--source", "sample").exit_code == 0
    predicted = cli("predict", "--universe", "stored", "--model", "naive", "--json")
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["name"] is None
    tested = cli("backtest", "--universe", "stored", "--models", "naive", "--test-days", "10", "--json")
    assert tested.exit_code == 0, tested.output
    body = json.loads(tested.stdout)
    assert body["ticker"] == "600519.SH" and body["name"] is None


def test_backtest_a_universe_runs_each_member_and_reports_the_unfetched_one(cached_csi300):
    args = ("backtest", "--universe", "csi300", "--models", "naive,drift", "--test-days", "20", "--refit-every", "10")
    result = cli(*args, "--json")
    assert result.exit_code == ExitCode.PARTIAL, result.output
    payload = json.loads(result.stdout)
    assert [(r["ticker"], r["name"]) for r in payload["results"]] == [("600519.SH", "贵州茅台")]
    assert payload["failures"][0]["ticker"] == "600036.SH"
    store_copy_of_the_sample("600036.SH")
    table = cli(*args, "--quiet")
    assert table.exit_code == 0, table.output
    assert "600036.SH 招商银行" in table.stdout.splitlines() and table.stdout.count("saved ") == 2
    assert cli(*args, "--out", "x.json").exit_code == ExitCode.USAGE  # one --out file cannot hold two backtests


# --- train and run over a universe (real Keras fits) -----------------------------------------------

@pytest.mark.slow
def test_train_a_universe_fits_one_model_per_member(cached_csi300):
    store_copy_of_the_sample("600036.SH")
    result = cli("train", "--universe", "csi300", *TINY_TRAIN, "--json")
    assert result.exit_code == 0, result.output
    assert sorted(r["ticker"] for r in json.loads(result.stdout)["results"]) == ["600036.SH", "600519.SH"]
    assert sorted(ModelRegistry(cached_csi300).card(i).ticker for i in ModelRegistry(cached_csi300).ids()) == ["600036.SH", "600519.SH"]


@pytest.mark.slow
def test_run_a_universe_fetches_each_member_then_forecasts_it(home, market):
    # the fake market ends in 2020: fresh enough for this test, which is about fetching each member
    (home / "forecast.toml").write_text("stale_after_days = 100000\n[train]\nepochs = 1\nunits = [4]\nlookback = 10\nhorizon = 2\n")
    result = cli("run", "--universe", "csi300", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [(t["ticker"], t["ok"]) for t in summary["tickers"]] == [("600036.SH", True), ("600519.SH", True)]
    fetched = {r["params"].get("ts_code") for r in market.requests if r["api_name"] == "daily"}
    assert {"600036.SH", "600519.SH"} <= fetched and "000001.SZ" not in fetched  # today's members only
    assert sorted(MarketStore(home).tickers()) == ["600036.SH", "600519.SH"]


# --- names on charts ----------------------------------------------------------------------------------

def build_cjk_font(path, family: str, text: str) -> None:
    """Write a TrueType font named ``family`` that has a (square) glyph for every character of ``text``."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    chars = sorted(set(text))
    names = [".notdef", *(f"uni{ord(c):04X}" for c in chars)]
    pen = TTGlyphPen(None)
    for x0, y0, x1, y1 in ((50, 0, 950, 800), (150, 100, 850, 700)):  # a square frame
        pen.moveTo((x0, y0))
        pen.lineTo((x0, y1))
        pen.lineTo((x1, y1))
        pen.lineTo((x1, y0))
        pen.closePath()
    square = pen.glyph()
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({ord(c): f"uni{ord(c):04X}" for c in chars})
    builder.setupGlyf(dict.fromkeys(names, square))
    builder.setupHorizontalMetrics({n: (1000, 50) for n in names})
    builder.setupHorizontalHeader(ascent=880, descent=-120)
    builder.setupNameTable({"familyName": family, "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=880, usWinAscent=880, usWinDescent=120)
    builder.setupPost()
    builder.save(str(path))


@pytest.fixture
def charted(cached_csi300):
    assert cli("predict", "600519.SH", "--model", "naive").exit_code == 0
    return cached_csi300


def glyph_warnings(recwarn) -> list[str]:
    return [str(w.message) for w in recwarn if "glyph" in str(w.message).lower()]


def test_chart_titles_carry_the_company_name_with_a_cjk_font(charted, tmp_path, recwarn):
    import matplotlib
    from matplotlib import font_manager

    from forecast.outputs import figures, plotting

    font_file = tmp_path / "cjk-test.ttf"
    build_cjk_font(font_file, "Noto Sans CJK Test", "".join(name for _, name, *_ in LISTINGS))
    before = list(font_manager.fontManager.ttflist)
    font_manager.fontManager.addfont(str(font_file))
    figures.cjk_font.cache_clear()
    try:
        with matplotlib.rc_context():  # new_figure puts the font first in rcParams: undone after the test
            assert figures.cjk_font() == "Noto Sans CJK Test"
            forecast = plotting.render(charted, "600519.SH", "forecast", out=tmp_path / "f.png")
            history = plotting.render(charted, "600519.SH", "history", out=tmp_path / "h.png")
    finally:
        font_manager.fontManager.ttflist[:] = before
        figures.cjk_font.cache_clear()
    assert forecast.title.startswith("贵州茅台 600519.SH: ") and "forecast after" in forecast.title
    assert history.title.startswith("贵州茅台 600519.SH: last ")
    assert glyph_warnings(recwarn) == []


def test_without_a_cjk_font_titles_show_the_code_logged_once_and_no_glyph_warnings(charted, tmp_path, recwarn, caplog, monkeypatch):
    from forecast.outputs import figures, plotting

    monkeypatch.setattr(figures, "cjk_font", lambda: None)
    figures._say_names_need_a_cjk_font.cache_clear()
    caplog.set_level(logging.DEBUG, logger="forecast.outputs.figures")
    titles = [plotting.render(charted, "600519.SH", kind, out=tmp_path / f"{kind}.png").title for kind in ("forecast", "history")]
    assert all(t.startswith("600519.SH: ") for t in titles), titles
    assert "贵州茅台" not in "".join(titles)
    assert len([r for r in caplog.records if "no CJK font" in r.getMessage()]) == 1
    assert glyph_warnings(recwarn) == []
