"""The CLI's one error boundary: any exception becomes one redacted line and a documented exit code."""

from __future__ import annotations

import functools
import json

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import forecast.redact
from forecast.cli import app
from forecast.errors import BadInputError, ExitCode
from forecast.redact import MASK, register_secret

runner = CliRunner()
SECRET = "SECRETTOKEN123"


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def broken_fetch(monkeypatch, exc: BaseException) -> None:
    """Make `forecast fetch --source sample` raise ``exc`` from inside the library call."""
    from forecast.data import fetching

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(fetching, "import_sample", boom)


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setattr(forecast.redact, "_secrets", set(forecast.redact._secrets))  # forget it afterwards
    register_secret(SECRET)
    return SECRET


def test_an_unexpected_error_is_one_line_with_a_hint_and_exit_1(home, monkeypatch):
    broken_fetch(monkeypatch, RuntimeError("boom"))
    result = runner.invoke(app, ["fetch", "--source", "sample"])
    assert result.exit_code == ExitCode.INTERNAL
    assert lines(result.stderr) == ["Error: internal error: RuntimeError: boom (rerun with -v for the traceback)"]
    assert "Traceback" not in result.output and result.stdout == ""


def test_verbose_adds_the_traceback(home, monkeypatch):
    broken_fetch(monkeypatch, RuntimeError("boom"))
    result = runner.invoke(app, ["-v", "fetch", "--source", "sample"])
    assert result.exit_code == ExitCode.INTERNAL
    assert "Traceback (most recent call last)" in result.stderr
    assert lines(result.stderr)[-1] == "Error: internal error: RuntimeError: boom"


def test_a_multi_line_message_still_gives_one_line(home, monkeypatch):
    broken_fetch(monkeypatch, ValueError("first\nsecond"))
    result = runner.invoke(app, ["fetch", "--source", "sample"])
    assert result.exit_code == ExitCode.INTERNAL
    assert lines(result.stderr) == ["Error: internal error: ValueError: first second (rerun with -v for the traceback)"]


