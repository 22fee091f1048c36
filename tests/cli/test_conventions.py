"""Issue 16, items 8, 4, 9 and 11: CLI manners, choosing a model, clean output, benchmarks that skip cleanly.

Fast: no TensorFlow. Models are registered as training leaves them (a card
and a small zip), and where a command would load a network, the per-ticker
job is replaced by one that resolves the model exactly as predict does and
forecasts with the naive baseline.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile

import pandas as pd
import pytest
from conftest import REPO, SAMPLE_FILE, subprocess_env
from typer.main import get_command
from typer.testing import CliRunner

from forecast import __version__
from forecast.cli import app
from forecast.errors import ExitCode, ModelNotFoundError
from forecast.formatting import format_number, format_percent, format_table
from forecast.models.card import ModelCard
from forecast.models.registry import ModelRegistry
from forecast.models.train_config import DEFAULT
from forecast.workspace import Workspace

runner = CliRunner()
TICKER = "600519.SH"
OLD = f"{TICKER}-default-gru-20260101T000000-aaaa"
NEW = f"{TICKER}-default-gru-20260201T000000-bbbb"


def register(home, model_id: str, skill: float, created: str, ticker: str = TICKER) -> ModelCard:
    """Save a model through the registry as training does (the latest pointer moves to it), without TensorFlow."""
    card = ModelCard(model_id, ticker, created, DEFAULT, tuple(DEFAULT.features),
                     {"features": {"kind": "standard", "shift": [0.0], "scale": [1.0]},
                      "target": {"kind": "standard", "shift": [0.0], "scale": [1.0]}},
                     {"range": ["2010-12-27", "2020-12-25"]},
                     {"rmse": 20.0 * (1 - skill), "naive_rmse": 20.0, "skill_vs_naive": skill, "val_loss": 0.1, "best_epoch": 3},
                     {"scale_window": 60, "quantiles": {"0.8": [1.0] * DEFAULT.horizon}})

    def write_model(path):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", "{}")

    ModelRegistry(home).save(card, write_model)
    return card


@pytest.fixture
def two_models(home):
    """The sample stored, and two models of it: OLD (skill +5 %) and NEW (skill -10 %, the latest)."""
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    register(home, OLD, 0.05, "2026-01-01T00:00:00+00:00")
    register(home, NEW, -0.10, "2026-02-01T00:00:00+00:00")
    return home


@pytest.fixture
def fake_network_forecast(monkeypatch):
    """predict_one that resolves the model as predict does, then forecasts with naive under that model's id."""
    from forecast.data.store import MarketStore
    from forecast.data.tickers import parse_ticker
    from forecast.models.forecasters import is_baseline
    from forecast.models.predicting import predict_baseline
    from forecast.models.results import save_forecast
    from forecast.workflow import jobs

    def predict_one(workspace, ticker, model_id=None, horizon=None, levels=(0.8, 0.95), models=None):
        if model_id and is_baseline(model_id):
            return predict_baseline(MarketStore(workspace), ticker, model_id, horizon, levels=levels)
        chosen = ModelRegistry(workspace).resolve(str(parse_ticker(ticker)), model_id)
        result = predict_baseline(MarketStore(workspace), ticker, "naive", horizon, levels=levels)
        result.model_id = chosen
        save_forecast(workspace, result)
        return result

    monkeypatch.setattr(jobs, "predict_one", predict_one)


# --- item 8: standard CLI manners ------------------------------------------------------------------------------

def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"forecast {__version__}"


def test_shell_completion_is_offered_and_prints_a_script(monkeypatch):
    import typer.completion

    helped = runner.invoke(app, ["--help"])
    assert "--install-completion" in helped.stdout and "--show-completion" in helped.stdout
    # --show-completion detects the user's shell from the parent process; under make or cron that is sh, not bash
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    shown = runner.invoke(app, ["--show-completion"], prog_name="forecast")
    assert shown.exit_code == 0 and "_FORECAST_COMPLETE" in shown.stdout


