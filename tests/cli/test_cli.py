"""The CLI as users run it: help texts, exit codes, JSON, and start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import COURSE_FILE, REPO, subprocess_env
from typer.main import get_command
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.store import MarketStore
from forecast.errors import ExitCode

runner = CliRunner()


def walk(command, path=()):
    """Yield (path, command) for every command and group of the app."""
    yield path, command
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


def test_every_command_has_help_text():
    for path, command in walk(get_command(app)):
        assert (command.help or "").strip(), f"`forecast {' '.join(path)}` has no help text"
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option" and not getattr(param, "hidden", False) and param.name != "help":
                assert (param.help or "").strip(), f"`forecast {' '.join(path)} {param.opts[0]}` has no help"


def _imported_modules_after(args: list[str], tmp_path) -> set[str]:
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['forecast', *{args!r}]\n"
        "try:\n    runpy.run_module('forecast', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('MODULES', ','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=subprocess_env(FORECAST_HOME=tmp_path),
                         capture_output=True, text=True, timeout=120)
    line = [l for l in out.stdout.splitlines() if l.startswith("MODULES")][-1]
    return {m for m in line.removeprefix("MODULES ").split(",") if m}


@pytest.mark.parametrize("args", [["--help"], ["fetch", "--source", "sample"]])
def test_help_and_fetch_do_not_import_tensorflow(tmp_path, args):
    assert _imported_modules_after(args, tmp_path) == set()


def test_cli_py_at_the_root_runs_the_same_app(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "cli.py"), "--help"], capture_output=True, text=True,
                         env=subprocess_env(FORECAST_HOME=tmp_path), timeout=60)
    assert out.returncode == 0 and "fetch" in out.stdout


def test_fetch_sample_then_data_show_json(home):
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    result = runner.invoke(app, ["data", "show", "600519", "--json"])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    stored = MarketStore(home).read("600519.SH")
    assert shown["rows"] == len(stored.frame)
    assert shown["first_date"] == stored.frame["date"].iloc[0].date().isoformat()
    assert {"ticker", "rows", "first_date", "last_date", "source", "adjust", "validation"} <= set(shown)
    listed = json.loads(runner.invoke(app, ["data", "list", "--json"]).stdout)
    assert [s["ticker"] for s in listed] == ["600519.SH"]


@pytest.mark.parametrize(
    "args, code",
    [
        (["data", "show", "600000.SH"], ExitCode.NOT_FOUND),
        (["fetch", "000001"], ExitCode.BAD_INPUT),
        (["fetch", "600519.SH"], ExitCode.AUTH_FAILED),  # no token in the environment
        (["fetch", "--source", "csv", "--file", "/nonexistent.csv", "X"], ExitCode.NOT_FOUND),
        (["fetch", "--source", "csv", "--file", str(COURSE_FILE), "--strict"], ExitCode.BAD_INPUT),
        (["fetch", "--source", "tushare"], ExitCode.USAGE),
        (["fetch", "--adjust", "sideways"], ExitCode.USAGE),
    ],
)
def test_bad_input_gets_one_line_and_its_exit_code(home, args, code):
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    errors = [l for l in result.stderr.splitlines() if l.strip()]
    if code != ExitCode.USAGE:
        assert len(errors) == 1 and errors[0].startswith("Error: ")


def test_strict_failure_keeps_the_previous_good_state(home):
    runner.invoke(app, ["fetch", "--source", "sample"])
    before = MarketStore(home).path_for("600519.SH").read_bytes()
    result = runner.invoke(app, ["fetch", "--source", "csv", "--file", str(COURSE_FILE), "--strict"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert MarketStore(home).path_for("600519.SH").read_bytes() == before


def test_the_token_is_never_printed(home, fake_tushare, monkeypatch):
    monkeypatch.setenv("TUSHARE_TOKEN", "not-the-right-token-42")
    result = runner.invoke(app, ["-v", "fetch", "600519.SH", "--json"])
    assert result.exit_code == ExitCode.AUTH_FAILED
    assert "not-the-right-token-42" not in result.output
    ok = runner.invoke(app, ["-v", "fetch", "600519.SH", "--end", "2020-12-25"], env={"TUSHARE_TOKEN": fake_tushare.valid_token})
    assert ok.exit_code == 0 and fake_tushare.valid_token not in ok.output
    assert fake_tushare.valid_token.encode() not in MarketStore(home).path_for("600519.SH").read_bytes()


def test_fetch_json_rerun_reports_zero_calls(home, fake_tushare):
    first = runner.invoke(app, ["fetch", "600519.SH", "--end", "2020-12-25", "--json"])
    assert first.exit_code == 0
    calls = fake_tushare.calls()
    again = json.loads(runner.invoke(app, ["fetch", "600519.SH", "--end", "2020-12-25", "--json"]).stdout)
    assert fake_tushare.calls() == calls
    assert again["results"][0]["new_rows"] == 0
