"""One network for a universe: train it, forecast every ticker in one batched call, rank them.

Training pools windows from every ticker of a panel (``global_data``), splits
them by time (the last ``validation_days`` dates, after an H-day gap), trains
the seed ensemble (``global_network``) and chooses its epoch by the daily Rank
IC of the validation days. The network's outputs are scores (ranks within
the day by default); the same validation days map them onto log returns
(``calibrate``: one slope and intercept per step) and give the interval
quantiles of the residuals divided by each ticker's own volatility x sqrt(h).
So every forecast of the global model carries a price path and its ranges,
like a per-ticker model's, and ``rank`` can sort by expected return.

TensorFlow is imported inside the functions that fit or run the network.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forecast import __version__
from forecast.choices import UNIVERSE_MODEL, ModelKind
from forecast.data.calendar import default_calendar, get_calendar
from forecast.data.tickers import parse_ticker
from forecast.errors import BadInputError, ForecastError, NoDataError
from forecast.maths.intervals import DEFAULT_LEVELS, level_key, preferred_level
from forecast.models.pooled.band_scale import band_scale, band_shape, universe_scale
from forecast.models.pooled.card import GlobalCard, GlobalRegistry
from forecast.models.pooled.data import (
    SEQUENCE_FEATURES,
    STATIC_FEATURES,
    VOL_WINDOW,
    PooledData,
    ensemble_forecast,
    every_nth_day,
    latest_rows,
    min_bars,
    pool,
    pooled,
    targets,
    time_split,
)
from forecast.models.pooled.inputs import Compared, OwnInputs, compared_within, long_order, own_inputs
from forecast.models.pooled.net_config import GlobalNetConfig
from forecast.models.pooled.recalibration import recalibrate
from forecast.models.results import ForecastPoint, ForecastResult

if TYPE_CHECKING:
    from forecast.maths.adaptive_batch import Tracks
    from forecast.models.pooled.numpy_net import NumpyGlobalNet

MOMENTUM_ROWS = 252  # the slowest static input looks a year back
MIN_VALIDATION_DAYS = 20


@dataclass(frozen=True)
class GlobalSettings(GlobalNetConfig):
    """The ``global`` preset: the network's settings (``GlobalNetConfig``, where the preset differs its defaults are
    overridden here) and what the pooled data, training and forecasts add to them."""

    units: int = 64  # chosen on the S&P 500 validation year among 5 configurations (benchmarks/global_sp500.py)
    epoch_windows: int | None = 65_536  # an epoch draws days holding about this many windows: the chosen setting saw ~58,000
    # issue 25: the ridge on the network's own inputs is nested in it (a frozen linear path beside the GRU, whose
    # head starts at zero); a trained epoch replaces the ridge alone only when it beats it on validation by a
    # Newey-West t of 2 (network.KeepBestIC). Chosen among 4 nested designs on the S&P 500 validation year.
    linear: bool = True
    target: str = "rank"  # return | demeaned | rank (global_data.TARGETS)
    validation_days: int = 250
    train_every: int = 3  # train on every 3rd day's windows (validation keeps every day): chosen with units above
    adjust: str = "qfq"
    levels: tuple[float, ...] = DEFAULT_LEVELS

    def to_dict(self) -> dict:
        """Every setting, flat (the network's and the preset's side by side), JSON-ready: tuples as lists."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    def network(self) -> GlobalNetConfig:
        """The network's own settings: every field ``GlobalNetConfig`` declares, as this preset sets it."""
        return GlobalNetConfig(**{f.name: getattr(self, f.name) for f in fields(GlobalNetConfig)})

    def history_rows(self) -> int:
        """Rows of history a forecast needs: the window plus what its slowest inputs look back."""
        return max(self.lookback, MOMENTUM_ROWS, VOL_WINDOW) + self.lookback + 1


