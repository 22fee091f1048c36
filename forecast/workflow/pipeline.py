"""The daily job (``forecast run``): fetch, retrain when stale, predict, chart.

Built for cron: one ticker's failure does not stop the others, a second
overlapping run waits a bounded time for the first, a re-run on the same day
repeats nothing, and a machine-readable summary is written every time
(``run_summary``: the outcomes, the summary and the publishing of the day's files).

The fetch runs once for all tickers, here (the data source is paced as one
client); each ticker's day (retrain, predict, write, chart) is a ``DailyJob``
mapped by the executor the command chose: serially, in a process pool or on Ray.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from forecast.atomic import atomic_write_text
from forecast.choices import Source
from forecast.data.store import MarketStore
from forecast.data.tickers import parse_ticker
from forecast.data.universe_cache import cached_names
from forecast.errors import AuthError, BadInputError, ExitCode, ForecastError
from forecast.jsonio import dumps
from forecast.locks import hold_lock
from forecast.models.registry import ModelRegistry
from forecast.models.train_config import TrainConfig
from forecast.progress import ProgressReporter, SilentProgress
from forecast.redact import redact
from forecast.workflow import manifest
from forecast.workflow.executors import Executor, Outcome, SerialExecutor, run_job
from forecast.workflow.run_summary import RunSummary, TickerOutcome, is_ticker, publish, say_where
from forecast.workflow.serving import model_for
from forecast.workflow.settings import DEFAULT_STALE_AFTER_DAYS, AppConfig
from forecast.workspace import Workspace

log = logging.getLogger(__name__)


def run_lock(home: Workspace | Path | str | None, wait_s: float):
    """Only one daily job per home at a time; the second waits at most ``wait_s``."""
    workspace = Workspace.at(home)
    return hold_lock(workspace.run_lock, wait_s, f"another forecast run is in progress in {workspace.root} (waited {wait_s:g} s)")


def needs_training(registry: ModelRegistry, ticker: str, retrain_after_days: int | None, today: dt.date) -> str | None:
    """Return why the ticker needs (re)training, or None if its model is fresh enough (or pinned)."""
    if registry.pinned_id(ticker) is not None:
        return None  # the user chose this model with `forecast models use`: a newer one would never be used
    model_id = registry.latest_id(ticker)
    if model_id is None:
        return "no model yet"
    if retrain_after_days is None:
        return None
    created = dt.datetime.fromisoformat(registry.card(model_id).created_at).date()
    age = (today - created).days
    return f"model is {age} days old (retrain after {retrain_after_days})" if age >= retrain_after_days else None


def _fetch(store: MarketStore, config: AppConfig, tickers: list[str]) -> tuple[dict, dict]:
    """Return ({ticker: new rows}, {ticker: error}), each ticker from its own source ([sources], else ``source``)."""
    from forecast.data import fetching

    new_rows: dict[str, int] = {}
    errors: dict[str, ForecastError] = {}
    by_source: dict[Source, list[str]] = {}
    for t in tickers:
        by_source.setdefault(Source.parse(config.source_for(t), "source"), []).append(t)
    for t in by_source.get(Source.SAMPLE, []):
        try:
            stored = fetching.read_stored(store, t)  # an unreadable file is re-imported, not fatal
            if stored is not None and stored.source == "sample":
                new_rows[t] = 0  # the bundled sample never changes: nothing to redo
            else:
                new_rows[t] = fetching.import_sample(store, t).new_rows
        except ForecastError as exc:
            errors[t] = exc
    if tushare := by_source.get(Source.TUSHARE, []):
        from forecast.data.sources.tushare_pro import TushareClient
        from forecast.errors import BadInputError

        def csv_only(t: str) -> BadInputError:  # a ticker tushare cannot serve: its own error, and how to stop asking
            return BadInputError(f"{fetching.not_on_tushare(store, parse_ticker(t))} (to stop fetching it, set "
                                 f"\"{t}\" = \"csv\" under [sources] in forecast.toml)")

        try:  # the client (and its token check) is made only if some ticker needs the network
            reports, failures = fetching.update_from_tushare(store, tushare, lambda: TushareClient(config.tushare_token, calls_per_minute=config.tushare_calls_per_minute),
                                                             trading_facts=True)
            new_rows.update({r.ticker: r.new_rows for r in reports})
            errors.update({f.ticker: csv_only(f.ticker) if not parse_ticker(f.ticker).is_china else f.error for f in failures})
        except ForecastError as exc:  # e.g. a bad token: every ticker tushare serves fails the same way
            errors.update({t: exc if parse_ticker(t).is_china else csv_only(t) for t in tushare})
        except Exception as exc:  # a bug in the fetch must not cost the day's summary
            log.debug("fetch failed", exc_info=True)
            failed = ForecastError(redact(f"internal error while fetching: {type(exc).__name__}: {exc}"))
            errors.update({t: failed for t in tushare})
    for t in by_source.get(Source.CSV, []):  # nothing to fetch: the stored series is used as it is
        new_rows[t] = 0
    return new_rows, errors


@dataclass(frozen=True)
class DailyPlan:
    """What the day's job does for every ticker: where outputs go and when to retrain."""

    workspace: Workspace
    day_dir: Path
    today: dt.date
    retrain_after_days: int | None
    train_config: TrainConfig
    levels: tuple[float, ...]
    names: dict[str, str] = field(default_factory=dict)  # company names for the charts, read once for the whole run
    stale_after_days: int = DEFAULT_STALE_AFTER_DAYS  # trading days a last bar may lag before the ticker is stale


