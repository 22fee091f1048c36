"""Universe models: where global networks live (their card, GlobalCard, is in models/card.py beside the per-ticker one).

A global model is one network for a whole universe (``forecast train
--universe csi300 --preset global``). Its card records the universe, every
ticker and the dates it saw, how its scores map onto returns (calibration)
and its interval quantiles. Global models live beside the per-ticker ones
(``<home>/models/global/<ID>/``: ``model.keras`` + ``metadata.json``), with a
``latest`` pointer per universe; the per-ticker registry never lists them, so
nothing that reads per-ticker cards has to tell the two apart.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

from forecast.choices import ModelKind
from forecast.models.card import GLOBAL_CARD_FORMAT, GLOBAL_KIND, GlobalCard
from forecast.models.registry import FolderRegistry, Shelf
from forecast.workspace import Workspace

__all__ = ["GLOBAL_CARD_FORMAT", "GLOBAL_KIND", "GlobalCard", "GlobalRegistry"]  # the card itself lives in models/card.py


class GlobalRegistry(FolderRegistry[GlobalCard]):
    """Global models under ``<home>/models/global/``, one folder each, and a ``latest`` pointer per universe."""

    label = "global model"

    def __init__(self, home: Workspace | Path | str | None = None, lock_timeout_s: float | None = None):
        ws = Workspace.at(home, lock_timeout_s)
        super().__init__(ws, Shelf(ws.global_models_dir, ws.global_model_dir, ws.global_model_staging_dir, ws.global_latest_pointer,
                                   (ws.global_latest_dir,), key=lambda card: card.universe, parse=GlobalCard.from_dict))

    @staticmethod
    def new_id(universe: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        return f"{universe}-{ModelKind.GLOBAL.value}-{stamp}-{uuid.uuid4().hex[:4]}"

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
