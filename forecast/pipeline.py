"""The daily job (``forecast run``): fetch, retrain when stale, predict, chart.

Built for cron: one ticker's failure does not stop the others, a second
overlapping run waits a bounded time for the first, a re-run on the same day
repeats nothing, and a machine-readable summary is written every time.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from forecast.atomic import atomic_write_text
from forecast.config import AppConfig, build_train_config
from forecast.errors import ExitCode, ForecastError
from forecast.jsonio import dumps
from forecast.locks import hold_lock
from forecast.registry import ModelRegistry
from forecast.store import MarketStore, resolve_home
from forecast.tickers import parse_ticker

log = logging.getLogger(__name__)


@dataclass
class TickerOutcome:
    ticker: str
    ok: bool = False
    fetched_new_rows: int = 0
    retrained: bool = False
    model_id: str | None = None
    last_date: str | None = None
    outputs: dict = field(default_factory=dict)
    error: str | None = None
    exit_code: int = 0


@dataclass
class RunSummary:
    run_date: str
    started_at: str
    finished_at: str = ""
    exit_code: int = 0
    tickers: list[TickerOutcome] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def run_lock(home: Path, wait_s: float):
    """Only one daily job per home at a time; the second waits at most ``wait_s``."""
    return hold_lock(home / ".run.lock", wait_s, f"another forecast run is in progress in {home} (waited {wait_s:.0f} s)")


def needs_training(registry: ModelRegistry, ticker: str, retrain_after_days: int | None, today: dt.date) -> str | None:
    """Return why the ticker needs (re)training, or None if its model is fresh enough."""
    model_id = registry.latest_id(ticker)
    if model_id is None:
        return "no model yet"
    if retrain_after_days is None:
        return None
    created = dt.datetime.fromisoformat(registry.metadata(model_id)["created_at"]).date()
    age = (today - created).days
    return f"model is {age} days old (retrain after {retrain_after_days})" if age >= retrain_after_days else None


def _fetch(store: MarketStore, config: AppConfig, tickers: list[str]) -> tuple[dict, dict]:
    """Return ({ticker: new rows}, {ticker: error}) for the configured source."""
    from forecast import fetching

    new_rows, errors = {}, {}
    if config.source == "sample":
        for t in tickers:
            try:
                if store.has(t) and store.read(t).source == "sample":
                    new_rows[t] = 0  # the bundled sample never changes: nothing to redo
                else:
                    new_rows[t] = fetching.import_sample(store, t).new_rows
            except ForecastError as exc:
                errors[t] = exc
        return new_rows, errors
    if config.source == "tushare":
        from forecast.sources.tushare_pro import TushareClient

        try:
            client = TushareClient(config.tushare_token)
            reports, failures = fetching.update_from_tushare(store, tickers, client)
        except ForecastError as exc:  # e.g. a bad token: every ticker fails the same way
            return {}, {t: exc for t in tickers}
        new_rows = {r.ticker: r.new_rows for r in reports}
        errors = {f.ticker: f.error for f in failures}
        return new_rows, errors
    # csv: nothing to fetch; the stored series is used as it is
    return {t: 0 for t in tickers}, {}


def run_daily(home: Path | str | None, config: AppConfig, tickers: list[str] | None = None, outdir: Path | None = None,
              today: dt.date | None = None, wait_s: float = 600.0, train_overrides: dict | None = None) -> RunSummary:
    """Do the day's work for every ticker and write outputs plus ``summary.json``."""
    from forecast.charts import render
    from forecast.predicting import LoadedModels, predict_ticker, save_forecast
    from forecast.training import train_ticker

    home = resolve_home(home)
    today = today or dt.date.today()
    outdir = Path(outdir or config.outdir)
    outdir = outdir if outdir.is_absolute() else home / outdir
    summary = RunSummary(today.isoformat(), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    names = tickers or list(config.tickers)
    with run_lock(home, wait_s):
        store, registry = MarketStore(home), ModelRegistry(home)
        outcomes: dict[str, TickerOutcome] = {}  # in the order the user named them, duplicates merged
        for text in names:
            try:
                name = str(parse_ticker(text))
                outcomes.setdefault(name, TickerOutcome(name))
            except ForecastError as exc:
                outcomes[text] = TickerOutcome(text, error=str(exc), exit_code=int(exc.exit_code))
        valid = [name for name, outcome in outcomes.items() if outcome.error is None]
        new_rows, fetch_errors = _fetch(store, config, valid) if valid else ({}, {})
        train_cfg = build_train_config(config.preset, config.train, train_overrides)
        loaded = LoadedModels(registry)
        day_dir = outdir / today.isoformat()
        for t in valid:
            outcome = outcomes[t]
            outcome.fetched_new_rows = new_rows.get(t, 0)
            if t in fetch_errors:
                log.warning("%s: fetch failed: %s", t, fetch_errors[t])
                if not store.has(t):
                    outcome.error, outcome.exit_code = str(fetch_errors[t]), int(fetch_errors[t].exit_code)
                    continue
                outcome.outputs["fetch_warning"] = f"fetch failed, forecasting from stored data: {fetch_errors[t]}"
            try:
                reason = needs_training(registry, t, config.retrain_after_days, today)
                if reason:
                    log.info("%s: training (%s)", t, reason)
                    train_ticker(store, registry, t, train_cfg)
                    outcome.retrained = True
                result = predict_ticker(store, registry, t, models=loaded)
                save_forecast(home, result)
                outcome.model_id, outcome.last_date = result.model_id, result.last_date
                csv_path, json_path, png_path = day_dir / f"{t}.csv", day_dir / f"{t}.json", day_dir / f"{t}.png"
                atomic_write_text(csv_path, result.to_frame().to_csv(index=False))
                atomic_write_text(json_path, dumps(result.to_dict()))
                render(home, t, "forecast", out=png_path)
                outcome.outputs.update({"csv": str(csv_path), "json": str(json_path), "chart": str(png_path)})
                outcome.ok = True
            except ForecastError as exc:
                log.warning("%s: %s", t, exc)
                outcome.error, outcome.exit_code = str(exc), int(exc.exit_code)
        summary.tickers = list(outcomes.values())
        ok = sum(o.ok for o in summary.tickers)
        summary.exit_code = int(ExitCode.OK if ok == len(summary.tickers) and ok else ExitCode.PARTIAL if ok else ExitCode.ALL_FAILED)
        summary.finished_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        _publish(summary, day_dir, outdir / "latest")
    return summary


def _publish(summary: RunSummary, day_dir: Path, latest_dir: Path) -> None:
    """Write the summary, then mirror the day's folder into ``latest/`` file by file (atomically)."""
    text = dumps(summary.to_dict())
    atomic_write_text(day_dir / "summary.json", text)
    latest_dir.mkdir(parents=True, exist_ok=True)
    for path in day_dir.iterdir():
        if path.is_file():
            tmp = latest_dir / f".{path.name}.copy"
            shutil.copyfile(path, tmp)
            tmp.replace(latest_dir / path.name)
