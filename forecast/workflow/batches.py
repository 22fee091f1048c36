"""Many tickers through one executor, with a count of tickers done above each one's own progress.

``train`` and ``backtest`` hand their job, tickers and progress mode here; the
settings they run with are built here too, from the flags as parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from forecast.workflow.executors import Outcome, advancing
from forecast.workspace import Workspace


def map_with_progress(runner: Any, job: Callable[[str], Any], items: Sequence[str], mode: str, label: str,
                      on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """Run ``job`` over ``items`` on ``runner``; with several items, a progress line counts them (``mode``)."""
    from forecast.progress import SilentProgress, make_progress

    done = make_progress(mode) if len(items) > 1 else SilentProgress()  # tickers done, above each one's own progress
    done.start(len(items), label)
    try:
        return runner.map(job, list(items), on_done=advancing(done, on_done))
    finally:
        done.close()


def backtest_settings(models: Sequence[str], test_days: int, refit_every: int | None, horizon: int, window: int | None,
                      target: str, adjust: str, levels: tuple[float, ...], overrides: Mapping[str, Any]) -> Any:
    """The BacktestSettings of a per-ticker walk-forward backtest (refits every DEFAULT_REFIT_EVERY origins by default);
    ``overrides`` with a None value are left out."""
    from forecast.choices import DEFAULT_REFIT_EVERY
    from forecast.workflow.jobs import BacktestSettings

    return BacktestSettings(models=tuple(models), test_days=test_days, refit_every=refit_every or DEFAULT_REFIT_EVERY,
                            horizon=horizon, window=window, target=target, adjust=adjust, levels=levels,
                            network_overrides={k: v for k, v in overrides.items() if v is not None})


def backtest_tickers(workspace: Workspace, settings: Any, tickers: Sequence[str], runner: Any,
                     guard: Callable[[Callable[[str], Any]], Callable[[str], Any]], mode: str,
                     on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """Backtest each ticker (``guard`` wraps the job, e.g. the stored-only check); each one's refits shown in ``mode``
    only where they run in this process."""
    from forecast.progress import make_progress
    from forecast.workflow.jobs import BacktestJob

    # one ticker's refits, restarted for each ticker; only where the refits run in this process
    job = BacktestJob(workspace, settings, None if runner.parallel else make_progress(mode))
    return map_with_progress(runner, guard(job), tickers, mode, "backtest", on_done)


class InUseNotes:
    """What ``train`` says about each new model beside the model ``predict`` used before it: worse on validation, or
    kept out by a pin. The models in use are read when this is made, before any worker writes."""

    def __init__(self, workspace: Workspace, tickers: Sequence[str]):
        from forecast.models.registry import ModelRegistry

        self.registry = ModelRegistry(workspace)
        # ticker text -> the ModelChoice predict used before this train (or None)
        self.before: dict[str, Any] = {t: self._in_use(t) for t in tickers}
        self.notes: dict[str, str] = {}  # new model id -> its note

    def _in_use(self, ticker_text: str) -> Any:
        """The ModelChoice predict uses for ``ticker_text`` now; None if it has none or the text is no ticker (train says why)."""
        from forecast.data.tickers import parse_ticker
        from forecast.errors import ForecastError

        try:
            return self.registry.in_use(str(parse_ticker(ticker_text)))
        except ForecastError:
            return None

    def note(self, ticker_text: str, card: Any) -> str | None:
        """The note on ``card``, trained for ``ticker_text`` (None when there is nothing to say); kept for ``get``."""
        found = self._compare(card, self.before.get(ticker_text))
        if found:
            self.notes[card.id] = found
        return found

    def get(self, model_id: str) -> str | None:
        return self.notes.get(model_id)

    def _compare(self, card: Any, before: Any) -> str | None:
        """One line when the new model is worse on validation than the model in use, or when a pin keeps the old one."""
        from forecast.errors import ForecastError
        from forecast.formatting import format_percent
        from forecast.models.registry import PINNED

        if before is None or before.model_id == card.id:
            return None
        try:
            old = self.registry.card(before.model_id)
        except ForecastError:
            return None
        new_skill, old_skill = card.skill_vs_naive, old.skill_vs_naive
        pinned = before.reason == PINNED
        if new_skill is not None and old_skill is not None and new_skill < old_skill:
            then = (f"predict and run keep the pinned {old.id}" if pinned
                    else f"predict and run now use it; to keep the previous one: forecast models use {old.id}")
            return (f"{card.id} is worse on validation than the model in use ({format_percent(new_skill, sign=True)} vs "
                    f"{format_percent(old_skill, sign=True)} skill vs naive); {then}")
        if pinned:
            return f"predict and run keep the pinned {old.id}; to use the new one: forecast models use {card.id}"
        return None
