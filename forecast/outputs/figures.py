"""Figure plumbing for ``forecast.outputs.charts``: the Agg backend, the size, a CJK font when one is installed, titles, atomic saves.

Company names are Chinese (贵州茅台). Matplotlib's default font, DejaVu Sans,
has no CJK glyphs: it draws empty boxes and warns once per missing glyph. So
a name goes into a title only when ``cjk_font`` finds an installed font that
has them (Noto Sans CJK, WenQuanYi, ...); without one the title shows the code
alone, and that is logged once at debug level. Either way no glyph warning
reaches the output.
"""

from __future__ import annotations

import io
import logging
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from forecast.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

WIDTH_PX, HEIGHT_PX, DPI = 1200, 700, 100
_CJK_FONT_HINTS = ("Noto Sans CJK", "Noto Serif CJK", "Source Han Sans", "WenQuanYi", "SimHei", "Microsoft YaHei",
                   "PingFang", "Hiragino Sans GB", "AR PL", "Droid Sans Fallback")


def pyplot():
    """Return matplotlib.pyplot on the Agg backend (no display, safe under cron)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    return plt


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """Return the name of an installed font that has Chinese glyphs, if any."""
    from matplotlib import font_manager

    for font in font_manager.fontManager.ttflist:
        if any(hint.lower() in font.name.lower() for hint in _CJK_FONT_HINTS):
            return font.name
    return None


@lru_cache(maxsize=1)
def _say_names_need_a_cjk_font() -> None:
    log.debug("no CJK font installed (fc-list :lang=zh finds none); chart titles show codes without company names")


def display_name(ticker: str, name: str | None = None) -> str:
    """Return "贵州茅台 600519.SH" when ``name`` is known and can be drawn, else the code alone.

    A name in Latin letters needs no CJK font; a Chinese one does.
    """
    if not name:
        return ticker
    if not name.isascii() and cjk_font() is None:
        _say_names_need_a_cjk_font()
        return ticker
    return f"{name} {ticker}"


def new_figure(rows: int = 2, ratios=(3, 1)):
    """Return (figure, [axes]) at WIDTH_PX x HEIGHT_PX, ``rows`` panels sharing the x axis, the CJK font first when there is one."""
    plt = pyplot()
    font = cjk_font()
    if font and plt.rcParams["font.family"][:1] != [font]:  # once: rcParams outlive the figure
        # A family list, not a name prepended to font.sans-serif: matplotlib falls back glyph by glyph only along
        # font.family, so a symbol the CJK font lacks comes from DejaVu Sans instead of drawing a box.
        plt.rcParams["font.family"] = [font, *(f for f in plt.rcParams["font.family"] if f != font)]
        plt.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack U+2212; a hyphen keeps numbers in one font
    fig, axes = plt.subplots(rows, 1, figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, sharex=rows > 1,
                             gridspec_kw={"height_ratios": ratios[:rows]} if rows > 1 else None, squeeze=False)
    return fig, list(axes[:, 0])


def trading_day_ticks(ax, dates: list[str], max_ticks: int = 10) -> None:
    """Label integer x positions with their dates: trading days, no calendar gaps."""
    step = max(1, int(np.ceil(len(dates) / max_ticks)))
    positions = list(range(0, len(dates), step))
    if positions and len(dates) - 1 - positions[-1] >= step / 2:
        positions.append(len(dates) - 1)  # always name the last day (the forecast's end)
    elif positions:
        positions[-1] = len(dates) - 1
    ax.set_xticks(positions)
    ax.set_xticklabels([dates[i] for i in positions], rotation=30, ha="right")


def percent_formatter(decimals: int = 0):
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=decimals)


def save_figure(fig, path: Path) -> Path:
    """Render to memory, then write atomically (png or svg by suffix)."""
    buffer = io.BytesIO()
    fmt = path.suffix.lstrip(".").lower() or "png"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Gg]lyph.*missing.*")  # a symbol the chosen font lacks: a box, not noise
        fig.savefig(buffer, format=fmt, dpi=DPI)
    pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
