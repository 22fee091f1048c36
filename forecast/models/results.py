"""Stored forecasts that charts and reports read back, as types: ForecastPoint, ModelSummary, ForecastResult.

``predict`` saves a ForecastResult under the workspace (a ticker's own file,
or a global model's batch of many tickers) and ``plot``, ``rank`` and the HTML
report load it back with ``from_dict``, which checks the fields they use, so a
damaged file gives a one-line error instead of a KeyError halfway through a
chart. Stored backtests are ``backtest_records``'.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass, field
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


def finite_float(value: Any) -> float | None:
    """A stored number as a float; None when it is missing, not a number, a bool or not finite."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


@dataclass
class ForecastPoint:
    date: str
    value: float
    intervals: dict[str, list[float]] = field(default_factory=dict)  # level key ("0.8") -> [lower, upper]


@dataclass(frozen=True)
class ModelSummary:
    """What a forecast says of the model that made it: ``model_summary`` in its JSON, typed.

    ``kind`` is a ``ModelKind`` value (network, baseline, global); the rest is
    set where it applies and left out of the JSON when not, so files written
    before this type (and readers older than it) read the same keys.
    """

    kind: str = ""
    family: str = ""  # the catalogue name, as backtests name it: default, naive, global
    preset: str | None = None
    arch: str | None = None
    data_range: tuple[str, str] | None = None  # the first and last bar the model was trained (or fit) on
    adjust: str | None = None  # the price basis of the bars it forecast from
    validation_skill_vs_naive: float | None = None  # a network's held-out skill
    universe: str | None = None  # a global model's universe
    trained_on_ticker: bool | None = None  # whether a global model saw this ticker in training
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept on a round trip

    _FIELDS = ("kind", "family", "preset", "arch", "data_range", "adjust", "validation_skill_vs_naive", "universe",
               "trained_on_ticker")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self._FIELDS:
            value = getattr(self, key)
            if value is not None and value != "":
                out[key] = list(value) if key == "data_range" else value
        return {**out, **copy.deepcopy(self.extra)}

    @classmethod
    def from_dict(cls, data: Any) -> ModelSummary:
        """The summary of a stored forecast, old or new; fields of the wrong type read as unknown (None)."""
        if isinstance(data, ModelSummary):
            return data
        if not isinstance(data, dict):
            return cls()

        def text(key: str) -> str | None:
            value = data.get(key)
            return str(value) if isinstance(value, str) else None

        rng = data.get("data_range")
        trained = data.get("trained_on_ticker")
        return cls(kind=text("kind") or "", family=text("family") or "", preset=text("preset"), arch=text("arch"),
                   data_range=(str(rng[0]), str(rng[1])) if isinstance(rng, (list, tuple)) and len(rng) == 2 else None,
                   adjust=text("adjust"), validation_skill_vs_naive=finite_float(data.get("validation_skill_vs_naive")),
                   universe=text("universe"), trained_on_ticker=trained if isinstance(trained, bool) else None,
                   extra={k: copy.deepcopy(v) for k, v in data.items() if k not in cls._FIELDS})


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
    # a plain dict (the pooled model builds one) becomes a ModelSummary here: read it as ``summary``
    model_summary: ModelSummary | dict[str, Any] = field(default_factory=ModelSummary)
    # a China ticker's band cut at its price limits: {"rate", "st", "point_cut", "cut": {level: per step}} (workflow/price_limits)
    price_limits: dict[str, Any] | None = None
    # made by the model in use for its ticker (pinned, its own latest, else the universe model): what plot, the
    # report and run show. False: another model's (predict --model, rank), kept apart. Files older than it: True.
    of_record: bool = True
    # today's bands recalibrated online (models/predicting.adapt_bands): method, multiplier, running coverage and
    # outcomes seen per level and step. None: not recalibrated (files older than it, universe models)
    adaptive: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.model_summary = ModelSummary.from_dict(self.model_summary)

    @property
    def summary(self) -> ModelSummary:
        """The model's summary, typed."""
        return ModelSummary.from_dict(self.model_summary)

    @property
    def family(self) -> str:
        """The catalogue name of the model (``default``, ``naive``...), as backtests name it."""
        summary = self.summary
        if summary.family:
            return summary.family
        if summary.preset == "baseline":  # saved before forecasts named their family
            return summary.arch or self.model_id
        if summary.preset and summary.arch:
            from forecast.models.train_config import network_name

            try:
                return network_name(summary.preset, summary.arch)
            except ForecastError:
                pass
        return self.model_id

    @property
    def adjust(self) -> str:
        return self.summary.adjust or "qfq"

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
                "created_at": self.created_at, "model_summary": self.summary.to_dict(), "price_limits": self.price_limits,
                "of_record": self.of_record, "adaptive": self.adaptive}

    def to_frame(self) -> pd.DataFrame:
        """One row per forecast day: ticker, date, which price (target: close, open...), predicted and the band
        columns, prices rounded to 4 decimals. Rows of tickers forecast on different prices then say so."""
        rows = []
        for p in self.points:
            row: dict[str, Any] = {"ticker": self.ticker, "date": p.date, "target": self.target, "predicted": p.value}
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
                model_summary=ModelSummary.from_dict(data.get("model_summary")),  # a copy: not shared with a cached batch
                price_limits=dict(data["price_limits"]) if isinstance(data.get("price_limits"), dict) else None,
                of_record=data.get("of_record") is not False,  # written before forecasts were kept apart: of record
                adaptive=dict(data["adaptive"]) if isinstance(data.get("adaptive"), dict) else None,
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CorruptFileError(f"{where} is damaged ({type(exc).__name__}: {exc}); run forecast predict again") from None


