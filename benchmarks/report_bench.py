"""The daily report's bars: page size for 1, 30 and 300 tickers, generation time for 30, open time in Chromium.

Builds a synthetic home (tests/synthetic_market.py) with a drift forecast per
ticker and a backtest for every tenth, then times ``write_report`` (reading the
stored results and rendering; no forecasting) and the page's load in headless
Chromium (navigation to the load event, plus drawing the charts in view).

    .venv/bin/python benchmarks/report_bench.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from report_home import build_home  # noqa: E402

from forecast.outputs.report import write_report  # noqa: E402

GENERATION_BAR_S = 5.0
OPEN_BAR_S = 3.0


VISIBLE_DRAWN = """() => Array.from(document.querySelectorAll('.chart')).filter(c => {
    const r = c.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0; }).every(c => c.data)"""


def open_seconds(path: Path, chromium: str, repeats: int = 3) -> tuple[float, float]:
    """Median seconds (open, draw): navigation to the load event with the charts in view drawn; then one more chart scrolled to.

    Charts below the fold are drawn as they scroll into view, so "open" is the
    page a reader sees; "draw" is what scrolling to a chart costs.
    """
    from playwright.sync_api import sync_playwright

    opens, draws = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            started = time.perf_counter()
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function(VISIBLE_DRAWN)
            opens.append(time.perf_counter() - started)
            last = page.locator(".chart").last
            started = time.perf_counter()
            last.scroll_into_view_if_needed()
            last.evaluate("el => new Promise(done => { const t = setInterval(() => { if (el.data) { clearInterval(t); done(); } }, 5); })")
            draws.append(time.perf_counter() - started)
            page.close()
        browser.close()
    return statistics.median(opens), statistics.median(draws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium"), help="Chromium binary (default: chromium on PATH)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 30, 300], help="tickers per page")
    parser.add_argument("--days", type=int, default=250, help="stored trading days per ticker")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="report-bench-"))
    try:
        for n in args.sizes:
            home = root / f"home-{n}"
            t0 = time.perf_counter()
            codes = build_home(home, n, n_days=args.days, backtested=max(1, n // 10))
            built = time.perf_counter() - t0
            runs = [write_report(home, codes, home / "report.html") for _ in range(3)]
            info = runs[-1]
            generation = statistics.median(r.seconds for r in runs)
            line = (f"{n:>4} tickers: {info.bytes / 1e6:6.2f} MB, generated in {generation:5.2f} s (median of 3; "
                    f"the home took {built:.1f} s to build)")
            if n == 30:
                line += f"  [bar <= {GENERATION_BAR_S:.0f} s: {'ok' if generation <= GENERATION_BAR_S else 'MISSED'}]"
            if args.chromium:
                opened, drawn = open_seconds(info.path, args.chromium)
                line += (f"; opens in Chromium in {opened:.2f} s  [bar <= {OPEN_BAR_S:.0f} s: {'ok' if opened <= OPEN_BAR_S else 'MISSED'}]"
                         f", a chart scrolled to draws in {drawn:.2f} s")
            print(line, flush=True)
        if not args.chromium:
            print("no chromium: open times not measured (apt-get install chromium)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
