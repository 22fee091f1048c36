"""Stored results: per-ticker forecasts and backtests, a universe's forecast batches and its cross-sectional backtests;
and the forecasts kept apart (by models other than the one in use), read as ``results.other_forecast`` reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator

from forecast.errors import CorruptFileError, ForecastError
from forecast.models.backtest_records import load_backtest, load_backtest_forecasts
from forecast.models.results import load_forecast_batch, load_forecast_file
from forecast.workflow.doctor.findings import Finding, _entries, _why
from forecast.workspace import Workspace


def _outputs(workspace: Workspace) -> Iterator[Finding]:
    checks = (("forecast", workspace.forecast_file, _own_forecast, "forecast predict"),
              ("backtest", workspace.backtest_json, load_backtest, "forecast backtest"),
              ("backtest", workspace.backtest_csv, load_backtest_forecasts, "forecast backtest"))
    for kind, path_of, load, command in checks:
        for folder in _entries(path_of("_").parent.parent):  # forecasts/, backtests/: one folder per ticker
            if not folder.is_dir() or folder.name.startswith("@"):  # @<universe>: a cross-sectional backtest (below)
                continue
            try:
                path = folder  # until the workspace agrees the folder stays inside the home
                path = path_of(folder.name)
                load(workspace, folder.name)
            except ForecastError as exc:
                yield Finding(kind, path, _why(exc), f"make it again: {command} {folder.name}")


def _own_forecast(workspace: Workspace, ticker: str) -> None:
    """Check the ticker's own forecast file, if any (a damaged batch is its own finding, not one per ticker)."""
    path = workspace.forecast_file(ticker)
    if path.is_file():
        load_forecast_file(path)


def _forecast_batches(workspace: Workspace) -> Iterator[Finding]:
    """forecasts/@<universe>/latest.json: a global model's forecasts of many tickers."""
    for path in workspace.forecast_batch_files():
        try:
            load_forecast_batch(path)
        except ForecastError as exc:
            yield Finding("forecast", path, _why(exc),
                          f"make it again: forecast predict --universe {path.parent.name[1:]} --model global")


def _other_forecasts(workspace: Workspace) -> Iterator[Finding]:
    """forecasts/<TICKER>/other/<MODEL>.json and forecasts/@<UNIVERSE>/other.json: what ``predict --model`` and
    ``rank`` kept apart. The commands pass a damaged one over with a warning; moved aside, the command makes it again."""
    for folder in _entries(workspace.forecasts_dir):
        if not folder.is_dir() or folder.name.startswith("@"):  # @<universe>: its other.json is below
            continue
        try:
            paths = workspace.forecast_other_files(folder.name)
        except ForecastError:  # a ticker folder the workspace refuses: _outputs names it
            continue
        for path in paths:
            try:
                load_forecast_file(path)
            except ForecastError as exc:
                yield Finding("forecast", path, _why(exc),
                              f"kept apart, passed over until made again: forecast predict {folder.name} --model {path.stem}")
    for path in workspace.forecast_batch_other_files():
        try:
            load_forecast_batch(path)
        except ForecastError as exc:
            yield Finding("forecast", path, _why(exc), f"kept apart, passed over until made again: "
                          f"forecast rank --universe {path.parent.name[1:]}")


def _cross_backtests(workspace: Workspace) -> Iterator[Finding]:
    """backtests/@<universe>/latest.json: the scores of a cross-sectional backtest, read as ``backtest_records.CrossBacktestRecord``."""
    from forecast.models.backtest_records import CrossBacktestRecord

    for folder in _entries(workspace.backtests_dir):
        if not folder.is_dir() or not folder.name.startswith("@"):
            continue
        universe = folder.name[1:]
        path = workspace.cross_backtest_json(universe)
        try:
            CrossBacktestRecord.from_dict(json.loads(path.read_text(encoding="utf-8")), path.name)
            continue
        except CorruptFileError as exc:
            problem = str(exc).split("; run ")[0]  # "latest.json is damaged (KeyError: ...)": the advice is below
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            problem = f"unreadable ({type(exc).__name__})"
        yield Finding("backtest", path, problem, f"make it again: forecast backtest --universe {universe} --models ...")
