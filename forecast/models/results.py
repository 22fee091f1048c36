"""Stored results that charts and reports read back: forecasts and backtests, as types.

``predict`` saves a ForecastResult and ``backtest`` a BacktestRecord under the
workspace; ``plot`` (and the coming HTML report) load them back with
``from_dict``, which checks the fields they use, so a damaged file gives a
one-line error instead of a KeyError halfway through a chart.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from forecast.atomic import atomic_write_text
from forecast.errors import CorruptFileError, ForecastError
from forecast.jsonio import dumps
from forecast.locks import hold_lock
from forecast.maths.intervals import band_columns, level_key
from forecast.workspace import Workspace

log = logging.getLogger(__name__)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


@dataclass
class ForecastPoint:
    date: str
    value: float
    intervals: dict[str, list[float]] = field(default_factory=dict)  # level key ("0.8") -> [lower, upper]


@dataclass
class ForecastResult:
    """One forecast of one ticker: the path after ``last_date`` with its intervals."""

    ticker: str
    model_id: str
    target: str
    last_date: str
    last_close: float
    last_value: float
    points: list[ForecastPoint]
    created_at: str
    model_summary: dict = field(default_factory=dict)  # kind, family, preset, arch, data_range, adjust, skill

    @property
    def family(self) -> str:
        """The catalogue name of the model (``default``, ``naive``...), as backtests name it."""
        summary = self.model_summary
        if summary.get("family"):
            return str(summary["family"])
        if summary.get("preset") == "baseline":  # saved before forecasts named their family
            return str(summary.get("arch") or self.model_id)
        if summary.get("preset") and summary.get("arch"):
            from forecast.models.train_config import network_name

            try:
                return network_name(str(summary["preset"]), str(summary["arch"]))
            except ForecastError:
                pass
        return self.model_id

    @property
    def adjust(self) -> str:
        return str(self.model_summary.get("adjust") or "qfq")

    @property
    def levels(self) -> list[str]:
        """Level keys present at every step, narrowest first."""
        common = set.intersection(*(set(p.intervals) for p in self.points)) if self.points else set()
        return sorted(common, key=float)

    def to_dict(self) -> dict:
        # by hand, not dataclasses.asdict: its deep recursion was a fifth of a 5,400-ticker predict --json
        return {"ticker": self.ticker, "model_id": self.model_id, "target": self.target, "last_date": self.last_date,
                "last_close": self.last_close, "last_value": self.last_value,
                "points": [{"date": p.date, "value": p.value, "intervals": {k: list(v) for k, v in p.intervals.items()}}
                           for p in self.points],
                "created_at": self.created_at, "model_summary": copy.deepcopy(self.model_summary)}

    def to_frame(self) -> pd.DataFrame:
        """One row per forecast day: ticker, date, predicted and the band columns, prices rounded to 4 decimals."""
        rows = []
        for p in self.points:
            row: dict[str, Any] = {"ticker": self.ticker, "date": p.date, "predicted": p.value}
            for level, (lo, hi) in p.intervals.items():
                lower, upper = band_columns(level)
                row[lower], row[upper] = lo, hi
            rows.append(row)
        return pd.DataFrame(rows).round(4)  # a forecast is not worth 13 decimals; 4 keeps sub-cent prices

    @classmethod
    def from_dict(cls, data: Any, where: str = "forecast") -> ForecastResult:
        try:
            points = [ForecastPoint(str(p["date"]), float(p["value"]),
                                    {level_key(k): [float(v[0]), float(v[1])] for k, v in p.get("intervals", {}).items()})
                      for p in data["points"]]
            return cls(
                ticker=str(data["ticker"]), model_id=str(data["model_id"]), target=str(data["target"]),
                last_date=str(data["last_date"]), last_close=float(data["last_close"]),
                last_value=float(data["last_value"]), points=points, created_at=str(data.get("created_at", "")),
                model_summary=copy.deepcopy(dict(data.get("model_summary") or {})),  # not shared with a cached batch
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CorruptFileError(f"{where} is damaged ({type(exc).__name__}: {exc}); run forecast predict again") from None


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
        return _finite(score.get("skill_vs_naive")) if isinstance(score, dict) else None

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


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise CorruptFileError(f"{what} {path} is unreadable ({type(exc).__name__})") from None


def save_forecast(home: Workspace | Path | str | None, result: ForecastResult) -> Path:
    """Store the forecast for ``plot`` (atomically) and return its path."""
    path = Workspace.at(home).forecast_file(result.ticker)
    atomic_write_text(path, dumps(result.to_dict()))
    return path


def save_forecast_batch(home: Workspace | Path | str | None, universe: str, results: list[ForecastResult]) -> Path:
    """Store a global model's forecasts of many tickers in one file, ``forecasts/@<universe>/latest.json``.

    One file, not one per ticker: 5,400 files cost this disk seconds to
    create. Tickers already in the batch and not in ``results`` keep their
    forecast (a later batch of a subset does not drop the rest); the batch's
    lock makes the read, merge and replace one step for concurrent predicts.
    """
    workspace = Workspace.at(home)
    path = workspace.forecast_batch_file(universe)
    with hold_lock(workspace.forecast_batch_lock(universe), workspace.lock_timeout_s,
                   f"the forecasts of {universe} are being written by another command; try again shortly"):
        try:
            entries = dict(_batch_entries(path))
        except CorruptFileError as exc:  # replaced by this batch; the tickers only in the old one need predicting again
            log.warning("%s; replacing it", exc)
            entries = {}
        entries.update({r.ticker: r.to_dict() for r in results})
        atomic_write_text(path, dumps({"universe": universe, "forecasts": entries}, indent=None))
    _BATCHES.pop(path, None)
    return path


_BATCHES: dict[Path, tuple[tuple[int, int, int], dict]] = {}  # path -> (inode, mtime_ns, size), entries: a report reads a batch once


def _batch_entries(path: Path) -> dict[str, Any]:
    """{ticker: stored forecast dict} of a batch file; CorruptFileError when it is no batch."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # every replace is a rename: a new inode
    cached = _BATCHES.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    remake = f"forecast predict --universe {path.parent.name.removeprefix('@')} --model global"
    try:
        data = _read_json(path, "stored forecasts")
    except CorruptFileError as exc:
        raise CorruptFileError(f"{exc}; make them again: {remake}") from None
    if not isinstance(data, dict) or not isinstance(data.get("forecasts"), dict):
        raise CorruptFileError(f"stored forecasts {path} are damaged (no forecasts); make them again: {remake}")
    _BATCHES[path] = (key, data["forecasts"])
    return data["forecasts"]