def test_an_unwritable_log_file_is_one_line_naming_it_exit_3(home):
    blocker = home / "not-a-folder"
    blocker.write_text("a file, so nothing can be created under it")
    target = blocker / "run.log"
    result = runner.invoke(app, ["run", "600519.SH", "--log-file", str(target)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    errors = lines(result.stderr)
    assert len(errors) == 1 and errors[0].startswith(f"Error: {target}: "), errors
    assert "Traceback" not in result.output


def test_an_os_error_from_the_library_is_exit_3_with_path_and_reason(home, monkeypatch):
    broken_fetch(monkeypatch, PermissionError(13, "Permission denied", "/srv/forecast/data/bars"))
    result = runner.invoke(app, ["fetch", "--source", "sample", "--json"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert lines(result.stderr) == ["Error: /srv/forecast/data/bars: Permission denied"]
    assert json.loads(result.stdout) == {"error": "/srv/forecast/data/bars: Permission denied", "exit_code": 3}


def test_interrupt_is_exit_130(home, monkeypatch):
    broken_fetch(monkeypatch, KeyboardInterrupt())
    result = runner.invoke(app, ["fetch", "--source", "sample"])
    assert result.exit_code == 130
    assert lines(result.stderr) == ["Error: interrupted"]


def test_library_errors_keep_their_message_and_code_under_json(home, monkeypatch):
    broken_fetch(monkeypatch, BadInputError("bad rows in the sample"))
    result = runner.invoke(app, ["fetch", "--source", "sample", "--json"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert json.loads(result.stdout) == {"error": "bad rows in the sample", "exit_code": 3}
    assert lines(result.stderr) == ["Error: bad rows in the sample"]


def test_usage_errors_pass_through_with_exit_2(home):
    assert runner.invoke(app, ["fetch", "--adjust", "sideways"]).exit_code == ExitCode.USAGE
    assert runner.invoke(app, ["no-such-command"]).exit_code == ExitCode.USAGE


@pytest.mark.parametrize("exc", [RuntimeError(f"server says token {SECRET} is wrong"), BadInputError(f"token {SECRET} rejected"),
                                 OSError(2, "No such file", f"/tmp/{SECRET}.csv")], ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_registered_secret_is_masked_on_stderr_and_in_json(home, monkeypatch, secret, exc, verbose):
    broken_fetch(monkeypatch, exc)
    result = runner.invoke(app, [*(["-v"] if verbose else []), "fetch", "--source", "sample", "--json"])
    assert result.exit_code != 0
    assert secret not in result.stdout and secret not in result.stderr
    assert MASK in json.loads(result.stdout)["error"]
    assert MASK in lines(result.stderr)[-1]


# Every command of every group runs inside the boundary: break each command's own body and look.

def _command_infos(typer_app):
    yield from typer_app.registered_commands
    for group in typer_app.registered_groups:
        yield from _command_infos(group.typer_instance)


def _leaves(command, path=()):
    if not getattr(command, "commands", None):
        yield path, command
        return
    for name, sub in command.commands.items():
        yield from _leaves(sub, (*path, name))


LEAVES = dict(_leaves(get_command(app)))


@pytest.mark.parametrize("path", list(LEAVES), ids=" ".join)
def test_every_command_is_behind_the_boundary(home, monkeypatch, path):
    for info in _command_infos(app):
        @functools.wraps(info.callback)  # keeps the signature, so the options parse as before
        def broken(*args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(info, "callback", broken)
    required = ["X" for p in LEAVES[path].params if getattr(p, "param_type_name", "") == "argument" and p.required]
    result = runner.invoke(app, [*path, *required])
    assert result.exit_code == ExitCode.INTERNAL, result.output
    assert lines(result.stderr) == ["Error: internal error: RuntimeError: boom (rerun with -v for the traceback)"]


def test_logs_are_redacted_on_stderr_and_in_the_log_file(home, monkeypatch, secret):
    import logging

    from forecast.cli._logging import add_log_file, setup_logging

    def logs_then_fails(*args, **kwargs):
        logging.getLogger("forecast.data.fetching").warning("calling with token %s", secret)
        raise RuntimeError("boom")

    from forecast.data import fetching

    monkeypatch.setattr(fetching, "import_sample", logs_then_fails)
    result = runner.invoke(app, ["-v", "fetch", "--source", "sample"])
    assert "calling with token ****" in result.stderr and secret not in result.stderr

    log_file = home / "run.log"
    setup_logging(verbose=False)
    add_log_file(log_file)
    logging.getLogger("forecast.run").warning("token %s", secret)
    setup_logging(verbose=False)  # closes the file handler again
    assert "token ****" in log_file.read_text() and secret not in log_file.read_text()


@pytest.mark.parametrize("args", [["data", "list"], ["fetch", "--source", "sample"], ["models", "list"]])
def test_a_home_that_is_a_file_is_one_clear_line(tmp_path, monkeypatch, args):
    home = tmp_path / "home"
    home.write_text("not a folder\n")
    monkeypatch.setenv("FORECAST_HOME", str(home))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "is a file, not a folder" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert home.read_text() == "not a folder\n"


def test_a_ticker_is_named_once_in_its_error(home):
    result = CliRunner().invoke(app, ["fetch", "AAPL"])  # tushare cannot serve a US ticker: the library's message names it
    assert result.exit_code == ExitCode.BAD_INPUT
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: AAPL is not a China A-share code") and line.count("AAPL:") == 0


def test_a_reader_that_stops_reading_ends_the_command_quietly_with_141(home):
    import subprocess
    import sys

    from conftest import subprocess_env

    env = subprocess_env(FORECAST_HOME=home)
    assert subprocess.run([sys.executable, "-m", "forecast", "fetch", "--source", "sample"], env=env,
                          capture_output=True, timeout=120).returncode == 0
    shown = subprocess.Popen([sys.executable, "-m", "forecast", "data", "show", "600519.SH", "-n", "2000"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert shown.stdout is not None and shown.stdout.readline()  # read one line, as `| head -1` does, then go
    shown.stdout.close()
    _, stderr = shown.communicate(timeout=120)
    assert shown.returncode == 141
    assert stderr.decode().strip() == ""  # no "Error: BrokenPipeError", no "Exception ignored" at exit