def daily_ticker(plan: DailyPlan, outcome: TickerOutcome, models, fetch_error: ForecastError | None = None) -> TickerOutcome:
    """One ticker's day: retrain when stale, predict, write CSV, JSON and chart, recording each step in ``outcome``.

    Raises on failure; what was done before the failure (a retrain, a fetch
    warning) stays recorded in ``outcome``.
    """
    from forecast.outputs.plotting import render
    from forecast.workflow.jobs import predict_one, train_one

    workspace, ticker = plan.workspace, outcome.ticker
    if fetch_error is not None:  # said once, by the run's log of the tickers that are not ok
        # A rejected token is not an outage to ride out: forecasting from stale data would hide it from cron.
        if isinstance(fetch_error, AuthError) or not MarketStore(workspace).has(ticker):
            raise fetch_error
        outcome.outputs["fetch_warning"] = f"fetch failed, forecasting from stored data: {fetch_error}"
    reason = needs_training(ModelRegistry(workspace), ticker, plan.retrain_after_days, plan.today)
    if reason:
        log.info("%s: training (%s)", ticker, reason)
        train_one(workspace, ticker, plan.train_config, levels=plan.levels)
        outcome.retrained = True
    files = Workspace.daily_outputs(plan.day_dir, ticker)
    done = None if outcome.retrained or outcome.fetched_new_rows else _todays_forecast(plan, ticker, files)
    if done is not None:  # a second run today, on the same bars and model: its files stand, nothing is redone
        outcome.model_id, outcome.last_date = done
        log.info("%s: today's forecast from %s by %s is already written", ticker, outcome.last_date, outcome.model_id)
    else:
        result = predict_one(workspace, ticker, levels=plan.levels, models=models)
        outcome.model_id, outcome.last_date = result.model_id, result.last_date
        atomic_write_text(files["csv"], result.to_frame().to_csv(index=False))
        atomic_write_text(files["json"], dumps(result.to_dict()))
        render(workspace, ticker, "forecast", out=files["chart"], name=plan.names.get(ticker, ""))
    outcome.model_choice = ModelRegistry(workspace).reason_for(ticker, outcome.model_id)
    outcome.outputs.update({kind: str(path) for kind, path in files.items()})
    _judge_freshness(plan, outcome, fetch_error)
    outcome.ok = not outcome.stale
    return outcome