def load_forecast_batch(path: Path) -> dict[str, ForecastResult]:
    """Every forecast of a batch file, checked; CorruptFileError naming the file when one is damaged."""
    return {ticker: ForecastResult.from_dict(entry, f"stored forecast of {ticker} in {path}")
            for ticker, entry in _batch_entries(path).items()}


def load_forecast_file(path: Path) -> ForecastResult:
    """The forecast stored in a ticker's own file."""
    return ForecastResult.from_dict(_read_json(path, "stored forecast"), f"stored forecast {path}")


def forecast_time(result: ForecastResult) -> float:
    """When the forecast was made, in seconds since the epoch (UTC when it names no offset); 0 when unreadable."""
    try:
        made = datetime.fromisoformat(result.created_at)
    except ValueError:
        return 0.0
    return (made if made.tzinfo else made.replace(tzinfo=timezone.utc)).timestamp()


def stored_forecast(home: Workspace | Path | str | None, ticker: str) -> tuple[ForecastResult, Path] | None:
    """The ticker's newest stored forecast and the file holding it: its own file or a global model's batch.

    A damaged batch is passed over with a warning (doctor names it) unless
    nothing else holds a forecast of the ticker; then its error is raised.
    """
    workspace = Workspace.at(home)
    path = workspace.forecast_file(ticker)
    found = (load_forecast_file(path), path) if path.is_file() else None
    damaged: list[CorruptFileError] = []
    for batch in workspace.forecast_batch_files():
        try:
            entry = _batch_entries(batch).get(ticker)
        except CorruptFileError as exc:
            damaged.append(exc)
            continue
        if entry is not None:
            result = ForecastResult.from_dict(entry, f"stored forecast of {ticker} in {batch}")
            if found is None or forecast_time(result) > forecast_time(found[0]):  # a tie: the ticker's own file
                found = (result, batch)
    if found is None and damaged:
        raise damaged[0]  # nothing else holds a forecast of the ticker: the damage is the answer
    for problem in damaged:
        log.warning("%s", problem)
    return found


def forecast_tickers(home: Workspace | Path | str | None) -> list[str]:
    """Every ticker with a stored forecast, in its own file or in a batch, sorted."""
    workspace = Workspace.at(home)
    if not workspace.forecasts_dir.is_dir():
        return []
    found = set()
    for folder in workspace.forecasts_dir.iterdir():
        try:
            if not folder.name.startswith("@") and workspace.forecast_file(folder.name).is_file():
                found.add(folder.name)
        except ForecastError:  # a dot-name or a stray link: nobody's forecast
            continue
    for path in workspace.forecast_batch_files():
        try:
            found.update(_batch_entries(path))
        except CorruptFileError:
            continue  # doctor names it; the tickers in it have no readable forecast
    return sorted(found)


def load_forecast(home: Workspace | Path | str | None, ticker: str) -> ForecastResult | None:
    """The ticker's newest stored forecast (``stored_forecast``), or None."""
    found = stored_forecast(home, ticker)
    return found[0] if found else None


def save_backtest(home: Workspace | Path | str | None, record: BacktestRecord, forecasts: pd.DataFrame) -> tuple[Path, Path]:
    """Store ``backtests/<TICKER>/latest.json`` and the per-origin ``latest.csv`` (atomically)."""
    workspace = Workspace.at(home)
    json_path, csv_path = workspace.backtest_json(record.ticker), workspace.backtest_csv(record.ticker)
    atomic_write_text(csv_path, forecasts.to_csv(index=False))
    atomic_write_text(json_path, dumps(record.to_dict()))
    return json_path, csv_path


def load_backtest(home: Workspace | Path | str | None, ticker: str) -> BacktestRecord | None:
    path = Workspace.at(home).backtest_json(ticker)
    return BacktestRecord.from_dict(_read_json(path, "stored backtest"), f"stored backtest {path}") if path.is_file() else None


BACKTEST_CSV_COLUMNS = ("model", "origin_date", "step", "actual", "predicted")
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
