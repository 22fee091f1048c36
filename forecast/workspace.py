"""The home's layout: the one module that knows where everything lives under ``<home>``.

::

    <home>/forecast.toml                 the workspace's settings
    <home>/data/bars/<TICKER>.parquet    the market-data store (data/.lock for writers)
    <home>/data/universe/                listings.parquet (stock_basic), index-<CODE>.parquet (index_weight snapshots)
    <home>/data/calendar/<EXCHANGE>.parquet  the exchange's own calendar (tushare trade_cal)
    <home>/data/backfill/<NAME>.journal  the trading days a whole-market backfill has finished
    <home>/data/trading/<KIND>.parquet   the A-share trading rules' facts from tushare (stk_limit, suspend_d, namechange)
    <home>/models/<MODEL_ID>/            model.keras + metadata.json (models/.lock for writers)
    <home>/models/latest/<TICKER>        the id of the ticker's newest model
    <home>/models/.pinned/<TICKER>       the id of the model ``forecast models use`` chose for the ticker
    <home>/forecasts/<TICKER>/latest.json  the ticker's forecast of record (by the model in use for it)
    <home>/forecasts/<TICKER>/other/<MODEL>.json  a forecast by another model (predict --model), kept apart
    <home>/forecasts/@<UNIVERSE>/latest.json  a global model's forecasts of record of many tickers, one file per batch
    <home>/forecasts/@<UNIVERSE>/adaptive/<ID>.json  its bands' online recalibration, per ticker
    <home>/forecasts/@<UNIVERSE>/other.json   its forecasts of tickers another model serves (rank), kept apart
    <home>/backtests/<TICKER>/latest.{json,csv}
    <home>/backtests/@<UNIVERSE>/latest.{json,csv,png}  a universe's cross-sectional backtest
    <home>/backtests/@<UNIVERSE>/portfolio.{json,csv,png}, portfolio-positions.csv  its portfolio backtest
    <home>/models/global/<ID>/, models/global/.latest/<UNIVERSE>  universe (global) models
    <home>/charts/<TICKER>-<KIND>.png
    <home>/daily/<DATE>/, daily/latest/  the cron job's outputs (.run.lock: one run at a time); in each,
                                         .forecast-manifest.json names the files the job wrote there
    <home>/quarantine/                   unreadable files moved aside, never deleted

Every path built from data (a ticker, a model id, a metadata field) goes
through ``inside``, which refuses a name that would leave its folder: no
``..``, no separators, no leading dot. Other modules ask for paths here and
never spell a folder name themselves.

A folder of the home may be a link (a bigger disk): it is followed to read
and to write, and ``linked_folders`` lists every such link. Nothing found
behind one is deleted unless the product wrote it (the daily job's manifest).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from forecast.choices import UNIVERSE_MODEL
from forecast.errors import BadInputError, ConfigError
from forecast.home_rules import DEFAULT_LOCK_TIMEOUT_S, lock_timeout_from_env, outdir_problem, resolve_home, safe_name

CONFIG_NAME = "forecast.toml"
DEFAULT_OUTDIR = "daily"  # the daily job's outputs, relative to the home
DAILY_OUTPUTS = {"csv": "csv", "json": "json", "chart": "png"}  # a ticker's outputs in a daily folder: kind -> suffix
DAILY_FAILURE_SUFFIX = ".failed.json"  # <TICKER>.failed.json stands in a daily folder for a ticker whose day failed
MANIFEST_NAME = ".forecast-manifest.json"  # in a daily job's folder: the files the job wrote there (a dot-name: no output is it)
MODEL_FILE = "model.keras"
CARD_FILE = "metadata.json"
_LATEST = "latest"  # models/latest/ holds the pointers, so no model may be called that
_GLOBAL = UNIVERSE_MODEL  # models/global/ holds the universe models; no per-ticker id is this name
_PINNED = ".pinned"  # models/.pinned/ holds the pins; a dot-name, so no model id can be it and model scans skip it


@functools.lru_cache(maxsize=64)
def _resolved(folder: str) -> Path:
    """A home folder, links followed, once per process: the folders of a home do not move while a command runs."""
    return Path(folder).resolve()


@dataclass(frozen=True)
class Workspace:
    """Every path under one home. Cheap to build; creates nothing until something is written."""

    root: Path
    lock_timeout_s: float = field(default=DEFAULT_LOCK_TIMEOUT_S)

    @classmethod
    def at(cls, home: Workspace | Path | str | None = None, lock_timeout_s: float | None = None) -> Workspace:
        """Return the workspace for ``home`` (or $FORECAST_HOME, or the current directory)."""
        if isinstance(home, Workspace):
            return home if lock_timeout_s is None else cls(home.root, lock_timeout_s)
        timeout = lock_timeout_from_env() if lock_timeout_s is None else lock_timeout_s
        return cls(resolve_home(home), timeout)

    def inside(self, folder: Path, *names: str, what: str = "name") -> Path:
        """Return ``folder/names...`` after checking each name and that the result stays inside ``folder``.

        ``folder`` itself may be a link (a home whose data/ lives on another disk);
        a name that resolves out of it (a crafted link, ``..``) is refused.
        """
        path = folder
        for name in names:
            path = path / safe_name(name, what)
        try:
            # Safe names hold no separator and no "..": only a link among them can lead out of ``folder``, so the
            # path is followed (an lstat per component of the whole path) only when one of them is a link.
            linked = any(os.path.islink(folder.joinpath(*names[: i + 1])) for i in range(len(names)))
            escapes = linked and not path.resolve().is_relative_to(_resolved(str(folder)))
        except (RuntimeError, OSError):  # a link loop (Python 3.11 raises RuntimeError) or an unreadable link
            raise BadInputError(f"{what} {'/'.join(names)[:80]!r}: a link under {folder.name}/ loops or cannot be followed; "
                                "forecast doctor --repair moves it aside") from None
        if escapes:
            raise BadInputError(f"refusing a path outside {folder.name}/: {what} {'/'.join(names)[:80]!r}")
        return path

    # settings
    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_NAME

    # the market-data store
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def bars_dir(self) -> Path:
        return self.data_dir / "bars"

    @property
    def store_lock(self) -> Path:
        return self.data_dir / ".lock"

    def bars_file(self, ticker: object) -> Path:
        return self.inside(self.bars_dir, f"{ticker}.parquet", what="ticker")

    @property
    def universe_dir(self) -> Path:
        return self.data_dir / "universe"

    @property
    def listings_file(self) -> Path:
        return self.universe_dir / "listings.parquet"

    def index_file(self, index_code: object) -> Path:
        return self.inside(self.universe_dir, f"index-{index_code}.parquet", what="index code")

    @property
    def calendar_dir(self) -> Path:
        return self.data_dir / "calendar"

    def trade_calendar_file(self, exchange: str) -> Path:
        return self.inside(self.calendar_dir, f"{exchange}.parquet", what="exchange")

    @property
    def trading_dir(self) -> Path:
        return self.data_dir / "trading"

    def trading_file(self, kind: object) -> Path:
        """One kind of trading-rule facts (``stk_limit``, ``suspend_d``, ``namechange``), for every ticker fetched."""
        return self.inside(self.trading_dir, f"{kind}.parquet", what="trading-rule table")

    @property
    def backfill_dir(self) -> Path:
        return self.data_dir / "backfill"

    @property
    def backfill_lock(self) -> Path:
        return self.backfill_dir / ".lock"

    def backfill_journal(self, name: str) -> Path:
        return self.inside(self.backfill_dir, f"{name}.journal", what="backfill name")

    # the model registry
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def registry_lock(self) -> Path:
        return self.models_dir / ".lock"

    def model_dir(self, model_id: str) -> Path:
        if model_id in (_LATEST, _GLOBAL):
            raise BadInputError(f"not a model id: {model_id!r} (models/{model_id}/ is the registry's own folder)")
        return self.inside(self.models_dir, model_id, what="model id")

    def model_file(self, model_id: str) -> Path:
        return self.model_dir(model_id) / MODEL_FILE

    def model_card_file(self, model_id: str) -> Path:
        return self.model_dir(model_id) / CARD_FILE

    def model_staging_dir(self, model_id: str) -> Path:
        return self.model_dir(model_id).with_name(f".staging-{model_id}-{os.getpid()}")

    @property
    def latest_dir(self) -> Path:
        return self.models_dir / _LATEST

    def latest_pointer(self, ticker: object) -> Path:
        return self.inside(self.latest_dir, str(ticker), what="ticker")

    @property
    def pinned_dir(self) -> Path:
        return self.models_dir / _PINNED

    def pin_file(self, ticker: object) -> Path:
        """The file naming the model ``predict`` and ``run`` use for ``ticker`` instead of its latest."""
        return self.inside(self.pinned_dir, str(ticker), what="ticker")

    # universe models (one network for many tickers), beside the per-ticker ones
    @property
    def global_models_dir(self) -> Path:
        return self.models_dir / _GLOBAL

    def global_model_dir(self, model_id: str) -> Path:
        return self.inside(self.global_models_dir, model_id, what="model id")

    def global_model_staging_dir(self, model_id: str) -> Path:
        """Where a global model is built before its folder is renamed into place (a dot-name: scans skip it)."""
        return self.global_model_dir(model_id).with_name(f".staging-{model_id}-{os.getpid()}")

    @property
    def global_latest_dir(self) -> Path:
        return self.global_models_dir / ".latest"  # a dot-name: no model id can be it and model scans skip it

    def global_latest_pointer(self, universe: object) -> Path:
        return self.inside(self.global_latest_dir, str(universe), what="universe")

    # stored results that charts and reports read
    @property
    def forecasts_dir(self) -> Path:
        return self.root / "forecasts"

    @property
    def backtests_dir(self) -> Path:
        return self.root / "backtests"

    @property
    def charts_dir(self) -> Path:
        return self.root / "charts"

    def forecast_file(self, ticker: object) -> Path:
        return self.inside(self.forecasts_dir, str(ticker), what="ticker") / "latest.json"

    def forecast_batch_file(self, universe: object) -> Path:
        """A global model's latest forecasts of its universe's tickers, together ("@": no ticker starts with it)."""
        return self.inside(self.forecasts_dir, f"@{universe}", what="universe") / "latest.json"

    def forecast_batch_lock(self, universe: object) -> Path:
        """Held while a batch file is read, merged and replaced, so two predicts of one universe lose nothing."""
        return self.forecast_batch_file(universe).with_name(".lock")

    def forecast_batch_files(self) -> list[Path]:
        """Every stored forecast batch file."""
        if not self.forecasts_dir.is_dir():
            return []
        return sorted(p / "latest.json" for p in self.forecasts_dir.glob("@*") if (p / "latest.json").is_file())

    def forecast_other_file(self, ticker: object, model: object) -> Path:
        """A forecast of the ticker by a model other than the one in use for it (``predict --model``): kept apart from
        its forecast of record, the newest one per model."""
        return self.inside(self.forecasts_dir, str(ticker), "other", f"{model}.json", what="ticker or model")

    def forecast_other_files(self, ticker: object) -> list[Path]:
        """Every forecast of the ticker kept apart in its own folder."""
        folder = self.forecast_file(ticker).parent / "other"
        return sorted(folder.glob("*.json")) if folder.is_dir() else []

    def forecast_batch_other_file(self, universe: object) -> Path:
        """A global model's forecasts of tickers another model serves (``rank``, ``predict --model global``): kept apart."""
        return self.forecast_batch_file(universe).with_name("other.json")

    def forecast_batch_other_files(self) -> list[Path]:
        """Every batch of forecasts kept apart."""
        if not self.forecasts_dir.is_dir():
            return []
        return sorted(p / "other.json" for p in self.forecasts_dir.glob("@*") if (p / "other.json").is_file())

    def adaptive_state_file(self, ticker: object, model: object) -> Path:
        """The online recalibration of ``model``'s bands on ``ticker`` (maths/adaptive_intervals.py), kept beside the
        ticker's forecasts: a baseline has no model folder, and the state is read from the stored bars as a forecast is."""
        return self.inside(self.forecasts_dir, str(ticker), "adaptive", f"{model}.json", what="ticker or model")

    def batch_adaptive_state_file(self, universe: object, model: object) -> Path:
        """A universe model's online recalibration on each ticker it forecast (models/pooled/recalibration.py)."""
        return self.inside(self.forecast_batch_file(universe).parent, "adaptive", f"{model}.json", what="model")

    def backtest_json(self, ticker: object) -> Path:
        return self.inside(self.backtests_dir, str(ticker), what="ticker") / "latest.json"

    def backtest_csv(self, ticker: object) -> Path:
        return self.backtest_json(ticker).with_suffix(".csv")

    def cross_backtest_json(self, universe: object) -> Path:
        """A universe's cross-sectional backtest: ``backtests/@<universe>/`` ("@": no ticker starts with it)."""
        return self.inside(self.backtests_dir, f"@{universe}", what="universe") / "latest.json"

    def cross_backtest_csv(self, universe: object) -> Path:
        return self.cross_backtest_json(universe).with_suffix(".csv")

    def cross_backtest_chart(self, universe: object) -> Path:
        return self.cross_backtest_json(universe).with_suffix(".png")

    def portfolio_json(self, universe: object) -> Path:
        """A universe's portfolio backtest (its daily NAV in the .csv beside it, its chart in the .png)."""
        return self.cross_backtest_json(universe).with_name("portfolio.json")

    def portfolio_csv(self, universe: object) -> Path:
        return self.portfolio_json(universe).with_suffix(".csv")

    def portfolio_chart(self, universe: object) -> Path:
        return self.portfolio_json(universe).with_suffix(".png")

    def portfolio_positions_csv(self, universe: object) -> Path:
        return self.portfolio_json(universe).with_name("portfolio-positions.csv")

    def chart_file(self, ticker: object, kind: object) -> Path:
        return self.inside(self.charts_dir, f"{ticker}-{kind}.png", what="ticker")

    # the daily job
    @property
    def run_lock(self) -> Path:
        return self.root / ".run.lock"

    def outdir(self, configured: Path | str | None = None) -> Path:
        """Return the daily job's output folder: ``configured`` (relative to the home) or ``daily/``.

        A folder that is, or lies in, one of the home's own folders (``models/``,
        ``data/``...) is refused (ConfigError): the job's files would be read as
        models or bars there. One outside the home is allowed; ``outdir_outside``
        says so.
        """
        chosen = Path(configured) if configured else Path(DEFAULT_OUTDIR)
        path = chosen if chosen.is_absolute() else self.root / chosen
        problem = outdir_problem(str(configured or DEFAULT_OUTDIR), self.root)
        if problem:
            raise ConfigError(f"outdir {str(configured)[:120]!r}: {problem}")
        return path

    def outdir_outside(self, outdir: Path) -> tuple[Path, str] | None:
        """Where ``outdir`` really is and why, if that is outside the home: (resolved folder, reason); None if inside.

        The reason is ``"outdir"`` when the setting itself leads out (``../x``, an
        absolute path), else the linked folder that does (``"daily is a link"``).
        """
        root = _resolved(str(self.root))
        resolved = outdir.resolve()
        if resolved.is_relative_to(root):
            return None
        written = Path(os.path.normpath(outdir))
        if not written.is_relative_to(self.root):
            return resolved, "outdir"
        link = next((p for p in [written, *written.parents] if p.is_relative_to(self.root) and os.path.islink(p)), None)
        return resolved, f"{link.relative_to(self.root) if link else written} is a link"

    @staticmethod
    def day_dir(outdir: Path, day: str) -> Path:
        return outdir / day

    @staticmethod
    def daily_outputs(folder: Path, ticker: str) -> dict[str, Path]:
        """A ticker's files in a daily folder, by kind: ``csv`` and ``json`` (the forecast) and ``chart`` (its PNG)."""
        return {kind: folder / f"{ticker}.{suffix}" for kind, suffix in DAILY_OUTPUTS.items()}

    @staticmethod
    def daily_failure(folder: Path, ticker: str) -> Path:
        """The file that stands in a daily folder for a ticker whose day failed, instead of its outputs."""
        return folder / f"{ticker}{DAILY_FAILURE_SUFFIX}"

    @staticmethod
    def daily_summary(folder: Path) -> Path:
        return folder / "summary.json"

    @staticmethod
    def daily_report(folder: Path) -> Path:
        """The day's HTML report."""
        return folder / "index.html"

    @staticmethod
    def published_dir(outdir: Path) -> Path:
        return outdir / "latest"

    @staticmethod
    def manifest_file(folder: Path) -> Path:
        """The list of files the daily job wrote in ``folder`` (``<date>/`` or ``latest/``): the only ones it may remove."""
        return folder / MANIFEST_NAME

    def linked_folders(self) -> list[tuple[Path, Path]]:
        """Every link in the home that leads to a folder, as (the link's path, the folder it resolves to), sorted.

        Links are not followed while looking, so a folder behind a link is named
        once and never searched; links to files and dangling links are left out.
        """
        found = []
        for top, dirs, files in os.walk(self.root):  # links to folders show up in ``dirs`` and are not descended
            for name in dirs + files:
                path = Path(top) / name
                if os.path.islink(path):
                    try:
                        if path.is_dir():
                            found.append((path, path.resolve()))
                    except (OSError, RuntimeError):  # a loop or an unreadable link: not a folder anyone can use
                        continue
        return sorted(found)

    # repairs
    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"
