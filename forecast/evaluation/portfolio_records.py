"""What is stored of a universe's portfolio backtest, and how it is read back (the one owner of its format).

``backtests/@<universe>/portfolio.json``: the run (schedule, test range,
strategy, costs, notes) and, per model, its metrics and the trades it could
not make. ``portfolio.csv``: one row per day, per model its NAV and drawdown,
beside the universe's equal-weight benchmark and the index when one was
stored. ``portfolio-positions.csv``: every model's holdings at each close.
All three are written atomically; the report and ``plot --kind portfolio``
read them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from forecast.atomic import atomic_write_text
from forecast.errors import CorruptFileError
from forecast.jsonio import dumps
from forecast.workspace import Workspace

NAV = "nav"
DRAWDOWN = "drawdown"
BENCHMARK = "benchmark"
INDEX = "index"


def column(model: str, what: str) -> str:
    """The daily CSV's column of one model's series: ``<model>_nav``, ``<model>_drawdown``."""
    return f"{model}_{what}"


def daily_frame(results: Mapping[str, Any]) -> pd.DataFrame:
    """The models' daily NAV and drawdown side by side, with the benchmark (and index) of the first, on one date index."""
    parts: dict[str, pd.Series] = {}
    for model, result in results.items():
        daily = result.daily_frame()
        parts[column(model, NAV)] = daily["nav"]
        parts[column(model, DRAWDOWN)] = daily["drawdown"]
        parts.setdefault(BENCHMARK, daily["benchmark"])
        if "index" in daily and daily["index"].notna().any():
            parts.setdefault(INDEX, daily["index"])
    return pd.DataFrame(parts).rename_axis("date")


def positions_frame(results: Mapping[str, Any]) -> pd.DataFrame:
    """Every model's holdings at each close, one row per (model, date, ticker)."""
    frames = [result.positions.assign(model=model) for model, result in results.items() if len(result.positions)]
    if not frames:
        return pd.DataFrame(columns=["model", "date", "ticker", "shares", "close", "value", "weight"])
    joined = pd.concat(frames, ignore_index=True)
    return joined[["model", *[c for c in joined.columns if c != "model"]]]


def save_portfolio(home: Workspace | Path | str | None, universe: str, run: dict, results: Mapping[str, Any]) -> tuple[Path, Path, Path]:
    """Store the portfolio backtest of ``universe``: ``run`` (what was traded, how) and each model's result."""
    workspace = Workspace.at(home)
    record = {"universe": universe, **run, "models": {model: result.to_dict() for model, result in results.items()}}
    paths = workspace.portfolio_json(universe), workspace.portfolio_csv(universe), workspace.portfolio_positions_csv(universe)
    atomic_write_text(paths[1], daily_frame(results).to_csv())
    atomic_write_text(paths[2], positions_frame(results).to_csv(index=False))
    atomic_write_text(paths[0], dumps(record))  # last: a record is only there when its CSVs are
    return paths


def load_portfolio(home: Workspace | Path | str | None, universe: str) -> tuple[dict, pd.DataFrame] | None:
    """The stored portfolio backtest of ``universe`` (its record, its daily frame); None when there is none.

    A damaged file is a CorruptFileError naming it and the command that rebuilds it.
    """
    workspace = Workspace.at(home)
    json_path, csv_path = workspace.portfolio_json(universe), workspace.portfolio_csv(universe)
    if not json_path.is_file():
        return None
    again = f"run again: forecast backtest --universe {universe} --portfolio"
    try:
        record = json.loads(json_path.read_text(encoding="utf-8"))
        daily = pd.read_csv(csv_path, index_col="date", parse_dates=["date"])
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"stored portfolio backtest {json_path.parent} cannot be read ({type(exc).__name__}); {again}") from None
    if not isinstance(record, dict) or not isinstance(record.get("models"), dict) or BENCHMARK not in daily:
        raise CorruptFileError(f"stored portfolio backtest {json_path} is not one this version wrote; {again}")
    return record, daily


def nav_columns(daily: pd.DataFrame) -> pd.DataFrame:
    """One column per model of the daily frame: its NAV."""
    suffix = f"_{NAV}"
    return daily[[c for c in daily.columns if c.endswith(suffix)]].rename(columns=lambda c: c[: -len(suffix)])


def drawdown_columns(daily: pd.DataFrame) -> pd.DataFrame:
    """One column per model of the daily frame: its drawdown from the running peak."""
    suffix = f"_{DRAWDOWN}"
    return daily[[c for c in daily.columns if c.endswith(suffix)]].rename(columns=lambda c: c[: -len(suffix)])