def _todays_forecast(plan: DailyPlan, ticker: str, files: dict[str, Path]) -> tuple[str, str] | None:
    """(model id, last bar) of the forecast an earlier run wrote today, if it is what a new one would be; else None.

    The same model, the same last bar and the same interval levels give the
    same forecast (the product is reproducible), so it is not made again.
    """
    if not all(path.is_file() for path in files.values()):
        return None
    try:
        written = json.loads(files["json"].read_text(encoding="utf-8"))
        model_id = model_for(plan.workspace, ticker).model_id  # the one owner of "which model serves this ticker"
        last_bar = MarketStore(plan.workspace).head(ticker).last_date.date().isoformat()
        levels = {float(level) for level in written["points"][0]["intervals"]}
    except (OSError, ValueError, KeyError, IndexError, TypeError, ForecastError):
        return None  # unreadable, or no model or bars any more: forecast afresh, which says what is wrong
    if written.get("model_id") != model_id or written.get("last_date") != last_bar or levels != set(plan.levels):
        return None
    return model_id, last_bar


def _judge_freshness(plan: DailyPlan, outcome: TickerOutcome, fetch_error: ForecastError | None) -> None:
    """Mark ``outcome`` stale when its fetch failed or its last bar lags its calendar by more than the plan allows.

    Cron mails only on a non-zero exit: a forecast from old data is still
    written (it is the best there is), but the ticker is not ok, and says why.
    """
    from forecast.data.calendar import TradingCalendar, default_calendar

    head = MarketStore(plan.workspace).head(outcome.ticker)
    calendar = TradingCalendar(head.calendar) if head.calendar else default_calendar(parse_ticker(outcome.ticker))
    outcome.sessions_behind = calendar.sessions_missed(head.last_date, plan.today)
    last = head.last_date.date().isoformat()
    if fetch_error is not None:
        outcome.stale, outcome.error = True, redact(f"stale: its fetch failed ({fetch_error}); forecast from the bar of {last}")
    elif outcome.sessions_behind > plan.stale_after_days and head.source != "sample":  # the bundled sample is fixed by design
        outcome.stale = True
        outcome.error = (f"stale: its last bar is of {last}, {outcome.sessions_behind} trading days before {plan.today} "
                         f"(stale_after_days = {plan.stale_after_days} in forecast.toml); fetch it, or check its source")
    if outcome.stale:
        outcome.exit_code = int(ExitCode.PARTIAL)  # the run's log names it once, with the other tickers that are not ok