def calibrate(scores: np.ndarray, labels: np.ndarray, sigma: np.ndarray, levels: Sequence[float]) -> tuple[dict, dict]:
    """Map scores onto log returns per step and take the residual quantiles (in units of sigma x sqrt(h)); ``sigma``
    (n,): each row's volatility (pooled/band_scale.py)."""
    horizon = labels.shape[1]
    slope, intercept = [], []
    quantiles: dict[str, list[list[float]]] = {level_key(level): [] for level in levels}
    for h in range(horizon):
        x, y = scores[:, h].astype("float64"), labels[:, h].astype("float64")
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        var = x.var()
        b = float(((x - x.mean()) * (y - y.mean())).mean() / var) if var > 0 else 0.0
        a = float(y.mean() - b * x.mean())
        slope.append(b)
        intercept.append(a)
        residual = (y - (a + b * x)) / (sigma[ok].astype("float64") * np.sqrt(h + 1))
        for level in levels:
            lo, hi = np.quantile(residual, [(1 - level) / 2, (1 + level) / 2])
            quantiles[level_key(level)].append([float(lo), float(hi)])
    method = "validation residuals of the calibrated score, divided by the ticker's volatility (the card's scale) x sqrt(step)"
    return {"slope": slope, "intercept": intercept}, {"method": method, "quantiles": quantiles}


def card_intervals(data: PooledData, validation: np.ndarray, scores: np.ndarray, levels: Sequence[float]) -> tuple[dict, dict]:
    """A card's ``calibration`` and ``intervals`` from the network's scores (n, H) at its ``validation`` rows: the scale
    the validation rows choose (``universe_scale``), the scores mapped onto log returns and the residual quantiles in
    units of that scale (``calibrate``). ``train_global`` writes them; the cross-sectional backtest makes each refit's."""
    scale = universe_scale(data, validation)
    calibration, intervals = calibrate(scores, data.labels[validation], band_scale(data, validation, scale), levels)
    return calibration, {**intervals, "scale": scale}


@dataclass
class GlobalTrainResult:
    card: GlobalCard
    model_dir: str
    notes: list[str] = field(default_factory=list)


def train_global(panel: pd.DataFrame, universe: str, settings: GlobalSettings, registry: GlobalRegistry,
                 progress="none") -> GlobalTrainResult:
    """Train one network on every ticker of ``panel`` and register it as ``universe``'s latest global model."""
    from forecast.models import network
    from forecast.models.pooled.network import fit_global, predict_rows

    started = time.perf_counter()
    if panel.empty:
        raise NoDataError(f"no stored bars for universe {universe}; run: forecast fetch --universe {universe}")
    data = pool(panel, settings.horizon)
    days = np.unique(data.dates)
    needed = settings.validation_days + settings.horizon + settings.lookback + VOL_WINDOW + MIN_VALIDATION_DAYS
    if len(days) < needed:
        raise BadInputError(f"universe {universe} has {len(days)} trading days stored; the global preset needs at least "
                            f"{needed} (lookback {settings.lookback}, validation {settings.validation_days} days)")
    split = time_split(data, settings.lookback, train_end=days[-1], validation_days=settings.validation_days)
    if not len(split.train) or not len(split.validation):
        raise BadInputError(f"universe {universe}: no complete windows to train or validate on")
    fit = fit_global(settings.network(), data, targets(data, settings.target, known_until=split.cut),
                     every_nth_day(split.train, data, settings.train_every), split.validation, progress,
                     linear_rows=split.train)
    scores = predict_rows(fit.model, data, split.validation, settings.lookback)
    calibration, intervals = card_intervals(data, split.validation, scores, settings.levels)
    trained = sorted(set(data.tickers[split.train]))
    card = GlobalCard(
        id=GlobalRegistry.new_id(universe), universe=universe, tickers=tuple(trained),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), config=settings.to_dict(),
        features={"sequence": list(SEQUENCE_FEATURES), "static": list(STATIC_FEATURES)},
        data={"range": [str(pd.Timestamp(days[0]).date()), str(pd.Timestamp(days[-1]).date())], "rows": len(data),
              "train_cut": str(pd.Timestamp(split.cut).date()),
              "validation": [str(pd.Timestamp(data.dates[split.validation].min()).date()),
                             str(pd.Timestamp(split.validation_end).date())],
              "windows_train": len(split.train), "windows_per_epoch": fit.windows_per_epoch,
              "windows_validation": len(split.validation)},
        validation={"rank_ic": fit.validation_rank_ic, "best_epoch": fit.best_epoch, "scores": fit.scores},
        calibration=calibration, intervals=intervals, versions={"forecast": __version__, **network.versions()},
        train_seconds=round(time.perf_counter() - started, 1), windows_per_second=round(fit.windows_per_second),
    )
    folder = registry.save(card, lambda path: network.save_model(fit.model, path))
    return GlobalTrainResult(card, str(folder))


