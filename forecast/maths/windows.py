"""Features, target transforms, scalers and sliding windows: pure numpy maths.

Row ``t`` of a feature matrix uses bars up to ``t`` only. A window whose last
observed row is ``t`` predicts the target column at rows ``t+1 .. t+horizon``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from forecast.errors import BadInputError, InsufficientHistoryError

LEVEL_FEATURES = ("close", "open", "high", "low", "volume")
DERIVED_FEATURES = ("return", "log_volume", "range")
FEATURES = LEVEL_FEATURES + DERIVED_FEATURES
# the bar columns each derived feature needs besides the target (a level feature needs itself)
FEATURE_COLUMNS = {"return": (), "log_volume": ("volume",), "range": ("high", "low")}
TRANSFORMS = ("log-return", "level")
_NEEDS_POSITIVE = {"return", "range"}



def sliding_windows(values: np.ndarray, lookback: int) -> np.ndarray:
    """Return every ``lookback``-long window of ``values`` as a read-only strided view.

    values: (T, F) -> (T - lookback + 1, lookback, F). No copy, no Python loop.
    """
    if values.ndim == 1:
        values = values[:, None]
    if len(values) < lookback:
        return np.empty((0, lookback, values.shape[1]), dtype=values.dtype)
    view = np.lib.stride_tricks.sliding_window_view(values, lookback, axis=0)  # (n, F, lookback)
    return view.transpose(0, 2, 1)


def make_windows(features: np.ndarray, target: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (X, Y, last_rows) for every window with a full horizon of targets.

    features: (T, F); target: (T, horizon) where row t holds the transformed
    targets of the window ending at t (see ``target_matrix``).
    X: (n, lookback, F) strided view; Y: (n, horizon); last_rows: (n,) the
    index t of each window's last observed row, n = T - lookback - horizon + 1.
    """
    n = len(features) - lookback - horizon + 1
    if n <= 0:
        return np.empty((0, lookback, features.shape[1])), np.empty((0, horizon)), np.empty(0, dtype=int)
    X = sliding_windows(features, lookback)[:n]
    last_rows = np.arange(lookback - 1, lookback - 1 + n)
    return X, target[last_rows], last_rows


def target_matrix(prices: np.ndarray, horizon: int, transform: str) -> np.ndarray:
    """Return (T, horizon): row t holds the targets of an origin at t (NaN past the end).

    log-return: log(P[t+k] / P[t]), so "tomorrow = today" is exactly 0;
    level: P[t+k] itself.
    """
    T = len(prices)
    padded = np.concatenate([prices, np.full(horizon, np.nan)])
    ahead = sliding_windows(padded[1:], horizon)[:T, :, 0]  # row t: P[t+1..t+horizon]
    if transform == "log-return":
        return np.log(ahead) - np.log(prices)[:, None]
    if transform == "level":
        return ahead.copy()
    raise BadInputError(f"unknown target transform {transform!r}; use one of {', '.join(TRANSFORMS)}")


def invert_target(predicted: np.ndarray, last_price: np.ndarray, transform: str) -> np.ndarray:
    """Return prices from transformed targets. predicted: (n, H); last_price: (n,)."""
    if transform == "log-return":
        return last_price[:, None] * np.exp(predicted)
    return predicted


def feature_matrix(bars: pd.DataFrame, features: list[str], target_column: str) -> np.ndarray:
    """Return (T, F) features; row 0 of a return feature is NaN (no previous bar)."""
    columns = []
    for name in features:
        if name in LEVEL_FEATURES:
            columns.append(bars[name].to_numpy(dtype="float64"))
        elif name == "return":
            p = bars[target_column].to_numpy(dtype="float64")
            columns.append(np.concatenate([[np.nan], np.diff(np.log(p))]))
        elif name == "log_volume":
            columns.append(np.log1p(bars["volume"].to_numpy(dtype="float64")))
        elif name == "range":
            columns.append(np.log(bars["high"].to_numpy(dtype="float64") / bars["low"].to_numpy(dtype="float64")))
        else:
            raise BadInputError(f"unknown feature {name!r}; choose from {', '.join(FEATURES)}")
    return np.column_stack(columns)


def check_complete(bars: pd.DataFrame, features: list[str], target_column: str) -> None:
    """Refuse bars with missing values in the columns a model reads, naming them, before anything is fitted.

    A NaN in one window makes every loss NaN; the fit would run to the end and
    fail on a symptom (the learning rate), not on the data.
    """
    columns = list(dict.fromkeys([target_column, *(c for f in features for c in FEATURE_COLUMNS.get(f, ()))]))
    missing = bars[columns].isna().any(axis=1).to_numpy()
    if missing.any():
        dates = bars["date"][missing]
        named = ", ".join(str(d.date()) for d in dates.iloc[:3]) + (" ..." if len(dates) > 3 else "")
        raise BadInputError(f"{int(missing.sum())} bar(s) have missing {'/'.join(columns)} values ({named}); "
                            f"re-fetch or re-import them, or train from a later --start")


def check_positive(bars: pd.DataFrame, features: list[str], target_column: str, transform: str) -> None:
    """Refuse prices that a log cannot take, naming the dates and the way out (--start)."""
    needs = transform == "log-return" or bool(_NEEDS_POSITIVE & set(features))
    if not needs:
        return
    columns = [target_column] + (["high", "low"] if "range" in features else [])
    bad = (bars[columns] <= 0).any(axis=1).to_numpy()
    if bad.any():
        dates = bars["date"][bad]
        after = bars["date"][bars["date"] > dates.iloc[-1]]
        hint = f"train on a valid range with --start {after.iloc[0].date()}" if len(after) else "no valid range remains"
        raise BadInputError(
            f"{int(bad.sum())} bars have non-positive {target_column} prices ({dates.iloc[0].date()} .. {dates.iloc[-1].date()}), "
            f"which the {transform} target and log features cannot take; {hint}, or use --target-transform level"
        )


@dataclass(frozen=True)
class Scaler:
    """Per-column affine scaling ``(x - shift) / scale``, fit on training rows only."""

    kind: str  # standard | minmax
    shift: list[float]
    scale: list[float]

    @classmethod
    def fit(cls, rows: np.ndarray, kind: str) -> Scaler:
        rows = rows.reshape(len(rows), -1)
        if kind == "standard":
            shift, scale = np.nanmean(rows, axis=0), np.nanstd(rows, axis=0)
        elif kind == "minmax":
            shift, scale = np.nanmin(rows, axis=0), np.nanmax(rows, axis=0) - np.nanmin(rows, axis=0)
        else:
            raise BadInputError(f"unknown scaler {kind!r}")
        scale = np.where(scale > 0, scale, 1.0)
        return cls(kind, [float(v) for v in shift], [float(v) for v in scale])

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - np.asarray(self.shift)) / np.asarray(self.scale)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * np.asarray(self.scale) + np.asarray(self.shift)

    def to_dict(self) -> dict:
        return asdict(self)


def require_history(rows: int, lookback: int, ticker: str, extra: int = 1) -> None:
    """Raise unless ``rows`` bars can fill one window (plus ``extra`` for returns)."""
    needed = lookback + extra
    if rows < needed:
        raise InsufficientHistoryError(f"lookback ({lookback}) needs at least {needed} bars; {ticker} has {rows}")
