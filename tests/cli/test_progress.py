"""Issue 16 item 2: progress for long work: a line per step off a terminal, bars on one, nothing when quiet or JSON."""

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