def _leaves(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _leaves(sub, (*path, name))


def test_boolean_flags_are_shown_as_flags_and_refuse_a_value(home):
    for path, _ in _leaves(get_command(app)):
        text = runner.invoke(app, [*path, "--help"]).stdout
        assert "<bool>" not in text, f"forecast {' '.join(path)} --help shows a <bool> metavar"
    assert re.search(r"^\s+--json\s+Print machine-readable JSON", runner.invoke(app, ["predict", "--help"]).stdout, re.M)
    refused = runner.invoke(app, ["doctor", "--json", "true"])
    assert refused.exit_code == ExitCode.USAGE  # a flag takes no value, and the help no longer suggests one


def test_help_at_80_columns_keeps_every_option_name_whole():
    command = get_command(app).commands["train"]
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for param in command.params:
        for name in [*param.opts, *param.secondary_opts]:
            if name.startswith("-"):
                assert re.search(rf"(^|[\s,/]){re.escape(name)}($|[\s,/])", result.stdout, re.M), f"{name} is cut"
    words = re.sub(r"\s+", "", result.stdout)  # the list of valid --features, wrapped but whole
    assert "close,open,high,low,volume,return,log_volume,range" in words


@pytest.mark.parametrize("args", [
    ["train", "--nope", "--json"],                       # an unknown option, seen before --json is read
    ["predict", "--json"],                               # a missing argument
    ["backtest", "600519.SH", "--test-days", "0", "--json"],  # a value out of range
    ["--json", "models", "list"],                        # --json where the root has none
])
def test_usage_errors_under_json_print_the_error_object(home, args):
    result = runner.invoke(app, args)
    assert result.exit_code == ExitCode.USAGE
    payload = json.loads(result.stdout)
    assert set(payload) == {"error", "exit_code"} and payload["exit_code"] == ExitCode.USAGE and payload["error"]
    assert "Error:" in result.stderr  # the usual text still goes to stderr


def test_usage_errors_without_json_print_nothing_on_stdout(home):
    result = runner.invoke(app, ["train", "--nope"])
    assert result.exit_code == ExitCode.USAGE and result.stdout == ""


# --- item 4: choosing a model ----------------------------------------------------------------------------------

def test_a_pin_decides_what_resolve_returns_until_it_is_removed(two_models):
    registry = ModelRegistry(two_models)
    assert registry.resolve(TICKER) == NEW and registry.choice(TICKER).reason == "latest"
    registry.pin(OLD)
    assert Workspace.at(two_models).pin_file(TICKER).read_text().strip() == OLD
    assert registry.resolve(TICKER) == OLD and registry.choice(TICKER).reason == "pinned"
    assert registry.choice(TICKER, NEW).reason == "--model"
    assert registry.unpin(TICKER) == OLD and registry.resolve(TICKER) == NEW


def test_the_pin_path_is_checked_like_every_other_path(tmp_path):
    workspace = Workspace.at(tmp_path)
    assert workspace.pin_file("BRK-B").parent == workspace.pinned_dir
    assert workspace.pinned_dir.parent == workspace.models_dir
    with pytest.raises(Exception, match="ticker"):
        workspace.pin_file("../../etc")


def test_removing_a_pinned_model_removes_its_pin_and_a_dangling_pin_is_an_error(two_models):
    registry = ModelRegistry(two_models)
    registry.pin(OLD)
    result = runner.invoke(app, ["models", "rm", OLD])
    assert result.exit_code == 0 and "pinned" in result.stdout
    assert registry.resolve(TICKER) == NEW
    Workspace.at(two_models).pin_file(TICKER).write_text("600519.SH-gone\n")
    with pytest.raises(ModelNotFoundError, match="--latest"):
        registry.resolve(TICKER)


def test_models_use_pins_and_latest_unpins(two_models):
    pinned = runner.invoke(app, ["models", "use", OLD])
    assert pinned.exit_code == 0, pinned.output
    assert OLD in pinned.stdout and "--latest" in pinned.stdout
    shown = runner.invoke(app, ["models", "show", "600519"])
    assert shown.exit_code == 0 and f"predict and run use {OLD} (pinned)" in shown.stdout
    as_json = json.loads(runner.invoke(app, ["models", "show", TICKER, "--json"]).stdout)
    assert as_json["id"] == OLD and as_json["in_use"] and as_json["in_use_because"] == "pinned"
    unpinned = runner.invoke(app, ["models", "use", TICKER, "--latest", "--json"])
    assert unpinned.exit_code == 0
    assert json.loads(unpinned.stdout) == {"ticker": TICKER, "model_id": NEW, "in_use_because": "latest", "unpinned": OLD}
    missing = runner.invoke(app, ["models", "use", TICKER])  # a ticker without --latest names no model
    assert missing.exit_code == ExitCode.NOT_FOUND and "--latest" in missing.stderr


def test_models_list_has_a_header_aligned_columns_a_legend_and_a_ticker_filter(two_models):
    register(two_models, "000858.SZ-default-gru-20260301T000000-cccc", 0.0, "2026-03-01T00:00:00+00:00", ticker="000858.SZ")
    runner.invoke(app, ["models", "use", OLD])
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header, rows, legend = lines[0], lines[1:-1], lines[-1]
    assert header.split() == ["USE", "MODEL", "TICKER", "TRAINED", "ON", "H", "VAL", "RMSE", "SKILL"]
    assert len(rows) == 3
    model_at, ticker_at = header.index("MODEL"), header.index("TICKER")
    by_id = {row[model_at:].split()[0]: row for row in rows}  # every id starts under its header
    assert set(by_id) == {OLD, NEW, "000858.SZ-default-gru-20260301T000000-cccc"}
    assert all(row[ticker_at:].split()[0] in (TICKER, "000858.SZ") for row in rows)
    assert {len(row) for row in rows} == {len(header)}  # right-aligned last column: every line ends at the same place
    assert by_id[OLD].startswith("* pinned") and not by_id[NEW].startswith("*")
    assert by_id["000858.SZ-default-gru-20260301T000000-cccc"].startswith("* ")
    assert "+5.0%" in by_id[OLD] and "-10.0%" in by_id[NEW] and "0.0%" in by_id["000858.SZ-default-gru-20260301T000000-cccc"]
    assert legend.startswith("* = ") and "predict and run" in legend
    only = runner.invoke(app, ["models", "list", "600519", "--json"])
    assert only.exit_code == 0 and {r["id"] for r in json.loads(only.stdout)} == {OLD, NEW}
    assert [r["in_use"] for r in json.loads(only.stdout)] == [True, False]


def test_predict_says_which_model_it_used_and_why(two_models, fake_network_forecast):
    latest = runner.invoke(app, ["predict", TICKER])
    assert latest.exit_code == 0, latest.output
    assert f"model {NEW} (latest)" in latest.stdout.splitlines()[0]
    runner.invoke(app, ["models", "use", OLD])
    pinned = runner.invoke(app, ["predict", TICKER])
    assert f"model {OLD} (pinned)" in pinned.stdout.splitlines()[0]
    assert json.loads(runner.invoke(app, ["predict", TICKER, "--json"]).stdout)["model_choice"] == "pinned"
    named = runner.invoke(app, ["predict", TICKER, "--model", "naive"])
    assert "model naive (--model)" in named.stdout.splitlines()[0]


def test_run_records_and_logs_which_model_it_used_and_why(two_models, fake_network_forecast, monkeypatch):
    from forecast.outputs import plotting

    monkeypatch.setattr(plotting, "render", lambda home, ticker, kind, out=None, **kw: out.write_bytes(b"png"))
    runner.invoke(app, ["models", "use", OLD])
    log = two_models / "run.log"
    result = runner.invoke(app, ["run", TICKER, "--source", "sample", "--retrain-after", "never", "--log-file", str(log)])
    assert result.exit_code == 0, result.output
    assert f"by {OLD} (pinned)" in result.stdout
    summary = json.loads((two_models / "daily" / "latest" / "summary.json").read_text())
    assert summary["tickers"][0]["model_id"] == OLD and summary["tickers"][0]["model_choice"] == "pinned"
    assert f"model {OLD} (pinned)" in log.read_text()


def test_train_says_when_the_new_model_is_worse_than_the_one_in_use(home, monkeypatch):
    from forecast.models.training import TrainResult
    from forecast.workflow import jobs

    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    register(home, OLD, 0.05, "2026-01-01T00:00:00+00:00")

    def train_one(workspace, ticker, cfg, progress="none", levels=(0.8, 0.95)):
        card = register(home, NEW, -0.10, "2026-02-01T00:00:00+00:00")
        return TrainResult(card.id, card)

    monkeypatch.setattr(jobs, "train_one", train_one)
    result = runner.invoke(app, ["train", TICKER])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "worse on validation" in line]
    assert len(notes) == 1 and NEW in notes[0] and f"forecast models use {OLD}" in notes[0]
    assert "-10.0%" in notes[0] and "+5.0%" in notes[0]


