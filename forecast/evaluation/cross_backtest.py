"""Cross-sectional backtest: how well each model ranks a universe's tickers, day by day, out of sample.

Two schedules, both scored on the same test days with ``cross_section``:

* **walk-forward**: the last ``test_days`` dates whose labels are complete,
  cut into blocks of ``refit_every`` dates; before each block every learned
  model is refit on rows whose H-day labels ended before the block's first
  origin (so no label reaches past the origin: the H-day gap), choosing its
  setting (epochs, alpha, rounds) on the last ``validation_days`` of them;
* **fixed split**: train up to a named date, choose on a named validation
  period, score a named test period once, as published benchmarks are run.

Rule signals (12-1 and 20-day momentum, 5-day reversal, naive) need no fit and
use only prices up to each date. With ``membership`` (point-in-time index
constituents), each day is scored on the tickers that were members that day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.choices import UNIVERSE_MODEL
from forecast.errors import BadInputError
from forecast.evaluation.universe_bands import BandBlock, block_bands, score_bands
from forecast.maths import signals as rules
from forecast.maths.cross_section import MIN_TICKERS, CrossSectionReport, cumulative_ic, daily_ic, evaluate, quantile_spread
from forecast.models.backtest_records import CUMULATIVE_RANK_IC_COLUMN, RANK_IC_COLUMN, SPREAD_COLUMN, CrossBacktestRecord, cross_column
from forecast.models.pooled.data import VOL_WINDOW, PooledData, min_bars, pool, targets, time_split, usable_rows
from forecast.models.pooled.learners import GlobalNetworkLearner, boosting_available, make_learner
from forecast.models.pooled.model import GlobalSettings

RULES: dict[str, Callable[[pd.Series], pd.Series]] = {
    "momentum": rules.momentum_12_1,
    "momentum_20": lambda close: rules.momentum(close, 20),
    "reversal": lambda close: rules.reversal(close, 5),
    "naive": rules.naive,
}
LEARNED = (UNIVERSE_MODEL, "linear", "lightgbm")
CROSS_MODELS = (*LEARNED, *RULES)
DEFAULT_CROSS_MODELS = (UNIVERSE_MODEL, "momentum", "reversal", "linear", "naive")
CROSS_ONLY = tuple(m for m in CROSS_MODELS if m not in ("linear", "naive"))  # names that only a cross-sectional backtest knows
DEFAULT_REFIT_EVERY = 60
MIN_TRAIN_DAYS = 20


@dataclass(frozen=True)
class FixedSplit:
    train_end: str
    validation_start: str
    validation_end: str
    test_start: str
    test_end: str

    def __post_init__(self) -> None:
        order = []
        for text in (self.train_end, self.validation_start, self.validation_end, self.test_start, self.test_end):
            try:
                order.append(pd.Timestamp(text))
            except (ValueError, TypeError):
                raise BadInputError(f"a fixed split takes dates (YYYY-MM-DD); {str(text)[:40]!r} is not one") from None
        if order != sorted(order) or order[0] >= order[1] or order[2] >= order[3]:
            raise BadInputError("a fixed split needs train end < validation start <= validation end < test start <= test end")


@dataclass(frozen=True)
class CrossSettings:
    models: tuple[str, ...] = DEFAULT_CROSS_MODELS
    horizon: int = 5
    test_days: int = 250
    refit_every: int = DEFAULT_REFIT_EVERY
    validation_days: int = 250
    quantiles: int = 5
    fixed: FixedSplit | None = None
    network: GlobalSettings = field(default_factory=GlobalSettings)
    keep_bands: bool = False  # keep the refits' bands and the pooled rows in the result, for reading (a benchmark)

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in CROSS_MODELS]
        if unknown:
            raise BadInputError(f"unknown cross-sectional model(s) {', '.join(unknown)}; choose from {', '.join(CROSS_MODELS)}")
        for name in ("horizon", "test_days", "refit_every", "validation_days", "quantiles"):
            if getattr(self, name) < 1:
                raise BadInputError(f"{name.replace('_', '-')} must be at least 1")


@dataclass
class CrossBacktestResult:
    report: CrossSectionReport
    rank_ic: pd.DataFrame  # date x model: daily Rank IC
    spread: pd.DataFrame  # date x model: daily top-minus-bottom quintile spread
    refits: list[dict]
    notes: list[str]
    test_range: tuple[str, str]
    schedule: str
    price_skill: dict[str, dict] = field(default_factory=dict)  # learned model -> per-ticker skill against naive
    scores: dict[str, pd.Series] = field(default_factory=dict)  # model -> its (date, ticker) scores on the test days (the portfolio trades them)
    tickers: int = 0  # the tickers the backtest read (a member whose bars cannot be read is not one)
    intervals: dict[str, dict] = field(default_factory=dict)  # model -> its bands' scores (universe_bands.score_bands)
    bands: dict[str, list[BandBlock]] = field(default_factory=dict)  # with keep_bands: model -> its refits' bands (not stored)
    pooled: PooledData | None = None  # with keep_bands: the rows the bands index (not stored)

    def record(self, universe: str) -> CrossBacktestRecord:
        """What is stored of this backtest of ``universe`` (the daily curves go to its CSV: ``daily_frame``)."""
        return CrossBacktestRecord(universe, self.schedule, self.test_range, self.report, self.price_skill, self.refits, self.notes,
                                   self.intervals)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.record("").to_dict().items() if k != "universe"}

    def daily_frame(self) -> pd.DataFrame:
        """One row per test day: each model's Rank IC, its running sum and its quintile spread (the CSV and the chart)."""
        parts = {}
        for model in self.rank_ic.columns:
            parts[cross_column(model, RANK_IC_COLUMN)] = self.rank_ic[model]
            parts[cross_column(model, CUMULATIVE_RANK_IC_COLUMN)] = cumulative_ic(self.rank_ic[model])
            parts[cross_column(model, SPREAD_COLUMN)] = self.spread[model]
        return pd.DataFrame(parts).rename_axis("date")


