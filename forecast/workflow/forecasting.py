"""``predict`` and ``rank`` over many tickers: which model serves each (``workflow.serving``), universe models in
batches, the rest each by its own model through an executor; and the universe's ranking by expected return.

The CLI resolves the tickers, calls these and prints what they return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from forecast.choices import ModelKind
from forecast.data.tickers import parse_ticker
from forecast.errors import ForecastError
from forecast.workflow.executors import Outcome, SerialExecutor
from forecast.workflow.usage import UsageError
from forecast.workspace import Workspace


def universe_forecasts(workspace: Workspace, tickers: Sequence[str], model: str | None,
                       universe: str | None) -> tuple[dict[str, object], dict[str, str]]:
    """The forecasts ``predict`` takes from universe models, in batches: {ticker: ForecastResult or the error}, and why
    each ticker's model serves it (``workflow.serving``'s answer, for every ticker it could answer).

    Tickers a universe model does not serve (and tickers that are no tickers)
    are left to the per-ticker path, which says why when none serves them.
    """
    from forecast.workflow.serving import Router, Serving
    from forecast.workflow.universe_jobs import predict_batch

    router = Router(workspace, model, universe)
    found: dict[str, object] = {}
    reasons: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for text, served in router.serve_all(tickers).items():
        if isinstance(served, Serving):
            reasons[served.ticker] = served.reason
        if isinstance(served, Serving) and served.kind is ModelKind.GLOBAL:
            groups.setdefault(served.model_id, []).append(served.ticker)
        elif isinstance(served, ForecastError) and router.names_universe_model:
            try:
                found[str(parse_ticker(text))] = served
            except ForecastError:
                continue
    for model_id, wanted in groups.items():
        # without --model the router's answer is the model in use: every ticker of the group is of record
        batch = predict_batch(workspace, wanted, router.universe_models.card(model_id), universe=universe,
                              record=wanted if model is None else None)
        found.update({t: f.result for t, f in batch.forecasts.items()})
        found.update(batch.problems)
    return found, reasons


def _key_of(ticker: str) -> str | None:
    try:
        return str(parse_ticker(ticker))
    except Exception:  # no ticker: the per-ticker job says why, on its own line
        return None


class PredictPlan:
    """``predict`` for ``tickers``: the universe models' batches are made here, at once; ``run`` adds the rest."""

    def __init__(self, workspace: Workspace, tickers: Sequence[str], model: str | None, horizon: int | None,
                 levels: Sequence[float], universe: str | None = None):
        from forecast.models.registry import ModelRegistry

        self.workspace, self.tickers, self.model, self.horizon, self.levels = workspace, list(tickers), model, horizon, tuple(levels)
        self.registry = ModelRegistry(workspace)
        self.batched, self.served_because = universe_forecasts(workspace, self.tickers, model, universe)  # one batch per universe model
        self._reasons: dict[str, str] = {}

    def reason(self, result: Any) -> str:
        """Why ``result``'s model was used: --model, pinned, latest, or a universe model's reason."""
        from forecast.models.registry import CHOSEN

        if result.ticker not in self._reasons:
            self._reasons[result.ticker] = self.served_because.get(result.ticker) or (
                CHOSEN if self.model else self.registry.reason_for(result.ticker, result.model_id))
        return self._reasons[result.ticker]

    def _from_batch(self, ticker: str) -> Any:
        found = self.batched[_key_of(ticker) or ticker]
        if isinstance(found, Exception):
            raise found
        return cut(found, self.horizon)

    def run(self, runner: Any, fail_fast: bool, guard: Callable[[Callable[[str], Any]], Callable[[str], Any]], mode: str,
            on_done: Callable[[Outcome], None]) -> list[Outcome]:
        """Forecast every ticker (``guard`` wraps each job, e.g. the stored-only check), counting them in progress ``mode``
        when there are several; the outcomes in the tickers' order."""
        from forecast.progress import SilentProgress, make_progress
        from forecast.workflow.executors import advancing
        from forecast.workflow.jobs import PredictJob

        in_batch = [t for t in self.tickers if _key_of(t) in self.batched]  # answered by the global model's batch, here
        own = [t for t in self.tickers if _key_of(t) not in self.batched]  # each by its own model, through the executor
        done = make_progress(mode) if len(self.tickers) > 1 else SilentProgress()
        done.start(len(self.tickers), "predict")
        try:
            report = advancing(done, on_done)
            finished = SerialExecutor(fail_fast).map(guard(self._from_batch), in_batch, on_done=report)
            if own and not (fail_fast and any(not o.ok for o in finished)):
                job = PredictJob(self.workspace, self.model, self.horizon, self.levels)
                finished += runner.map(guard(job), own, on_done=report)
        finally:
            done.close()
        order = {t: i for i, t in enumerate(self.tickers)}
        return sorted(finished, key=lambda o: order[o.item])  # the order the user named them


