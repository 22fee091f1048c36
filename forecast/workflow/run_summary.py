"""What a daily run reports, and how its files are published: the summary of ``forecast run``.

Each ticker's ``TickerOutcome`` and the run's ``RunSummary`` (``summary.json``,
written every time, also for a run that could not start); ``publish`` writes it
and makes ``latest/`` hold this run's files instead of the last run's, removing
only files the job itself wrote (``manifest``), never a user's.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

from forecast.atomic import atomic_write_text
from forecast.data.tickers import parse_ticker
from forecast.errors import ForecastError
from forecast.jsonio import dumps
from forecast.redact import redact, redact_value
from forecast.workflow import manifest
from forecast.workspace import DAILY_OUTPUTS, Workspace

log = logging.getLogger("forecast.workflow.pipeline")  # the run's own log, as manifest's: these lines are part of its story


@dataclass
class TickerOutcome:
    ticker: str
    ok: bool = False
    fetched_new_rows: int = 0
    retrained: bool = False
    model_id: str | None = None
    model_choice: str | None = None  # why that model: "pinned" (forecast models use) or "latest"
    last_date: str | None = None
    outputs: dict = field(default_factory=dict)
    error: str | None = None
    exit_code: int = 0
    stale: bool = False  # forecast from old data (its fetch failed, or its last bar is too old): written, but not ok
    sessions_behind: int | None = None  # trading days of its calendar between its last bar and the run's day

    @property
    def written(self) -> bool:
        """The ticker's forecast files were written today: it worked, or was forecast from stale data."""
        return self.ok or self.stale


@dataclass
class RunSummary:
    run_date: str
    started_at: str
    finished_at: str = ""
    exit_code: int = 0
    tickers: list[TickerOutcome] = field(default_factory=list)
    outdir: str = ""  # where the day's files went, links followed
    outdir_outside_home: bool = False  # True: that folder is not under the home (the setting, or a link, leads out)

    def to_dict(self) -> dict:
        return cast(dict, redact_value(asdict(self)))


def say_where(workspace: Workspace, out_root: Path, summary: RunSummary, configured: Path | str | None = None) -> None:
    """Record in ``summary`` where the day's files go; warn, every run, when that is outside the home."""
    outside = workspace.outdir_outside(out_root)
    summary.outdir = str(outside[0] if outside else out_root.resolve())
    summary.outdir_outside_home = outside is not None
    if outside:
        folder, reason = outside
        why = f"outdir = {str(configured or out_root)!r}" if reason == "outdir" else reason
        log.warning("run: the daily outputs go to %s, outside the home %s (%s)", folder, workspace.root, why)


def record_failed_run(home: Workspace | Path | str | None, message: str, exit_code: int, tickers: list[str] | None = None,
                      today: dt.date | None = None, outdir: Path | str | None = None) -> RunSummary:
    """Write the summary of a run that could not start (an invalid forecast.toml, no tickers) into ``outdir`` (default: daily/)."""
    workspace = Workspace.at(home, lock_timeout_s=0)
    today = today or dt.date.today()
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    summary = RunSummary(today.isoformat(), now, now, int(exit_code),
                         [TickerOutcome(t, error=redact(message), exit_code=int(exit_code)) for t in tickers or []])
    out_root = workspace.outdir(outdir)
    say_where(workspace, out_root, summary, outdir)
    publish(workspace, summary, Workspace.day_dir(out_root, today.isoformat()), Workspace.published_dir(out_root),
             error=redact(message))
    return summary


def is_ticker(text: str) -> bool:
    try:
        return str(parse_ticker(text)) == text
    except ForecastError:
        return False


def publish(workspace: Workspace, summary: RunSummary, day_dir: Path, latest_dir: Path, error: str | None = None,
             report: Path | None = None) -> None:
    """Write the summary, then make ``latest/`` hold this run's files (each copied atomically) instead of the last run's.

    A ticker that failed today gets ``<TICKER>.failed.json`` there instead of
    yesterday's forecast, so nobody mistakes a stale file for today's. Only
    files the job itself wrote are ever removed, in either folder: those its
    manifest names, unchanged since (see ``manifest.remove_written``). Anything else
    found there, a user's file or one an older version left, stays. Either
    folder may be a link (a bigger disk): it is written through, never replaced.
    """
    day_written = manifest.read(workspace, day_dir)
    summary_file = Workspace.daily_summary(day_dir)
    atomic_write_text(summary_file, dumps({**summary.to_dict(), **({"error": error} if error else {})}))
    fresh = {summary_file.name: summary_file}
    if report is not None:
        fresh[report.name] = report
    for outcome in summary.tickers:
        for key in DAILY_OUTPUTS:
            if outcome.written and key in outcome.outputs:
                path = Path(outcome.outputs[key])
                fresh[path.name] = path
        if not is_ticker(outcome.ticker):  # text that never parsed as a ticker names no file
            continue
        marker = Workspace.daily_failure(day_dir, outcome.ticker)
        if outcome.written:  # an earlier run today failed; this one did not
            manifest.remove_written(workspace, day_dir, [marker.name], day_written)
        else:  # an earlier run today worked; its files are not this run's
            manifest.remove_written(workspace, day_dir, [p.name for p in Workspace.daily_outputs(day_dir, outcome.ticker).values()],
                            day_written)
            atomic_write_text(marker, dumps({"ticker": outcome.ticker, "error": outcome.error,
                                             "exit_code": outcome.exit_code, "run_date": summary.run_date}))
            fresh[marker.name] = marker
    # The day's folder keeps what earlier runs of today wrote for other tickers: the manifest goes on naming those.
    kept = {name: stamp for name, stamp in day_written.items() if name not in fresh and manifest.unchanged(day_dir / name, stamp)}
    manifest.write(workspace, day_dir, {**kept, **manifest.stamps(day_dir, fresh)})

    latest_dir.mkdir(parents=True, exist_ok=True)
    if latest_dir.is_symlink():
        log.info("run: %s is a link to %s: the day's files are written there, and only files forecast wrote are removed",
                 latest_dir, latest_dir.resolve())
    last_written = manifest.read(workspace, latest_dir)
    for name, path in fresh.items():
        tmp = latest_dir / f".{name}.copy"
        manifest.copy_no_follow(path, tmp)
        tmp.replace(latest_dir / name)  # a link found at the name is replaced, never written through
    published = manifest.stamps(latest_dir, fresh)
    stale = [name for name in last_written if name not in fresh]
    # First the manifest names the stale files too, so a kill while they are removed still leaves them known as ours.
    manifest.write(workspace, latest_dir, {**{n: last_written[n] for n in stale}, **published})
    manifest.remove_written(workspace, latest_dir, stale, last_written)
    manifest.write(workspace, latest_dir, published)
    others = sorted(p.name for p in latest_dir.iterdir() if not p.name.startswith(".") and p.name not in fresh)
    if others:
        log.info("run: left in %s, as forecast did not write them (or they changed since): %s", latest_dir,
                 ", ".join(others[:20]) + (f" and {len(others) - 20} more" if len(others) > 20 else ""))
