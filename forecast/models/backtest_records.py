"""Stored backtests that charts, reports and doctor read back, as types: per ticker and cross-sectional.

``backtest`` saves a BacktestRecord (``backtests/<T>/latest.json``) with its
per-origin CSV (each band's columns, fixed and ``adaptive_`` recalibrated online,
spelled by ``maths.intervals.band_columns`` and ``adaptive_band_columns``), and
``backtest --universe`` a CrossBacktestRecord (``backtests/@<universe>/latest.json``) with its daily CSV, whose column names
(``<model><suffix>``) are spelled here only. ``from_dict`` checks the fields
readers use, so a damaged file gives a one-line error instead of a KeyError.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from forecast.atomic import atomic_write_text
from forecast.errors import CorruptFileError
from forecast.jsonio import dumps, finite
from forecast.maths.cross_section import CrossSectionReport
from forecast.maths.intervals import band_columns
from forecast.models.results import finite_float, read_stored_json
from forecast.workspace import Workspace


@dataclass
class BacktestRecord:
    """The scores of a stored walk-forward backtest (``backtests/<T>/latest.json``)."""

    ticker: str
    target: str
    horizon: int
    settings: dict
    first_origin: str
    last_origin: str
    origins: int
    models: dict[str, dict]  # name -> step-1 scores plus "by_step"
    timing: dict = field(default_factory=dict)

    def skill(self, family: str) -> float | None:
        """Step-1 skill against naive of the model named ``family`` in this backtest, if it was run."""
        score = self.models.get(family)
        return finite_float(score.get("skill_vs_naive")) if isinstance(score, dict) else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "backtest") -> BacktestRecord:
        try:
            models = data["models"]
            if not isinstance(models, dict):
                raise TypeError("models is not an object")
            return cls(str(data["ticker"]), str(data["target"]), int(data["horizon"]), dict(data.get("settings") or {}),
                       str(data["first_origin"]), str(data["last_origin"]), int(data["origins"]), models,
                       dict(data.get("timing") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{where} is damaged ({type(exc).__name__}: {exc}); run forecast backtest again") from None


def save_backtest(home: Workspace | Path | str | None, record: BacktestRecord, forecasts: pd.DataFrame) -> tuple[Path, Path]:
    """Store ``backtests/<TICKER>/latest.json`` and the per-origin ``latest.csv`` (atomically)."""
    workspace = Workspace.at(home)
    json_path, csv_path = workspace.backtest_json(record.ticker), workspace.backtest_csv(record.ticker)
    atomic_write_text(csv_path, forecasts.to_csv(index=False))
    atomic_write_text(json_path, dumps(record.to_dict()))
    return json_path, csv_path


def load_backtest(home: Workspace | Path | str | None, ticker: str) -> BacktestRecord | None:
    path = Workspace.at(home).backtest_json(ticker)
    return BacktestRecord.from_dict(read_stored_json(path, "stored backtest"), f"stored backtest {path}") if path.is_file() else None


BACKTEST_CSV_COLUMNS = ("model", "origin_date", "step", "actual", "predicted")
ADAPTIVE_PREFIX = "adaptive_"  # before a fixed band's columns (maths.intervals.band_columns): the same band recalibrated online


def adaptive_band_columns(level: float | str) -> tuple[str, str]:
    """Return the CSV column names of a level's recalibrated band: ("adaptive_lower_80", "adaptive_upper_80").
    A CSV written before the backtest recalibrated its bands has none."""
    lower, upper = band_columns(level)
    return ADAPTIVE_PREFIX + lower, ADAPTIVE_PREFIX + upper


_BACKTEST_CSV_NUMBERS = ("step", "actual", "predicted")


def load_backtest_forecasts(home: Workspace | Path | str | None, ticker: str) -> pd.DataFrame | None:
    path = Workspace.at(home).backtest_csv(ticker)
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise CorruptFileError(f"stored backtest {path} is unreadable ({type(exc).__name__}); run forecast backtest again") from None
    missing = [c for c in BACKTEST_CSV_COLUMNS if c not in frame.columns]
    if missing:  # a damaged or foreign file: say which columns, not a KeyError in the chart
        raise CorruptFileError(f"stored backtest {path} lacks column(s) {', '.join(missing)}; run forecast backtest again")
    for column in _BACKTEST_CSV_NUMBERS:
        try:
            frame[column] = pd.to_numeric(frame[column])
        except (ValueError, TypeError):
            raise CorruptFileError(f"stored backtest {path}: column {column} holds text; run forecast backtest again") from None
    frame["model"] = frame["model"].astype(str)
    return frame


# The cross-sectional backtest's daily columns: ``<model><suffix>``, in its CSV and its chart; spelled here only.
RANK_IC_COLUMN, CUMULATIVE_RANK_IC_COLUMN, SPREAD_COLUMN = "_rank_ic", "_cumulative_rank_ic", "_spread"


def cross_column(model: str, suffix: str) -> str:
    """The daily column of ``model``: ``cross_column(UNIVERSE_MODEL, CUMULATIVE_RANK_IC_COLUMN)`` is ``global_cumulative_rank_ic``."""
    return f"{model}{suffix}"


def cross_columns(daily: pd.DataFrame, suffix: str) -> pd.DataFrame:
    """The columns of ``daily`` that end in ``suffix`` (not in a longer suffix that ends so), each named by its model."""
    longer = [s for s in (RANK_IC_COLUMN, CUMULATIVE_RANK_IC_COLUMN, SPREAD_COLUMN) if len(s) > len(suffix) and s.endswith(suffix)]
    picked = daily[[c for c in daily.columns if str(c).endswith(suffix) and not any(str(c).endswith(s) for s in longer)]]
    return picked.rename(columns=lambda c: str(c)[: -len(suffix)])


@dataclass(frozen=True)
class CrossBacktestRecord:
    """A stored cross-sectional backtest (``backtests/@<universe>/latest.json``): its schedule and each model's scores."""

    universe: str
    schedule: str
    test_range: tuple[str, str]
    report: CrossSectionReport  # horizon, quantiles, min_tickers and every model's IC, Rank IC, t, spread...
    price_skill: dict[str, dict] = field(default_factory=dict)  # learned model -> per-ticker skill against naive
    refits: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    intervals: dict[str, dict] = field(default_factory=dict)  # model -> its bands' coverage and scores (evaluation/universe_bands.py)

    @property
    def models(self) -> dict[str, dict]:
        """Each model's scores, as stored (what the report's table reads)."""
        return {name: m.to_dict() for name, m in self.report.models.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"universe": self.universe, "schedule": self.schedule, "test_range": list(self.test_range),
                **self.report.to_dict(), "price_skill": finite(self.price_skill), "refits": self.refits, "notes": self.notes,
                "intervals": finite(self.intervals)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "cross-sectional backtest") -> CrossBacktestRecord:
        """The record, or CorruptFileError naming the file; files written before it held ``universe`` read it as ""."""
        try:
            if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
                raise TypeError("models is not an object")
            first, last = data.get("test_range") or ("", "")
            return cls(str(data.get("universe") or ""), str(data.get("schedule") or ""), (str(first), str(last)),
                       CrossSectionReport.from_dict(data), dict(data.get("price_skill") or {}),
                       list(data.get("refits") or []), list(data.get("notes") or []), dict(data.get("intervals") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            universe = data.get("universe") if isinstance(data, dict) else None
            raise CorruptFileError(f"{where} is damaged ({type(exc).__name__}: {exc}); run forecast backtest --universe "
                                   f"{universe or 'NAME'} again") from None


def save_cross_backtest(home: Workspace | Path | str | None, record: CrossBacktestRecord, daily: pd.DataFrame) -> tuple[Path, Path]:
    """Store ``backtests/@<universe>/latest.json`` and its daily ``latest.csv`` (atomically)."""
    workspace = Workspace.at(home)
    json_path, csv_path = workspace.cross_backtest_json(record.universe), workspace.cross_backtest_csv(record.universe)
    atomic_write_text(json_path, dumps(record.to_dict()))
    atomic_write_text(csv_path, daily.to_csv())
    return json_path, csv_path


def load_cross_backtest(home: Workspace | Path | str | None, universe: str) -> CrossBacktestRecord | None:
    """The universe's stored cross-sectional backtest, None when there is none; CorruptFileError when it is damaged."""
    path = Workspace.at(home).cross_backtest_json(universe)
    if not path.is_file():
        return None
    return CrossBacktestRecord.from_dict(read_stored_json(path, "stored backtest"), f"stored backtest {path}")


def load_cross_curves(home: Workspace | Path | str | None, universe: str, suffix: str = CUMULATIVE_RANK_IC_COLUMN) -> pd.DataFrame | None:
    """One column per model of the stored daily CSV (by default the cumulative Rank IC), None when absent or unreadable."""
    path = Workspace.at(home).cross_backtest_csv(universe)
    if not path.is_file():
        return None
    try:
        return cross_columns(pd.read_csv(path, index_col="date"), suffix)
    except (OSError, ValueError, KeyError):
        return None
