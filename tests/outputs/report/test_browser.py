"""The daily report in a real browser: Debian's headless Chromium driven by Playwright's Python API.

Playwright's own browser downloads cannot be reached here, so the system
Chromium is used through ``executable_path``. Without it these tests skip and
say how to install it; everything else still runs.
"""

from __future__ import annotations

import io
import os
import shutil

import pytest
from report_home import build_home

from forecast.outputs.report import write_report

pytestmark = pytest.mark.slow

EVIL = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
INSTALL = "apt-get install chromium (Debian), or set FORECAST_CHROMIUM to a Chromium binary"


def _chromium() -> str | None:
    chosen = os.environ.get("FORECAST_CHROMIUM")
    if chosen:
        return chosen if os.path.isfile(chosen) else None
    return next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
    executable = _chromium()
    if executable is None:
        pytest.skip(f"no Chromium found: {INSTALL}")
    with sync_api.sync_playwright() as p:
        try:  # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
            launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Exception as exc:
            pytest.skip(f"Chromium at {executable} did not start ({type(exc).__name__}): {INSTALL}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A page of five tickers (one named with a script), a failure, and a universe section; built once, only read."""
    home = tmp_path_factory.mktemp("browser-home")
    codes = build_home(home, 12, n_days=200, backtested=1, universe="syn")
    shown = codes[:5]
    out = home / "page" / "report.html"
    write_report(home, [*shown, "AAPL"], out, names={shown[1]: EVIL}, universe="syn")
    return out, shown, [*shown, "AAPL"]


class OpenedPage:
    """A page opened with every request recorded and any non-file request refused."""

    def __init__(self, browser, path, width: int = 1280):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def route(r):
            self.requests.append(r.request.url)
            r.continue_() if r.request.url.startswith("file://") else r.abort()

        self.page.route("**/*", route)
        self.page.goto(path.as_uri(), wait_until="load")

    def close(self):
        self.context.close()


@pytest.fixture
def opened(browser, report):
    page = OpenedPage(browser, report[0])
    yield page
    page.close()


def test_loads_without_errors_or_network(opened, report):
    opened.page.evaluate("window.forecastReport.drawAll()")
    opened.page.wait_for_function("document.querySelectorAll('.chart.js-plotly-plot').length === document.querySelectorAll('.chart').length")
    opened.page.wait_for_timeout(200)
    assert opened.errors == []
    assert opened.requests == [report[0].as_uri()]  # the page itself, nothing else


def test_one_row_per_ticker_and_the_filter(opened, report):
    page = opened.page
    assert page.eval_on_selector_all("#summary-table tbody tr", "rows => rows.map(r => r.dataset.ticker)") == report[2]
    page.fill("#filter", report[1][3])
    assert page.eval_on_selector_all("#summary-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.ticker)") == [report[1][3]]


def test_sorting_by_a_header(opened):
    page = opened.page
    column = page.eval_on_selector_all("#summary-table thead th", "hs => hs.map(h => h.textContent)").index("Last close")

    def closes():
        return page.eval_on_selector_all("#summary-table tbody tr", f"rows => rows.map(r => r.cells[{column}].dataset.sort)")

    before = [float(v) for v in closes() if v]
    assert before not in (sorted(before), sorted(before, reverse=True))  # else a broken sort would pass
    header = page.locator("#summary-table thead th", has_text="Last close")
    header.click()
    ascending = closes()
    assert [float(v) for v in ascending if v] == sorted(before) and ascending[-1] == ""  # the failure row's blank goes last
    header.click()
    descending = closes()
    assert [float(v) for v in descending if v] == sorted(before, reverse=True) and descending[-1] == ""


def test_each_chart_has_its_traces(opened, report):
    page = opened.page
    for code in report[1]:
        page.locator(f'[id="chart-{code}"]').scroll_into_view_if_needed()  # drawn as it comes into view
        page.wait_for_function("id => { const el = document.getElementById(id); return el && el.data; }", arg=f"chart-{code}")
        traces = page.evaluate("id => document.getElementById(id).data.map(t => [t.type || 'scatter', t.name, (t.x || []).length])",
                               f"chart-{code}")
        kinds = {(kind, name) for kind, name, _ in traces}
        assert {("candlestick", "history"), ("bar", "volume"), ("scatter", "80% band"), ("scatter", "95% band"),
                ("scatter", "forecast (drift)"), ("scatter", "naive (tomorrow = today)")} <= kinds
        assert all(n > 0 for _, _, n in traces)
        assert page.locator(f'[id="chart-{code}"] .main-svg').count() > 0  # plotly drew it, not only holds it
    page.locator("#chart-cumulative-ic").scroll_into_view_if_needed()
    page.wait_for_function("() => document.getElementById('chart-cumulative-ic').data")
    names = page.evaluate("() => document.getElementById('chart-cumulative-ic').data.map(t => t.name)")
    assert {"momentum", "reversal"} <= set(names)


def test_screenshot_is_not_blank(opened, report):
    import numpy as np
    from PIL import Image

    page = opened.page
    page.locator(f'[id="chart-{report[1][0]}"]').scroll_into_view_if_needed()
    page.wait_for_function("id => document.getElementById(id).data", arg=f"chart-{report[1][0]}")
    pixels = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("L"), dtype=float)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005  # text, candles and bands, not a white page


