"""The adaptive interval states (``forecasts/<TICKER>/adaptive/<MODEL>.json``, and a universe model's tracks,
``forecasts/@<UNIVERSE>/adaptive/<MODEL>.json``), read as ``predict`` reads them.

``predicting.read_adaptive_state`` is the one judge of a state file; a
damaged one is rebuilt by ``predict`` from the stored bars with a warning, so
doctor names it and ``repair`` moves it aside (the next predict of that
ticker and model starts the state again, without the warning). A state kept
for other settings (levels, horizon, model) is no damage: predict starts
again for its own and doctor leaves it. A universe model's tracks file is
judged by ``recalibration.tracks_problem``: named when predict cannot read it
at all; a damaged ticker's row is not (predict starts that ticker again and
drops the row, where quarantine would cost every other ticker its track).
"""

from __future__ import annotations

from collections.abc import Iterator

from forecast.errors import ForecastError
from forecast.models.pooled.recalibration import tracks_problem
from forecast.models.predicting import read_adaptive_state
from forecast.workflow.doctor.findings import Finding, _entries, _why
from forecast.workspace import Workspace

_UNREADABLE = " is unreadable "  # read_adaptive_state's message: "adaptive interval state <path> is unreadable (<why>)"


def _adaptive_states(workspace: Workspace) -> Iterator[Finding]:
    """Every state file under a ticker's forecasts that ``predict`` could not read."""
    for folder in _entries(workspace.forecasts_dir):
        if not folder.is_dir():
            continue
        if folder.name.startswith("@"):  # @<universe>: a batch, and its universe model's tracks
            yield from _batch_tracks(workspace, folder.name[1:])
            continue
        try:
            states = workspace.adaptive_state_file(folder.name, "_").parent
        except ForecastError:  # a ticker folder, or its adaptive/, that the workspace refuses: not read by predict
            continue
        for found in sorted(states.glob("*.json")) if states.is_dir() else []:
            advice = f"predict rebuilds it from the stored bars: forecast predict {folder.name} --model {found.stem}"
            try:
                read_adaptive_state(workspace.adaptive_state_file(folder.name, found.stem))
            except ForecastError as exc:  # CorruptFileError; BadInputError when the name leads out of the home
                text = str(exc)
                problem = "unreadable " + text.rpartition(_UNREADABLE)[2] if _UNREADABLE in text else _why(exc)
                yield Finding("adaptive", found, problem, advice)


def _batch_tracks(workspace: Workspace, universe: str) -> Iterator[Finding]:
    try:
        folder = workspace.batch_adaptive_state_file(universe, "_").parent
    except ForecastError:  # a universe name the workspace refuses: not read by predict
        return
    for found in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        problem = tracks_problem(found)
        if problem is not None:
            advice = (f"predict starts them again, from the previous model's tracks where one is kept, else at the model's "
                      f"own bands: forecast predict --universe {universe} "
                      f"--model {found.stem}")
            yield Finding("adaptive", found, problem, advice)
