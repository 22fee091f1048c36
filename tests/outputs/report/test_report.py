"""The daily HTML report without a browser: what it reads, what it writes, escaping, colours and the CLI.

The browser checks (no console errors, sorting, drawn charts) are in
tests/outputs/report/test_browser.py.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil

import pytest
from report_home import build_home
from typer.testing import CliRunner

from forecast.errors import BadInputError, ExitCode
from forecast.models.backtest_records import BacktestRecord
from forecast.models.results import load_forecast
from forecast.outputs.report import page_size, write_report
from forecast.outputs.report.colors import check_colors, colors_for
from forecast.outputs.report.context import load_context
from forecast.outputs.report.figures import PALETTES, ticker_figure
from forecast.outputs.report.ranking import ranking
from forecast.outputs.report.verdicts import verdict_for
from forecast.workspace import Workspace

runner = CliRunner()
EVIL = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A home with 12 tickers' forecasts, two backtests and a universe's cross-sectional backtest (built once: only read)."""
    home = tmp_path_factory.mktemp("report-home")
    codes = build_home(home, 12, backtested=2, universe="syn")
    return home, codes


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr class="[^"]*" data-ticker="([^"]+)"', page)


def test_one_row_per_ticker_in_order_with_failures_and_missing(stored, tmp_path):
    home, codes = stored
    out = tmp_path / "r.html"
    info = write_report(home, [*codes[:3], "AAPL"], out, failures={codes[2]: "fetch failed: server said no"})
    page = out.read_text(encoding="utf-8")
    assert _rows(page) == [*codes[:3], "AAPL"]
    assert (info.tickers, info.failed, info.bytes) == (4, 2, len(page.encode()))
    assert "fetch failed: server said no" in page  # the run's failure wins over the stored forecast
    assert "no data stored; run: forecast fetch AAPL, then forecast predict AAPL" in page  # nothing to predict from
    assert f'id="t-{codes[0]}"' in page and f'id="t-{codes[2]}"' not in page  # no chart for a failed ticker


def test_a_stored_ticker_without_a_forecast_is_told_to_predict(stored, tmp_path):
    shared, codes = stored
    home = tmp_path / "home"
    shutil.copytree(shared, home)  # the fixture's home is shared by the module's tests: change a copy
    Workspace.at(home).forecast_file(codes[1]).unlink()  # its bars stay in the store
    out = tmp_path / "r.html"
    write_report(home, codes[:2], out)
    assert f"no forecast stored; run: forecast predict {codes[1]}" in out.read_text(encoding="utf-8")


def test_failure_marker_counts_only_when_newer_than_the_forecast(stored, tmp_path):
    home, codes = stored
    folder = tmp_path / "daily-latest"
    folder.mkdir()
    for code in codes[:2]:
        (folder / f"{code}.failed.json").write_text(json.dumps({"ticker": code, "error": f"{code} broke today"}))
    forecast_mtime = os.stat(home / "forecasts" / codes[0] / "latest.json").st_mtime
    os.utime(folder / f"{codes[0]}.failed.json", (forecast_mtime - 60, forecast_mtime - 60))  # predicted again since
    context = load_context(home, codes[:2], failures_dir=folder)
    first, second = context.tickers
    assert not first.failed and first.forecast is not None
    assert second.failed and second.error == f"{codes[1]} broke today"


def test_names_and_errors_are_escaped_everywhere(stored, tmp_path):
    home, codes = stored
    out = tmp_path / "r.html"
    write_report(home, codes[:2], out, names={codes[0]: EVIL}, failures={codes[1]: f"server said {EVIL}"})
    page = out.read_text(encoding="utf-8")
    assert EVIL not in page
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert page.count("<script") == page.count("</script>")  # every script block is ours and closed


def test_page_is_self_contained_with_plotly_once(stored, tmp_path):
    from plotly.offline import get_plotlyjs

    home, codes = stored
    out = tmp_path / "r.html"
    write_report(home, codes, out)
    page = out.read_text(encoding="utf-8")
    library = get_plotlyjs()
    assert page.count(library[:200]) == 1
    ours = page.replace(library, "")
    assert not re.search(r'\s(src|href)\s*=\s*"(?!#)', ours)  # no file, image or link to load, only in-page anchors
    assert "default-src 'none'" in ours  # and the page's policy forbids the browser to fetch anything
    blocks = re.findall(r'<script type="application/json" id="fig-([^"]+)">(.*?)</script>', page, re.S)
    assert [b[0] for b in blocks] == codes
    for _, text in blocks:
        json.loads(text)  # strict JSON: no NaN


def test_figures_are_valid_plotly_with_every_trace(stored):
    import plotly.graph_objects as go

    home, codes = stored
    context = load_context(home, codes[:2], days=50)
    for t in context.tickers:
        figure = go.Figure(ticker_figure(t))  # raises on any property plotly does not know
        kinds = [(trace.type, trace.name) for trace in figure.data]
        assert ("candlestick", "history") in kinds and ("bar", "volume") in kinds
        assert {"80% band", "95% band", "forecast (drift)", "naive (tomorrow = today)"} <= {name for _, name in kinds}
        candles = figure.data[0]
        assert len(candles.x) == 50 and candles.x[-1] == t.forecast.last_date
        forecast = next(trace for trace in figure.data if trace.name == "forecast (drift)")
        assert list(forecast.x[1:]) == [p.date for p in t.forecast.points]


def test_each_chart_opens_on_the_forecast_with_the_whole_history_a_click_away(stored):
    home, codes = stored
    days = 120
    for t in load_context(home, codes[:3], days=days).forecasts:
        figure = ticker_figure(t)
        candles = figure["data"][0]
        bars, horizon = len(candles["x"]), len(t.forecast.points)
        assert bars == days  # the whole history is in the chart...
        start, end = figure["layout"]["xaxis"]["range"]  # ...but it opens on the recent part (categories: bar i sits at i)
        first_forecast = bars - 0.5  # the forecast's steps follow the last bar, at bars .. bars + horizon - 1
        assert end >= bars - 1 + horizon and start <= bars - 1 - horizon  # every step, and at least as much history
        assert (end - first_forecast) / (end - start) >= 0.2  # the forecast fills a fifth of the width or more
        shown = slice(max(0, math.ceil(start)), bars)
        low, high = figure["layout"]["yaxis"]["range"]
        in_view = [*candles["low"][shown], *candles["high"][shown],
                   *(v for trace in figure["data"] if trace["type"] == "scatter" for v in trace["y"] if v is not None)]
        assert low <= min(in_view) and high >= max(in_view)  # y fits what is shown, not the bars scrolled out of view
        assert high - low < 2 * (max(in_view) - min(in_view))
        buttons = {b["label"]: b["args"][0] for menu in figure["layout"]["updatemenus"] for b in menu["buttons"]}
        assert buttons[f"All {days} days"]["xaxis.autorange"] is True
        assert buttons["Forecast view"]["xaxis.range"] == [start, end]


def test_colours_follow_the_ticker_unless_set():
    assert colors_for("600519.SH", None) == "cn" and colors_for("AAPL", None) == "us"
    assert colors_for("600519.SH", "us") == "us" and colors_for("AAPL", "cn") == "cn"
    assert check_colors(" CN ") == "cn" and check_colors(None) is None
    with pytest.raises(BadInputError, match="unknown colors 'red'"):
        check_colors("red")


def test_candles_use_the_convention(stored):
    home, codes = stored
    for setting, expected in ((None, "cn"), ("us", "us")):
        t = load_context(home, codes[:1], colors=setting).tickers[0]
        candles = ticker_figure(t)["data"][0]
        assert (candles["increasing"]["line"]["color"], candles["decreasing"]["line"]["color"]) == PALETTES[expected]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A home of two China tickers and three US ones, each with a stored forecast."""
    home = tmp_path_factory.mktemp("mixed-home")
    return home, build_home(home, 5, n_days=120, backtested=0, others=("AAPL", "MSFT", "IBM"))


def _conventions(page: str) -> set[str]:
    return set(re.findall(r'class="(?:ticker )?colors-(\w+)', page))


@pytest.mark.parametrize("setting", [None, "cn", "us"])
def test_a_mixed_page_has_one_colour_convention_and_says_which(mixed, tmp_path, setting):
    from forecast.data.tickers import parse_ticker

    home, codes = mixed
    china = sum(parse_ticker(c).is_china for c in codes)
    expected = setting or ("cn" if 2 * china >= len(codes) else "us")  # most of the page's tickers; China's on a tie
    out = tmp_path / "r.html"
    write_report(home, codes, out, colors=setting)
    page = out.read_text(encoding="utf-8")
    assert _conventions(page) == {expected}  # every row and every chart's section
    context = load_context(home, codes, colors=setting)
    candles = [ticker_figure(t)["data"][0] for t in context.forecasts]
    assert {(c["increasing"]["line"]["color"], c["decreasing"]["line"]["color"]) for c in candles} == {PALETTES[expected]}
    legend = re.search(r'<p class="meta" id="colors-legend">(.*?)</p>', page).group(1)
    assert ("red is a rise" if expected == "cn" else "green is a rise") in legend
    if setting is None:
        assert f"{china} of the page&#39;s {len(codes)} tickers are China-listed" in legend


def test_a_tie_goes_to_china_and_a_china_majority_to_cn(mixed):
    home, codes = mixed
    china, other = codes[:2], codes[2:]
    assert load_context(home, [*china, *other[:2]]).colors.convention == "cn"
    assert load_context(home, [*china, *other[:1]]).colors.convention == "cn"
    assert load_context(home, [*china[:1], *other[:2]]).colors.convention == "us"


def test_verdicts_from_skill_and_significance(stored):
    home, codes = stored
    forecast = load_forecast(home, codes[0])

    def record(skill, p):
        return BacktestRecord(codes[0], "close", 5, {}, "a", "b", 10, {"drift": {"skill_vs_naive": skill, "dm_p_value": p}})

    assert verdict_for(forecast, None).key == "unmeasured"
    assert verdict_for(forecast, record(0.05, 0.01)).key == "beats"
    assert verdict_for(forecast, record(-0.05, 0.01)).key == "worse"
    assert verdict_for(forecast, record(0.05, 0.2)).key == "tied"
    assert not verdict_for(forecast, record(0.05, 0.2)).is_signal


def test_universe_ranking_and_cumulative_ic(stored, tmp_path):
    home, codes = stored
    context = load_context(home, codes, universe="syn")
    ranked = ranking(context.forecasts)
    expected = [r.expected for r in ranked]
    assert expected == sorted(expected, reverse=True) and len(ranked) == len(codes)
    assert context.cumulative_ic is not None and set(context.cumulative_ic.columns) >= {"momentum", "reversal"}
    out = tmp_path / "r.html"
    write_report(home, codes, out, universe="syn")
    page = out.read_text(encoding="utf-8")
    assert 'id="ranking"' in page and 'id="fig-cumulative-ic"' in page


def test_the_cdn_page_loads_the_bundled_plotly_by_version_and_hash(stored, tmp_path):
    import base64
    import hashlib

    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    home, codes = stored
    inline = write_report(home, codes, tmp_path / "inline.html", universe="syn")
    small = write_report(home, codes, tmp_path / "small.html", universe="syn", plotly="cdn")
    page = (tmp_path / "small.html").read_text(encoding="utf-8")
    library = get_plotlyjs()
    assert library[:200] not in page and small.bytes == len(page.encode())
    scripts = re.findall(r"<script\b[^>]*\bsrc=[^>]*>", page)
    assert len(scripts) == 1
    url = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    integrity = "sha384-" + base64.b64encode(hashlib.sha384(library.encode("utf-8")).digest()).decode()
    assert f'src="{url}"' in scripts[0] and f'integrity="{integrity}"' in scripts[0] and 'crossorigin="anonymous"' in scripts[0]
    assert "script-src 'unsafe-inline' 'unsafe-eval' https://cdn.plot.ly;" in page  # that origin and no other
    without_plotly = inline.bytes - len(library.encode("utf-8"))
    assert small.bytes <= without_plotly + 1_000  # the page less plotly.js, plus a script tag and a note
    assert inline.describe() == f"{inline.bytes / 1e6:.1f} MB, plotly inlined for offline viewing"
    assert small.describe() == f"{round(small.bytes / 1e3)} kB, loads plotly.js from cdn.plot.ly when opened"


def test_page_sizes_read_as_mail_counts_them():
    assert (page_size(999), page_size(310_400), page_size(4_870_000)) == ("1 kB", "310 kB", "4.9 MB")


def test_secrets_never_reach_the_page(stored, tmp_path):
    from forecast.redact import register_secret

    home, codes = stored
    secret = "tok-report-abcdef123456"
    register_secret(secret)
    out = tmp_path / "r.html"
    write_report(home, codes[:1], out, failures={codes[0]: f"tushare rejected token {secret}"})
    assert secret not in out.read_text(encoding="utf-8")


def _cli(args: list[str]):
    from forecast.cli import app

    return runner.invoke(app, args)


def test_cli_writes_the_default_file_for_stored_forecasts(home):
    codes = build_home(home, 3, n_days=120, backtested=0)
    result = _cli(["report", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["path"] == str(home / "report.html") and payload["tickers"] == 3 and payload["failed"] == 0
    assert _rows((home / "report.html").read_text(encoding="utf-8")) == sorted(codes)


def test_cli_says_the_size_and_how_the_page_gets_plotly(home, tmp_path):
    build_home(home, 2, n_days=120, backtested=0)
    for mode, words in (("inline", "plotly inlined for offline viewing"), ("cdn", "loads plotly.js from cdn.plot.ly when opened")):
        out = tmp_path / f"{mode}.html"
        result = _cli(["report", "--plotly", mode, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"wrote {out} ({page_size(out.stat().st_size)}, {words})"
    assert _cli(["report", "--plotly", "cdn", "--json", "--out", str(out)]).stdout.count('"plotly": "cdn"') == 1


@pytest.mark.parametrize("columns", [["date", "close"], ["date", "open", "high", "low", "close"]])
def test_a_ticker_from_a_file_without_a_range_or_volume_gets_its_chart(home, tmp_path, columns):
    import pandas as pd
    from conftest import SAMPLE_FILE

    pd.read_csv(SAMPLE_FILE)[columns].to_csv(tmp_path / "bars.csv", index=False)
    assert _cli(["fetch", "NOVOL", "--source", "csv", "--file", str(tmp_path / "bars.csv")]).exit_code == 0
    assert _cli(["predict", "NOVOL", "--model", "naive"]).exit_code == 0
    out = tmp_path / "r.html"
    result = _cli(["report", "NOVOL", "--plotly", "cdn", "--out", str(out)])
    assert result.exit_code == 0, result.output
    block = re.search(r'<script type="application/json" id="fig-NOVOL">(.*?)</script>', out.read_text(encoding="utf-8"), re.S)
    figure = json.loads(block[1], parse_constant=lambda name: pytest.fail(f"{name} in the page's JSON"))
    names = [trace["name"] for trace in figure["data"]]
    assert "volume" not in names  # no volume in the file: no bars of nothing
    assert ("history" in names) == ("high" in columns) and ("history (close)" in names) == ("high" not in columns)
    assert all(math.isfinite(v) for axis in ("yaxis", "yaxis2") for v in figure["layout"][axis]["range"])


def test_cli_errors_are_one_line(home, tmp_path):
    result = _cli(["report"])
    assert result.exit_code == ExitCode.NOT_FOUND and "nothing to report" in result.output
    build_home(home, 1, n_days=120, backtested=0)
    result = _cli(["report", "--colors", "red", "--out", str(tmp_path / "x.html")])
    assert result.exit_code == ExitCode.USAGE and "'red'" in result.output and "cn" in result.output  # a bad flag, as --plotly
    assert "Traceback" not in result.output


def test_without_the_report_extra_the_command_names_it(home, monkeypatch):
    import sys

    from forecast.outputs.report import render

    build_home(home, 1, n_days=120, backtested=0)
    render.environment.cache_clear()
    monkeypatch.setitem(sys.modules, "jinja2", None)  # as if it were not installed
    try:
        result = _cli(["report"])
    finally:
        render.environment.cache_clear()
    assert result.exit_code == 2, result.output
    assert "pip install 'forecast[report]'" in result.output and "Traceback" not in result.output