@dataclass
class Recalibration:
    """The stored tracks a batch starts from (``recalibration.read_tracks``), why the file gave none (None when it
    did), and, once forecast, the batch's tickers' tracks moved (for ``recalibration.write_tracks``)."""

    stored: Tracks
    rebuilt: str | None = None
    damaged: set[str] = field(default_factory=set)  # tickers whose stored rows could not be read
    moved: Tracks | None = None
    carried_from: dict[str, str] = field(default_factory=dict)  # ticker -> the previous model whose track it goes on with


@dataclass(frozen=True)
class GlobalForecast:
    """The global model's forecast for one ticker: the score, the expected H-step return and the price path."""

    ticker: str
    score: float
    expected_return: float  # simple return over the horizon
    interval: tuple[float, float]  # its range at intervals.preferred_level (80 % when computed), as simple returns
    result: ForecastResult


def pooled_against(panel: pd.DataFrame, horizon: int, reference: Collection[str] | None = None, static_from=None,
                   labels: bool = True) -> PooledData:
    """``pool(panel)`` with every input compared across tickers (each day's mean return, the ranks of the slow
    signals) taken over ``reference`` alone: a ticker of ``reference`` is pooled with ``reference``'s tickers only, a
    ticker outside it as if it were pooled with ``reference`` and itself (``_outsiders``). So no ticker's inputs depend
    on which other tickers ``panel`` holds besides ``reference`` (issue 29: one ticker scored differently by batch).
    None: across ``panel``, as training and the backtests pool. Rows: ``reference``'s tickers first, then the others,
    each part in long order. ``labels=False``: without labels (``data.pooled``), as a forecast needs them.
    """
    if reference is None:
        return pool(panel, horizon, static_from=static_from, labels=labels)
    order, inside = long_order(panel, reference)
    if inside in (0, len(order)):  # all of the model's universe, or none of it stored: nothing to compare with but the batch
        return pool(panel, horizon, static_from=static_from, labels=labels)
    universe = own_inputs(panel, order[:inside])  # each part one block, as pool(panel[part]) pools it
    within = compared_within(universe, static_from)
    others = own_inputs(panel, order[inside:])
    return pooled([(universe, within), (others, _outsiders(others, universe, static_from))], horizon, labels)


def _outsiders(outside: OwnInputs, inside: OwnInputs, static_from) -> Compared:
    """What is compared across tickers for ``outside``'s tickers, each as if pooled with ``inside`` and itself alone: the
    day's mean return and the ranks of the slow signals over ``inside``'s rows of that day and its own (exactly what
    ``pool(inside + one ticker)`` computes for that ticker, without pooling the universe once per ticker)."""
    dates, ref_dates = outside.dates.astype("datetime64[ns]"), inside.dates.astype("datetime64[ns]")
    days = pd.Index(np.unique(ref_dates))
    ref_day, day = days.get_indexer(ref_dates), days.get_indexer(dates)  # -1: a day the universe did not trade
    present = np.isfinite(inside.returns)
    total = np.bincount(ref_day[present], weights=inside.returns[present], minlength=len(days) + 1)
    count = np.bincount(ref_day[present], minlength=len(days) + 1).astype("float64")
    total[-1] = count[-1] = 0.0  # index -1: no row of the universe that day
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = outside.returns - (total[day] + outside.returns) / (count[day] + 1)
    rows, slow = outside.slow(static_from)
    ref_rows, ref_slow = inside.slow(static_from)
    static = np.column_stack([_rank_against(slow[:, j], day[rows], ref_slow[:, j], ref_day[ref_rows]) for j in range(slow.shape[1])])
    return Compared(excess, rows, static)


