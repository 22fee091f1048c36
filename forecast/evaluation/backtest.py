"""Walk-forward backtests: every model forecasts from each origin using bars up to it.

Origins are the last ``test_days`` rows but one, so that the final
``test_days`` bars are scored one step ahead. Models are refit every
``refit_every`` origins on the rows up to that origin (all of them, or the
last ``window`` rows); scalers and conformal intervals are refit inside each
fold with them. Nothing after an origin reaches its forecast.

Intervals are scored at every step and level: coverage, mean width relative to
the origin's price, the Winkler interval score and the pinball loss at the
interval's two quantiles (metrics.py states each formula). Beside them, under
``adaptive``, the same model's bands recalibrated online from its realised
outcomes (maths/adaptive_intervals.py, ``DEFAULT_METHOD``; each origin's band
rests only on outcomes known at that origin) are scored by coverage and
Winkler score; the fixed bands' scores are unchanged, and the per-origin CSV
(``forecasts_frame``) holds both bands. A model whose
optional package is missing (garch, ets) is left out with a note, and the
others go on.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.choices import DEFAULT_BACKTEST_MODELS, MIN_HISTORY_BARS, TargetColumn
from forecast.errors import BadInputError, InsufficientHistoryError, MissingExtraError
from forecast.formatting import format_percent
from forecast.maths import metrics
from forecast.maths.adaptive_replay import replay
from forecast.maths.adaptive_state import DEFAULT_METHOD
from forecast.maths.intervals import DEFAULT_LEVELS, band_columns, level_key, level_percent
from forecast.models.backtest_records import BacktestRecord, adaptive_band_columns, load_backtest
from forecast.models.backtest_records import save_backtest as save_record
from forecast.models.forecasters import catalogue_names, forecast_bands, is_baseline, make_forecaster, model_kind
from forecast.progress import ProgressReporter, SilentProgress, say

__all__ = ["BacktestResult", "format_table", "load_backtest", "save_backtest", "walk_forward"]
log = logging.getLogger(__name__)


@dataclass
class ModelPaths:
    """Forecasts of one model at every origin: arrays of shape (n_origins, horizon)."""

    name: str
    predicted: np.ndarray
    lower: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    fits: int = 0
    # the same bands recalibrated online (``recalibrate``): {level: (n_origins, horizon)}, empty until then
    adaptive_lower: dict[str, np.ndarray] = field(default_factory=dict)
    adaptive_upper: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class BacktestResult:
    ticker: str
    target: str
    horizon: int
    origins: np.ndarray
    dates: pd.Series
    prices: np.ndarray
    paths: dict[str, ModelPaths]
    scores: dict[str, dict] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def levels(self) -> list[str]:
        """Interval level keys ("0.8", ...) of the models, narrowest first."""
        keys = {level for path in self.paths.values() for level in path.lower}
        return sorted(keys, key=float)

    def to_dict(self) -> dict:
        return {
            "ticker": self.ticker, "target": self.target, "horizon": self.horizon, "settings": self.settings,
            "first_origin": self.dates.iloc[self.origins[0]].date().isoformat(),
            "last_origin": self.dates.iloc[self.origins[-1]].date().isoformat(),
            "origins": len(self.origins), "models": self.scores,
            "timing": {name: {"fits": p.fits, "fit_seconds": round(p.fit_seconds, 2), "predict_seconds": round(p.predict_seconds, 2)}
                       for name, p in self.paths.items()},
        }

    def forecasts_frame(self) -> pd.DataFrame:
        """Long table: one row per model, origin and step, with actuals, bands and the bands recalibrated online
        (``backtest_records.adaptive_band_columns``: what the record's ``adaptive`` coverage was scored on)."""
        rows = []
        for name, path in self.paths.items():
            for i, origin in enumerate(self.origins):
                for k in range(self.horizon):
                    target_row = origin + k + 1
                    row = {"model": name, "origin_date": self.dates.iloc[origin].date().isoformat(), "step": k + 1,
                           "target_date": self.dates.iloc[target_row].date().isoformat() if target_row < len(self.prices) else None,
                           "origin_value": self.prices[origin],
                           "actual": self.prices[target_row] if target_row < len(self.prices) else np.nan,
                           "predicted": path.predicted[i, k]}
                    for level in path.lower:
                        lower, upper = band_columns(level)
                        row[lower], row[upper] = path.lower[level][i, k], path.upper[level][i, k]
                    for level in path.adaptive_lower:
                        lower, upper = adaptive_band_columns(level)
                        row[lower], row[upper] = path.adaptive_lower[level][i, k], path.adaptive_upper[level][i, k]
                    rows.append(row)
        return pd.DataFrame(rows)


def training_slice(frame: pd.DataFrame, end_row: int, window: int | None) -> pd.DataFrame:
    """Return the fold's training rows: up to ``end_row`` inclusive, the last ``window`` of them if set."""
    start = 0 if window is None else max(0, end_row + 1 - window)
    return frame.iloc[start: end_row + 1].reset_index(drop=True)


def _blocks(origins: np.ndarray, every: int, first_fit_rows: int | None):
    """Yield (lo, hi, fit_end_row): origins[lo:hi] share a model fit on rows up to fit_end_row."""
    for lo in range(0, len(origins), every):
        fit_end = origins[lo] if lo or first_fit_rows is None else first_fit_rows - 1
        yield lo, min(len(origins), lo + every), fit_end


def fold_count(n_origins: int, refit_every: int) -> int:
    """Return how many fits one model makes over ``n_origins`` origins: one per ``refit_every``."""
    return -(-n_origins // refit_every)


def run_model(name: str, frame: pd.DataFrame, origins: np.ndarray, horizon: int, target: str, refit_every: int,
              window: int | None, levels, network_overrides: dict | None = None, first_fit_rows: int | None = None,
              ticker: str | None = None, progress: ProgressReporter | None = None) -> ModelPaths:
    """Refit the catalogue model ``name`` on each fold and forecast the fold's origins; ``progress`` hears of each fold."""
    paths = _empty_paths(name, len(origins), horizon, levels)
    folds = fold_count(len(origins), refit_every)
    for fold, (lo, hi, fit_end) in enumerate(_blocks(origins, refit_every, first_fit_rows), start=1):
        started = time.perf_counter()
        model = make_forecaster(name, horizon, target, levels, network_overrides, ticker)
        training = training_slice(frame, fit_end, window)
        if not is_baseline(name):  # a network's fit takes a minute or more: say so before it starts, not after
            say(progress, f"{name} fold {fold}/{folds}: fitting on {len(training):,} bars")
        model.fit(training)
        fit_seconds = time.perf_counter() - started
        paths.fit_seconds += fit_seconds
        paths.fits += 1
        started = time.perf_counter()
        bands = forecast_bands(model, frame, origins[lo:hi])
        paths.predicted[lo:hi] = bands.point
        for level in bands.lower:
            paths.lower[level][lo:hi], paths.upper[level][lo:hi] = bands.lower[level], bands.upper[level]
        predict_seconds = time.perf_counter() - started
        paths.predict_seconds += predict_seconds
        log.info("%s %s fold %d/%d: fit on %d bars (%s..%s) in %.2fs, forecast %d origins in %.2fs", ticker or "", name,
                 fold, folds, len(training), _day(training, 0), _day(training, -1), fit_seconds, hi - lo, predict_seconds)
        if progress is not None:
            progress.advance(f"{name} fold {fold}/{folds}")
    return paths


def _day(frame: pd.DataFrame, row: int) -> str:
    return frame["date"].iloc[row].date().isoformat() if len(frame) and "date" in frame else "?"


def _empty_paths(name, n, horizon, levels) -> ModelPaths:
    keys = [level_key(level) for level in levels]
    return ModelPaths(name, np.full((n, horizon), np.nan), {k: np.full((n, horizon), np.nan) for k in keys},
                      {k: np.full((n, horizon), np.nan) for k in keys})


def actual_paths(prices: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Return (n_origins, horizon) realised values: ``prices[origins[i] + k + 1]``, NaN past the last bar."""
    rows = np.asarray(origins)[:, None] + np.arange(1, horizon + 1)[None, :]
    inside = rows < len(prices)
    return np.where(inside, prices[np.where(inside, rows, 0)], np.nan)


def adaptive_paths(path: ModelPaths, prices: np.ndarray, origins: np.ndarray, horizon: int,
                   method: str = DEFAULT_METHOD) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return ({level: lower}, {level: upper}) of the model's bands recalibrated online by ``method``, replayed
    over the origins in time order (an outcome is used only from the origin at which it is known)."""
    actual = actual_paths(prices, origins, horizon)
    lower, upper = {}, {}
    for lv in path.lower:
        replayed = replay(path.predicted, path.lower[lv], path.upper[lv], actual, float(lv), method, origins=origins)
        lower[lv], upper[lv] = replayed.lower, replayed.upper
    return lower, upper


def recalibrate(paths: dict[str, ModelPaths], prices: np.ndarray, origins: np.ndarray, horizon: int) -> None:
    """Fill each model's ``adaptive_lower`` and ``adaptive_upper`` (``adaptive_paths``), once: scored and written from them."""
    for path in paths.values():
        path.adaptive_lower, path.adaptive_upper = adaptive_paths(path, prices, origins, horizon)


def score_paths(paths: dict[str, ModelPaths], prices: np.ndarray, origins: np.ndarray, horizon: int,
                mase_scale: float) -> dict[str, dict]:
    """Return per-model metrics for each horizon step; top-level fields are step 1's.

    A step with no actual yet (its origins are the last bars) scores as missing (null in JSON), silently.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        with np.errstate(invalid="ignore", divide="ignore"):
            return _score_paths(paths, prices, origins, horizon, mase_scale)


def _score_paths(paths: dict[str, ModelPaths], prices: np.ndarray, origins: np.ndarray, horizon: int,
                 mase_scale: float) -> dict[str, dict]:
    scores = {}
    for name, path in paths.items():
        if set(path.adaptive_lower) != set(path.lower):  # not recalibrated yet (``recalibrate``)
            recalibrate({name: path}, prices, origins, horizon)
        adaptive_lower, adaptive_upper = path.adaptive_lower, path.adaptive_upper
        steps = []
        for k in range(horizon):
            ok = origins + k + 1 < len(prices)
            actual, last = prices[origins[ok] + k + 1], prices[origins[ok]]
            pred = path.predicted[ok, k]
            model_rmse, naive_rmse = metrics.rmse(actual, pred), metrics.rmse(actual, last)
            hit, calls, p_hit = metrics.directional_accuracy(actual, pred, last)
            dm, p_dm = metrics.diebold_mariano(pred - actual, last - actual, k + 1)
            bands = {lv: (path.lower[lv][ok, k], path.upper[lv][ok, k]) for lv in sorted(path.lower, key=float)}
            step = {
                "step": k + 1, "n": int(ok.sum()), "rmse": model_rmse, "mae": metrics.mae(actual, pred),
                "mape": metrics.mape(actual, pred), "mase": metrics.mase(actual, pred, mase_scale),
                "skill_vs_naive": metrics.skill(model_rmse, naive_rmse), "directional_accuracy": hit,
                "directional_calls": calls, "directional_p_value": p_hit, "dm_statistic": dm, "dm_p_value": p_dm,
                "coverage": {lv: metrics.coverage(actual, lo, hi) for lv, (lo, hi) in bands.items()},
                "interval_width": {lv: metrics.mean_width(lo, hi) for lv, (lo, hi) in bands.items()},
                "relative_width": {lv: metrics.relative_width(lo, hi, last) for lv, (lo, hi) in bands.items()},
                "winkler": {lv: metrics.winkler(actual, lo, hi, float(lv)) for lv, (lo, hi) in bands.items()},
                "pinball": {lv: metrics.interval_pinball(actual, lo, hi, float(lv)) for lv, (lo, hi) in bands.items()},
            }
            adapted = {lv: (adaptive_lower[lv][ok, k], adaptive_upper[lv][ok, k]) for lv in bands}
            step["adaptive"] = {  # the same bands recalibrated online, scored beside the fixed ones
                "method": DEFAULT_METHOD,
                "coverage": {lv: metrics.coverage(actual, lo, hi) for lv, (lo, hi) in adapted.items()},
                "winkler": {lv: metrics.winkler(actual, lo, hi, float(lv)) for lv, (lo, hi) in adapted.items()},
            }
            steps.append(step)
        scores[name] = {**{k: v for k, v in steps[0].items() if k != "step"}, "by_step": steps}
    return scores


def walk_forward(frame: pd.DataFrame, ticker: str, models=DEFAULT_BACKTEST_MODELS, test_days: int = 250, refit_every: int = 20,
                 horizon: int = 5, window: int | None = None, target: str = "close", levels=DEFAULT_LEVELS,
                 network_overrides: dict | None = None, origins: np.ndarray | None = None,
                 first_fit_rows: int | None = None, progress: ProgressReporter | None = None) -> BacktestResult:
    """Run every model over the same origins and score them against the same actuals.

    ``progress`` hears of every refit: (models) x (folds) steps, one per fit.

    ``first_fit_rows`` makes the first fold train on rows ``[0, first_fit_rows)``
    (it must not pass the first origin): how the course split trains on exactly
    its 2126 rows while its first scored window starts 60 rows later.
    """
    if refit_every < 1 or test_days < 1:
        raise BadInputError("--test-days and --refit-every must be at least 1")
    TargetColumn.parse(target, "target")
    T = len(frame)
    if not 1 <= horizon <= T - 2 * MIN_HISTORY_BARS:
        raise BadInputError(f"--horizon {horizon} must be between 1 and {max(1, T - 2 * MIN_HISTORY_BARS)} for {ticker}'s {T} bars")
    if origins is None:
        if test_days >= T - 2 * MIN_HISTORY_BARS:  # the first fold fits on at least two minimum histories
            raise InsufficientHistoryError(f"--test-days {test_days} leaves too little training history: {ticker} has {T} bars")
        origins = np.arange(T - 1 - test_days, T - 1)
    if first_fit_rows is not None and first_fit_rows > origins[0] + 1:
        raise BadInputError("the first fold may not train on rows after the first origin")
    prices = frame[target].to_numpy(dtype="float64")
    paths = {}
    skipped: dict[str, str] = {}
    # naive is always shown for reference, where its log-space intervals can be computed
    reference = ["naive"] if "naive" not in models and (prices > 0).all() else []
    for name in [*models, *reference]:
        if model_kind(name) is None:
            raise BadInputError(f"unknown model {name!r}; use one of {catalogue_names()}")
    names = [*models, *reference]
    reporter = progress or SilentProgress()
    reporter.start(len(names) * fold_count(len(origins), refit_every), f"backtest {ticker}")
    try:
        for name in names:
            try:
                paths[name] = run_model(name, frame, origins, horizon, target, refit_every, window, levels,
                                        network_overrides, first_fit_rows, ticker, reporter)
            except MissingExtraError as exc:  # raised by the first fit, before any path exists: the others go on
                skipped[name] = str(exc)
                log.info("%s: %s left out: %s", ticker, name, exc)
    finally:
        reporter.close()
    scale = metrics.naive_scale(prices[: origins[0] + 1])
    recalibrate(paths, prices, origins, horizon)
    result = BacktestResult(ticker, target, horizon, origins, frame["date"], prices, paths)
    result.scores = score_paths(paths, prices, origins, horizon, scale)
    result.settings = {"test_days": len(origins), "refit_every": refit_every, "window": window or "expanding",
                       "levels": list(levels), "models": list(paths)}
    if skipped:
        result.settings["skipped"] = skipped
    return result


def format_table(result: BacktestResult) -> str:
    """A terminal table of step-1 scores (and the last step when horizon > 1), then a note per model left out."""
    def pct(v):
        return format_percent(v)  # one format for every percentage: "-" when missing, never -0.0%

    def pct2(v):
        return format_percent(v, digits=2)

    def score(v):
        return "-" if v is None or v != v else f"{v:.2f}"

    lines = []
    levels = result.levels
    steps = [1] if result.horizon == 1 else [1, result.horizon]
    for step in steps:
        lines.append(f"{result.ticker} {result.target}, {len(result.origins)} origins, step {step}:")
        lines.append(f"  {'model':<14}{'RMSE':>9}{'MAE':>9}{'MAPE':>7}{'MASE':>6}{'skill':>8}{'dir.acc':>9}{'DM p':>7}"
                     + "".join(f"{'cov' + level_percent(level):>7}" for level in levels)
                     + "".join(f"{'W' + level_percent(level):>9}" for level in levels))
        for name, scores in result.scores.items():
            s = scores["by_step"][step - 1]
            dm_p = s["dm_p_value"]
            lines.append(
                f"  {name:<14}{s['rmse']:9.2f}{s['mae']:9.2f}{pct2(s['mape']):>7}{s['mase']:6.2f}{pct(s['skill_vs_naive']):>8}"
                f"{pct(s['directional_accuracy']):>9}{'-' if dm_p != dm_p else f'{dm_p:.3f}':>7}"
                + "".join(f"{pct(s['coverage'].get(level)):>7}" for level in levels)
                + "".join(f"{score(s.get('winkler', {}).get(level)):>9}" for level in levels)
            )
            adaptive = s.get("adaptive")
            if levels and isinstance(adaptive, dict):  # one line: the same bands recalibrated online
                lines.append(f"  {'  adaptive':<14}{'':>55}"
                             + "".join(f"{pct(adaptive.get('coverage', {}).get(level)):>7}" for level in levels)
                             + "".join(f"{score(adaptive.get('winkler', {}).get(level)):>9}" for level in levels))
    if levels:
        lines.append("  (cov: share of actuals inside the interval; W: Winkler interval score in price units, lower is better;"
                     f" adaptive: the model's bands recalibrated online from its realised outcomes, {DEFAULT_METHOD})")
    for name, why in result.settings.get("skipped", {}).items():
        lines.append(f"note: {name} left out: {why}")
    return "\n".join(lines)


def to_record(result: BacktestResult) -> BacktestRecord:
    """The stored form of a backtest: scores and settings, without the per-origin arrays."""
    return BacktestRecord.from_dict(result.to_dict())


def save_backtest(home, result: BacktestResult) -> tuple:
    """Store ``backtests/<TICKER>/latest.json`` and ``latest.csv`` (atomically); return both paths."""
    return save_record(home, to_record(result), result.forecasts_frame())
