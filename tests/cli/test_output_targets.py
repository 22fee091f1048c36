"""``--out`` never replaces what the user pointed it at: devices, FIFOs and descriptors are written in place, links followed.

Every command's ``--out`` goes through ``forecast.atomic.write_user_output``.
A regular file (or a new name) is replaced atomically, as every file of the
home is; a symlink is followed and stays a link; a character device, a FIFO or
``/dev/stdout`` (a link through /proc) is opened and written in place; a
directory or a block device is refused; ``--out -`` is stdout. A write that
fails (``/dev/full``: ENOSPC) is a one-line error, exit 3, never exit 0.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.errors import ExitCode

runner = CliRunner()
TICKER = "600519.SH"
NULL, FULL = (1, 3), (1, 7)  # Linux's /dev/null and /dev/full


@pytest.fixture
def forecasted(home, monkeypatch) -> Path:
    """A home with the sample stored and a naive forecast of it (what plot and report read); the current folder."""
    monkeypatch.chdir(home)  # a "-" file, were one written, lands here
    assert runner.invoke(app, ["fetch", "--source", "sample"]).exit_code == 0
    made = runner.invoke(app, ["predict", TICKER, "--model", "naive"])
    assert made.exit_code == 0, made.output
    return home


# each command, with its --out left for the test to add; all fast (no TensorFlow)
COMMANDS = {
    "predict": ["predict", TICKER, "--model", "naive"],
    "backtest": ["backtest", TICKER, "--models", "naive,drift", "--test-days", "20", "--refit-every", "10", "--quiet"],
    "plot": ["plot", TICKER, "--kind", "history"],
    "report": ["report", TICKER],
}


def run(args: list[str]):
    return runner.invoke(app, args)


def reference_bytes(command: str, tmp_path: Path) -> bytes:
    """What the command writes to a plain new file: what every other target must receive."""
    plain = tmp_path / f"reference-{command}{'.png' if command == 'plot' else ''}"
    result = run(COMMANDS[command] + ["--out", str(plain)])
    assert result.exit_code == 0, result.output
    return plain.read_bytes()


def device(path: Path, numbers: tuple[int, int], kind: int = stat.S_IFCHR) -> Path:
    """Make a device node at ``path`` (root only), or skip the test."""
    try:
        os.mknod(path, 0o666 | kind, os.makedev(*numbers))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc.strerror}): needs root, or a filesystem that allows nodes")
    return path


def is_character_device(path: Path, numbers: tuple[int, int]) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == numbers


class Reader(threading.Thread):
    """Read a FIFO (or a pipe's read end) to its end in the background; ``data`` holds what came."""

    def __init__(self, path: Path | None = None, fd: int | None = None):
        super().__init__(daemon=True)
        self.path, self.fd, self.data = path, fd, b""

    def run(self) -> None:
        fd = os.open(self.path, os.O_RDONLY) if self.fd is None else self.fd
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        os.close(fd)
        self.data = b"".join(chunks)


# --- character devices -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_character_device_is_written_in_place_not_replaced_by_a_file(forecasted, tmp_path, command):
    null = device(tmp_path / "null", NULL)
    result = run(COMMANDS[command] + ["--out", str(null)])
    assert result.exit_code == 0, result.output
    assert is_character_device(null, NULL)  # still the device, not a plain file holding the output
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / "null.csv").exists()  # nothing beside the device