def _test_days(data: PooledData, settings: CrossSettings) -> np.ndarray:
    complete = np.unique(data.dates[~np.isnat(data.label_dates)])
    if settings.fixed is not None:
        start, end = (np.datetime64(pd.Timestamp(d), "ns") for d in (settings.fixed.test_start, settings.fixed.test_end))
        days = complete[(complete >= start) & (complete <= end)]
    else:
        days = complete[-settings.test_days:]
    if not len(days):
        raise BadInputError("no test days with complete labels in the stored history")
    return days


def _scope_notes(data: PooledData, days: np.ndarray, settings: CrossSettings) -> list[str]:
    """What the backtest cannot score, said rather than left to be guessed: a fixed split's test period cut at the
    data, a universe too small for any day's IC, members with too little history for the learned models."""
    notes = []
    last = pd.Timestamp(days[-1]).date()
    if settings.fixed is not None and pd.Timestamp(settings.fixed.test_end).date() > last:
        notes.append(f"the test period ends on {last}, the last stored day whose {settings.horizon}-day labels are complete")
    tickers = np.unique(data.tickers)
    if len(tickers) < MIN_TICKERS:
        notes.append(f"{len(tickers)} ticker(s): a day's IC needs at least {MIN_TICKERS} tickers ranked, so no day is "
                     f"scored; add tickers to the universe")
    if any(m in LEARNED for m in settings.models):
        tested = np.isin(data.dates, days)
        usable = usable_rows(data, settings.network.lookback) & tested
        short = sorted(set(data.tickers[tested].tolist()) - set(data.tickers[usable].tolist()))  # listed then, too new
        if short:
            shown = ", ".join(short[:10]) + (f" and {len(short) - 10} more" if len(short) > 10 else "")
            notes.append(f"{shown}: too little history on the test days for the learned models (each needs "
                         f"{min_bars(settings.network.lookback)} bars before a forecast): neither ranked by them nor in "
                         f"their intervals")
    return notes


def _blocks(days: np.ndarray, settings: CrossSettings) -> list[np.ndarray]:
    if settings.fixed is not None:
        return [days]
    return [days[i: i + settings.refit_every] for i in range(0, len(days), settings.refit_every)]