def run_daily(home: Workspace | Path | str | None, config: AppConfig, tickers: list[str] | None = None,
              outdir: Path | None = None, today: dt.date | None = None, wait_s: float = 600.0,
              train_overrides: dict | None = None, executor: Executor | None = None,
              progress: ProgressReporter | None = None) -> RunSummary:
    """Do the day's work for every ticker and write outputs plus ``summary.json``, whatever fails.

    ``progress`` hears of each ticker's day as it ends (tickers done out of the total).
    """
    workspace = Workspace.at(home)
    today = today or dt.date.today()
    out_root = workspace.outdir(outdir or config.outdir)
    day_dir = Workspace.day_dir(out_root, today.isoformat())
    summary = RunSummary(today.isoformat(), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    say_where(workspace, out_root, summary, outdir or config.outdir)
    with run_lock(workspace, wait_s):
        outcomes: dict[str, TickerOutcome] = {}  # in the order the user named them, duplicates merged
        for text in tickers or list(config.tickers):
            try:
                name = str(parse_ticker(text))
                outcomes.setdefault(name, TickerOutcome(name))
            except ForecastError as exc:
                outcomes[text] = TickerOutcome(text, error=redact(str(exc)), exit_code=int(exc.exit_code))
        valid = [name for name, outcome in outcomes.items() if outcome.error is None]
        try:
            _run_tickers(workspace, config, DailyPlan(workspace, day_dir, today, config.retrain_after_days,
                                                      config.train_config(train_overrides), config.levels,
                                                      cached_names(workspace), config.stale_after_days),
                         [outcomes[t] for t in valid], executor or SerialExecutor(), progress or SilentProgress())
        except Exception as exc:  # a failure shared by every ticker (a bad [train] table...): still summarise the day
            code = int(exc.exit_code) if isinstance(exc, ForecastError) else int(ExitCode.INTERNAL)
            message = redact(str(exc) if isinstance(exc, ForecastError) else f"internal error: {type(exc).__name__}: {exc}")
            log.warning("run: %s", message)
            for t in valid:
                if not outcomes[t].ok and outcomes[t].error is None:
                    outcomes[t].error, outcomes[t].exit_code = message, code
        summary.tickers = list(outcomes.values())
        ok = sum(o.ok for o in summary.tickers)
        summary.exit_code = int(ExitCode.OK if ok == len(summary.tickers) and ok else ExitCode.PARTIAL if ok else ExitCode.ALL_FAILED)
        summary.finished_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        page = _daily_report(workspace, config, summary, day_dir, today)
        publish(workspace, summary, day_dir, Workspace.published_dir(out_root), report=page)
    return summary


def _daily_report(workspace: Workspace, config: AppConfig, summary: RunSummary, day_dir: Path, today: dt.date) -> Path | None:
    """Write the day's HTML report (``index.html``) beside its files; a failure costs the page, never the summary."""
    from forecast.outputs.report import write_report

    page = Workspace.daily_report(day_dir)
    try:
        write_report(workspace, [o.ticker for o in summary.tickers if is_ticker(o.ticker)], page,
                     failures={o.ticker: o.error or "failed" for o in summary.tickers if not o.ok},
                     colors=config.colors, today=today)
    except Exception as exc:  # the page is extra: the day's outputs and summary stand without it
        log.warning("run: the HTML report was not written (%s: %s)", type(exc).__name__, redact(str(exc)))
        manifest.remove_written(workspace, day_dir, [page.name], manifest.read(workspace, day_dir))  # an earlier run's page
        return None
    return page


@dataclass
class DailyJob:
    """One ticker's day as a function of the ticker alone: ticker -> its TickerOutcome, failed or not.

    It pickles (the pool and Ray run it in other processes), so it carries the
    fetch's results in, and hands the outcome back whole: what was done before
    a failure (a retrain, a fetch warning) is kept beside the error.
    """

    plan: DailyPlan
    fetched_new_rows: dict[str, int]
    fetch_errors: dict[str, ForecastError]
    _models: object = field(default=None, init=False, repr=False, compare=False)  # LoadedModels, one per process

    def __call__(self, ticker: str) -> TickerOutcome:
        if self._models is None:
            from forecast.models.predicting import LoadedModels

            self._models = LoadedModels(ModelRegistry(self.plan.workspace))  # each network loaded once per process
        outcome = TickerOutcome(ticker, fetched_new_rows=self.fetched_new_rows.get(ticker, 0))
        done = run_job(lambda t: daily_ticker(self.plan, outcome, self._models, self.fetch_errors.get(t)), ticker)
        if not done.ok:
            outcome.ok, outcome.error, outcome.exit_code = False, done.error, done.exit_code
        return outcome

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_models": None}  # loaded networks stay in the process that loaded them


def _run_tickers(workspace: Workspace, config: AppConfig, plan: DailyPlan, outcomes: list[TickerOutcome],
                 executor: Executor, progress: ProgressReporter) -> None:
    """Fetch every ticker at once, then map the per-ticker day over them; results land in ``outcomes``."""
    by_ticker = {o.ticker: o for o in outcomes}
    new_rows, fetch_errors = _fetch(MarketStore(workspace), config, list(by_ticker)) if by_ticker else ({}, {})
    for ticker, outcome in by_ticker.items():
        outcome.fetched_new_rows = new_rows.get(ticker, 0)

    def advance(result: Outcome[TickerOutcome]) -> None:
        progress.advance(result.item, failed=not (result.ok and result.value is not None and result.value.ok))

    progress.start(len(by_ticker), "run")
    try:
        results = executor.map(DailyJob(plan, new_rows, fetch_errors), list(by_ticker), on_done=advance)
    finally:
        progress.close()
    for result in results:
        outcome = by_ticker[result.item]
        if result.ok and result.value is not None:
            vars(outcome).update(vars(result.value))  # the worker's copy, back into the run's summary
        else:  # the worker itself was lost: nothing of its day came back
            outcome.ok, outcome.error, outcome.exit_code = False, result.error, result.exit_code
        if not outcome.ok:
            log.warning("%s: %s", outcome.ticker, outcome.error)