def read_stored_json(path: Path, what: str) -> Any:
    """The JSON in a stored file (forecast or backtest); CorruptFileError naming ``what`` and the file when unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise CorruptFileError(f"{what} {path} is unreadable ({type(exc).__name__})") from None


def save_forecast(home: Workspace | Path | str | None, result: ForecastResult) -> Path:
    """Store the forecast (atomically) and return its path: the ticker's forecast of record, or, when
    ``result.of_record`` is False (another model's), kept apart under ``forecasts/<T>/other/<model>.json``."""
    workspace = Workspace.at(home)
    path = workspace.forecast_file(result.ticker) if result.of_record else workspace.forecast_other_file(result.ticker, result.model_id)
    atomic_write_text(path, dumps(result.to_dict()))
    return path


def save_forecast_batch(home: Workspace | Path | str | None, universe: str, results: list[ForecastResult]) -> Path:
    """Store a global model's forecasts of many tickers in one file, ``forecasts/@<universe>/latest.json``; those not
    of record (tickers another model serves) go, kept apart, to ``forecasts/@<universe>/other.json``.

    One file, not one per ticker: 5,400 files cost this disk seconds to
    create. Tickers already in the batch and not in ``results`` keep their
    forecast (a later batch of a subset does not drop the rest); the batch's
    lock makes the read, merge and replace one step for concurrent predicts.
    """
    workspace = Workspace.at(home)
    path = workspace.forecast_batch_file(universe)
    with hold_lock(workspace.forecast_batch_lock(universe), workspace.lock_timeout_s,
                   f"the forecasts of {universe} are being written by another command; try again shortly"):
        for target, of_record in ((path, True), (workspace.forecast_batch_other_file(universe), False)):
            chosen = [r for r in results if r.of_record is of_record]
            if not chosen:
                continue
            try:
                entries = dict(_batch_entries(target))
            except CorruptFileError as exc:  # replaced by this batch; the tickers only in the old one need predicting again
                log.warning("%s; replacing it", exc)
                entries = {}
            entries.update({r.ticker: r.to_dict() for r in chosen})
            atomic_write_text(target, dumps({"universe": universe, "forecasts": entries}, indent=None))
            _BATCHES.pop(target, None)
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
        data = read_stored_json(path, "stored forecasts")
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
    return ForecastResult.from_dict(read_stored_json(path, "stored forecast"), f"stored forecast {path}")


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


def load_forecast(home: Workspace | Path | str | None, ticker: str, model: str | None = None) -> ForecastResult | None:
    """The ticker's forecast of record (``stored_forecast``), or None; with ``model`` (an id, or a family such as
    ``garch`` or ``global``), the newest forecast by that model: the one of record when it made it, else one kept apart."""
    found = stored_forecast(home, ticker)
    if model is None or (found is not None and model in (found[0].model_id, found[0].family)):
        return found[0] if found else None
    return other_forecast(home, ticker, model)


def other_forecast(home: Workspace | Path | str | None, ticker: str, model: str) -> ForecastResult | None:
    """The newest forecast of ``ticker`` by ``model`` (an id or a family) kept apart from its forecast of record, or None."""
    workspace = Workspace.at(home)
    candidates: list[ForecastResult] = []
    for path in workspace.forecast_other_files(ticker):
        try:
            result = load_forecast_file(path)
        except CorruptFileError as exc:  # another model's forecast: a damaged one is passed over
            log.warning("%s", exc)
            continue
        candidates.append(result)
    for batch in workspace.forecast_batch_other_files():
        try:  # a damaged file, or a damaged entry of a readable one: passed over alike
            entry = _batch_entries(batch).get(ticker)
            if entry is not None:
                candidates.append(ForecastResult.from_dict(entry, f"stored forecast of {ticker} in {batch}"))
        except CorruptFileError as exc:
            log.warning("%s", exc)
    by_model = [r for r in candidates if model in (r.model_id, r.family)]
    for result in by_model:
        result.of_record = False  # however it was written: it is not the ticker's forecast of record
    return max(by_model, key=forecast_time) if by_model else None


def universe_forecasts(home: Workspace | Path | str | None, universe: str, model_id: str | None = None) -> dict[str, ForecastResult]:
    """{ticker: the newest stored forecast by ``universe``'s global model ``model_id`` (any, when None)}, of record or
    kept apart: what ``rank`` ranked. Damaged batches are passed over (doctor names them)."""
    workspace = Workspace.at(home)
    found: dict[str, ForecastResult] = {}
    for path in (workspace.forecast_batch_other_file(universe), workspace.forecast_batch_file(universe)):
        try:
            entries = _batch_entries(path)
        except CorruptFileError as exc:
            log.warning("%s", exc)
            continue
        for ticker, entry in entries.items():
            try:
                result = ForecastResult.from_dict(entry, f"stored forecast of {ticker} in {path}")
            except CorruptFileError:
                continue
            if model_id is not None and result.model_id != model_id:
                continue
            if ticker not in found or forecast_time(result) >= forecast_time(found[ticker]):
                found[ticker] = result
    return found