def _learned_signal(name: str, data: PooledData, blocks: list[np.ndarray], settings: CrossSettings,
                    refits: list[dict], progress: Callable[[str], None] | None,
                    status: Callable[[str], None] | None = None, bands: list[BandBlock] | None = None) -> tuple[pd.Series, pd.Series]:
    """The model's scores on the test rows, and the H-day log returns they map onto (calibrated on validation);
    ``bands`` collects each refit's bands of a model that has them (the universe network)."""
    lookback = settings.network.lookback
    usable = usable_rows(data, lookback)
    scored, returns, scored_rows = [], [], []
    all_days = np.unique(data.dates)
    for block in blocks:
        if settings.fixed is not None:
            split = time_split(data, lookback, settings.fixed.train_end, validation_end=settings.fixed.validation_end)
            validation = split.validation[data.dates[split.validation] >= np.datetime64(pd.Timestamp(settings.fixed.validation_start), "ns")]
            train = split.train
            period = f"training up to {settings.fixed.train_end}, validation {settings.fixed.validation_start}..{settings.fixed.validation_end}"
        else:
            before = all_days[all_days < block[0]]
            needed = settings.validation_days + settings.horizon + max(lookback, VOL_WINDOW + 1) + MIN_TRAIN_DAYS
            if len(before) < needed:
                raise BadInputError(f"the refit at {pd.Timestamp(block[0]).date()} has {len(before)} trading days before it; "
                                    f"{name} needs at least {needed} (validation {settings.validation_days}, lookback {lookback}): "
                                    "fewer --test-days, or more history")
            split = time_split(data, lookback, train_end=before[-1], validation_days=settings.validation_days)
            train, validation = split.train, split.validation
            period = f"the refit at {pd.Timestamp(block[0]).date()}"
        if not len(train) or not len(validation):
            raise BadInputError(f"{name}: no complete {settings.horizon}-day labels to {'train' if not len(train) else 'validate'} "
                                f"on for {period} (each label ends {settings.horizon} days after its origin)")
        rows = np.flatnonzero(usable & np.isin(data.dates, block))
        if status:  # a refit of the network takes minutes: say so before it starts
            status(f"{name}: fitting {period} on {len(train):,} rows")
        learner = make_learner(name, settings.network)
        # ranks and means of the day only over labels known at the cut: no target sees past it
        learner.fit(data, targets(data, settings.network.target, known_until=split.cut), train, validation)
        if bands is not None and isinstance(learner, GlobalNetworkLearner):  # its bands, made as a card's (universe_bands.py)
            validation_paths, paths = learner.paths(data, validation), learner.paths(data, rows)
            bands.append(block_bands(data, validation, validation_paths, rows, paths, settings.network.levels))
            scores, validation_scores = paths[:, -1], validation_paths[:, -1]
        else:
            scores, validation_scores = learner.score(data, rows), learner.score(data, validation)
        slope, intercept = _calibration(validation_scores, data.labels[validation, -1])
        returns.append(intercept + slope * scores)
        refits.append({"model": name, "origin": str(pd.Timestamp(block[0]).date()), "train_rows": int(len(train)),
                       "validation_rows": int(len(validation)), "scored_rows": int(len(rows)),
                       **{k: float(v) for k, v in vars(learner).items() if k in ("alpha", "rounds", "validation_rank_ic")}})
        if progress:
            progress(f"{name}: refit at {pd.Timestamp(block[0]).date()}")
        scored.append(scores)
        scored_rows.append(rows)
    rows = np.concatenate(scored_rows) if scored_rows else np.empty(0, dtype=int)
    index = pd.MultiIndex.from_arrays([pd.DatetimeIndex(data.dates[rows]), data.tickers[rows]], names=["date", "ticker"])
    signal = pd.Series(np.concatenate(scored) if scored else [], index=index, dtype="float64").sort_index()
    expected = pd.Series(np.concatenate(returns) if returns else [], index=index, dtype="float64").sort_index()
    return signal, expected


