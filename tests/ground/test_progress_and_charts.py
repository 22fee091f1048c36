"""Issue 16 items 2, 9 and 10: progress for long work, one unit (fractions) in JSON, and charts where every line shows."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from forecast.cli import app

runner = CliRunner()


@pytest.fixture
def sample_home(home):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    return home


def test_backtest_json_gives_mape_as_a_fraction_like_every_other_share(sample_home):
    result = runner.invoke(app, ["backtest", "600519.SH", "--models", "drift", "--test-days", "40", "--horizon", "2",
                                 "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["models"]["drift"]
    price = 1800.0  # the sample's last 40 closes are all near it
    assert 0 < scores["mape"] < 0.1, "a fraction, not percent"
    assert scores["mape"] == pytest.approx(scores["mae"] / price, rel=0.15)
    assert all(0 <= step["mape"] < 0.1 for step in scores["by_step"])


def test_the_backtest_table_still_prints_mape_in_percent(sample_home):
    result = runner.invoke(app, ["backtest", "600519.SH", "--models", "drift", "--test-days", "40", "--horizon", "1"])
    assert result.exit_code == 0, result.output
    drift = next(line for line in result.stdout.splitlines() if line.strip().startswith("drift"))
    mape_cell = drift.split()[3]
    assert mape_cell.endswith("%") and 0.1 < float(mape_cell.rstrip("%")) < 10
    assert np.isfinite(float(mape_cell.rstrip("%")))


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


# --- item 2: progress -------------------------------------------------------------------------

STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO ")


def progress_lines(stderr: str, label: str) -> list[str]:
    """The timestamped progress lines of ``label`` (``backtest 600519.SH``, ``train``...) in ``stderr``."""
    return [line for line in stderr.splitlines() if STAMPED.match(line) and re.search(rf" INFO {re.escape(label)} \d+/\d+", line)]


def test_backtest_prints_one_progress_line_per_refit_when_stderr_is_not_a_terminal(sample_home):
    result = runner.invoke(app, ["backtest", "600519.SH", "--models", "naive,drift", "--test-days", "60",
                                 "--refit-every", "20"])
    assert result.exit_code == 0, result.output
    lines = progress_lines(result.stderr, "backtest 600519.SH")
    assert len(lines) >= 3  # the bar: at least one line per refit
    assert [re.search(r" (\d+/\d+): ", line)[1] for line in lines] == [f"{k}/6" for k in range(1, 7)]  # 2 models x 3 folds
    assert "naive fold 1/3" in lines[0] and "drift fold 3/3" in lines[-1]
    assert "fold" not in result.stdout, "progress goes to stderr, never into the table"


def test_backtest_quiet_and_json_print_no_progress(sample_home):
    args = ["backtest", "600519.SH", "--models", "naive,drift", "--test-days", "60", "--refit-every", "20"]
    quiet = runner.invoke(app, [*args, "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0 and progress_lines(as_json.stderr, "backtest") == []
    json.loads(as_json.stdout)


def test_verbose_backtest_says_what_each_refit_trained_on(sample_home):
    result = runner.invoke(app, ["-v", "backtest", "600519.SH", "--models", "drift", "--test-days", "40",
                                 "--refit-every", "20", "--quiet"])
    assert result.exit_code == 0, result.output
    detail = [line for line in result.stderr.splitlines() if "drift fold" in line and "fit on" in line]
    assert len(detail) == 2 and all(STAMPED.match(line) for line in detail)
    assert "2010-12-27.." in detail[0] and "forecast 20 origins" in detail[0]


def test_predict_counts_tickers_and_a_failure_keeps_its_one_error_line(sample_home):
    result = runner.invoke(app, ["predict", "600519.SH", "NOPE", "600519", "--model", "naive"])
    assert result.exit_code == 8, result.output
    lines = progress_lines(result.stderr, "predict")
    assert [line.split(" INFO ")[1].split(" (")[0] for line in lines] == ["predict 1/3: 600519.SH", "predict 3/3: 600519"]
    assert [line for line in result.stderr.splitlines() if "NOPE" in line] == [
        next(line for line in result.stderr.splitlines() if line.startswith("Error: NOPE"))]
    quiet = runner.invoke(app, ["predict", "600519.SH", "600519", "--model", "naive", "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    one = runner.invoke(app, ["predict", "600519.SH", "--model", "naive"])
    assert one.exit_code == 0 and one.stderr == "", "one quick ticker: nothing to count"


def test_verbose_predict_logs_each_forecast(sample_home):
    result = runner.invoke(app, ["-v", "predict", "600519.SH", "--model", "drift"])
    assert result.exit_code == 0, result.output
    assert any(STAMPED.match(line) and "600519.SH: 5-day forecast after 2020-12-25 by drift (--model)" in line
               for line in result.stderr.splitlines()), result.stderr


def test_line_progress_logs_one_line_per_step_and_none_for_a_failed_step(caplog):
    from forecast.progress import LineProgress

    progress = LineProgress()
    with caplog.at_level(logging.INFO, logger="forecast.progress"):
        progress.start(3, "job")
        progress.advance("a")
        progress.advance("b", failed=True)
        progress.advance()
        progress.close()
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" (")[0] for m in messages] == ["job 1/3: a", "job 3/3"]


def test_advancing_counts_every_outcome_after_the_callers_own_report():
    from forecast.workflow.executors import SerialExecutor, advancing

    events = []

    class Recorder:
        def start(self, total, label):
            events.append(("start", total))

        def advance(self, detail="", *, failed=False):
            events.append(("advance", detail, failed))

        def close(self):
            events.append(("close",))

    def job(item):
        if item == "bad":
            raise ValueError("no")
        return item

    SerialExecutor().map(job, ["a", "bad"], on_done=advancing(Recorder(), lambda o: events.append(("report", o.item))))
    assert events == [("report", "a"), ("advance", "a", False), ("report", "bad"), ("advance", "bad", True)]


def test_bars_on_a_terminal_nest_and_leave_the_outer_bar_behind():
    from rich.console import Console

    from forecast.progress import BarProgress

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    outer, inner = BarProgress(console), BarProgress(console)
    outer.start(2, "train")
    for ticker in ("AAA", "BBB"):
        inner.start(3, f"{ticker} epochs")  # a second live display would raise rich.errors.LiveError
        for _ in range(3):
            inner.advance("loss 0.1")
        inner.close()
        outer.advance(ticker)
    outer.close()
    text = screen.getvalue()
    assert "AAA epochs" in text and "train" in text and "2/2" in text
    assert BarProgress._display is None and BarProgress._open == 0


def test_progress_mode_follows_quiet_json_and_the_terminal(monkeypatch):
    from forecast.progress import BarProgress, LineProgress, SilentProgress, make_progress, progress_mode

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_mode() == "lines" and progress_mode(quiet=True) == "none" and progress_mode(as_json=True) == "none"
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress_mode() == "tty"
    assert isinstance(make_progress("tty"), BarProgress) and isinstance(make_progress("lines"), LineProgress)
    assert isinstance(make_progress("none"), SilentProgress) and isinstance(make_progress(None), SilentProgress)


def test_the_progress_module_imports_no_rich_until_a_bar_starts():
    code = "import sys, forecast.progress, forecast.evaluation.backtest; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow
def test_train_counts_tickers_and_epochs_and_verbose_says_what_it_trained(sample_home):
    from conftest import SAMPLE_FILE

    assert runner.invoke(app, ["fetch", "--source", "csv", "--file", str(SAMPLE_FILE), "MTY"]).exit_code == 0
    result = runner.invoke(app, ["-v", "train", "MTY", "600519.SH", "--epochs", "2", "--units", "4", "--lookback", "10"])
    assert result.exit_code == 0, result.output
    assert len(progress_lines(result.stderr, "train")) == 2
    assert len(progress_lines(result.stderr, "MTY epochs")) == 2 and len(progress_lines(result.stderr, "600519.SH epochs")) == 2
    assert re.search(r"INFO 600519\.SH: training default-gru on 2429 bars \(2010-12-27\.\.2020-12-25\)", result.stderr)
    assert re.search(r"INFO 600519\.SH: registered 600519\.SH-default-gru-\S+ \(best epoch \d of 2", result.stderr)
    quiet = runner.invoke(app, ["train", "MTY", "--epochs", "1", "--units", "4", "--lookback", "10", "--quiet"])
    assert quiet.exit_code == 0 and " INFO " not in quiet.stderr  # the note on a worse model may stay


@pytest.mark.slow
def test_run_counts_tickers_done_and_quiet_prints_nothing(sample_home):
    (sample_home / "forecast.toml").write_text('tickers = ["600519.SH"]\nsource = "sample"\n'
                                               "[train]\nepochs = 1\nunits = [4]\nlookback = 10\nhorizon = 3\n")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    assert [line.split(" INFO ")[1].split(" (")[0] for line in progress_lines(result.stderr, "run")] == ["run 1/1: 600519.SH"]
    quiet = runner.invoke(app, ["run", "--quiet"])
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_a_network_fold_says_it_is_fitting_before_the_fit_and_a_baseline_fold_stays_one_line(monkeypatch, caplog):
    """Issue 29 item 10: the first line of a network backtest comes before its first fit (a minute or more), not after."""
    import logging
    from types import SimpleNamespace

    import pandas as pd

    from forecast.evaluation import backtest
    from forecast.progress import LineProgress

    frame = pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=120), "close": np.linspace(10, 20, 120)})
    frame["open"] = frame["close"]
    fitted: list[str] = []

    class Slow:
        def fit(self, training):
            fitted.append(caplog.records[-1].getMessage() if caplog.records else "")

    monkeypatch.setattr(backtest, "make_forecaster", lambda *args, **kw: Slow())
    monkeypatch.setattr(backtest, "forecast_bands", lambda model, frame, origins: SimpleNamespace(
        point=np.zeros((len(origins), 1)), lower={}, upper={}))
    reporter = LineProgress(logging.getLogger("forecast.progress"))
    with caplog.at_level(logging.INFO, logger="forecast.progress"):
        reporter.start(4, "backtest X")
        backtest.run_model("default", frame, np.arange(100, 110), 1, "close", 5, None, (0.8,), progress=reporter)
        notes_before_fits = list(fitted)
        fitted.clear()
        backtest.run_model("naive", frame, np.arange(100, 110), 1, "close", 5, None, (0.8,), progress=reporter)
    assert notes_before_fits == ["backtest X 0/4: default fold 1/2: fitting on 101 bars (0s)",
                                 "backtest X 1/4: default fold 2/2: fitting on 106 bars (0s)"]
    assert not any("fitting" in line for line in fitted)  # a baseline's fit is instant: its fold line is enough


def test_a_cross_sectional_backtest_says_what_it_is_doing_before_its_first_refit_is_done(home):
    """Issue 29 item 10: loading, pooling and each refit's fit are said as they start (not 150 s later, after the first refit)."""
    from tests.models.pooled.test_commands import TICKERS, store_panel
    from tests.models.pooled.test_data import make_panel

    store_panel(home, make_panel({t: 420 for t in TICKERS}, seed=21))
    result = runner.invoke(app, ["backtest", "--universe", "stored", "--models", "linear,momentum_20", "--test-days", "30",
                                 "--refit-every", "15", "--horizon", "3"])
    assert result.exit_code == 0, result.output
    lines = progress_lines(result.stderr, "refits")
    said = [line for line in lines if " 0/2: " in line]  # before the first refit is done
    assert any("loading 6 tickers' bars" in line for line in said) and any("pooling 6 tickers' windows" in line for line in said)
    assert any("linear: fitting the refit at" in line for line in said)
    assert " 1/2: " in [line for line in lines if "fitting" in line][1]  # the second fit is said after the first is done
