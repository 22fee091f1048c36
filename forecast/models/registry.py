"""The model registry: one folder per trained model, a ``latest`` pointer per ticker, and optional pins.

The model ``predict`` and ``run`` use for a ticker is its pinned one
(``forecast models use MODEL_ID``) when a pin exists, else its latest.

Each model is ``model.keras`` + ``metadata.json`` (its ModelCard), built under
a temporary name and renamed into place, so a kill never leaves half a model.
Where the folders are is the workspace's business; every id and ticker that
becomes a path is checked there.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from forecast.atomic import atomic_write_text, publish_folder
from forecast.errors import CorruptFileError, ForecastError, ModelNotFoundError
from forecast.jsonio import dumps
from forecast.locks import hold_lock
from forecast.models.card import ModelCard
from forecast.workspace import CARD_FILE, MODEL_FILE, Workspace

PINNED, LATEST, CHOSEN = "pinned", "latest", "--model"  # why a model was used: ModelChoice.reason


@dataclass(frozen=True)
class ModelChoice:
    """The model used for a ticker and why: ``--model`` (named), ``pinned`` or ``latest``."""

    model_id: str
    reason: str


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

        def fill(folder: Path) -> None:
            write_model(folder / MODEL_FILE)
            atomic_write_text(folder / CARD_FILE, dumps(card.to_dict()))  # fsynced before the folder's rename publishes it

        publish_folder(self.workspace.model_staging_dir(card.id), target, fill, self._locked(), pointer, card.id + "\n")
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

    def pinned_id(self, ticker: str) -> str | None:
        """The model pinned for ``ticker`` with ``forecast models use``, or None.

        A pin whose model is gone raises ModelNotFoundError rather than
        quietly falling back to the latest: the user chose that model.
        """
        pin = self.workspace.pin_file(ticker)
        if not pin.is_file():
            return None
        try:
            model_id = pin.read_text(encoding="utf-8").strip()
            present = self.workspace.model_card_file(model_id).is_file()
        except (UnicodeDecodeError, OSError, ValueError, ForecastError):
            raise CorruptFileError(f"{ticker}'s pin is invalid (it names no model); run forecast doctor --repair, "
                                   f"or unpin it with: forecast models use {ticker} --latest") from None
        if not present:
            raise ModelNotFoundError(f"{ticker} is pinned to a model that is gone ({model_id}); "
                                     f"unpin it with: forecast models use {ticker} --latest")
        return model_id

    def choice(self, ticker: str, model_id: str | None = None) -> ModelChoice:
        """The model ``predict`` and ``run`` use for ``ticker``: ``model_id`` if given, else the pinned one, else the latest."""
        if model_id:
            self.card(model_id)
            return ModelChoice(model_id, CHOSEN)
        pinned = self.pinned_id(ticker)
        if pinned is not None:
            return ModelChoice(pinned, PINNED)
        latest = self.latest_id(ticker)
        if latest is None:
            raise ModelNotFoundError(f"no trained model for {ticker}; run: forecast train {ticker}")
        return ModelChoice(latest, LATEST)

    def resolve(self, ticker: str, model_id: str | None = None) -> str:
        """Return ``model_id`` if it exists, else the ticker's pinned model, else its latest; raise if none."""
        return self.choice(ticker, model_id).model_id

    def in_use(self, ticker: str) -> ModelChoice | None:
        """The model ``predict`` would use for ``ticker`` now, or None when it has none (or its pin is broken)."""
        try:
            return self.choice(ticker)
        except (ModelNotFoundError, CorruptFileError):
            return None

    def reason_for(self, ticker: str, model_id: str) -> str:
        """Why ``model_id`` serves ``ticker`` when no ``--model`` was given: ``pinned`` or ``latest``."""
        try:
            return PINNED if self.pinned_id(ticker) == model_id else LATEST
        except (ModelNotFoundError, CorruptFileError):
            return LATEST

    def pin(self, model_id: str) -> ModelCard:
        """Make ``model_id`` the model ``predict`` and ``run`` use for its ticker; return its card."""
        card = self.card(model_id)
        pin = self.workspace.pin_file(card.ticker)
        with self._locked():
            atomic_write_text(pin, card.id + "\n")
        return card

    def unpin(self, ticker: str) -> str | None:
        """Go back to the latest model for ``ticker``; return the id that was pinned, if any."""
        pin = self.workspace.pin_file(ticker)
        if not pin.is_file():
            return None
        with self._locked():
            try:
                previous = pin.read_text(encoding="utf-8").strip() or None
            except (UnicodeDecodeError, OSError):
                previous = None
            pin.unlink(missing_ok=True)
        return previous

    def summaries(self) -> list[dict]:
        """``models list``'s rows: each card's summary, plus ``in_use`` (what predict and run use) and ``pinned``."""
        cards = self.cards()
        tickers = {c.ticker for c in cards}
        latest = {ticker: self.latest_id(ticker) for ticker in tickers}
        in_use = {ticker: self.in_use(ticker) for ticker in tickers}
        rows = []
        for c in cards:
            used = in_use[c.ticker]
            rows.append({**c.summary(latest=latest[c.ticker] == c.id), "in_use": used is not None and used.model_id == c.id,
                         "pinned": used is not None and used.reason == PINNED and used.model_id == c.id})
        return rows

    def remove(self, model_id: str) -> None:
        """Delete a model folder, even one whose card is unreadable, its ``latest`` pointer and its pin."""
        folder = self.folder(model_id)
        if not folder.is_dir() or folder.is_symlink() or not ((folder / CARD_FILE).exists() or (folder / MODEL_FILE).exists()):
            raise ModelNotFoundError(f"no model {model_id!r} in {self.root}; see: forecast models list")
        try:
            ticker: str | None = self.card(model_id).ticker
        except (CorruptFileError, ModelNotFoundError):
            ticker = None
        with self._locked():
            shutil.rmtree(folder)
            pointers = [self.workspace.latest_pointer(ticker), self.workspace.pin_file(ticker)] if ticker else [
                p for folder in (self.workspace.latest_dir, self.workspace.pinned_dir) if folder.is_dir() for p in folder.iterdir()]
            for pointer in pointers:
                try:
                    if pointer.is_file() and pointer.read_text(encoding="utf-8").strip() == model_id:
                        pointer.unlink()
                except (UnicodeDecodeError, OSError):
                    continue
