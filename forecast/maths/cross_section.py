"""Cross-sectional evaluation: how well a signal ranks tickers, day by day, and how sure we can be.

Inputs are panels (``forecast.maths.signals``): a signal made at date t and the
realised H-day return from t, both Series on a sorted (date, ticker) index.
Each day scores the pairs where both are present.

Definitions:
- IC: Pearson correlation across tickers of signal and realised return, per
  day. Rank IC: the same on within-day ranks (ties share their average rank,
  as ``scipy.stats.spearmanr`` does).
- A day is skipped (NaN) when fewer than ``min_tickers`` pairs remain, or when
  either side is constant that day: a correlation with a constant is
  undefined, so the naive zero forecast has no scored days rather than an IC
  of 0.
- ICIR: mean / std of the daily IC. Naive t: ICIR × √n.
- Newey–West t: the mean over a standard error that counts the overlap of
  H-day labels, with H - 1 lags and Bartlett weights ``1 - l / (L + 1)``.
- One convention for both: every (auto)covariance divides by n, as Newey and
  West (1987) and statsmodels' plain HAC do, so the std is the 1/n one
  (ddof 0) and with 0 lags the Newey–West t equals the naive t exactly: any
  gap between the two is autocorrelation alone. (Qlib's ICIR uses ddof 1;
  at 250 days the two differ by 0.2 %. Issue 17's anchors use 1/n.)
- Quintiles per day, as ``pd.qcut`` cuts the ranks 1..n (ties ranked by
  ticker order): a name is in the top quintile when its rank is above the
  (q-1)/q quantile of 1..n, ``q·(rank-1) > (q-1)·(n-1)``, and in the bottom
  one when ``q·(rank-1) <= n-1``. Quintile spread: mean realised return of
  the top minus that of the bottom.
- Top turnover: the share of today's top-quintile names that were not in the
  top quintile on the signal's previous date.

What it promises: every daily value depends on that day's cross-section only,
and NaN days are left out of the aggregates (counted in ``days``). What it does
not: the t statistics assume the daily ICs are stationary; a regime change in
the test year breaks that, and no lag count repairs it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd

from forecast.errors import BadInputError
from forecast.jsonio import finite

Method: TypeAlias = Literal["pearson", "spearman"]
MIN_TICKERS = 5  # the smallest cross-section that puts one name in every quintile


def _panel(values: pd.Series, what: str) -> pd.Series:
    if not isinstance(values, pd.Series):
        raise BadInputError(f"{what} must be a Series on a (date, ticker) index, not {type(values).__name__}")
    index = values.index
    if not isinstance(index, pd.MultiIndex) or index.nlevels != 2:
        raise BadInputError(f"{what} needs a (date, ticker) MultiIndex")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise BadInputError(f"{what} must be sorted by (date, ticker) with one row per pair: call .sort_index()")
    return values.astype("float64")


def _pairs(signal: pd.Series, realised: pd.Series) -> tuple[pd.DataFrame, pd.Index]:
    """The (date, ticker) rows where both are present, and every date either side mentions."""
    s, r = _panel(signal, "signal"), _panel(realised, "realised")
    joined = pd.concat({"s": s, "r": r}, axis=1, join="inner").sort_index()
    dates = joined.index.get_level_values(0).unique()
    return joined.dropna(), dates


def _check_count(value: int, name: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise BadInputError(f"{name} must be a whole number >= {least}, not {value!r}")


def daily_ic(signal: pd.Series, realised: pd.Series, method: Method = "pearson", min_tickers: int = MIN_TICKERS) -> pd.Series:
    """The IC (``pearson``) or Rank IC (``spearman``) per date: a Series indexed by date, NaN on skipped days.

    Dates are those the two panels share; a day with fewer than
    ``min_tickers`` valid pairs, or a constant signal or label, is NaN.
    """
    if method not in ("pearson", "spearman"):
        raise BadInputError(f"method must be 'pearson' or 'spearman', not {method!r}")
    _check_count(min_tickers, "min_tickers", 2)
    pairs, dates = _pairs(signal, realised)
    by_date = pairs.groupby(level=0, sort=False)
    # Constant per day is judged on the raw values: a demeaned constant can
    # come out as ±1e-17 instead of 0 and would pass for information.
    constant = (by_date.max() == by_date.min()).any(axis=1)
    if method == "spearman":
        pairs = by_date.rank(method="average")
        by_date = pairs.groupby(level=0, sort=False)
    centred = pairs - by_date.transform("mean")
    s, r = centred["s"], centred["r"]
    sums = pd.DataFrame({"sr": s * r, "ss": s * s, "rr": r * r}).groupby(level=0, sort=False).sum()
    ic = sums["sr"] / np.sqrt(sums["ss"] * sums["rr"])
    ic = ic.where(~constant & (by_date.size() >= min_tickers))
    return ic.reindex(dates).rename("rank_ic" if method == "spearman" else "ic")


def newey_west_t(values: np.ndarray | pd.Series, lags: int) -> float:
    """The mean of ``values`` over its Newey–West standard error with ``lags`` lags and Bartlett weights.

    ``S = γ0 + 2 Σ_{l=1..L} (1 - l/(L+1)) γl``, ``γl = (1/n) Σ_t (x_t - x̄)(x_{t-l} - x̄)``,
    ``t = x̄ / √(S / n)``; with 0 lags, ``x̄ / std(ddof=0) × √n``. NaNs are dropped first (the rest taken as consecutive).
    NaN with fewer than 2 values, a lag count >= n, or S <= 0.
    """
    _check_count(lags, "lags", 0)
    x = np.asarray(values, dtype="float64")
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 2 or lags >= n:
        return math.nan
    d = x - x.mean()
    long_run = float(d @ d) / n
    for lag in range(1, lags + 1):
        long_run += 2.0 * (1.0 - lag / (lags + 1.0)) * float(d[lag:] @ d[:-lag]) / n
    if long_run <= 0:
        return math.nan
    return float(x.mean() / math.sqrt(long_run / n))


@dataclass(frozen=True)
class ICSummary:
    """Aggregates of a daily IC series over its scored (non-NaN) days."""

    mean: float
    std: float
    icir: float  # mean / std
    t_naive: float  # mean / std × √days
    t_newey_west: float  # with ``lags`` = horizon - 1
    lags: int
    days: int
    positive_share: float  # share of scored days with IC > 0

    def to_dict(self) -> dict:
        return finite(asdict(self))


def summary(ic: pd.Series, horizon: int) -> ICSummary:
    """Mean, std, ICIR, naive and Newey–West (``horizon - 1`` lags) t, days and share positive of a daily IC."""
    _check_count(horizon, "horizon", 1)
    x = ic.to_numpy(dtype="float64")
    x = x[np.isfinite(x)]
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=0)) if n > 1 else math.nan  # 1/n: the convention of the Newey–West γ0
    icir = mean / std if std > 0 else math.nan
    return ICSummary(mean=mean, std=std, icir=icir, t_naive=icir * math.sqrt(n), t_newey_west=newey_west_t(x, horizon - 1),
                     lags=horizon - 1, days=n, positive_share=float((x > 0).mean()) if n else math.nan)


def _ends(signal: pd.Series, quantiles: int) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per row: in the top quantile, in the bottom one (``pd.qcut`` on ranks); per date: whether the signal is constant."""
    by_date = signal.groupby(level=0, sort=False)
    # "first": ties go by row order, which is ticker order in a sorted panel,
    # so a tie at the edge of a quintile is settled the same way every run.
    order = by_date.rank(method="first")
    count = by_date.transform("size")
    # qcut's edges on the ranks 1..n are 1 + k(n-1)/q; in integers, so an
    # edge that falls exactly on a rank is not lost to rounding.
    enough = count >= quantiles
    top = enough & (quantiles * (order - 1) > (quantiles - 1) * (count - 1))
    bottom = enough & (quantiles * (order - 1) <= count - 1)
    constant = by_date.max() == by_date.min()
    return top, bottom, constant