def cut(result: Any, horizon: int | None) -> Any:
    """The first ``horizon`` days of a forecast (all of them without --horizon)."""
    if horizon is not None and horizon < len(result.points):
        result.points = result.points[:horizon]
    return result


@dataclass
class Ranking:
    """``rank``'s answer: the model, the horizon ranked by, one row per ranked ticker (best first), the skipped ones."""

    card: Any  # GlobalCard
    steps: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)  # --tradable: names at a price limit or suspended


def rank_tickers(workspace: Workspace, tickers: Sequence[str], model: str | None, universe: str | None,
                 horizon: int | None, names: dict[str, str], tradable: bool = False) -> Ranking:
    """Rank ``tickers`` by the universe model's expected return over ``horizon`` days (default: the model's), with its
    preferred interval; a horizon beyond the model's is a UsageError.

    Each ticker's forecast is stored as its forecast of record only where this model is the one in use for it;
    for a ticker with a model of its own it is kept apart (``of_record`` False in each row), so ``plot`` and the report
    still show its own model's forecast.

    China tickers are flagged when they closed at limit-up or limit-down on their last day, or are suspended
    (``workflow.price_limits``); ``tradable`` leaves those out (each named in ``left_out``)."""
    from forecast.maths.intervals import preferred_level
    from forecast.workflow.price_limits import last_day_flags
    from forecast.workflow.serving import universe_model
    from forecast.workflow.universe_jobs import predict_batch

    card = universe_model(workspace, model, universe)
    steps = horizon or card.horizon
    if steps > card.horizon:
        raise UsageError(f"--horizon {steps} is beyond the model's horizon ({card.horizon} days)")
    batch = predict_batch(workspace, tickers, card, universe=universe)  # of record only where this model is in use
    ranking = Ranking(card, steps, skipped=[{"ticker": t, "error": str(e)} for t, e in sorted(batch.problems.items())])
    by_step = sorted(batch.forecasts.values(), key=lambda f: (-(f.result.points[steps - 1].value / f.result.last_close), f.ticker))
    flags = last_day_flags(workspace, [item.ticker for item in by_step])
    if tradable:
        ranking.left_out = [{"ticker": item.ticker, "flags": [k for k, v in flags[item.ticker].items() if v]}
                            for item in by_step if any(flags.get(item.ticker, {}).values())]
        by_step = [item for item in by_step if not any(flags.get(item.ticker, {}).values())]
    for position, item in enumerate(by_step, 1):
        point = item.result.points[steps - 1]
        level = preferred_level(point.intervals)
        lo, hi = point.intervals[level]
        close = item.result.last_close
        ranking.rows.append({"rank": position, "ticker": item.ticker, "name": names.get(item.ticker), "last_date": item.result.last_date,
                             "last_close": close, "horizon": steps, "expected_return": point.value / close - 1,
                             "interval": [lo / close - 1, hi / close - 1], "interval_level": float(level), "score": item.score,
                             "trained_on_ticker": bool(item.result.summary.trained_on_ticker),
                             "of_record": item.result.of_record,
                             "flags": [k for k, v in flags.get(item.ticker, {}).items() if v]})
    return ranking
