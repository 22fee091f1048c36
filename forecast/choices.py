"""Every closed set of names, defined once: the CLI offers them, the library validates against them.

Standard library only, so ``forecast --help`` can import it for free. Each
member's value is what users type and what artefacts store.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from forecast.errors import BadInputError

E = TypeVar("E", bound="Choice")


class Choice(str, Enum):
    """A ``str`` Enum whose ``str()`` is its value (Python 3.10's and 3.11's differ otherwise)."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def parse(cls: type[E], value: object, what: str | None = None) -> E:
        """Return the member named by ``value``, or raise BadInputError listing the choices."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).strip().lower() if isinstance(value, str) else value)
        except ValueError:
            label = what or cls.__name__.lower()
            raise BadInputError(f"unknown {label} {value!r}; use one of {', '.join(cls.values())}") from None

    @classmethod
    def values(cls) -> list[str]:
        return [m.value for m in cls]


# Defaults the CLI shows in --help and the library uses, kept here because this module is cheap to import.
DEFAULT_BACKTEST_MODELS = ("default", "naive", "drift", "ma", "linear")
MIN_HISTORY_BARS = 30  # the fewest bars any model is fit on: a baseline at predict time, a rolling window
DEFAULT_REFIT_EVERY = 20  # a per-ticker backtest refits its models every this many origins
# The universe-wide model's one name, spelled here only: ``--model global``, ``--preset global``, the folder
# ``models/global/``, a universe card's and a forecast's ``kind``, the cross-sectional backtest's column.
UNIVERSE_MODEL = "global"
DEFAULT_PORTFOLIO_MODELS = (UNIVERSE_MODEL, "momentum", "reversal", "linear")  # backtest --portfolio: models that rank a universe


class Arch(Choice):
    LSTM = "lstm"
    GRU = "gru"
    RNN = "rnn"


class Preset(Choice):
    DEFAULT = "default"
    TUTORIAL = "tutorial"


class TrainPreset(Choice):
    """What ``train --preset`` accepts: the per-ticker presets, and ``global``, one network for a universe."""

    DEFAULT = "default"
    TUTORIAL = "tutorial"
    GLOBAL = UNIVERSE_MODEL


class ColorConvention(Choice):
    """Which colour means up in charts and the report: cn (red up, green down) or us (green up, red down)."""

    CN = "cn"
    US = "us"


class PlotlySource(Choice):
    """Where the report's page gets plotly.js: inlined (the page opens offline, 4.8 MB bigger) or from plotly's CDN."""

    INLINE = "inline"
    CDN = "cdn"


class ExecutorKind(Choice):
    """Where ``--executor`` runs the per-ticker jobs: this machine, or a Ray cluster."""

    LOCAL = "local"
    RAY = "ray"


class BackfillPlan(Choice):
    """How ``fetch --universe`` backfills new tickers: the cheaper way, whole-market days, or ticker by ticker."""

    AUTO = "auto"
    BY_DATE = "by-date"
    BY_TICKER = "by-ticker"


class Source(Choice):
    TUSHARE = "tushare"
    CSV = "csv"
    SAMPLE = "sample"


class Adjust(Choice):
    QFQ = "qfq"
    HFQ = "hfq"
    NONE = "none"


class PriceBasis(Choice):
    """How stored prices are expressed: raw with factors, or already adjusted."""

    RAW = "raw"
    QFQ = "qfq"
    HFQ = "hfq"
    NONE = "none"


class TargetTransform(Choice):
    LOG_RETURN = "log-return"
    LEVEL = "level"


class TargetColumn(Choice):
    CLOSE = "close"
    OPEN = "open"


class ScalerKind(Choice):
    STANDARD = "standard"
    MINMAX = "minmax"


class ModelKind(Choice):
    """What produced a forecast: a registered network, a baseline fit on the spot, or the universe (global) model."""

    NETWORK = "network"
    BASELINE = "baseline"
    GLOBAL = UNIVERSE_MODEL


class ChartKind(Choice):
    FORECAST = "forecast"
    BACKTEST = "backtest"
    HISTORY = "history"
    TRAINING = "training"
    CALIBRATION = "calibration"  # nominal vs observed interval coverage per step, from the stored backtest
    PORTFOLIO = "portfolio"  # a universe's portfolio backtest: NAV against the benchmark, drawdown (plot --universe NAME)


class Progress(Choice):
    """How long work reports itself: a rewritten line on a terminal, one line per step, or nothing."""

    TTY = "tty"
    LINES = "lines"
    NONE = "none"


ADJUST_WORDS = {"none": "as imported", "qfq": "adjusted to the latest price", "hfq": "adjusted from the first price"}


def adjust_words(adjust: str | None) -> str:
    """The price basis in words a user of any market knows (``none`` is how the file or source gave them)."""
    return ADJUST_WORDS.get(str(adjust), str(adjust))
