"""Universe models: the card of a global network and where such models live.

A global model is one network for a whole universe (``forecast train
--universe csi300 --preset global``). Its card records the universe, every
ticker and the dates it saw, how its scores map onto returns (calibration)
and its interval quantiles. Global models live beside the per-ticker ones
(``<home>/models/global/<ID>/``: ``model.keras`` + ``metadata.json``), with a
``latest`` pointer per universe; the per-ticker registry never lists them, so
nothing that reads per-ticker cards has to tell the two apart.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from forecast.atomic import atomic_write_text, publish_folder
from forecast.errors import CorruptFileError, ForecastError, ModelNotFoundError
from forecast.jsonio import dumps
from forecast.locks import hold_lock
from forecast.workspace import CARD_FILE, MODEL_FILE, Workspace, safe_name

GLOBAL_CARD_FORMAT = 1
GLOBAL_KIND = "global"


@dataclass(frozen=True)
class GlobalCard:
    """What a global model's ``metadata.json`` holds."""

    id: str
    universe: str
    tickers: tuple[str, ...]  # every ticker whose windows it trained on
    created_at: str
    config: dict  # global_model.GlobalSettings.to_dict()
    features: dict  # {"sequence": [...], "static": [...]}
    data: dict  # range [first, last], rows, train_cut, validation [start, end], windows_train, windows_validation
    validation: dict  # rank_ic (step H), best_epoch, scores per epoch
    calibration: dict  # {"slope": [H], "intercept": [H]}: expected log return = intercept + slope x score
    intervals: dict  # {"method": ..., "quantiles": {level_key: [[lo, hi] per step]}} of residual / (sigma sqrt(h))
    versions: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    windows_per_second: float = 0.0
    format: int = GLOBAL_CARD_FORMAT
    kind: str = GLOBAL_KIND

    @property
    def horizon(self) -> int:
        return int(self.config["horizon"])

    @property
    def lookback(self) -> int:
        return int(self.config["lookback"])

    @property
    def data_range(self) -> tuple[str, str]:
        first, last = self.data["range"]
        return str(first), str(last)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tickers"] = list(self.tickers)
        return data

    def summary(self) -> dict:
        return {"id": self.id, "kind": self.kind, "universe": self.universe, "tickers": len(self.tickers),
                "horizon": self.horizon, "created_at": self.created_at, "data_range": list(self.data_range),
                "validation_rank_ic": self.validation.get("rank_ic")}

    @classmethod
    def from_dict(cls, data: Any, where: str = "metadata.json") -> GlobalCard:
        """Return the card, or raise CorruptFileError naming what is missing or wrong."""
        def need(obj: Any, key: str, kind: type | tuple[type, ...], place: str) -> Any:
            if not isinstance(obj, dict) or key not in obj or not isinstance(obj[key], kind):
                raise CorruptFileError(f"{place}: missing or bad field {key!r}")
            return obj[key]

        need(data, "kind", str, where)
        if data["kind"] != GLOBAL_KIND:
            raise CorruptFileError(f"{where}: not a global model card (kind {data['kind']!r})")
        try:
            model_id = safe_name(need(data, "id", str, where), "model id")
            universe = safe_name(need(data, "universe", str, where), "universe")
        except ForecastError as exc:
            raise CorruptFileError(f"{where}: {exc}") from None
        config = need(data, "config", dict, where)
        for key in ("lookback", "horizon"):
            value = need(config, key, int, f"{where}: config")
            if value < 1:
                raise CorruptFileError(f"{where}: config.{key} must be positive")
        horizon = int(config["horizon"])
        calibration = need(data, "calibration", dict, where)
        for key in ("slope", "intercept"):
            values = need(calibration, key, list, f"{where}: calibration")
            if len(values) != horizon or not all(isinstance(v, (int, float)) for v in values):
                raise CorruptFileError(f"{where}: calibration.{key} needs {horizon} numbers")
        intervals = need(data, "intervals", dict, where)
        for level, pairs in need(intervals, "quantiles", dict, f"{where}: intervals").items():
            if not isinstance(pairs, list) or len(pairs) != horizon or not all(
                    isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in pairs):
                raise CorruptFileError(f"{where}: intervals.quantiles[{level!r}] needs {horizon} [lower, upper] pairs")
        data_info = need(data, "data", dict, where)
        rng = need(data_info, "range", list, f"{where}: data")
        if len(rng) != 2 or not all(isinstance(v, str) for v in rng):
            raise CorruptFileError(f"{where}: data.range must be two dates")
        tickers = need(data, "tickers", list, where)
        return cls(
            id=model_id, universe=universe, tickers=tuple(str(t) for t in tickers),
            created_at=need(data, "created_at", str, where), config=config,
            features=need(data, "features", dict, where), data=data_info, validation=need(data, "validation", dict, where),
            calibration=calibration, intervals=intervals,
            versions=dict(data.get("versions") or {}), train_seconds=float(data.get("train_seconds") or 0.0),
            windows_per_second=float(data.get("windows_per_second") or 0.0),
        )


