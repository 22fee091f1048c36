"""Windowing, targets and scaling: pure numpy, checked against plain loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import COURSE_FILE, SAMPLE_FILE

from forecast.data.sources.csv_file import read_bars_csv
from forecast.errors import BadInputError, InsufficientHistoryError
from forecast.maths.windows import make_windows, require_history, sliding_windows, target_matrix
from forecast.models.dataset import fit_scaling, training_arrays
from forecast.models.train_config import TrainConfig


def sample_bars() -> pd.DataFrame:
    return read_bars_csv(SAMPLE_FILE).frame


@pytest.mark.parametrize("T, F, lookback", [(50, 3, 7), (10, 1, 10), (5, 2, 6)])
def test_sliding_windows_match_a_reference_loop(T, F, lookback):
    values = np.random.default_rng(T).normal(size=(T, F))
    expected = np.array([values[i:i + lookback] for i in range(T - lookback + 1)]).reshape(-1, lookback, F)
    got = sliding_windows(values, lookback)
    assert got.shape == (max(T - lookback + 1, 0), lookback, F)
    np.testing.assert_array_equal(got, expected)
    if len(got):
        assert np.shares_memory(got, values)  # a view, not a copy


def test_target_matrix_matches_a_loop_for_both_transforms():
    prices = np.random.default_rng(1).uniform(10, 20, size=40)
    H = 4
    for transform in ("log-return", "level"):
        got = target_matrix(prices, H, transform)
        for t in range(len(prices)):
            for k in range(H):
                if t + k + 1 < len(prices):
                    want = np.log(prices[t + k + 1] / prices[t]) if transform == "log-return" else prices[t + k + 1]
                    assert got[t, k] == pytest.approx(want)
                else:
                    assert np.isnan(got[t, k])


def test_windows_align_each_target_with_the_bars_after_the_window():
    T, lookback, H = 30, 5, 3
    feats = np.arange(T, dtype=float)[:, None]
    prices = np.arange(1, T + 1, dtype=float)
    X, Y, last = make_windows(feats, target_matrix(prices, H, "level"), lookback, H)
    assert X.shape == (T - lookback - H + 1, lookback, 1) and Y.shape == (len(X), H)
    for i in range(len(X)):
        assert X[i, -1, 0] == last[i]  # the window ends at its origin row
        np.testing.assert_array_equal(Y[i], prices[last[i] + 1: last[i] + 1 + H])
    assert last[-1] + H == T - 1  # the newest window with a full future uses the last bar as target


def test_scalers_see_training_rows_only():
    bars = sample_bars()
    cfg = TrainConfig(lookback=10, horizon=2, features=("return", "log_volume", "close"))
    arrays = training_arrays(bars, cfg, "600519.SH")
    mutated = bars.copy()
    mutated.loc[arrays.split_row:, ["open", "high", "low", "close"]] *= 3.0
    mutated.loc[arrays.split_row:, "volume"] *= 50
    again = training_arrays(mutated, cfg, "600519.SH")
    assert again.scaling == arrays.scaling
    np.testing.assert_array_equal(again.X_train, arrays.X_train)
    np.testing.assert_array_equal(again.Y_train, arrays.Y_train)
    assert not np.array_equal(again.X_val, arrays.X_val)  # the mutation did reach the validation part
    assert fit_scaling(mutated, cfg, arrays.split_row) == fit_scaling(bars, cfg, arrays.split_row)


def test_validation_is_carved_from_the_end_and_never_overlaps_training_targets():
    bars = sample_bars()
    cfg = TrainConfig(lookback=20, horizon=5)
    arrays = training_arrays(bars, cfg, "600519.SH")
    assert arrays.val_last_rows.min() == arrays.split_row - 1
    n_train = len(arrays.X_train)
    last_train_origin = cfg.lookback - 1 + 1 + n_train - 1  # first valid row is 1 for return features
    assert last_train_origin + cfg.horizon <= arrays.split_row - 1
    assert len(arrays.X_val) == len(bars) - arrays.split_row - cfg.horizon + 1


def test_non_positive_prices_are_refused_with_dates_and_a_way_out():
    bars = read_bars_csv(COURSE_FILE).frame
    with pytest.raises(BadInputError) as info:
        training_arrays(bars, TrainConfig(), "600519.SH")
    message = str(info.value)
    assert "2010-04-26" in message and "--start" in message
    bad = bars[bars["close"] <= 0]["date"].iloc[-1]
    after = bars[bars["date"] > bad]["date"].iloc[0].date().isoformat()
    assert f"--start {after}" in message
    # the level transform on open prices (the course setup) can take them
    level = TrainConfig(features=("open",), target="open", transform="level", scaler="minmax", lookback=60, horizon=1)
    assert len(training_arrays(bars, level, "600519.SH").X_train) > 0


def test_too_little_history_names_the_numbers():
    with pytest.raises(InsufficientHistoryError, match=r"lookback \(60\) needs at least 61 bars; 600519.SH has 40"):
        require_history(40, 60, "600519.SH")


def test_missing_values_in_a_column_the_model_reads_are_named_before_any_fit():
    import pandas as pd
    import pytest

    from forecast.errors import BadInputError
    from forecast.maths.windows import check_complete

    bars = pd.DataFrame({"date": pd.bdate_range("2021-01-04", periods=5), "close": [1.0, None, 1.2, 1.3, None],
                         "open": [None] * 5, "high": 1.5, "low": 0.9, "volume": 100.0})
    with pytest.raises(BadInputError, match=r"2 bar\(s\) have missing close values \(2021-01-05, 2021-01-08\)"):
        check_complete(bars, ["return"], "close")
    check_complete(bars.assign(close=1.0), ["return", "range"], "close")  # open is missing, but no model reads it
