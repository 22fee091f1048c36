"""Which colour means a rise on the page: one convention for every chart and every row.

China reads red as a rise and green as a fall; the US and Europe read the
opposite. Both on one page would make the same colour mean a rise in one row
and a fall in the next, so a page has one convention: the setting when there
is one (``--colors``, else forecast.toml's ``colors``), else the convention of
most of the page's tickers, China's on a tie (the market tushare serves). The
page says which, and why, in a legend line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from forecast.choices import ColorConvention
from forecast.data.tickers import parse_ticker
from forecast.errors import BadInputError, ForecastError

COLOR_CONVENTIONS = tuple(ColorConvention.values())  # cn: red up, green down (China's convention); us: green up, red down
TIE_CONVENTION = "cn"  # as many China tickers as others: China's, the home market of the data source
MEANING = {"cn": "red is a rise, green a fall (China's convention)",
           "us": "green is a rise, red a fall (the US convention)"}


def check_colors(colors: str | None) -> str | None:
    """Return ``colors`` ("cn", "us" or None for each ticker's own convention); BadInputError for anything else."""
    if colors is None or colors == "":
        return None
    text = str(colors).strip().lower()
    if text not in COLOR_CONVENTIONS:
        raise BadInputError(f"unknown colors {colors!r}; use one of {', '.join(COLOR_CONVENTIONS)}")
    return text


def colors_for(ticker: str, setting: str | None) -> str:
    """The ticker's colour convention: the setting when there is one, else cn for China tickers and us otherwise."""
    if setting:
        return setting
    try:
        return "cn" if parse_ticker(ticker).is_china else "us"
    except ForecastError:
        return "us"


@dataclass(frozen=True)
class PageColors:
    """The page's one colour convention and the sentence that tells the reader which it is and why."""

    convention: str  # cn | us
    legend: str


def page_colors(tickers: Iterable[str], setting: str | None) -> PageColors:
    """Return the page's convention: ``setting`` when given (already checked), else that of most of ``tickers``."""
    if setting:
        return PageColors(setting, f"Colours: {MEANING[setting]}, on every chart and row, as set by --colors or "
                                   "forecast.toml's colors.")
    own = [colors_for(t, None) for t in tickers]
    china = own.count("cn")
    convention = "cn" if china > len(own) - china else "us" if china < len(own) - china else TIE_CONVENTION
    tie = ", a tie, which goes to China's" if china * 2 == len(own) else ""
    other = next(c for c in COLOR_CONVENTIONS if c != convention)
    return PageColors(convention, f"Colours: {MEANING[convention]}, on every chart and row: {china} of the page's "
                                  f"{len(own)} tickers are China-listed{tie}. Set --colors {other} (or colors = \"{other}\" "
                                  "in forecast.toml) for the other convention.")