class GlobalRegistry:
    """Global models under ``<home>/models/global/``, one folder each, and a ``latest`` pointer per universe."""

    def __init__(self, home: Workspace | Path | str | None = None):
        self.workspace = Workspace.at(home)
        self.root = self.workspace.global_models_dir

    @staticmethod
    def new_id(universe: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        return f"{universe}-global-{stamp}-{uuid.uuid4().hex[:4]}"

    def _locked(self):
        return hold_lock(self.workspace.registry_lock, self.workspace.lock_timeout_s,
                         f"another forecast process is writing to {self.workspace.models_dir}; try again later")

    def save(self, card: GlobalCard, write_model: Callable[[Path], None]) -> Path:
        """Write the model folder atomically and point ``latest/<universe>`` at it."""
        target = self.workspace.global_model_dir(card.id)
        staging = self.workspace.global_model_staging_dir(card.id)
        self.root.mkdir(parents=True, exist_ok=True)

        def fill(folder: Path) -> None:
            write_model(folder / MODEL_FILE)
            atomic_write_text(folder / CARD_FILE, dumps(card.to_dict()))  # fsynced before the folder's rename publishes it

        publish_folder(staging, target, fill, self._locked(), self.workspace.global_latest_pointer(card.universe), card.id + "\n")
        return target

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / CARD_FILE).is_file())

    def card(self, model_id: str) -> GlobalCard:
        path = self.workspace.global_model_dir(model_id) / CARD_FILE
        if not path.is_file():
            raise ModelNotFoundError(f"no global model {model_id!r}; see: forecast models list")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise CorruptFileError(f"global model {model_id}: metadata.json is unreadable ({type(exc).__name__})") from None
        card = GlobalCard.from_dict(raw, f"global model {model_id}: metadata.json")
        if card.id != model_id:
            raise CorruptFileError(f"global model {model_id}: metadata.json names another id ({card.id})")
        return card

    def model_file(self, model_id: str) -> Path:
        return self.workspace.global_model_dir(model_id) / MODEL_FILE

    def cards(self) -> list[GlobalCard]:
        out = []
        for model_id in self.ids():
            try:
                out.append(self.card(model_id))
            except CorruptFileError:
                continue
        return out

    def latest_id(self, universe: str) -> str | None:
        """The newest global model of ``universe``, by its pointer, else by date."""
        pointer = self.workspace.global_latest_pointer(universe)
        try:
            pointed = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else ""
        except (OSError, UnicodeDecodeError):
            pointed = ""
        if pointed and (self.workspace.global_model_dir(pointed) / CARD_FILE).is_file():
            return pointed
        candidates = [c for c in self.cards() if c.universe == universe]
        return max(candidates, key=lambda c: c.created_at).id if candidates else None

    def for_ticker(self, ticker: str) -> GlobalCard | None:
        """The global model to use for a ticker with no model of its own: the newest that saw it, else the newest of all.

        A global model can forecast a ticker it never trained on (its inputs
        are normalised per ticker), so any one will do when none saw it.
        """
        cards = self.cards()
        if not cards:
            return None
        saw = [c for c in cards if ticker in c.tickers]
        return max(saw or cards, key=lambda c: c.created_at)

    def remove(self, model_id: str) -> None:
        folder = self.workspace.global_model_dir(model_id)
        if not (folder / CARD_FILE).is_file() and not (folder / MODEL_FILE).is_file():
            raise ModelNotFoundError(f"no global model {model_id!r}; see: forecast models list")
        with self._locked():
            shutil.rmtree(folder)
            latest = self.workspace.global_latest_dir
            for pointer in (latest.iterdir() if latest.is_dir() else []):
                try:
                    if pointer.read_text(encoding="utf-8").strip() == model_id:
                        pointer.unlink()
                except (OSError, UnicodeDecodeError):
                    continue
