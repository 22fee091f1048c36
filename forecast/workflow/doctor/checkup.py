"""``examine``: every check of the home, in the order a reader needs them (the home's own problems first)."""

from __future__ import annotations

from pathlib import Path

from forecast.workflow.doctor.adaptive import _adaptive_states
from forecast.workflow.doctor.findings import HOME, Finding
from forecast.workflow.doctor.home import _debris, _folders, _home, _locks
from forecast.workflow.doctor.models import _registry
from forecast.workflow.doctor.outputs import _cross_backtests, _forecast_batches, _other_forecasts, _outputs
from forecast.workflow.doctor.store import _caches, _store
from forecast.workflow.doctor.universe_models import _global_models
from forecast.workspace import Workspace


def examine(workspace: Workspace, outdir: Path | None = None) -> list[Finding]:
    """Every problem in the home: the home's own first, then the rest sorted by path.

    ``outdir``: the daily job's folder (default ``daily/``). A home that is
    missing, not a folder or not readable has nothing else to look at.
    """
    home = list(_home(workspace))
    if any(f.kind == HOME and not f.problem.startswith("not writable") for f in home):
        return home
    parts = (_folders(workspace, outdir), _locks(workspace), _store(workspace), _caches(workspace), _registry(workspace),
             _global_models(workspace), _outputs(workspace), _forecast_batches(workspace), _other_forecasts(workspace),
             _adaptive_states(workspace), _cross_backtests(workspace), _debris(workspace, outdir))
    found = {f.path: f for part in parts for f in part}
    return home + sorted(found.values(), key=lambda f: f.path.parts)
