"""The model registry under ``<home>/models/``.

One folder per trained model (``model.keras`` + ``metadata.json``), created
under a temporary name and renamed into place, so a kill never leaves half a
model. ``latest/<TICKER>`` holds the id of the newest model for a ticker.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from forecast.atomic import atomic_write_text
from forecast.errors import BadInputError, ModelNotFoundError
from forecast.jsonio import dumps
from forecast.locks import hold_lock
from forecast.store import resolve_home


class ModelRegistry:
    def __init__(self, home: Path | str | None = None, lock_timeout_s: float = 120.0):
        self.root = resolve_home(home) / "models"
        self.lock_timeout_s = lock_timeout_s

    def _locked(self):
        return hold_lock(self.root / ".lock", self.lock_timeout_s, f"another forecast process is writing to {self.root}; try again later")

    @staticmethod
    def new_id(ticker: str, preset: str, arch: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        return f"{ticker}-{preset}-{arch}-{stamp}-{uuid.uuid4().hex[:4]}"

    def folder(self, model_id: str) -> Path:
        if "/" in model_id or model_id.startswith("."):
            raise BadInputError(f"not a model id: {model_id!r}")
        return self.root / model_id

    def save(self, model_id: str, metadata: dict, write_model: Callable[[Path], None]) -> Path:
        """Write a model folder atomically and point ``latest/<ticker>`` at it."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".staging-{model_id}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            write_model(staging / "model.keras")
            (staging / "metadata.json").write_text(dumps(metadata))
            with self._locked():
                os.replace(staging, self.folder(model_id))
                atomic_write_text(self.root / "latest" / metadata["ticker"], model_id + "\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.folder(model_id)

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "metadata.json").is_file() and not p.name.startswith("."))

    def metadata(self, model_id: str) -> dict:
        path = self.folder(model_id) / "metadata.json"
        if not path.is_file():
            raise ModelNotFoundError(f"no model {model_id!r} in {self.root}; see: forecast models list")
        return json.loads(path.read_text())

    def model_file(self, model_id: str) -> Path:
        return self.folder(model_id) / "model.keras"

    def latest_id(self, ticker: str) -> str | None:
        pointer = self.root / "latest" / ticker
        if pointer.is_file():
            model_id = pointer.read_text().strip()
            if (self.folder(model_id) / "metadata.json").is_file():
                return model_id
        candidates = [i for i in self.ids() if self.metadata(i)["ticker"] == ticker]
        return max(candidates, key=lambda i: self.metadata(i)["created_at"]) if candidates else None

    def resolve(self, ticker: str, model_id: str | None = None) -> str:
        """Return ``model_id`` if it exists, else the ticker's latest; raise if none."""
        if model_id:
            self.metadata(model_id)
            return model_id
        latest = self.latest_id(ticker)
        if latest is None:
            raise ModelNotFoundError(f"no trained model for {ticker}; run: forecast train {ticker}")
        return latest

    def summaries(self) -> list[dict]:
        out = []
        for model_id in self.ids():
            meta = self.metadata(model_id)
            out.append({
                "id": model_id, "ticker": meta["ticker"], "preset": meta["config"]["preset"], "arch": meta["config"]["arch"],
                "horizon": meta["config"]["horizon"], "created_at": meta["created_at"],
                "data_range": meta["data"]["range"], "val_rmse": meta["validation"].get("rmse"),
                "val_skill_vs_naive": meta["validation"].get("skill_vs_naive"),
                "latest": self.latest_id(meta["ticker"]) == model_id,
            })
        return out

    def remove(self, model_id: str) -> None:
        meta = self.metadata(model_id)
        with self._locked():
            shutil.rmtree(self.folder(model_id))
            pointer = self.root / "latest" / meta["ticker"]
            if pointer.is_file() and pointer.read_text().strip() == model_id:
                pointer.unlink()
