"""The page itself: Jinja2 templates (autoescape on) around the report's context, plotly.js loaded once.

Every value from data (a company name, an error message, a model id) reaches
the page through Jinja2's autoescape, or through its ``tojson`` filter inside a
``<script type="application/json">`` block, which escapes ``<``, ``>`` and
``&``: a name holding ``<script>`` shows as text and never runs.

Charts are drawn lazily: each figure's JSON sits in the page and a small inline
script draws it when it scrolls into view (or before printing). Drawing 300
plotly charts at load would take Chromium many seconds; drawing the visible
ones keeps the page quick to open at any size.

plotly.js comes one of two ways (``PlotlySource``). Inlined, the default, the
page fetches nothing: it holds plotly.js, its figures, its style and its script,
and opens offline from an attachment, at 4.8 MB of plotly.js. From the CDN,
the page is about 15 kB per ticker and fetches one file when opened: the
plotly.min.js of exactly the version the installed plotly package bundles,
pinned by its sha384 (computed from the bundled file, the same bytes) so the
browser runs nothing else; the page's policy allows that one origin only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from forecast.choices import PlotlySource
from forecast.errors import MissingExtraError
from forecast.formatting import MISSING, format_number, format_percent
from forecast.maths.intervals import level_label
from forecast.outputs.report.context import ReportContext
from forecast.outputs.report.figures import cumulative_ic_figure, portfolio_figure, ticker_figure
from forecast.outputs.report.summary import SUMMARY_HEADERS, summary_cells
from forecast.outputs.report.ticker import TickerReport
from forecast.outputs.report.verdicts import SIGNIFICANCE

REPORT_EXTRA_HINT = ("the HTML report needs {package}, which is not installed: pip install 'forecast[report]' "
                     "(from a checkout: .venv/bin/pip install -e '.[report]')")
RANKING_SHOWN = 10  # the best and the worst this many; the summary table sorts all of them


@functools.lru_cache(maxsize=1)
def environment():
    """The Jinja2 environment: templates from this package, autoescape on, undefined names an error."""
    try:
        import jinja2
    except ImportError:
        raise MissingExtraError(REPORT_EXTRA_HINT.format(package="jinja2")) from None

    env = jinja2.Environment(loader=jinja2.PackageLoader("forecast.outputs.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    # tojson: compact, key order kept, and NaN refused (the figures carry null instead): strict JSON for JSON.parse
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "separators": (",", ":"), "allow_nan": False}
    env.filters["pct"] = format_percent
    env.filters["num"] = format_number
    return env


@functools.lru_cache(maxsize=1)
def plotly_js():
    """plotly.min.js from the installed plotly package, as markup to inline once (plotly's own to_html inlines it the same way)."""
    from markupsafe import Markup

    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise MissingExtraError(REPORT_EXTRA_HINT.format(package="plotly")) from None

    return Markup(get_plotlyjs())


CDN_ORIGIN = "https://cdn.plot.ly"  # plotly's own CDN, where every plotly.js release is published as plotly-<version>.min.js


@dataclass(frozen=True)
class PlotlyScript:
    """A ``<script src>`` of plotly.js on its CDN: its address, its version and its Subresource Integrity hash."""

    url: str
    version: str
    integrity: str  # sha384-<base64>: the browser refuses a file with other bytes


@functools.lru_cache(maxsize=1)
def plotly_cdn() -> PlotlyScript:
    """The CDN copy of the plotly.js that the installed plotly package bundles, with the hash of the bundled bytes."""
    import base64
    import hashlib

    try:
        from plotly.offline import get_plotlyjs, get_plotlyjs_version
    except ImportError:
        raise MissingExtraError(REPORT_EXTRA_HINT.format(package="plotly")) from None

    version = get_plotlyjs_version()
    digest = hashlib.sha384(get_plotlyjs().encode("utf-8")).digest()
    return PlotlyScript(f"{CDN_ORIGIN}/plotly-{version}.min.js", version, "sha384-" + base64.b64encode(digest).decode("ascii"))


def _asset(name: str):
    """A static file of the templates folder (the page's style and script), inlined as it is."""
    from markupsafe import Markup

    env = environment()
    source, _, _ = env.loader.get_source(env, name)
    return Markup(source)


@dataclass(frozen=True)
class BacktestRow:
    model: str
    is_forecast_model: bool
    cells: list[str]


def backtest_table(t: TickerReport) -> tuple[list[str], list[BacktestRow]]:
    """The backtest panel: per model, step-1 RMSE, skill at step 1 and H, DM p-value, and each level's coverage at step 1."""
    record = t.backtest
    if record is None or t.forecast is None:
        return [], []
    levels = sorted({lv for s in record.models.values() if isinstance(s, dict) for lv in (s.get("coverage") or {})}, key=float)
    headers = ["Model", "RMSE (step 1)", "Skill step 1", f"Skill step {record.horizon}", "DM p",
               *(f"Coverage {level_label(lv)}" for lv in levels)]
    rows = []
    for name, score in record.models.items():
        if not isinstance(score, dict):
            continue
        by_step = score.get("by_step") or []
        last = by_step[-1] if by_step and isinstance(by_step[-1], dict) else {}
        p_value = score.get("dm_p_value")
        rows.append(BacktestRow(name, name == t.forecast.family, [
            format_number(score.get("rmse")), format_percent(score.get("skill_vs_naive"), sign=True),
            format_percent(last.get("skill_vs_naive"), sign=True),
            MISSING if name == "naive" else format_number(p_value, 3),
            *(format_percent((score.get("coverage") or {}).get(lv)) for lv in levels)]))
    return headers, rows


def render_page(context: ReportContext, plotly: PlotlySource | str = PlotlySource.INLINE) -> str:
    """Return the whole page as one HTML string, with plotly.js inlined or loaded from its CDN (``plotly``)."""
    source = PlotlySource.parse(plotly, "plotly source")
    charts = {t.ticker: ticker_figure(t) for t in context.forecasts}
    ranked = list(enumerate(context.ranking, 1)) if context.universe else []
    shown = ranked if len(ranked) <= 2 * RANKING_SHOWN else ranked[:RANKING_SHOWN] + ranked[-RANKING_SHOWN:]
    template = environment().get_template("page.html.j2")
    return template.render(
        ctx=context, headers=SUMMARY_HEADERS, rows=[(t, summary_cells(t, context.today)) for t in context.tickers],
        charts=charts, backtests={t.ticker: backtest_table(t) for t in context.forecasts},
        ranking=shown, ranking_total=len(ranked), ranking_cut=len(shown) < len(ranked),
        ic_figure=cumulative_ic_figure(context.cumulative_ic) if context.cumulative_ic is not None and len(context.cumulative_ic.columns) else None,
        cross_models=(context.cross_section or {}).get("models") or {}, ranked_by=context.ranked_by,
        cross_intervals=(context.cross_section or {}).get("intervals") or {},
        portfolio=context.portfolio,
        portfolio_figure=portfolio_figure(context.portfolio_daily) if context.portfolio_daily is not None and len(context.portfolio_daily) else None,
        counts=context.verdict_counts(), significance=SIGNIFICANCE,
        plotly_js=plotly_js() if source == PlotlySource.INLINE else None,
        plotly_cdn=plotly_cdn() if source == PlotlySource.CDN else None, cdn_origin=CDN_ORIGIN,
        style=_asset("report.css"), script=_asset("report.js"),
    )