@pytest.mark.parametrize("command", COMMANDS)
def test_a_full_device_is_a_one_line_error_exit_3(forecasted, tmp_path, command):
    full = device(tmp_path / "full", FULL)
    result = run(COMMANDS[command] + ["--out", str(full)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert f"Error: cannot write {full}: No space left on device" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert is_character_device(full, FULL)


def test_a_block_device_is_refused(forecasted, tmp_path):
    disk = device(tmp_path / "disk", (7, 250), stat.S_IFBLK)  # a loop device number nothing is attached to
    result = run(COMMANDS["predict"] + ["--out", str(disk)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "block device" in result.stderr
    assert stat.S_ISBLK(os.lstat(disk).st_mode)


# --- symlinks: followed, never replaced -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_symlink_to_a_file_stays_a_link_and_its_target_gets_the_output(forecasted, tmp_path, command):
    expected = reference_bytes(command, tmp_path)
    real = tmp_path / "elsewhere" / ("real.png" if command == "plot" else "real.out")
    real.parent.mkdir()
    real.write_bytes(b"old content")
    os.chmod(real, 0o600)
    link = tmp_path / ("link.png" if command == "plot" else "link.out")
    link.symlink_to(real)
    result = run(COMMANDS[command] + ["--out", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(real)
    if command in ("predict", "plot"):  # the same bytes as a plain file gets (a report and a backtest carry times)
        assert real.read_bytes() == expected
    else:
        assert real.read_bytes()[:15] == expected[:15] and real.read_bytes() != b"old content"
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600  # the file keeps its permissions
    assert not list(real.parent.glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_a_dangling_symlink_creates_its_target(forecasted, tmp_path):
    link, real = tmp_path / "link.csv", tmp_path / "made.csv"
    link.symlink_to(real)
    result = run(COMMANDS["predict"] + ["--out", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and real.read_text().startswith("ticker,")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_symlink_to_dev_null_stays_a_link(forecasted, tmp_path, command):
    link = tmp_path / "quiet"
    link.symlink_to("/dev/null")
    result = run(COMMANDS[command] + ["--out", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert is_character_device(Path("/dev/null"), NULL)


def test_a_symlink_to_dev_full_fails_with_exit_3_and_stays_a_link(forecasted, tmp_path):
    link = tmp_path / "full.csv"
    link.symlink_to("/dev/full")
    result = run(COMMANDS["predict"] + ["--out", str(link)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert f"cannot write {link}: No space left on device" in result.stderr
    assert link.is_symlink() and os.readlink(link) == "/dev/full"


def test_a_link_to_a_directory_is_refused_and_the_folder_untouched(forecasted, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    link = tmp_path / "to-folder"
    link.symlink_to(folder)
    result = run(COMMANDS["predict"] + ["--out", str(link)])
    assert result.exit_code in (ExitCode.USAGE, ExitCode.BAD_INPUT), result.output
    assert "directory" in result.output
    assert link.is_symlink() and folder.is_dir() and not list(folder.iterdir())


# --- FIFOs and open descriptors (/dev/stdout) -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "plot"])
def test_a_fifo_is_written_in_place(forecasted, tmp_path, command):
    expected = reference_bytes(command, tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = Reader(path=fifo)
    reader.start()
    result = run(COMMANDS[command] + ["--out", str(fifo)])
    if result.exit_code != 0:  # the reader waits for a writer: open the FIFO once so that it ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(10)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert reader.data == expected


def test_a_link_to_proc_self_fd_writes_to_the_open_pipe(forecasted, tmp_path):
    """``ln -s /proc/self/fd/1 out``, as /dev/stdout is: the descriptor's pipe gets the bytes, the link stays."""
    expected = reference_bytes("predict", tmp_path)
    read_end, write_end = os.pipe()
    reader = Reader(fd=read_end)
    reader.start()
    link = tmp_path / "stdout"
    link.symlink_to(f"/proc/self/fd/{write_end}")
    try:
        result = run(COMMANDS["predict"] + ["--out", str(link)])
    finally:
        os.close(write_end)
    reader.join(10)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == f"/proc/self/fd/{write_end}"
    assert reader.data == expected


def test_a_link_to_an_open_regular_file_appends_to_that_file_and_keeps_it(forecasted, tmp_path):
    """``--out /dev/stdout >> log``: the log is appended to, not replaced by a new file under its name."""
    expected = reference_bytes("predict", tmp_path)
    log = tmp_path / "log.txt"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, b"earlier lines\n")
    inode = os.stat(log).st_ino
    link = tmp_path / "stdout"
    link.symlink_to(f"/proc/self/fd/{fd}")
    try:
        result = run(COMMANDS["predict"] + ["--out", str(link)])
        os.write(fd, b"later lines\n")  # the shell's descriptor still writes to the same file
    finally:
        os.close(fd)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.stat(log).st_ino == inode
    assert log.read_bytes() == b"earlier lines\n" + expected + b"later lines\n"


# --- --out - ----------------------------------------------------------------------------------------------------------


def test_out_dash_prints_the_csv_and_nothing_else_on_stdout(forecasted, tmp_path):
    expected = reference_bytes("predict", tmp_path)
    result = run(COMMANDS["predict"] + ["--out", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == expected
    assert not (Path.cwd() / "-").exists()


def test_out_dash_prints_the_backtest_json_and_writes_no_csv_beside_it(forecasted):
    result = run(COMMANDS["backtest"] + ["--out", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ticker"] == TICKER
    assert not list(Path.cwd().glob("-*"))  # no "-" and no "-.csv": backtests/<TICKER>/latest.csv holds the CSV


def test_out_dash_prints_the_png_bytes(forecasted, tmp_path):
    expected = reference_bytes("plot", tmp_path)
    result = run(COMMANDS["plot"] + ["--out", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == expected and expected.startswith(b"\x89PNG\r\n")


def test_out_dash_prints_the_html_report(forecasted, tmp_path):
    result = run(COMMANDS["report"] + ["--out", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().lower().startswith("<!doctype html") and result.stdout.rstrip().endswith("</html>")
    assert not (forecasted / "report.html").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_out_dash_with_json_is_a_usage_error(forecasted, command):
    result = run(COMMANDS[command] + ["--out", "-", "--json"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert json.loads(result.stdout)["exit_code"] == ExitCode.USAGE


# --- rank (a global model: TensorFlow) --------------------------------------------------------------------------------


@pytest.mark.slow
def test_rank_out_follows_links_and_writes_devices_in_place(home, tmp_path):
    from tests.models.pooled.test_commands import TICKERS, TINY, store_panel
    from tests.models.pooled.test_data import make_panel

    store_panel(home, make_panel({t: 420 for t in TICKERS}, seed=21))
    trained = run(["train", "--universe", "stored", "--preset", "global", *TINY])
    assert trained.exit_code == 0, trained.output
    rank = ["rank", "--universe", "stored"]
    plain = tmp_path / "rank.csv"
    assert run(rank + ["--out", str(plain)]).exit_code == 0
    expected = plain.read_bytes()

    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    real.write_text("old")
    link.symlink_to(real)
    assert run(rank + ["--out", str(link)]).exit_code == 0
    assert link.is_symlink() and real.read_bytes() == expected

    shown = run(rank + ["--out", "-"])
    assert shown.exit_code == 0 and shown.stdout_bytes == expected

    full = tmp_path / "full"
    full.symlink_to("/dev/full")
    failed = run(rank + ["--out", str(full)])
    assert failed.exit_code == ExitCode.BAD_INPUT and "No space left on device" in failed.stderr
    assert full.is_symlink()