def _rank_against(values: np.ndarray, day: np.ndarray, ref_values: np.ndarray, ref_day: np.ndarray) -> np.ndarray:
    """Each value's centred percentile rank among the reference's values of its day and itself (``inputs.rank_within``'s
    rank, ties at their mean); 0 (the day's middle) where the value is unknown."""
    out = np.zeros(len(values), dtype="float64")
    ok = np.isfinite(ref_values) & (ref_day >= 0)
    order = np.lexsort((ref_values[ok], ref_day[ok]))
    sorted_day, sorted_values = ref_day[ok][order], ref_values[ok][order]
    wanted = np.flatnonzero(np.isfinite(values))
    for d in np.unique(day[wanted]):
        mine = wanted[day[wanted] == d]
        lo, hi = (np.searchsorted(sorted_day, d, "left"), np.searchsorted(sorted_day, d, "right")) if d >= 0 else (0, 0)
        those = sorted_values[lo:hi]
        less = np.searchsorted(those, values[mine], "left")
        equal = np.searchsorted(those, values[mine], "right") - less
        n = len(those) + 1
        mean_rank = less + equal / 2.0
        out[mine] = np.where(n > 1, mean_rank / max(n - 1, 1) - 0.5, 0.0)
    return out


def forecast_panel(panel: pd.DataFrame, card: GlobalCard, network: NumpyGlobalNet, on=None,
                   calendars: dict[str, str] | None = None, reference: Collection[str] | None = None,
                   wanted: Collection[str] | None = None, recalibration: Recalibration | None = None,
                   bases: dict[str, str] | None = None) -> tuple[list[GlobalForecast], dict[str, str]]:
    """Forecast every ticker of ``panel`` from its last bar (on or before ``on``) in one batched call.

    ``network``: the card's network as ``global_numpy`` evaluates it (no
    TensorFlow start for a nightly forecast).

    ``calendars``: {ticker: the trading calendar its stored series records};
    forecast dates follow it (without one, the ticker's rule: XSHG for China
    codes, business days otherwise). Returns the forecasts and, per ticker
    that could not be forecast, why.

    ``reference``: the universe the model serves; what is compared across
    tickers is compared across it (``pooled_against``), so a ticker's forecast
    is the same whichever others ``panel`` holds. ``wanted``: forecast only
    these tickers of ``panel`` (the rest are there as the reference).
    ``recalibration``: each ticker's track (pooled/recalibration.py), moved in
    place, and today's bands scaled by it; without one, the model's own bands.
    ``bases``: {ticker: the price basis its bars were read on} (an imported series
    comes on its own basis, whatever the card's ``adjust``), which each forecast
    records; without one, the card's.
    """
    index = panel.index  # each ticker's last date, grouped by the ticker's integer code (by its name: a second more)
    last_dates = pd.Series(index.get_level_values("date")).groupby(np.asarray(index.codes[index.names.index("ticker")])).max()
    oldest_origin = last_dates.min() if on is None else min(last_dates.min(), pd.Timestamp(on))
    data: PooledData = pooled_against(panel, card.horizon, reference, static_from=oldest_origin, labels=False)
    rows = latest_rows(data, card.lookback, on)
    present = set(data.tickers[data.position == 0])  # every ticker once: its first row
    asked = present if wanted is None else set(wanted) & present
    if wanted is not None:
        rows = rows[np.fromiter((t in asked for t in data.tickers[rows]), dtype=bool, count=len(rows))]
    problems = {t: f"too little history for the global model (needs {min_bars(card.lookback)} bars)"
                for t in sorted(asked - set(data.tickers[rows]))}
    if not len(rows):
        return [], problems
    scores = ensemble_forecast(network.predict, data, rows, card.lookback, card.horizon)
    slope, intercept = np.asarray(card.calibration["slope"]), np.asarray(card.calibration["intercept"])
    quantiles = card.intervals["quantiles"]
    # every ticker at once in numpy (the per-ticker loop below only assembles): mean log return and spread per step
    mean = intercept + slope * scores  # (n, H)
    volatility = band_scale(data, rows, card.intervals.get("scale"))  # a card from before named scales: the 60-day std
    last_close = data.close[rows].astype("float64")
    paths = (last_close[:, None] * np.exp(mean)).tolist()
    level_keys = list(quantiles)
    # (n, L, H) log-return bands around the mean: each level's residual quantiles times the ticker's volatility x sqrt(step)
    shape = band_shape(quantiles, card.horizon)
    low, high = np.log(shape.bands(np.exp(mean), volatility))
    records: list[dict[str, Any] | None] = [None] * len(rows)
    if recalibration is not None:  # today's bands moved by each ticker's track (pooled/recalibration.py)
        bar_dates, bar_closes = _histories(data, rows)
        recalibration.moved, ratio_low, ratio_high, made = recalibrate(
            recalibration.stored, [str(t) for t in data.tickers[rows]], bar_dates, bar_closes, np.exp(mean),
            volatility, shape, level_keys, recalibration.rebuilt, recalibration.damaged, recalibration.carried_from)
        low, high = np.log(ratio_low), np.log(ratio_high)
        records = list(made)
    bands = {key: np.stack([last_close[:, None] * np.exp(low[:, j]), last_close[:, None] * np.exp(high[:, j])], axis=-1).tolist()
             for j, key in enumerate(level_keys)}  # {level: (n, H, [low, high])}
    expected = np.expm1(mean[:, -1])
    shown = level_keys.index(preferred_level(quantiles))
    ranges = np.expm1(np.c_[low[:, shown, -1], high[:, shown, -1]])
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    sessions: dict = {}  # (calendar, last date) -> the next sessions: one calendar lookup per group, not per ticker
    trained = set(card.tickers)
    out = []
    for i, row in enumerate(rows):
        ticker = str(data.tickers[row])
        last_date = pd.Timestamp(data.dates[row])
        dates = _next_sessions(ticker, last_date, card.horizon, sessions, (calendars or {}).get(ticker))
        points = [ForecastPoint(dates[h], paths[i][h], {level: pairs[i][h] for level, pairs in bands.items()})
                  for h in range(card.horizon)]
        result = ForecastResult(ticker=ticker, model_id=card.id, target="close", last_date=str(last_date.date()),
                                last_close=float(last_close[i]), last_value=float(last_close[i]), points=points, created_at=created,
                                model_summary={"kind": str(ModelKind.GLOBAL), "family": UNIVERSE_MODEL, "universe": card.universe,
                                               "data_range": list(card.data_range),
                                               "adjust": (bases or {}).get(ticker, card.config.get("adjust")),
                                               "trained_on_ticker": ticker in trained}, adaptive=records[i])
        out.append(GlobalForecast(ticker, float(scores[i, -1]), float(expected[i]), (float(ranges[i, 0]), float(ranges[i, 1])),
                                  result))
    return out, problems


