"""The model registry: one folder per trained model, and a ``latest`` pointer per ticker.

Each model is ``model.keras`` + ``metadata.json`` (its ModelCard), built under
a temporary name and renamed into place, so a kill never leaves half a model.
Where the folders are is the workspace's business; every id and ticker that
becomes a path is checked there.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path

from forecast.atomic import atomic_write_text
from forecast.errors import CorruptFileError, ModelNotFoundError
from forecast.jsonio import dumps
from forecast.locks import hold_lock
from forecast.model_card import ModelCard
from forecast.workspace import CARD_FILE, MODEL_FILE, Workspace


class ModelRegistry:
    def __init__(self, home: Workspace | Path | str | None = None, lock_timeout_s: float | None = None):
        self.workspace = Workspace.at(home, lock_timeout_s)
        self.root = self.workspace.models_dir
        self.lock_timeout_s = self.workspace.lock_timeout_s

    def _locked(self) -> AbstractContextManager[None]:
        return hold_lock(self.workspace.registry_lock, self.lock_timeout_s,
                         f"another forecast process is writing to {self.root} (waited {self.lock_timeout_s:.0f} s); try again later")

    @staticmethod
    def new_id(ticker: str, preset: str, arch: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        return f"{ticker}-{preset}-{arch}-{stamp}-{uuid.uuid4().hex[:4]}"

    def folder(self, model_id: str) -> Path:
        return self.workspace.model_dir(model_id)

    def save(self, card: ModelCard, write_model: Callable[[Path], None]) -> Path:
        """Write a model folder atomically and point ``latest/<ticker>`` at it."""
        target = self.folder(card.id)
        pointer = self.workspace.latest_pointer(card.ticker)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.workspace.model_staging_dir(card.id)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            write_model(staging / MODEL_FILE)
            (staging / CARD_FILE).write_text(dumps(card.to_dict()))
            with self._locked():
                os.replace(staging, target)
                atomic_write_text(pointer, card.id + "\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / CARD_FILE).is_file())

    def card(self, model_id: str) -> ModelCard:
        """Return the model's validated card; ModelNotFoundError or CorruptFileError otherwise."""
        path = self.workspace.model_card_file(model_id)
        if not path.is_file():
            raise ModelNotFoundError(f"no model {model_id!r} in {self.root}; see: forecast models list")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise CorruptFileError(f"model {model_id}: metadata.json is unreadable ({type(exc).__name__}); "
                                   f"remove it with: forecast models rm {model_id}") from None
        card = ModelCard.from_dict(raw, f"model {model_id}: metadata.json")
        if card.id != model_id:
            raise CorruptFileError(f"model {model_id}: metadata.json names another id ({card.id})")
        return card

    def metadata(self, model_id: str) -> dict:
        """The card as the JSON object ``models show`` prints."""
        return self.card(model_id).to_dict()

    def model_file(self, model_id: str) -> Path:
        return self.workspace.model_file(model_id)

    def _pointed(self, ticker: str) -> str | None:
        pointer = self.workspace.latest_pointer(ticker)
        if not pointer.is_file():
            return None
        try:
            model_id = pointer.read_text(encoding="utf-8").strip()
            return model_id if self.workspace.model_card_file(model_id).is_file() else None
        except (UnicodeDecodeError, OSError, ValueError):  # a damaged pointer falls back to the newest card
            return None

    def cards(self) -> list[ModelCard]:
        """Every readable card; unreadable ones are skipped (``forecast doctor`` reports them)."""
        out = []
        for model_id in self.ids():
            try:
                out.append(self.card(model_id))
            except CorruptFileError:
                continue
        return out

    def latest_id(self, ticker: str) -> str | None:
        pointed = self._pointed(ticker)
        if pointed is not None:
            return pointed
        candidates = [c for c in self.cards() if c.ticker == ticker]
        return max(candidates, key=lambda c: c.created_at).id if candidates else None

    def resolve(self, ticker: str, model_id: str | None = None) -> str:
        """Return ``model_id`` if it exists, else the ticker's latest; raise if none."""
        if model_id:
            self.card(model_id)
            return model_id
        latest = self.latest_id(ticker)
        if latest is None:
            raise ModelNotFoundError(f"no trained model for {ticker}; run: forecast train {ticker}")
        return latest

    def summaries(self) -> list[dict]:
        cards = self.cards()
        latest = {ticker: self.latest_id(ticker) for ticker in {c.ticker for c in cards}}
        return [c.summary(latest=latest[c.ticker] == c.id) for c in cards]

    def remove(self, model_id: str) -> None:
        """Delete a model folder, even one whose card is unreadable, and its ``latest`` pointer."""
        folder = self.folder(model_id)
        if not folder.is_dir() or folder.is_symlink() or not ((folder / CARD_FILE).exists() or (folder / MODEL_FILE).exists()):
            raise ModelNotFoundError(f"no model {model_id!r} in {self.root}; see: forecast models list")
        try:
            ticker: str | None = self.card(model_id).ticker
        except (CorruptFileError, ModelNotFoundError):
            ticker = None
        with self._locked():
            shutil.rmtree(folder)
            pointers = [self.workspace.latest_pointer(ticker)] if ticker else (
                list(self.workspace.latest_dir.iterdir()) if self.workspace.latest_dir.is_dir() else [])
            for pointer in pointers:
                try:
                    if pointer.is_file() and pointer.read_text(encoding="utf-8").strip() == model_id:
                        pointer.unlink()
                except (UnicodeDecodeError, OSError):
                    continue
