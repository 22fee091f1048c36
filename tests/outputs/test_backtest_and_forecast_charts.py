"""Issue 16 item 10: backtest and forecast charts where every line shows and the legend covers no data."""

from __future__ import annotations

import numpy as np
import pytest

# --- item 10: charts --------------------------------------------------------------------------


def _captured_figure(monkeypatch):
    """Make the charts module hand its figure to the test instead of writing it."""
    from forecast.outputs import charts

    seen = {}

    def keep(fig, path):
        seen["fig"] = fig
        fig.canvas.draw()
        return path

    monkeypatch.setattr(charts, "save_figure", keep)
    return seen


def _backtest_frame(n: int = 60, seed: int = 3):
    """Step-1 rows of a backtest: a random walk, naive = yesterday, and a model a little better than naive."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    prices = 100 + np.cumsum(rng.normal(0, 1, n + 1))
    actual, last = prices[1:], prices[:-1]
    model = last + 0.5 * (actual - last)  # halves naive's error: better
    dates = pd.bdate_range("2024-01-01", periods=n).strftime("%Y-%m-%d")
    rows = []
    for name, predicted in (("linear", model), ("naive", last)):
        for i in range(n):
            rows.append({"model": name, "step": 1, "origin_value": last[i], "actual": actual[i], "target_date": dates[i],
                         "predicted": predicted[i], "lower_80": predicted[i] - 1, "upper_80": predicted[i] + 1})
    return pd.DataFrame(rows), actual, model, last


def test_squared_error_gain_ends_at_one_minus_the_sse_ratio_and_shows_who_leads():
    from forecast.outputs.charts import squared_error_gain

    actual = np.array([10.0, 11.0, 12.0, 11.0])
    naive = np.array([9.0, 10.0, 11.0, 12.0])  # errors 1, 1, 1, 1
    model = np.array([10.0, 10.0, 14.0, 11.0])  # errors 0, 1, 2, 0
    gain = squared_error_gain(actual, model, naive)
    assert gain == pytest.approx([0.25, 0.25, -0.5, -0.25])
    assert gain[-1] == pytest.approx(1 - 5 / 4)


def test_backtest_chart_shows_every_line_the_scores_and_who_did_better(monkeypatch, tmp_path):
    from forecast.outputs.charts import backtest_chart

    seen = _captured_figure(monkeypatch)
    frame, actual, model, last = _backtest_frame()
    backtest_chart(frame, "X", "linear", tmp_path / "bt.png")
    ax, ax_res = seen["fig"].axes[:2]
    lines = {line.get_label(): line for line in ax.get_lines()}
    naive = lines["naive (tomorrow = today)"]
    chosen, real = lines["linear (1 day ahead)"], lines["actual"]
    assert naive.get_zorder() > real.get_zorder() > chosen.get_zorder(), "naive on top, the model under the others"
    assert naive.get_linestyle() != chosen.get_linestyle() and naive.get_color() != chosen.get_color()
    assert real.get_color() == "black" and real.get_linewidth() < min(naive.get_linewidth(), chosen.get_linewidth())
    model_rmse, naive_rmse = np.sqrt(np.mean((model - actual) ** 2)), np.sqrt(np.mean((last - actual) ** 2))
    title = ax.get_title()
    assert f"linear: RMSE {model_rmse:.2f}" in title and f"naive: RMSE {naive_rmse:.2f}" in title
    assert "skill vs naive +50.0%" in title  # errors halved: RMSE skill 1 - 0.5
    legend = ax_res.get_legend()
    assert "linear did better" in legend.get_title().get_text()
    assert "linear better than naive so far" in [t.get_text() for t in legend.get_texts()]


def test_backtest_chart_says_so_when_naive_wins(monkeypatch, tmp_path):
    from forecast.outputs.charts import backtest_chart

    seen = _captured_figure(monkeypatch)
    frame, *_ = _backtest_frame()
    worse = frame.copy()
    is_model = worse["model"] == "linear"
    worse.loc[is_model, "predicted"] = worse.loc[is_model, "origin_value"] - (worse.loc[is_model, "actual"] - worse.loc[is_model, "origin_value"])
    backtest_chart(worse, "X", "linear", tmp_path / "bt.png")
    assert "naive did better" in seen["fig"].axes[1].get_legend().get_title().get_text()


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_forecast_chart_legend_never_covers_the_data_even_when_the_band_fills_the_corners(monkeypatch, tmp_path):
    import pandas as pd

    from forecast.models.results import ForecastPoint, ForecastResult
    from forecast.outputs.charts import forecast_chart

    seen = _captured_figure(monkeypatch)
    dates = pd.bdate_range("2024-01-01", periods=80)
    close = np.linspace(100, 140, 80)  # ends at the top left... and a band that widens over everything
    bars = pd.DataFrame({"date": dates, "close": close, "open": close, "high": close + 1, "low": close - 1,
                         "volume": np.full(80, 1e6)})
    points = [ForecastPoint(f"2024-04-{22 + k}", 140.0, {"0.8": [140 - 30 * (k + 1), 140 + 30 * (k + 1)],
                                                         "0.95": [140 - 45 * (k + 1), 140 + 45 * (k + 1)]})
              for k in range(5)]
    result = ForecastResult("X", "linear", "close", "2024-04-19", 140.0, 140.0, points, "",
                            {"kind": "baseline", "family": "linear", "data_range": ["2024-01-01", "2024-04-19"]})
    forecast_chart(bars, result, 60, tmp_path / "f.png")
    ax = seen["fig"].axes[0]
    legend = ax.get_legend()
    assert legend is not None and len(legend.get_texts()) >= 5
    assert not _overlaps(legend.get_window_extent(), ax.get_window_extent()), "the legend sits outside the price panel"
    figure_box = seen["fig"].bbox
    box = legend.get_window_extent()
    assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1 + 1, "and inside the picture"


def test_a_forecast_charts_footer_stays_inside_the_picture_however_long(monkeypatch, tmp_path):
    import pandas as pd

    from forecast.models.results import ForecastPoint, ForecastResult
    from forecast.outputs.charts import forecast_chart

    seen = _captured_figure(monkeypatch)
    dates = pd.bdate_range("2024-01-01", periods=80)
    close = np.linspace(100, 140, 80)
    bars = pd.DataFrame({"date": dates, "close": close, "open": close, "high": close + 1, "low": close - 1,
                         "volume": np.full(80, 1e6)})
    points = [ForecastPoint(f"2024-04-{22 + k}", 140.0, {"0.8": [130.0, 150.0]}) for k in range(5)]
    model_id = "a-universe-with-a-long-name-global-20261207T192753-abcd"  # a universe model's id, and its long advice
    result = ForecastResult("X", model_id, "close", "2024-04-19", 140.0, 140.0, points, "",
                            {"kind": "global", "family": "global", "universe": "a-universe-with-a-long-name",
                             "data_range": ["2014-01-01", "2024-04-19"]})
    forecast_chart(bars, result, 60, tmp_path / "f.png")
    figure = seen["fig"]
    footer = next(t for t in figure.texts if "not a guarantee" in t.get_text())
    box = footer.get_window_extent(renderer=figure.canvas.get_renderer())
    assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1, "the whole footer is in the picture"
    assert box.y0 >= figure.bbox.y0 and not any(_overlaps(box, ax.get_window_extent()) for ax in figure.axes)