def _calibration(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of the H-day log return on the score (0, mean when the score is constant)."""
    ok = np.isfinite(scores) & np.isfinite(labels)
    x, y = scores[ok].astype("float64"), labels[ok].astype("float64")
    if len(x) < 2 or x.var() == 0:
        return 0.0, float(y.mean()) if len(y) else 0.0
    slope = float(((x - x.mean()) * (y - y.mean())).mean() / x.var())
    return slope, float(y.mean() - slope * x.mean())


def price_skill(expected: pd.Series, data: PooledData, horizon: int) -> dict:
    """Per ticker, 1 - RMSE(expected H-day log return) / RMSE(naive's 0) over the test days; its median and spread.

    The price view of a cross-sectional model: does its return forecast beat
    "tomorrow = today" for the ticker it is about?
    """
    realised = pd.Series(data.labels[:, horizon - 1].astype("float64"),
                         index=pd.MultiIndex.from_arrays([pd.DatetimeIndex(data.dates), data.tickers]))
    frame = pd.DataFrame({"f": expected, "y": realised.reindex(expected.index)}).dropna()
    if frame.empty:
        return {"median": None, "share_positive": None, "tickers": 0}
    by_ticker = frame.groupby(level=1)
    model = by_ticker.apply(lambda g: float(np.sqrt(((g["f"] - g["y"]) ** 2).mean())))
    naive = by_ticker.apply(lambda g: float(np.sqrt((g["y"] ** 2).mean())))
    skill = (1 - model / naive).replace([np.inf, -np.inf], np.nan).dropna()
    return {"median": float(skill.median()), "share_positive": float((skill > 0).mean()),
            "quartiles": [float(skill.quantile(0.25)), float(skill.quantile(0.75))], "tickers": int(len(skill))}


def cross_backtest(panel: pd.DataFrame, settings: CrossSettings, membership=None,
                   progress: Callable[[str], None] | None = None,
                   status: Callable[[str], None] | None = None) -> CrossBacktestResult:
    """Score every model in ``settings`` on the same test days (see the module docstring).

    ``progress`` hears of each refit done; ``status`` of what is starting (pooling, a refit's fit).
    """
    rules.check_panel(panel)
    close = panel["close"]
    if status:
        status(f"pooling {close.index.get_level_values(1).nunique():,} tickers' windows")
    data = pool(panel, settings.horizon)
    days = _test_days(data, settings)
    blocks = _blocks(days, settings)
    notes: list[str] = _scope_notes(data, days, settings)
    refits: list[dict] = []
    signals: dict[str, pd.Series] = {}
    skills: dict[str, dict] = {}
    intervals: dict[str, dict] = {}
    kept_bands: dict[str, list[BandBlock]] = {}
    for name in settings.models:
        if name == "lightgbm" and not boosting_available():
            notes.append("lightgbm skipped: the optional package is not installed (pip install 'forecast[global]')")
            continue
        if name in RULES:
            signals[name] = RULES[name](close)
        else:
            bands: list[BandBlock] = []
            signals[name], expected = _learned_signal(name, data, blocks, settings, refits, progress, status, bands)
            skills[name] = price_skill(expected, data, settings.horizon)
            if bands:
                intervals[name] = score_bands(data, bands, settings.network.levels)
                if settings.keep_bands:  # several GB for a 5,400-ticker universe: only when asked
                    kept_bands[name] = bands
    in_test = close.index.get_level_values(0).isin(pd.DatetimeIndex(days))
    realised = rules.forward_returns(close, settings.horizon)[in_test]
    kept: Mapping[str, pd.Series] = {name: s[s.index.get_level_values(0).isin(pd.DatetimeIndex(days))]
                                     for name, s in signals.items()}
    if membership is not None:
        realised = rules.universe_mask(realised, membership)
        kept = {name: rules.universe_mask(s, membership) for name, s in kept.items()}
    report = evaluate(kept, realised, settings.horizon, settings.quantiles)
    rank_ic = pd.DataFrame({name: daily_ic(s, realised, "spearman") for name, s in kept.items()})
    spread = pd.DataFrame({name: quantile_spread(s, realised, settings.quantiles) for name, s in kept.items()})
    schedule = "fixed split" if settings.fixed else f"walk-forward, refit every {settings.refit_every} days"
    return CrossBacktestResult(report, rank_ic, spread, refits, notes,
                               (str(pd.Timestamp(days[0]).date()), str(pd.Timestamp(days[-1]).date())), schedule, skills, dict(kept),
                               int(close.index.get_level_values(1).nunique()), intervals, kept_bands, data if kept_bands else None)
