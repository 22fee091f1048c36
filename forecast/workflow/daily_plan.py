"""``run``'s settings from its flags: forecast.toml with ``--retrain-after`` and ``--source`` laid over it, and the
check that there is something to run (else a summary that says why, for cron, and a UsageError)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forecast.errors import ExitCode
from forecast.workflow.usage import UsageError
from forecast.workspace import Workspace

NO_TICKERS = "no tickers: name some, or list them in forecast.toml (tickers = [...])"


def daily_config(workspace: Workspace, cfg: Any, tickers: Sequence[str] | None, outdir: Path | None,
                 retrain_after: str | None = None, source: str | None = None) -> Any:
    """The AppConfig ``run`` uses: ``cfg`` with the flags' changes (``--source`` beats [sources] too).

    No tickers named nor configured: the run's summary says so (cron still finds a summary.json), and a UsageError.
    """
    from forecast.workflow.run_summary import record_failed_run
    from forecast.workflow.settings import parse_retrain_after

    changes: dict[str, object] = {}
    if retrain_after is not None:
        changes["retrain_after_days"] = parse_retrain_after(retrain_after)
    if source is not None:
        changes["source"] = source
        changes["sources"] = ()  # the flag beats forecast.toml's per-ticker [sources] too
    cfg = dataclasses.replace(cfg, **changes)
    if not (tickers or cfg.tickers):
        record_failed_run(workspace, NO_TICKERS, int(ExitCode.USAGE), outdir=outdir or cfg.outdir)
        raise UsageError(NO_TICKERS)
    return cfg


def log_done(summary: Any) -> None:
    """Log each ticker that is ok (one that is not was logged once by the run, with its time: not again here)."""
    logger = logging.getLogger("forecast.run")
    for outcome in summary.tickers:
        if outcome.ok:
            logger.info("%s: ok, model %s (%s)%s", outcome.ticker, outcome.model_id, outcome.model_choice,
                        ", retrained" if outcome.retrained else "")


def daily_outdir(workspace: Workspace) -> Path:
    """The daily folder forecast.toml names; daily/ when forecast.toml (or the home) cannot be read: that is
    ``config show``'s to report."""
    from forecast.errors import ForecastError
    from forecast.workflow.settings import load_app_config

    if workspace.root.exists() and not workspace.root.is_dir():  # a home that is a file has no forecast.toml to read
        return workspace.outdir(None)
    try:
        return workspace.outdir(load_app_config(workspace, None).outdir)
    except (ForecastError, OSError):
        return workspace.outdir(None)