def quantile_spread(signal: pd.Series, realised: pd.Series, quantiles: int = 5) -> pd.Series:
    """Per date: mean realised return of the top quantile of names by signal minus that of the bottom one.

    Quantiles are counted among the names with both a signal and a realised
    return that day. NaN when fewer than ``quantiles`` names remain or the
    signal is constant that day.
    """
    _check_count(quantiles, "quantiles", 2)
    pairs, dates = _pairs(signal, realised)
    top, bottom, constant = _ends(pairs["s"], quantiles)
    r = pairs["r"]
    spread = r[top].groupby(level=0).mean() - r[bottom].groupby(level=0).mean()
    spread = spread.where(~constant.reindex(spread.index, fill_value=True))
    return spread.reindex(dates).rename("quantile_spread")


def top_turnover(signal: pd.Series, quantiles: int = 5) -> pd.Series:
    """Per date: the share of the top quantile's names (by signal) that were not in it on the previous date.

    The previous date is the signal's previous date. NaN on the first date, and
    where either day has no top set (too few names, or a constant signal).
    """
    _check_count(quantiles, "quantiles", 2)
    s = _panel(signal, "signal")
    dates = s.index.get_level_values(0).unique()
    valid = s.dropna()
    top, _, constant = _ends(valid, quantiles)
    informative = ~constant.reindex(valid.index.get_level_values(0)).to_numpy()
    tops: dict[object, set] = {}
    for day, ticker in valid.index[top.to_numpy() & informative]:
        tops.setdefault(day, set()).add(ticker)
    turnover = []
    previous: set | None = None
    for day in dates:
        current = tops.get(day)
        turnover.append(len(current - previous) / len(current) if current and previous else math.nan)
        previous = current
    return pd.Series(turnover, index=dates, name="top_turnover", dtype="float64")


