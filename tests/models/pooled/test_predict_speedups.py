"""The shortcuts of a 5,400-ticker predict give what the plain way gives: JSON values, capped bands, pooled inputs."""

from __future__ import annotations

import copy
import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from forecast.data.trading_rules import clip_band, limit_paths
from forecast.jsonio import dumps
from forecast.models.pooled.data import pool
from forecast.models.results import ForecastPoint, ForecastResult
from forecast.workflow.price_limits import cap_forecasts


def _stdlib(value):
    """What the standard library's encoder made of ``value`` before orjson, NaN and infinities as null."""
    def plain(v):
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
            return v if not isinstance(v, float) or math.isfinite(v) else None
        return str(v)

    def nulls(v):
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, dict):
            return {k: nulls(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [nulls(x) for x in v]
        return v

    return json.dumps(nulls(value), default=plain)


PAYLOAD = {
    "floats": [0.1, 1e-05, 1e16, -0.0, 24.661014250634835, float("nan"), float("inf"), -float("inf")],
    "numpy": [np.float64(0.3), np.float32(1.5), np.int64(7), np.float64("nan")],
    "keys": {1: "int", 2.5: "float", None: "none", False: "bool"},
    "text": "平安银行 ¥",
    "dates": [dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5), pd.Timestamp("2024-01-02")],
    "nested": {"a": [{"b": (1, 2)}], "empty": {}, "none": None, "yes": True},
}


@pytest.mark.parametrize("indent", [2, None])
def test_dumps_gives_the_standard_librarys_json_values_nan_as_null(indent):
    text = dumps(PAYLOAD, indent=indent)
    assert json.loads(text) == json.loads(_stdlib(PAYLOAD))
    assert "NaN" not in text and "Infinity" not in text


def test_dumps_indents_by_two_spaces_keeps_non_ascii_and_compacts_on_request():
    assert dumps({"a": [1, "é"]}) == '{\n  "a": [\n    1,\n    "é"\n  ]\n}'
    assert "\n" not in dumps({"a": [1, 2]}, indent=None)


def test_what_orjson_refuses_still_comes_out_as_before():
    assert json.loads(dumps({"big": 2**70, "x": float("nan")})) == {"big": 2**70, "x": None}
    assert json.loads(dumps({"a": [1]}, indent=4)) == {"a": [1]}


def _forecast(ticker: str, last_close: float, rng: np.random.Generator, steps: int = 5) -> ForecastResult:
    points = []
    for h in range(steps):
        value = last_close * math.exp(rng.normal(0, 0.15))
        low, high = sorted(last_close * np.exp(rng.normal(0, 0.3, 2)))
        wide = [low * 0.8, high * 1.2]
        if rng.random() < 0.1:
            wide[rng.integers(2)] = float(rng.choice([np.nan, np.inf, -np.inf]))
        points.append(ForecastPoint(f"2024-01-{h + 2:02d}", value, {"0.8": [float(low), float(high)], "0.95": wide}))
    return ForecastResult(ticker, "m", "close", "2024-01-01", last_close, last_close, points, "now")


def _capped_one_by_one(result: ForecastResult, rate: float) -> ForecastResult:
    """The capping as it was written per forecast: ``clip_band`` on the point and each level."""
    floors, ceilings = (a[0] for a in limit_paths(np.array([result.last_close]), rate, len(result.points)))
    values = [p.value for p in result.points]
    point = clip_band(values, values, floors, ceilings)
    cut = {}
    for level in result.levels:
        band = clip_band([p.intervals[level][0] for p in result.points], [p.intervals[level][1] for p in result.points],
                         floors, ceilings)
        for p, lo, hi in zip(result.points, band.lower, band.upper):
            p.intervals[level] = [lo, hi]
        cut[level] = band.cut
    for p, value in zip(result.points, point.lower):
        p.value = value
    result.price_limits = {"rate": rate, "st": False, "point_cut": point.cut, "cut": cut}
    return result


def test_capping_many_forecasts_at_once_gives_each_one_capped_alone(tmp_path):
    rng = np.random.default_rng(3)
    tickers = [f"60{i:04d}.SH" for i in range(40)] + [f"30{i:04d}.SZ" for i in range(40)]  # 10 % and 20 % boards
    results = [_forecast(t, float(rng.uniform(2, 200)), rng) for t in tickers]
    expected = [_capped_one_by_one(copy.deepcopy(r), 0.2 if r.ticker.startswith("30") else 0.1) for r in results]
    cap_forecasts(tmp_path, results)
    assert any(c != "" for r in expected for c in r.price_limits["point_cut"])  # some were cut
    for got, want in zip(results, expected):
        assert got.price_limits == want.price_limits
        for p, q in zip(got.points, want.points):
            assert np.asarray([p.value, *p.intervals["0.8"], *p.intervals["0.95"]]).tobytes() == \
                np.asarray([q.value, *q.intervals["0.8"], *q.intervals["0.95"]]).tobytes()
            assert all(type(v) is float for v in [p.value, *p.intervals["0.8"]])


def _panel(tickers: int = 6, days: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2023-01-02", periods=days)
    frames = []
    for i in range(tickers):
        close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, days)))
        frames.append(pd.DataFrame({"open": close * 0.99, "high": close * 1.01, "low": close * 0.98, "close": close,
                                    "volume": rng.uniform(1e5, 1e6, days), "amount": close * 1e5},
                                   index=pd.MultiIndex.from_product([dates, [f"{600000 + i}.SH"]], names=["date", "ticker"])))
    return pd.concat(frames).sort_index()


def test_pooling_without_labels_gives_the_same_inputs_and_only_unknown_labels():
    panel = _panel()
    full, bare = pool(panel, 5), pool(panel, 5, labels=False)
    for name in ("tickers", "dates", "position", "sequence", "static", "sigma", "close"):
        assert getattr(full, name).tobytes() == getattr(bare, name).tobytes(), name
    assert bare.labels.shape == full.labels.shape and bare.horizon == 5
    assert np.isnan(bare.labels).all() and np.isnat(bare.label_dates).all()
    assert np.isfinite(full.labels).any()
    with pytest.raises(ValueError):
        bare.labels[0, 0] = 1.0  # read-only: no caller can write into a label it never had


def test_a_limit_that_cannot_be_computed_cuts_nothing_as_clip_band_does():
    from forecast.workflow.price_limits import _clipped

    lower, upper = np.array([[10.0, 11.0]]), np.array([[12.0, 13.0]])
    unknown = np.full((1, 2), np.nan)
    lows, highs, sides = _clipped(lower, upper, unknown, unknown)
    one = clip_band([10.0, 11.0], [12.0, 13.0], [np.nan, np.nan], [np.nan, np.nan])
    assert lows.tolist() == [[10.0, 11.0]] and highs.tolist() == [[12.0, 13.0]]  # the band as it was
    assert sides.tolist() == [["", ""]] and list(one.cut) == ["", ""]