def _histories(data: PooledData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (dates, closes), each (n, R): the bars of each origin's ticker up to it, the origin last, padded on the left."""
    starts = rows - data.position[rows]  # a ticker's rows are consecutive, oldest first
    width = int((rows - starts).max()) + 1 if len(rows) else 1
    index = rows[:, None] - (width - 1) + np.arange(width)
    known = index >= starts[:, None]
    index = np.maximum(index, 0)
    return (np.where(known, data.dates[index], np.datetime64("NaT")).astype("datetime64[D]"),
            np.where(known, data.close[index].astype("float64"), np.nan))


def _next_sessions(ticker: str, last_date: pd.Timestamp, count: int, cache: dict,
                   recorded: str | None = None) -> list[str]:
    """The ``count`` sessions after ``last_date`` as ISO dates, on the recorded calendar or the ticker's own.

    ``cache``: {(calendar name, last date): sessions}, and the same under the recorded name, which is looked up
    only on a miss (5,400 lookups of one name were a tenth of a second)."""
    if recorded and (recorded, last_date) in cache:
        return cache[(recorded, last_date)]
    if recorded:
        calendar = get_calendar(recorded)
    else:
        try:
            calendar = default_calendar(parse_ticker(ticker))
        except ForecastError:  # a name that is no ticker this version parses: business days
            calendar = default_calendar(None)
    key = (calendar.name, last_date)
    if key not in cache:
        cache[key] = [str(day.date()) for day in calendar.next_sessions(last_date, count)]
    if recorded:
        cache[(recorded, last_date)] = cache[key]
    return cache[key]


def ranked(forecasts: list[GlobalForecast]) -> list[GlobalForecast]:
    """Highest expected return first; ties by ticker, so the order is reproducible."""
    return sorted(forecasts, key=lambda f: (-f.expected_return, f.ticker))