def cumulative_ic(ic: pd.Series) -> pd.Series:
    """Running sum of a daily IC for a chart; a skipped (NaN) day adds nothing, so the line stays flat there."""
    return ic.fillna(0.0).cumsum().rename("cumulative_ic")


@dataclass(frozen=True)
class ModelCrossSection:
    """One model's cross-sectional scores; the t statistics are of the mean Rank IC."""

    ic: float
    rank_ic: float
    icir: float
    rank_icir: float
    t_naive: float
    t_newey_west: float
    spread: float  # mean top-minus-bottom quintile spread of realised returns
    turnover: float  # mean top-quintile turnover
    days: int  # days with a Rank IC

    def to_dict(self) -> dict:
        return finite(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping) -> ModelCrossSection:
        def number(key: str) -> float:
            value = data[key]
            return math.nan if value is None else float(value)

        return cls(ic=number("ic"), rank_ic=number("rank_ic"), icir=number("icir"), rank_icir=number("rank_icir"),
                   t_naive=number("t_naive"), t_newey_west=number("t_newey_west"), spread=number("spread"),
                   turnover=number("turnover"), days=int(data["days"]))


def score(signal: pd.Series, realised: pd.Series, horizon: int, quantiles: int = 5, min_tickers: int = MIN_TICKERS) -> ModelCrossSection:
    """Every cross-sectional score of one signal against the realised ``horizon``-day returns."""
    ic = summary(daily_ic(signal, realised, "pearson", min_tickers), horizon)
    rank = summary(daily_ic(signal, realised, "spearman", min_tickers), horizon)
    return ModelCrossSection(ic=ic.mean, rank_ic=rank.mean, icir=ic.icir, rank_icir=rank.icir, t_naive=rank.t_naive,
                             t_newey_west=rank.t_newey_west, spread=float(quantile_spread(signal, realised, quantiles).mean()),
                             turnover=float(top_turnover(signal, quantiles).mean()), days=rank.days)


@dataclass(frozen=True)
class CrossSectionReport:
    """Cross-sectional scores of several models on the same label, horizon and days."""

    horizon: int
    quantiles: int
    min_tickers: int
    models: dict[str, ModelCrossSection]

    def to_dict(self) -> dict:
        return {"horizon": self.horizon, "quantiles": self.quantiles, "min_tickers": self.min_tickers,
                "newey_west_lags": self.horizon - 1, "models": {name: m.to_dict() for name, m in self.models.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> CrossSectionReport:
        return cls(int(data["horizon"]), int(data["quantiles"]), int(data["min_tickers"]),
                   {name: ModelCrossSection.from_dict(m) for name, m in data["models"].items()})


def evaluate(signals: Mapping[str, pd.Series], realised: pd.Series, horizon: int, quantiles: int = 5,
             min_tickers: int = MIN_TICKERS) -> CrossSectionReport:
    """A ``CrossSectionReport`` of every named signal against the same realised returns."""
    return CrossSectionReport(horizon, quantiles, min_tickers,
                              {name: score(s, realised, horizon, quantiles, min_tickers) for name, s in signals.items()})