def test_train_under_a_pin_says_the_pin_stays(home, monkeypatch):
    from forecast.models.training import TrainResult
    from forecast.workflow import jobs

    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    register(home, OLD, 0.05, "2026-01-01T00:00:00+00:00")
    ModelRegistry(home).pin(OLD)
    monkeypatch.setattr(jobs, "train_one", lambda workspace, ticker, cfg, progress="none", levels=(0.8, 0.95): TrainResult(
        NEW, register(home, NEW, 0.10, "2026-02-01T00:00:00+00:00")))
    result = runner.invoke(app, ["train", TICKER, "--json"])
    assert result.exit_code == 0, result.output
    assert f"keep the pinned {OLD}" in result.stderr and ModelRegistry(home).resolve(TICKER) == OLD
    assert "keep the pinned" in json.loads(result.stdout)[0]["note"]


# --- item 9: output polish --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, sign, expected", [
    (0.0123, False, "1.2%"), (0.0123, True, "+1.2%"), (-0.0123, True, "-1.2%"), (-0.0004, False, "0.0%"),
    (-0.0004, True, "0.0%"), (-0.0, True, "0.0%"), (0.0, False, "0.0%"), (None, False, "-"), (float("nan"), True, "-"),
    (float("inf"), False, "-"), (-3.4, False, "-340.0%"),
])
def test_percentages_have_one_format_and_never_minus_zero(value, sign, expected):
    assert format_percent(value, sign=sign) == expected


