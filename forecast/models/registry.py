"""The model registries: one folder per trained model, a ``latest`` pointer per ticker or universe, and pins.

``FolderRegistry`` holds what both families share (ids, the lock, save,
cards, latest, remove); ``ModelRegistry`` is the per-ticker one, with pins,
and ``models.pooled.card.GlobalRegistry`` the universe models' (a ``Shelf``
each: where its folders and pointers are, and how its card reads).

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
from typing import Any, Generic, Protocol, TypeVar

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


class Card(Protocol):
    """What a registry stores: a card with an id and a creation time that writes itself as JSON."""

    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> str: ...

    def to_dict(self) -> dict: ...


C = TypeVar("C", bound=Card)


@dataclass(frozen=True)
class Shelf(Generic[C]):
    """Where one family's models live in the home, and how its cards are read and keyed."""

    root: Path  # the folder of the model folders
    folder: Callable[[str], Path]  # a model's folder, by id (checked by the workspace)
    staging: Callable[[str], Path]  # where a model's folder is built before its rename publishes it
    pointer: Callable[[str], Path]  # the ``latest`` pointer of a key
    pointer_dirs: tuple[Path, ...]  # the folders of pointers (latest, pins) ``remove`` clears of a removed id
    key: Callable[[C], str]  # what a card's model serves: its ticker or its universe
    parse: Callable[[Any, str], C]  # the validated card from parsed JSON; CorruptFileError otherwise


class FolderRegistry(Generic[C]):
    """Models kept one folder each (``model.keras`` + ``metadata.json``), with a ``latest`` pointer per key.

    The key is what a model serves: a ticker for the per-ticker registry, a
    universe for the universe (global) models. A subclass says where (its
    Shelf); the id, lock, save, card, latest and remove logic is here, once.
    """

    label = "model"  # how messages name one of these models

    def __init__(self, workspace: Workspace, shelf: Shelf[C]):
        self.workspace = workspace
        self.shelf = shelf
        self.root = shelf.root
        self.lock_timeout_s = workspace.lock_timeout_s

    def folder(self, model_id: str) -> Path:
        return self.shelf.folder(model_id)

    def _locked(self) -> AbstractContextManager[None]:
        return hold_lock(self.workspace.registry_lock, self.lock_timeout_s,
                         f"another forecast process is writing to {self.workspace.models_dir} "
                         f"(waited {self.lock_timeout_s:.0f} s); try again later")

    def _missing(self, model_id: str) -> ModelNotFoundError:
        return ModelNotFoundError(f"no {self.label} {model_id!r} in {self.root}; see: forecast models list")

    def card_file(self, model_id: str) -> Path:
        return self.folder(model_id) / CARD_FILE

    def model_file(self, model_id: str) -> Path:
        return self.folder(model_id) / MODEL_FILE

    def save(self, card: C, write_model: Callable[[Path], None]) -> Path:
        """Write a model folder atomically and point its ticker's or universe's ``latest`` at it."""
        target = self.folder(card.id)
        pointer = self.shelf.pointer(self.shelf.key(card))
        self.root.mkdir(parents=True, exist_ok=True)

        def fill(folder: Path) -> None:
            write_model(folder / MODEL_FILE)
            atomic_write_text(folder / CARD_FILE, dumps(card.to_dict()))  # fsynced before the folder's rename publishes it

        publish_folder(self.shelf.staging(card.id), target, fill, self._locked(), pointer, card.id + "\n")
        return target

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / CARD_FILE).is_file())

    def card(self, model_id: str) -> C:
        """Return the model's validated card; ModelNotFoundError or CorruptFileError otherwise."""
        path = self.card_file(model_id)
        if not path.is_file():
            raise self._missing(model_id)
        where = f"{self.label} {model_id}: metadata.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise CorruptFileError(f"{where} is unreadable ({type(exc).__name__}); "
                                   f"remove it with: forecast models rm {model_id}") from None
        card = self.shelf.parse(raw, where)
        if card.id != model_id:
            raise CorruptFileError(f"{where} names another id ({card.id})")
        return card

    def cards(self) -> list[C]:
        """Every readable card; unreadable ones are skipped (``forecast doctor`` reports them)."""
        out = []
        for model_id in self.ids():
            try:
                out.append(self.card(model_id))
            except CorruptFileError:
                continue
        return out

    def _pointed(self, key: str) -> str | None:
        pointer = self.shelf.pointer(key)
        if not pointer.is_file():
            return None
        try:
            model_id = pointer.read_text(encoding="utf-8").strip()
            return model_id if model_id and self.card_file(model_id).is_file() else None
        except (UnicodeDecodeError, OSError, ValueError):  # an unreadable pointer falls back to the newest card; an id that is no id raises
            return None

    def latest_id(self, key: str) -> str | None:
        """The newest model of a ticker or universe: the one its pointer names, else the newest card."""
        pointed = self._pointed(key)
        if pointed is not None:
            return pointed
        candidates = [c for c in self.cards() if self.shelf.key(c) == key]
        return max(candidates, key=lambda c: c.created_at).id if candidates else None

    def remove(self, model_id: str) -> None:
        """Delete a model folder, even one whose card is unreadable, and every pointer (latest, pin) naming it."""
        folder = self.folder(model_id)
        if not folder.is_dir() or folder.is_symlink() or not ((folder / CARD_FILE).exists() or (folder / MODEL_FILE).exists()):
            raise self._missing(model_id)
        with self._locked():
            shutil.rmtree(folder)
            for pointer in (p for where in self.shelf.pointer_dirs if where.is_dir() for p in where.iterdir()):
                try:
                    if pointer.is_file() and pointer.read_text(encoding="utf-8").strip() == model_id:
                        pointer.unlink()
                except (UnicodeDecodeError, OSError):
                    continue


class ModelRegistry(FolderRegistry[ModelCard]):
    """Per-ticker networks under ``<home>/models/``, a ``latest`` pointer per ticker, and the pins."""

    def __init__(self, home: Workspace | Path | str | None = None, lock_timeout_s: float | None = None):
        ws = Workspace.at(home, lock_timeout_s)
        super().__init__(ws, Shelf(ws.models_dir, ws.model_dir, ws.model_staging_dir, ws.latest_pointer,
                                   (ws.latest_dir, ws.pinned_dir), key=lambda card: card.ticker, parse=ModelCard.from_dict))

    @staticmethod
    def new_id(ticker: str, preset: str, arch: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        return f"{ticker}-{preset}-{arch}-{stamp}-{uuid.uuid4().hex[:4]}"

    def metadata(self, model_id: str) -> dict:
        """The card as the JSON object ``models show`` prints."""
        return self.card(model_id).to_dict()

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