def test_a_script_in_a_name_shows_as_text_and_does_not_run(opened, report):
    page = opened.page
    code = report[1][1]
    assert page.inner_text(f'#summary-table tr[data-ticker="{code}"] td:nth-child(2)') == EVIL
    assert page.inner_text(f'[id="t-{code}"] h2').endswith(EVIL)
    page.wait_for_timeout(100)
    assert page.evaluate("() => window.__xss") is None
    assert opened.errors == []


SUMMARY_TAIL = ["Model", "Model age", "Data age", "Note"]  # the columns a sideways scroll used to hide


@pytest.mark.parametrize("width", [1280, 1440, 2000])
def test_the_summary_table_fits_common_widths(browser, report, width):
    opened = OpenedPage(browser, report[0], width)
    try:
        fit = opened.page.evaluate("""names => {
            const table = document.getElementById('summary-table'), wrap = table.parentElement, box = wrap.getBoundingClientRect();
            const headers = Array.from(table.tHead.rows[0].cells);
            return {wrap: [wrap.scrollWidth, wrap.clientWidth], table: [table.scrollWidth, table.clientWidth],
                    page: [document.documentElement.scrollWidth, window.innerWidth],
                    shown: names.map(n => { const h = headers.find(c => c.textContent === n), r = h.getBoundingClientRect();
                                            return r.width > 0 && r.left >= box.left - 0.5 && r.right <= box.right + 0.5; })};
        }""", SUMMARY_TAIL)
    finally:
        opened.close()
    assert fit["wrap"][0] <= fit["wrap"][1] and fit["table"][0] <= fit["table"][1]  # nothing to scroll sideways to
    assert fit["page"][0] <= fit["page"][1]
    assert fit["shown"] == [True] * len(SUMMARY_TAIL)


def test_a_chart_opens_on_its_forecast_and_shows_all_days_on_a_click(opened, report):
    page = opened.page
    code = report[1][0]
    page.locator(f'[id="chart-{code}"]').scroll_into_view_if_needed()
    page.wait_for_function("id => document.getElementById(id).data", arg=f"chart-{code}")

    def view():  # plotly's own reading of the x axis: the range drawn, and the categories (bars, then forecast days)
        return page.evaluate("id => { const x = document.getElementById(id)._fullLayout.xaxis; return [x.range, x._categories.length]; }",
                             f"chart-{code}")

    (start, end), categories = view()
    horizon = page.evaluate("id => document.getElementById(id).data.find(t => t.name.startsWith('forecast')).x.length - 1",
                            f"chart-{code}")
    last_bar = categories - 1 - horizon
    assert (end - (last_bar + 0.5)) / (end - start) >= 0.2  # the forecast's share of the width as drawn
    page.locator(f'[id="chart-{code}"] .updatemenu-button', has_text="All").click()
    page.wait_for_function("id => document.getElementById(id)._fullLayout.xaxis.range[0] < 0", arg=f"chart-{code}")
    (start, end), _ = view()
    assert start <= -0.5 and end >= categories - 1.5  # every bar and the forecast


def test_the_cdn_page_offline_says_why_it_has_no_charts(browser, report, tmp_path):
    from plotly.offline import get_plotlyjs_version

    home = report[0].parent.parent
    out = tmp_path / "small.html"
    write_report(home, report[1][:2], out, plotly="cdn")
    opened = OpenedPage(browser, out)  # every request but the page's own is refused: as if offline
    try:
        opened.page.evaluate("window.forecastReport.drawAll()")
        assert opened.requests == [out.as_uri(), f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"]
        assert opened.page.is_visible("#plotly-missing")
        assert [e for e in opened.errors if "Failed to load resource" not in e] == []  # no script error per chart
    finally:
        opened.close()
