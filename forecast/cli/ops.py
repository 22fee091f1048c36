"""Operations: ``run`` (the daily cron job), ``doctor`` (check the home, quarantine what is unreadable) and ``config show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from forecast.choices import ExecutorKind, Source
from forecast.cli._logging import add_log_file
from forecast.cli._options import (
    CommandError,
    ConfigOpt,
    ExecutorOpt,
    JsonFlag,
    RayAddressOpt,
    WorkersOpt,
    emit_json,
    executor_for,
    quiet_option,
    resolve_targets,
    universe_option,
)
from forecast.cli._state import state
from forecast.errors import ForecastError

config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


@config_app.command("show")
def config_show(config: ConfigOpt = None, as_json: JsonFlag = False) -> None:
    """Print the effective configuration (file < environment), secrets masked."""
    from forecast.workflow.settings import load_app_config

    # the tickers too, with every other problem at once: run would still do the good ones; here the file is checked
    app_config = load_app_config(state.workspace(), config, strict_tickers=True)
    effective = {"home": str(state.workspace().root), **app_config.masked()}
    if as_json:
        emit_json(effective)
        return
    for key, value in effective.items():
        typer.echo(f"{key} = {json.dumps(value, ensure_ascii=False)}")


def run(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers (default: the config's tickers), or --universe NAME.")] = None,
    universe: Annotated[Optional[str], universe_option("Run the day for every member of a universe today, fetching each as run does.")] = None,
    config: ConfigOpt = None,
    retrain_after: Annotated[Optional[str], typer.Option(help="Retrain models older than DAYS days, or 'never' (only when missing).")] = None,
    outdir: Annotated[Optional[Path], typer.Option(file_okay=False, help="Output folder (default: <home>/daily): <outdir>/<date>/ and <outdir>/latest/.")] = None,
    source: Annotated[Optional[Source], typer.Option(help="Override the config's data source.")] = None,
    wait: Annotated[float, typer.Option(min=0, help="Seconds to wait for an overlapping run before giving up (exit 7).")] = 600.0,
    log_file: Annotated[Optional[Path], typer.Option(dir_okay=False, help="Also append timestamped logs to this file.")] = None,
    quiet: Annotated[bool, quiet_option("Print nothing on success; errors still go to stderr.")] = False,
    executor: ExecutorOpt = ExecutorKind.LOCAL,
    workers: WorkersOpt = 1,
    ray_address: RayAddressOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """The daily job for cron: fetch, retrain when stale, predict, and write CSV, JSON and a chart per ticker (or --universe NAME)."""
    if log_file is not None:  # first: a bad path fails before any work
        add_log_file(log_file)
    try:
        runner = executor_for(executor, workers, ray_address)  # Ray not installed: exit 2 before any work
        cfg = state.app_config(config)
        tickers = resolve_targets(tickers, universe, required=False).tickers or None  # None: the config's tickers
    except CommandError:  # wrong arguments (tickers and --universe): nothing to summarise, latest/ stays as it was
        raise
    except ForecastError as exc:  # cron still finds a summary.json that says why nothing ran (a bad config, an unknown universe)
        from forecast.workflow.run_summary import record_failed_run

        record_failed_run(state.workspace(), str(exc), int(exc.exit_code), tickers)
        raise
    from forecast.progress import make_progress, progress_mode
    from forecast.workflow.daily_plan import daily_config, log_done
    from forecast.workflow.pipeline import run_daily

    cfg = daily_config(state.workspace(), cfg, tickers, outdir, retrain_after, source.value if source is not None else None)
    summary = run_daily(state.workspace(), cfg, tickers, outdir, wait_s=wait, executor=runner,
                        progress=make_progress(progress_mode(quiet, as_json)))  # tickers done; nothing with --quiet
    log_done(summary)
    if as_json:
        emit_json(summary.to_dict())
    elif not quiet:
        for outcome in summary.tickers:
            if outcome.ok or outcome.stale:
                typer.echo(f"{outcome.ticker}: forecast from {outcome.last_date} by {outcome.model_id} ({outcome.model_choice})"
                           f" -> {outcome.outputs['chart']}")
    raise typer.Exit(summary.exit_code)


def doctor(
    repair: Annotated[bool, typer.Option("--repair", help="Move what cannot be read into <home>/quarantine/<UTC time>/ "
                                                          "(no data is deleted; an empty folder where a lock file belongs is removed), point pointers at "
                                                          "the newest valid model, "
                                                          "and say what to re-fetch or retrain.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check the home, the store, the models, their pointers, pins and locks, and the stored results; exit 3 while problems
    remain (4 if the home does not exist); --repair moves them aside."""
    from forecast.workflow.daily_plan import daily_outdir
    from forecast.workflow.doctor import examine, exit_code, healthy, linked_folders
    from forecast.workflow.doctor import repair as quarantine

    workspace = state.workspace(checked=False)  # a home that is a file is the doctor's first finding
    outdir = daily_outdir(workspace)
    findings = examine(workspace, outdir)
    if repair and findings:
        findings = quarantine(workspace, findings, outdir)
    linked = linked_folders(workspace)
    if as_json:
        report: dict = {"findings": [f.to_dict() for f in findings], "healthy": healthy(findings)}
        if linked:  # informational; only when there are some
            report["linked"] = [{"path": str(link), "target": str(target)} for link, target in linked]
        emit_json(report)
    else:
        for finding in findings:
            typer.echo(finding.line(workspace.root))
        for link, target in linked:
            typer.echo(f"linked: {link.relative_to(workspace.root)} -> {target}")
        typer.echo(_doctor_summary(workspace, findings, repair))
    code = exit_code(findings)
    if code:
        raise typer.Exit(code)


def _doctor_summary(workspace, findings, repaired: bool) -> str:
    """``healthy``, ``N problem(s)``, or after --repair ``N moved to quarantine/<stamp>/`` (and what was left)."""
    if not findings:
        return "healthy"
    folder = workspace.quarantine_dir.relative_to(workspace.root)
    if any(f.kind == "home" for f in findings):
        return f"{len(findings)} problem(s); the home must be fixed first: --repair changes nothing until it is"
    if not repaired:
        return f"{len(findings)} problem(s); forecast doctor --repair moves them into {folder}/"
    moved = [f.moved_to for f in findings if f.moved_to is not None and f.moved_to.is_relative_to(workspace.quarantine_dir)]
    fixed = sum(1 for f in findings if f.moved_to is not None) - len(moved)  # removed in place (an empty lock folder)
    stamps = sorted({m.relative_to(workspace.quarantine_dir).parts[0] for m in moved})
    left = sum(1 for f in findings if f.moved_to is None)
    parts = [f"{len(moved)} moved to {folder}/{stamps[0]}/"] if stamps else [] if fixed else ["nothing moved"]
    return "; ".join(parts + ([f"{fixed} removed"] if fixed else []) + ([f"{left} left in place"] if left else []))