def test_numbers_and_tables_print_a_dash_for_missing_values():
    assert format_number(float("nan")) == "-" and format_number(None) == "-" and format_number(-0.001) == "0.00"
    assert format_number(2308800.0, 0, thousands=True) == "2,308,800"
    table = format_table(["name", "value"], [["a", "1.00"], ["long name", None]])
    assert table.splitlines() == ["name       value", "a           1.00", "long name      -"]


def test_a_table_is_plain_text_in_a_pipe_and_a_rich_table_on_a_terminal(monkeypatch, capsys):
    from forecast.cli._options import echo_table

    echo_table(["MODEL", "RMSE"], [["m1", "1.00"]])
    plain = capsys.readouterr().out
    assert plain.splitlines() == ["MODEL  RMSE", "m1     1.00"]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    echo_table(["MODEL", "RMSE"], [["m1", "[red]1.00"]])
    text = terminal.getvalue()
    assert "MODEL" in text and "─" in text and "[red]1.00" in text  # a Rich rule under the header; data is not markup


def test_data_show_prints_the_last_n_bars_as_a_table_without_nan(home):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    result = runner.invoke(app, ["data", "show", "600519", "-n", "3"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["date", "open"])
    bars = lines[header + 1:header + 4]
    assert [b.split()[0] for b in bars] == ["2020-12-23", "2020-12-24", "2020-12-25"]
    assert "nan" not in result.stdout.lower() and all(b.split()[-1] == "-" for b in bars)  # no amount in the sample
    assert len(runner.invoke(app, ["data", "show", "600519"]).stdout.splitlines()) == len(lines) + 2  # default: 5 bars
    shown = json.loads(runner.invoke(app, ["data", "show", "600519", "-n", "2", "--json"]).stdout)
    assert [b["date"] for b in shown["last_bars"]] == ["2020-12-24", "2020-12-25"] and shown["last_bars"][0]["amount"] is None


def test_forecast_csvs_are_rounded_to_four_decimals(home):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    out = home / "next.csv"
    assert runner.invoke(app, ["predict", TICKER, "--model", "drift", "--out", str(out)]).exit_code == 0
    decimals = re.findall(r"\.(\d+)", out.read_text())
    assert decimals and max(len(d) for d in decimals) <= 4


def test_a_generic_import_says_raw_prices(home, tmp_path):
    sample = pd.read_csv(SAMPLE_FILE)
    pd.DataFrame({"Day": sample["date"], "Last": sample["close"]}).to_csv(tmp_path / "x.csv", index=False)
    result = runner.invoke(app, ["fetch", "SPX", "--source", "csv", "--file", str(tmp_path / "x.csv"), "--columns", "date=Day,close=Last"])
    assert result.exit_code == 0, result.output
    assert "generic layout, raw prices" in result.stdout and "none prices" not in result.stdout


# --- item 11: benchmarks that need the shared datasets skip cleanly --------------------------------------------------------

@pytest.mark.parametrize("script", [["benchmarks/course_split.py"], ["benchmarks/run_benchmarks.py", "--only", "train"],
                                    ["benchmarks/global_sp500.py"], ["benchmarks/global_vs_per_ticker.py"],
                                    ["benchmarks/interval_adaptive.py"], ["benchmarks/portfolio_sp500.py"],
                                    ["benchmarks/interval_models.py"], ["benchmarks/interval_garch_scale.py"],
                                    ["benchmarks/interval_range_scale.py"], ["benchmarks/interval_market_scale.py"],
                                    ["benchmarks/interval_history.py"], ["benchmarks/universe_intervals.py"],
                                    ["benchmarks/interval_sides.py"], ["benchmarks/universe_track_carry.py"]])
def test_benchmarks_without_the_shared_datasets_say_so_and_exit_0(tmp_path, script):
    out = subprocess.run([sys.executable, *script], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env=subprocess_env(FORECAST_SHARED=tmp_path / "no-shared"))
    assert out.returncode == 0, out.stderr
    assert re.search(r"needs .*no-shared/datasets/(moutai|us_sp500)/\S+; skipped", out.stdout)
    assert "Traceback" not in out.stderr


# issue 29 item 20: the models commands' manners
def test_models_show_reads_as_text_list_says_pinning_only_when_pinned_and_rm_speaks_json(two_models):
    shown = runner.invoke(app, ["models", "show", NEW])
    assert shown.exit_code == 0, shown.output
    assert "{" not in shown.stdout and "id:" in shown.stdout and NEW in shown.stdout  # text, not raw JSON
    listed = runner.invoke(app, ["models", "list"])
    assert "pinned" not in listed.stdout.splitlines()[-1]  # nothing pinned: no word about pinning
    runner.invoke(app, ["models", "use", OLD])
    assert "pinned" in runner.invoke(app, ["models", "list"]).stdout.splitlines()[-1]
    removed = runner.invoke(app, ["models", "rm", OLD, "--json"])
    assert removed.exit_code == 0 and json.loads(removed.stdout) == {"removed": OLD, "was_pinned_for": TICKER}


def test_several_tickers_under_json_always_give_results_and_failures(home):
    from tests.models.pooled.test_commands import TICKERS, store_panel
    from tests.models.pooled.test_data import make_panel

    store_panel(home, make_panel({t: 200 for t in TICKERS[:2]}, seed=4))
    both = runner.invoke(app, ["predict", *TICKERS[:2], "--model", "naive", "--json"])
    assert both.exit_code == 0, both.output
    payload = json.loads(both.stdout)
    assert set(payload) == {"results", "failures"} and payload["failures"] == [] and len(payload["results"]) == 2
    one = json.loads(runner.invoke(app, ["predict", TICKERS[0], "--model", "naive", "--json"]).stdout)
    assert one["ticker"] == TICKERS[0]  # one ticker named: its own object, as before
