"""Fuzz the whole CLI (issue 13): CSVs, configs, flags, and corrupted store and registry files.

The property, for every example: the exit code is one of {0, 2, 3, 4, 5, 6, 7,
8, 9} (never 1, "internal error", a traceback, or an exception escaping the
CLI's one error boundary), and afterwards the previous good state is still
readable (``data show`` of every good ticker exits 0) and no file outside the
home was touched.

Every example runs the real CLI in-process (``CliRunner``) against its own copy
of a good home prepared once per module (the bundled sample, a second ticker, a
naive forecast and backtest, and one registered model written without
TensorFlow). No example fits a network: ``forecast.models.training.fit_model`` is
replaced for the module by a guard that runs the real data checks
(``training_arrays``) and then stops with exit 3 ("fuzz guard"), so the paths
up to the fit are fuzzed and the fit itself never runs.

Counts (tried, clean, traceback, ...) and every distinct failure seen (also
those Hypothesis did not report, because it reports one per test) are printed
at the end of the module. Knobs: ``FORECAST_FUZZ_SCALE=4`` runs four times as
many examples; ``FORECAST_FUZZ_SHRINK=0`` reports a failure as found, without
Hypothesis's shrinking; ``FORECAST_FUZZ_SURVEY=1`` goes on past every failure and
fails once at the end with the list of distinct ones (for a bug hunt).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import os
import re
import shutil
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SAMPLE_FILE
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import forecast.redact
from forecast.cli import app
from forecast.errors import BadInputError

ALLOWED = frozenset({0, 2, 3, 4, 5, 6, 7, 8, 9})
SCALE = float(os.environ.get("FORECAST_FUZZ_SCALE", "1") or 1)
runner = CliRunner()

GOOD = "600519.SH"  # the sample, 2429 bars
OTHER = "AAPL"  # a second good ticker (200 bars, Yahoo layout): must stay readable whatever happens to GOOD
MODEL_ID = "600519.SH-default-gru-20260101T000000-abcd"  # a registered model built without TensorFlow
SAMPLE_LINES = SAMPLE_FILE.read_text().splitlines()
SAMPLE_ROWS = [line.split(",") for line in SAMPLE_LINES[1:]]  # idx,date,open,close,high,low,volume,code
GUARD_MESSAGE = "fuzz guard: a network fit was about to start"


def _cli_has(path: tuple[str, ...], option: str | None = None) -> bool:
    """Whether the CLI has this command (and option): the suite follows the CLI as it grows."""
    from typer.main import get_command

    command = get_command(app)
    for name in path:
        command = getattr(command, "commands", {}).get(name)
        if command is None:
            return False
    return option is None or any(option in p.opts for p in command.params)


HAS_REPLACE = _cli_has(("fetch",), "--replace")  # a CSV with fewer rows replaces a series only with --replace
HAS_DOCTOR = _cli_has(("doctor",))


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


SHRINK = os.environ.get("FORECAST_FUZZ_SHRINK", "1") != "0"  # 0: report the first failure as found, unshrunk
SURVEY = os.environ.get("FORECAST_FUZZ_SURVEY") == "1"  # 1: go on past failures, list them all, fail once at the end


def fuzz_settings(n: int):
    phases = list(Phase) if SHRINK else [p for p in Phase if p is not Phase.shrink]
    return settings(max_examples=examples(n), deadline=None, phases=phases,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------------
# Bookkeeping: counts, distinct failures, the property itself

STATS = {"tried": 0, "clean": 0, "traceback": 0, "bad exit": 0, "state": 0, "guard": 0}
FAILURES: dict[str, dict] = {}  # signature -> the shortest reproduction seen
SECONDS: dict[str, float] = {}  # command -> seconds spent in it
EXITS: dict[str, dict[int, int]] = {}  # "test command" -> {exit code: count}: shows what the inputs reached
_INTERNAL = re.compile(r"internal error: ([A-Za-z_][\w.]*)(: [^\n]*)?")


class TrainingBlocked(BadInputError):
    """Raised by the guard where a network fit would start; exit 3, counted apart."""


def _short(value, limit: int = 160) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"...(+{len(text) - limit})"


def _normalise(text: str) -> str:
    """The part of an error line that identifies the bug: no paths, numbers or quoted values."""
    text = re.sub(r"(?<![\w.])/[^\s'\"]+", "<path>", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "<v>", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:90]


def _last_error_line(result) -> str:
    lines = [line for line in (result.stderr or result.output or "").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or [""])[-1].strip()


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    for frame in reversed(frames):
        name = frame.tb_frame.f_code.co_filename
        if "/forecast/" in name:
            return f"{name.split('/forecast/', 1)[1]}:{frame.tb_lineno}"
    return "?"


def _record(kind: str, test: str, args: list, detail: str, exit_code, error_line: str, context: str) -> str:
    signature = f"{test} | {_command(args)} | {kind}: {_normalise(detail)}"
    reproduction = {"test": test, "args": [_short(a, 80) for a in args], "exit": exit_code,
                    "error": _short(error_line, 300), "detail": _short(detail, 300), "input": _short(context, 600)}
    known = FAILURES.get(signature)
    if known is None or len(repr(reproduction)) < len(repr(known)):
        FAILURES[signature] = reproduction
    return signature


def _command(args: list) -> str:
    words = [a for a in args if isinstance(a, str) and not a.startswith("-")]
    if words and words[0] in ("data", "models", "config"):
        return " ".join(words[:2])
    return words[0] if words else "?"


def check(result, args: list, test: str, context: str = "", expect_ok: bool = False) -> None:
    """Assert the property for one CLI invocation; count it; remember a failure's reproduction."""
    STATS["tried"] += 1
    key = f"{test} {_command(args)}"
    EXITS.setdefault(key, {})
    EXITS[key][result.exit_code] = EXITS[key].get(result.exit_code, 0) + 1
    text = (result.stdout or "") + "\n" + (result.stderr or "")
    if GUARD_MESSAGE in text:
        STATS["guard"] += 1
    exc = result.exception
    problem = None
    if exc is not None and not isinstance(exc, SystemExit):
        kind, detail = "traceback", f"uncaught {type(exc).__name__}: {' '.join(str(exc).split())[:200]} at {_where(exc)}"
    elif ((match := _INTERNAL.search(result.stderr or "") or _INTERNAL.search(text))
          or "Traceback (most recent call last)" in text or result.exit_code == 1):
        kind = "traceback"
        detail = match.group(0) if match else _last_error_line(result)
    elif result.exit_code not in ALLOWED:
        kind, detail = "bad exit", f"exit {result.exit_code}: {_last_error_line(result)}"
    elif expect_ok and result.exit_code != 0:
        kind, detail = "state", f"expected exit 0, got {result.exit_code}: {_last_error_line(result)}"
    else:
        STATS["clean"] += 1
        return
    STATS[kind] += 1
    problem = _record(kind, test, args, detail, result.exit_code, _last_error_line(result), context)
    if SURVEY:
        return
    raise AssertionError(f"{problem}\n  args: {args!r}\n  exit: {result.exit_code}\n  stderr: {_short(result.stderr, 600)}"
                         f"\n  input: {_short(context, 600)}")


def check_state(condition: bool, test: str, args: list, what: str, context: str = "") -> None:
    """A property about the home after the commands (not about one exit code)."""
    if condition:
        return
    STATS["state"] += 1
    problem = _record("state", test, args, what, None, what, context)
    if SURVEY:
        return
    raise AssertionError(f"{problem}\n  args: {args!r}\n  input: {_short(context, 600)}")


def cli(home: Path, args: list, env: dict | None = None):
    """Run ``forecast ARGS`` in-process against ``home``; secrets registered by this run are forgotten after it."""
    environment = {"FORECAST_HOME": str(home), "TUSHARE_TOKEN": None, "TS_TOKEN": None, "FORECAST_TICKERS": None,
                   "FORECAST_LOCK_TIMEOUT": "5", "COLUMNS": "200"}
    environment.update(env or {})
    saved = set(forecast.redact._secrets)
    started = time.perf_counter()
    try:
        return runner.invoke(app, [str(a) for a in args], env=environment)
    finally:
        forecast.redact._secrets.clear()
        forecast.redact._secrets.update(saved)
        name = _command([str(a) for a in args])
        SECONDS[name] = SECONDS.get(name, 0.0) + time.perf_counter() - started


@pytest.fixture(scope="module", autouse=True)
def fuzz_summary(request):
    yield
    lines = [f"fuzz: tried {STATS['tried']}, clean {STATS['clean']}, traceback {STATS['traceback']}, "
             f"bad exit {STATS['bad exit']}, state {STATS['state']} (training guard stops: {STATS['guard']})",
             "fuzz: seconds per command: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(SECONDS.items(), key=lambda kv: -kv[1]))]
    for key, codes in sorted(EXITS.items()):
        lines.append(f"fuzz: exit codes of {key}: " + ", ".join(f"{c}x{n}" for c, n in sorted(codes.items())))
    for signature, repro in sorted(FAILURES.items()):
        lines.append(f"fuzz failure: {signature}")
        lines.append(f"    args {repro['args']} -> exit {repro['exit']}: {repro['error']}")
        if repro["detail"] != repro["error"]:
            lines.append(f"    detail {repro['detail']}")
        if repro["input"]:
            lines.append(f"    input {repro['input']}")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        if reporter is not None:
            reporter.write("\n")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)
            else:  # pragma: no cover
                print(line)
    if SURVEY and FAILURES:
        pytest.fail(f"fuzz survey: {len(FAILURES)} distinct failure(s), listed above", pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def no_network_fits():
    """No example trains: the fit stops after the real data checks, with exit 3."""
    import forecast.models.training as training

    assert hasattr(training, "fit_model"), "the fuzz suite's training guard needs forecast.models.training.fit_model"
    from forecast.models.dataset import training_arrays

    def guarded_fit_model(frame, cfg, ticker, *args, **kwargs):
        training_arrays(frame, cfg, ticker)  # every check on the data runs as in a real fit
        raise TrainingBlocked(f"{GUARD_MESSAGE} (not run in the fuzz suite)")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "fit_model", guarded_fit_model)
        yield


# --------------------------------------------------------------------------------------------------
# The good home (once per module) and one sandbox per example

def _card() -> dict:
    from forecast.models.train_config import DEFAULT

    h = DEFAULT.horizon
    return {
        "format": 1, "id": MODEL_ID, "ticker": GOOD, "created_at": "2026-01-01T00:00:00+00:00",
        "config": DEFAULT.to_dict(), "features": ["return"],
        "scaling": {"features": {"kind": "standard", "shift": [0.0], "scale": [0.02]},
                    "target": {"kind": "standard", "shift": [0.0] * h, "scale": [0.02] * h}},
        "data": {"range": ["2010-12-27", "2020-12-25"], "rows": 2429, "sha256": "0" * 64, "train_windows": 2000,
                 "val_windows": 360, "val_start": "2019-06-03", "source": "sample", "adjust": "qfq"},
        "validation": {"best_epoch": 3, "val_loss": 0.5, "rmse": 20.0, "naive_rmse": 20.1, "skill_vs_naive": 0.005},
        "intervals": {"method": "split-conformal", "space": "log-return", "scale_window": 60,
                      "quantiles": {"0.8": [1.3] * h, "0.95": [2.0] * h}},
        "history": {"loss": [1.0, 0.7, 0.6, 0.5], "val_loss": [1.1, 0.8, 0.6, 0.55]},
        "versions": {"forecast": "0", "keras": "3"}, "train_seconds": 1.5,
    }


def _fake_keras_file() -> bytes:
    """A small zip that looks like a .keras file from the outside (it is not a loadable model)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0", "date_saved": "2026-01-01"}))
        archive.writestr("config.json", json.dumps({"module": "keras", "class_name": "Sequential", "config": {}}))
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    return buffer.getvalue()


def _yahoo_text(rows: list[list[str]]) -> str:
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for i, r in enumerate(rows):
        factor = 0.9 + 0.1 * i / max(1, len(rows) - 1)
        lines.append(f"{r[1]},{r[2]},{r[4]},{r[5]},{r[3]},{float(r[3]) * factor:.4f},{r[6]}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def good_home(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("fuzz-good")
    home = base / "home"
    home.mkdir()
    other_csv = base / "AAPL.csv"
    other_csv.write_text(_yahoo_text(SAMPLE_ROWS[-200:]))
    steps = [
        ["fetch", "--source", "sample"],
        ["fetch", OTHER, "--source", "csv", "--file", str(other_csv)],
        ["predict", GOOD, "--model", "naive"],
        ["backtest", GOOD, "--models", "naive,drift", "--test-days", "30", "--refit-every", "10"],
    ]
    for args in steps:
        result = cli(home, args)
        assert result.exit_code == 0, (args, result.output)
    folder = home / "models" / MODEL_ID
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(_card(), indent=1))
    (folder / "model.keras").write_bytes(_fake_keras_file())
    (home / "models" / "latest").mkdir()
    (home / "models" / "latest" / GOOD).write_text(MODEL_ID + "\n")
    shutil.rmtree(home / "charts", ignore_errors=True)
    for args in (["models", "show", MODEL_ID], ["models", "list"], ["data", "show", GOOD], ["data", "show", OTHER],
                 ["plot", GOOD, "--kind", "training", "--out", str(base / "t.svg")]):
        result = cli(home, args)
        assert result.exit_code == 0, (args, result.output)
    return home


@dataclass
class Box:
    root: Path  # a temporary folder: home/, sibling/ and the example's inputs
    home: Path
    sibling: Path  # files outside the home that links in the home may point at; they must never change

    def outside(self) -> dict:
        """Every path under root but outside the home, with its bytes (links as their target)."""
        snapshot = {}
        for top in sorted(self.root.iterdir()):
            if top == self.home:
                continue
            for path in [top, *sorted(top.rglob("*"))]:
                key = str(path.relative_to(self.root))
                if path.is_symlink():
                    snapshot[key] = ("link", os.readlink(path))
                elif path.is_file():
                    snapshot[key] = path.read_bytes()
                elif path.is_dir():
                    snapshot[key] = "dir"
        return snapshot

    def bars(self, ticker: str) -> Path:
        return self.home / "data" / "bars" / f"{ticker}.parquet"

    def stored(self) -> dict[str, bytes]:
        folder = self.home / "data" / "bars"
        return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet")) if p.is_file()} if folder.is_dir() else {}


@contextmanager
def sandbox(good_home: Path):
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        root = Path(tmp)
        home = root / "home"
        shutil.copytree(good_home, home, symlinks=True)
        sibling = root / "sibling"
        sibling.mkdir()
        (sibling / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        shutil.copy2(good_home / "data" / "bars" / f"{GOOD}.parquet", sibling / "outside.parquet")
        shutil.copytree(good_home / "models" / MODEL_ID, sibling / "model")
        (root / "afile").write_text("a file, so nothing can be created under it\n")
        yield Box(root, home, sibling)


def assert_good_state(box: Box, test: str, args: list, context: str, tickers=(GOOD, OTHER)) -> None:
    """The good tickers are readable, whatever the example did."""
    for ticker in tickers:
        show = ["data", "show", ticker]
        check(cli(box.home, show), show, test, f"after {args!r}; {context}", expect_ok=True)


# --------------------------------------------------------------------------------------------------
# 1. CSV imports over a good series

NASTY_NUMBERS = ["", " ", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400", "9" * 400,
                 "-" + "9" * 400, "1" + "0" * 399 + ".5", "0", "-0", "0.0", "-1", "-1830.5", "1e-300", "1e300",
                 "abc", "1,830.00", "1_000", "0x10", "１８３０", "٣", "True", "None", "null", " 12 ", "12 34",
                 '"12"', "1830.", ".5", "+5", "--5", "1e", "e5", "\x00", "\t"]
NASTY_DATES = ["", "1677-09-21", "1677-09-22", "1600-01-01", "2262-04-11", "2262-04-12", "2263-01-01", "2099-01-02",
               "2099-12-31", "9999-12-31", "0001-01-01", "2020-02-30", "2020-13-01", "2020-00-10", "20200102",
               "02/01/2020", "13/01/2020", "01/13/2020", "2020/1/2", "2020.01.02", "Jan 2, 2020",
               "2020-01-02T15:00:00", "2020-01-02 00:00:00+08:00", "1e10", "-1", "0", "yesterday", "NaT", "nan",
               "2020-01-02\x00", "99999999", "00000000", "20201301", "1/2/20", "2020-1-2"]
GARBAGE_LINES = ["", ",,,,,,", "\x00\x01\x02", "<html><body>502 Bad Gateway</body></html>", '"unterminated,quote',
                 "date,open,close,high,low,volume,code", "# a comment", "\ufeffdate,close", "1,2,3,4,5,6,7,8,9,10,11,12",
                 "ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount"]
HEADER_NAMES = ["", "date", "Date", "close", "Close", "Adj Close", "volume", "code", "ts_code", "trade_date", "vol",
                "open", "DATE", " date", "date ", "Day", "Last", "Vol", "high", "low", "amount", "Unnamed: 0"]
DATE_FORMATS = ["%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%Y/%m/%d", "%d.%m.%Y", "%b %d %Y", "%Y-%m-%d %H:%M", "%y-%m-%d"]

number_values = st.one_of(st.sampled_from(NASTY_NUMBERS), st.text(max_size=8),
                          st.floats().map(repr), st.integers(-10**30, 10**30).map(str))
date_values = st.one_of(st.sampled_from(NASTY_DATES), st.text(max_size=12),
                        st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(lambda d: d.isoformat()))
garbage_lines = st.one_of(st.sampled_from(GARBAGE_LINES), st.text(max_size=40))
index = st.integers(0, 10**4)

csv_operations = st.one_of(
    st.tuples(st.just("cell"), index, st.integers(0, 12), st.one_of(number_values, date_values)),
    st.tuples(st.just("date"), index, date_values),
    st.tuples(st.just("column"), st.integers(0, 12), st.one_of(number_values, date_values)),
    st.tuples(st.just("drop"), index, st.integers(1, 60)),
    st.tuples(st.just("dup"), index, st.integers(1, 5)),
    st.tuples(st.just("swap"), index, index),
    st.tuples(st.just("reverse")),
    st.tuples(st.just("shuffle"), st.integers(0, 2**32)),
    st.tuples(st.just("insert"), index, garbage_lines),
    st.tuples(st.just("header"), st.integers(0, 12), st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=8))),
    st.tuples(st.just("drop_column"), st.integers(0, 12)),
    st.tuples(st.just("negate"), st.integers(0, 12), index, st.integers(1, 200)),
    st.tuples(st.just("scale"), st.integers(0, 12), st.sampled_from([0.0, -1.0, 1e300, 1e-300, 1e6])),
    st.tuples(st.just("adj_zero"), index, st.integers(1, 200)),
    st.tuples(st.just("shift_years"), st.sampled_from([79, 90, 250, 300, -340, -2000, 7000])),
    st.tuples(st.just("mixed_dates"), index, st.integers(1, 60), st.sampled_from(DATE_FORMATS)),
    st.tuples(st.just("ragged"), index, st.integers(-3, 3)),
    st.tuples(st.just("truncate_rows"), st.integers(0, 5)),
)


@dataclass
class CsvCase:
    layout: str
    start: int
    operations: list
    delimiter: str
    newline: str
    bom: bool
    encoding: str
    quote: bool
    cut: float | None
    tail: bytes
    name: str
    flags: list

    def describe(self) -> str:
        ops = [tuple(_short(x, 30) for x in op) for op in self.operations]
        return (f"layout={self.layout} rows[{self.start}:{self.start + 200}] ops={ops} delimiter={self.delimiter!r} "
                f"newline={self.newline!r} bom={self.bom} encoding={self.encoding} quote={self.quote} cut={self.cut} "
                f"tail={self.tail!r} flags={self.flags}")


def _table(layout: str, rows: list[list[str]]) -> tuple[list[str], list[list[str]], int, str]:
    """(header, body, date column, date format) for the sample's ``rows`` in ``layout``."""
    if layout == "legacy":
        return SAMPLE_LINES[0].split(","), [list(r) for r in rows], 1, "%Y-%m-%d"
    if layout == "yahoo":
        lines = _yahoo_text(rows).splitlines()
        return lines[0].split(","), [line.split(",") for line in lines[1:]], 0, "%Y-%m-%d"
    if layout == "pro":
        header = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount"]
        body, previous = [], None
        for r in rows:
            close = float(r[3])
            pre = previous if previous is not None else close
            body.append(["600519.SH", r[1].replace("-", ""), r[2], r[4], r[5], r[3], f"{pre:.3f}", f"{close - pre:.3f}",
                         f"{(close / pre - 1) * 100:.4f}", r[6], f"{float(r[6]) * close / 10:.3f}"])
            previous = close
        return header, body[::-1], 1, "%Y%m%d"
    if layout == "generic":
        return ["Day", "Last", "Vol"], [[r[1], r[3], r[6]] for r in rows], 0, "%Y-%m-%d"
    return ["date", "close"], [[r[1], r[3]] for r in rows], 0, "%Y-%m-%d"  # minimal


def _reformat(text: str, source_format: str, target_format: str) -> str:
    try:
        return dt.datetime.strptime(text.strip(), source_format).strftime(target_format)
    except ValueError:
        return text


def _shift_year(text: str, fmt: str, years: int) -> str:
    try:
        day = dt.datetime.strptime(text.strip(), fmt).date()
    except ValueError:
        return text
    year = min(9999, max(1, day.year + years))
    try:
        moved = day.replace(year=year)
    except ValueError:
        moved = day.replace(year=year, day=28)
    return moved.strftime(fmt.replace("%Y", f"{moved.year:04d}"))


def _apply(operation: tuple, header: list[str], body: list[list[str]], date_col: int, date_fmt: str) -> None:
    kind = operation[0]
    n = len(body)
    width = max([len(header), *(len(r) for r in body)]) or 1
    if kind == "cell" and n:
        row = body[operation[1] % n]
        if row:
            row[operation[2] % len(row)] = operation[3]
    elif kind == "date" and n:
        row = body[operation[1] % n]
        if len(row) > date_col:
            row[date_col] = operation[2]
    elif kind == "column":
        col = operation[1] % width
        for row in body:
            if len(row) > col:
                row[col] = operation[2]
    elif kind == "drop" and n:
        start = operation[1] % n
        del body[start:start + operation[2]]
    elif kind == "dup" and n:
        at = operation[1] % n
        body[at:at] = [list(body[at]) for _ in range(operation[2])]
    elif kind == "swap" and n:
        i, j = operation[1] % n, operation[2] % n
        body[i], body[j] = body[j], body[i]
    elif kind == "reverse":
        body.reverse()
    elif kind == "shuffle":
        import random

        random.Random(operation[1]).shuffle(body)
    elif kind == "insert":
        body.insert(operation[1] % (n + 1), [operation[2]])
    elif kind == "header" and header:
        header[operation[1] % len(header)] = operation[2]
    elif kind == "drop_column":
        col = operation[1] % width
        for row in [header, *body]:
            if len(row) > col:
                del row[col]
    elif kind in ("negate", "scale"):
        col = operation[1] % width
        rows = body[operation[2] % n: operation[2] % n + operation[3]] if kind == "negate" and n else body
        for row in rows:
            if len(row) > col and col != date_col:
                try:
                    value = float(row[col])
                except ValueError:
                    continue
                row[col] = repr(-value if kind == "negate" else value * operation[2])
    elif kind == "adj_zero" and n and "Adj Close" in header:
        col = header.index("Adj Close")
        start = operation[1] % n
        for row in body[start:start + operation[2]]:
            if len(row) > col:
                row[col] = "0"
    elif kind == "shift_years":
        for row in body:
            if len(row) > date_col:
                row[date_col] = _shift_year(row[date_col], date_fmt, operation[1])
    elif kind == "mixed_dates" and n:
        start = operation[1] % n
        for row in body[start:start + operation[2]]:
            if len(row) > date_col:
                row[date_col] = _reformat(row[date_col], date_fmt, operation[3])
    elif kind == "ragged" and n:
        row = body[operation[1] % n]
        if operation[2] < 0:
            del row[operation[2]:]
        else:
            row.extend(["1.0"] * operation[2])
    elif kind == "truncate_rows":
        del body[operation[1]:]


def render_csv(case: CsvCase) -> bytes:
    header, body, date_col, date_fmt = _table(case.layout, SAMPLE_ROWS[case.start:case.start + 200])
    for operation in case.operations:
        _apply(operation, header, body, date_col, date_fmt)

    def line(cells: list[str]) -> str:
        return case.delimiter.join(f'"{c}"' if case.quote else c for c in cells)

    text = case.newline.join(line(r) for r in [header, *body]) + case.newline
    if case.bom:
        text = "\ufeff" + text
    data = text.encode(case.encoding, errors="replace")
    if case.cut is not None:
        data = data[: int(len(data) * case.cut)]
    return data + case.tail


@st.composite
def csv_cases(draw) -> CsvCase:
    layout = draw(st.sampled_from(["legacy", "legacy", "yahoo", "pro", "generic", "minimal"]))
    flags = []
    if layout == "generic":
        flags += ["--columns", draw(st.sampled_from(["date=Day,close=Last,volume=Vol", "date=Day,close=Last",
                                                     "date=Day,close=Nope", "date=Day", "close=Last,date=Day,open=Last",
                                                     "bogus", "date=Day,,close=Last", "date=Day,close=Day"]))]
    if draw(st.integers(0, 5)) == 0:
        flags += ["--date-format", draw(st.sampled_from(["%Y-%m-%d", "%Y%m%d", "%d/%m/%Y", "%Y", "%Q", "", "%s", "%",
                                                         "%Y-%m-%d %H", "%z"]))]
    if draw(st.integers(0, 4)) == 0:
        flags.append("--strict")
    if HAS_REPLACE and draw(st.integers(0, 4)) > 0:
        flags.append("--replace")
    if draw(st.integers(0, 5)) == 0:
        flags += ["--adjust", draw(st.sampled_from(["hfq", "none", "qfq"]))]
    return CsvCase(
        layout=layout,
        start=draw(st.integers(0, len(SAMPLE_ROWS) - 200)),
        operations=draw(st.lists(csv_operations, max_size=5)),
        delimiter=draw(st.sampled_from([","] * 12 + [";", "\t", "|", " "])),
        newline=draw(st.sampled_from(["\n"] * 4 + ["\r\n", "\r"])),
        bom=draw(st.integers(0, 6)) == 0,
        encoding=draw(st.sampled_from(["utf-8"] * 16 + ["utf-16", "latin-1", "gb18030", "utf-32"])),
        quote=draw(st.integers(0, 8)) == 0,
        cut=draw(st.one_of(*[st.none()] * 5, st.floats(0, 1))),
        tail=draw(st.sampled_from([b""] * 7 + [b"\xff\xfe", b"\x00", b"\n\n\n", b",,,,\n", b"\x1a"])),
        name=draw(st.sampled_from(["bars.csv", "600519.SH.csv", "AAPL.csv", "data.txt", "noext", "ü 价格.csv"])),
        flags=flags,
    )


@fuzz_settings(60)
@given(case=csv_cases(), ticker=st.sampled_from([GOOD, GOOD, None, OTHER, "sh600519", "600519"]))
def test_fuzz_csv_import_over_a_good_series(good_home, case, ticker):
    test = "csv"
    with sandbox(good_home) as box:
        path = box.root / "input" / case.name
        path.parent.mkdir()
        path.write_bytes(render_csv(case))
        context = case.describe()
        note(context)
        before, outside = box.stored(), box.outside()
        args = ["fetch", *([ticker] if ticker else []), "--source", "csv", "--file", str(path), *case.flags]
        result = cli(box.home, args)
        check(result, args, test, context)
        after = box.stored()
        changed = [name for name in after if before.get(name) != after[name]]
        if result.exit_code != 0:
            check_state(not changed, test, args, f"a failed import (exit {result.exit_code}) changed {changed}", context)
        else:
            check_state(len(changed) <= 1, test, args, f"one import changed several series: {changed}", context)
        assert_good_state(box, test, args, context,
                          tickers=[name[: -len(".parquet")] for name in after])  # every stored series shows
        for name in changed:  # what an import accepted must be usable
            predict = ["predict", name[: -len(".parquet")], "--model", "naive"]
            check(cli(box.home, predict), predict, test, f"after {args!r}; {context}")
        check_state(box.outside() == outside, test, args, "a file outside the home changed", context)


# --------------------------------------------------------------------------------------------------
# 2. forecast.toml

class Raw(str):
    """A TOML literal written as is (dates, inline tables, nested arrays)."""


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, but characters outside ASCII as they are and DEL escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")


def toml_value(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_document(top: dict, tables: dict) -> str:
    plain = {**top, **{k: v for k, v in tables.items() if not isinstance(v, dict)}}  # e.g. train = 5: before any [table]
    lines = [f"{toml_string(str(k))} = {toml_value(v)}" for k, v in plain.items()]
    for name, table in tables.items():
        if isinstance(table, dict):
            lines.append(f"\n[{toml_string(name)}]")
            lines += [f"{toml_string(str(k))} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


WRONG = st.one_of(st.integers(-10**20, 10**20), st.floats(), st.booleans(), st.text(max_size=10),
                  st.lists(st.integers(-5, 5), max_size=3), st.just([]), st.just({}),
                  st.sampled_from([Raw("2020-01-01"), Raw("2020-01-01T00:00:00Z"), Raw("07:32:00"),
                                   Raw("{ a = 1 }"), Raw("[[1, 2], [\"x\"]]"), Raw("1979-05-27T07:32:00")]))
TOKEN = st.integers(10**12, 10**13).map(lambda n: f"tok-fuzz-{n}")  # long and unique: never masks ordinary words

def good_or_bad(good: list, bad: list):
    """Two thirds a valid value, one third a wrong one: deep paths need documents that parse."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.one_of(st.sampled_from(bad), WRONG))


TOP_LEVEL_VALUES = {  # (valid values, wrong ones)
    "tickers": ([["600519.SH"], ["600519.SH", "000858.SZ"], []],
                ["600519.SH", 5, [1, 2], ["../../etc/passwd"], [""], [True], ["600519.SH", "600519.SH"], ["AAPL", "nope!"]]),
    "source": (["sample", "csv", "tushare"], ["ftp", "", "SAMPLE", "Sample", " sample"]),
    "adjust": (["qfq", "hfq", "none"], ["weird", "", "QFQ"]),
    "preset": (["default", "tutorial"], ["", "x", "tutorial-gru"]),
    "retrain_after_days": ([20, "never", 0, 1], [-3, "x", 2.5, -1, 10**18, True, math.nan, math.inf, "20", "Never", -2]),
    "outdir": (["daily", "out", "out dir/ü"], ["", 5, ["x"], "forecast.toml", "data", "data/bars", True, "daily/latest",
                                              "models/latest"]),
    "levels": ([[0.8, 0.95], [0.5], [0.9, 0.99], [0.95, 0.8]],
               [[1.5], [], "x", [0.8, 0.8], [0, 1], [math.nan], [math.inf], [-0.1], 0.8, [True], ["0.8"], [1e-300],
                [0.999999999999], [i / 25 for i in range(1, 25)], [1], [1.0], [0.0], [80, 95]]),
}


def _top_value(key: str, valid: bool):
    if key == "tushare_token":
        return TOKEN if valid else st.one_of(TOKEN, st.sampled_from([5, [], ""]), st.lists(TOKEN, max_size=2))
    good, bad = TOP_LEVEL_VALUES[key]
    if valid:
        return st.sampled_from(good)
    extra = [st.lists(st.floats(), max_size=4)] if key == "levels" else []
    return st.one_of(good_or_bad(good, bad), *extra)


TRAIN_KEYS = {  # (valid values, wrong ones)
    "epochs": ([1, 60, 2], [2.5, "x", 0, -1, 10**30, True, math.nan, "60"]),
    "units": ([[32], [4, 2], "64,32", "8"], [[0], "abc", [], 32, [1.5], ["x"], [-1], [True], "", ",", "0"]),
    "lookback": ([30, 5, 60], ["thirty", 0, -5, 1e9, 10**9, 2.0, "30"]),
    "horizon": ([5, 1, 10], [0, 10**6, "5", -1, 1.0]),
    "dropout": ([0.1, 0.0, 0.5], [1.0, -0.1, math.nan, "0.1", math.inf, 0.99999, 2]),
    "lr": ([1e-3, 0.01], [0, -1, math.inf, "x", math.nan, 1e308, True]),
    "batch_size": ([64, 1], [0, -1, "x", 1.5]),
    "patience": ([0, 8], [-1, "x"]),
    "seed": ([7, 0], ["x", -1, 2**70, 1.5]),
    "target": (["close", "open"], ["junk", "", "volume", 5]),
    "transform": (["level", "log-return"], ["junk", "", 1]),
    "features": ([["return"], ["close", "open"], "return,volume"], [[], ["junk"], ["return", 5], [""], 5]),
    "arch": (["gru", "lstm", "rnn"], ["transformer", 1, "", "LSTM"]),
    "scaler": (["standard", "minmax"], ["weird", 0]),
    "val_fraction": ([0.15, 0.3], [0.5, 0, math.nan, -1, "x", 0.49]),
    "start": (["2015-01-01", Raw("2015-01-01")], ["2099-01-01", "x", 5, "", "1600-01-01"]),
    "end": (["2019-01-01"], ["2000-01-01", "x", Raw("2020-01-01T00:00:00Z"), "2262-04-12"]),
    "adjust": (["qfq", "hfq"], ["weird", 5]),
    "preset": (["tutorial", "default"], ["x", 1]),
    "zero_head": ([True, False], ["x", 1]),
    "bidirectional": ([False, True], ["x", 1]),
    "unknown_option": ([], [1, "x"]),
    "id": ([], ["x"]),
}


def _train_value(key: str, valid: bool):
    good, bad = TRAIN_KEYS[key]
    if valid:
        return st.sampled_from(good)
    return good_or_bad(good, bad) if good else st.one_of(st.sampled_from(bad), WRONG)


@st.composite
def config_documents(draw) -> bytes:
    kind = draw(st.sampled_from(["typed"] * 15 + ["binary", "cut", "garbled"]))
    if kind == "binary":
        return draw(st.binary(max_size=200))
    valid = draw(st.integers(0, 4)) < 2  # two in five documents hold only valid values (their paths go deeper)
    keys = [*TOP_LEVEL_VALUES, "tushare_token"]
    top = {k: draw(_top_value(k, valid)) for k in keys if draw(st.integers(0, 2)) == 0}
    if not valid and draw(st.integers(0, 5)) == 0:  # an unknown top-level key
        top[draw(st.sampled_from(["ticker", "Tickers", "retrain_after", "home", "x"]))] = draw(WRONG)
    tables: dict = {}
    shape = draw(st.sampled_from(["table", "table", "none", "none", "forecast-section", *([] if valid else ["not-a-table"])]))
    if shape == "table":
        names = sorted(k for k, (good, _) in TRAIN_KEYS.items() if good or not valid)
        chosen = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
        tables["train"] = {k: draw(_train_value(k, valid)) for k in chosen}
    elif shape == "not-a-table":
        tables["train"] = draw(WRONG)
    elif shape == "forecast-section":
        tables["forecast"] = {k: draw(_top_value(k, valid)) for k in keys if draw(st.integers(0, 2)) == 0}
    if draw(st.integers(0, 3)) == 0:
        tables["tushare"] = draw(st.fixed_dictionaries({"token": TOKEN}) if valid else
                                 st.one_of(st.fixed_dictionaries({"token": st.one_of(TOKEN, WRONG)}), WRONG))
    text = toml_document(top, tables)
    data = text.encode("utf-8", errors="surrogatepass")
    if kind == "typed" or valid:
        return data
    if kind == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "garbled":
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.one_of(st.binary(min_size=1, max_size=8),
                                                st.sampled_from([b"=", b"[", b"\"", b"\n[train]\n", b"\xff"]))) + data[position:]
    return data


@fuzz_settings(40)
@given(document=config_documents(), via_flag=st.integers(0, 4), json_output=st.booleans(), backtest=st.integers(0, 2))
def test_fuzz_forecast_toml(good_home, document, via_flag, json_output, backtest):
    test = "config"
    context = f"forecast.toml={document!r}"
    note(context)
    with sandbox(good_home) as box:
        if via_flag == 0:  # --config FILE instead of the home's forecast.toml
            config_path = box.root / "input" / "alt.toml"
            config_path.parent.mkdir()
            config_flag = ["--config", str(config_path)]
        else:
            config_path, config_flag = box.home / "forecast.toml", []
        config_path.write_bytes(document)
        outside = box.outside()
        show = ["config", "show", *config_flag, *(["--json"] if json_output else [])]
        shown = cli(box.home, show)
        check(shown, show, test, context)
        commands = [
            ["predict", GOOD, "--model", "naive", *(["--json"] if json_output else [])],
            ["run", "000858.SZ", "--source", "sample", "--retrain-after", "never", "--quiet", *config_flag],
        ]
        if backtest == 0:
            commands.append(["backtest", GOOD, "--models", "naive,drift", "--test-days", "30", "--refit-every", "10"])
        if shown.exit_code != 0:  # an invalid config must stop train before any training
            commands.append(["train", GOOD, "--epochs", "1", "--units", "2", "--lookback", "5", "--horizon", "1",
                             "--quiet", *config_flag])
        for args in commands:
            result = cli(box.home, args)
            check(result, args, test, context)
            if args[0] == "train" and shown.exit_code == 2:  # refused as invalid (not a crash of config show)
                check_state(result.exit_code != 0 and GUARD_MESSAGE not in result.output, test, args,
                            f"train went on (exit {result.exit_code}) with a config that config show refused", context)
        assert_good_state(box, test, ["config"], context)
        check_state(box.outside() == outside, test, show, "a file outside the home changed", context)


# --------------------------------------------------------------------------------------------------
# 3. Flags

TICKERS = ["600519.SH", "600519", "sh600519", "SH.600519", "600519.sh", "000001", "AAPL", "aapl", "../../etc/passwd",
           "..", ".", "", " ", "--", "600519.SH/../x", "latest", ".hidden", "a" * 300, "六〇〇五一九", "600519.ＳＨ",
           "\x00", "CON", "NUL", "x\ny", "600519.SH ", "ＡＡＰＬ", "😀", "000858.SZ", "999999.SH", "1.2.3", "A/B",
           "A\\B", "600519.SZ", "600519.BJ", "sz600519", "6005190", "00700.HK", "BRK-B", "^GSPC", "SH", ".SH"]
tickers = st.one_of(st.sampled_from(TICKERS), st.text(max_size=16))
MODELS = ["naive", "drift", "ma", "ma5", "ma0", "ma1", "ma99999", "ma-1", "ma1e3", "linear", "junk", "../x", "",
          " ", "NAIVE", "latest", MODEL_ID, MODEL_ID + "x", "600519.SH", "default", "tutorial", ".staging", "ma 5",
          "ma٣", "ma05"]
models = st.one_of(st.sampled_from(MODELS), st.text(max_size=12))
INTS = ["0", "1", "2", "5", "-1", "10", "1000000", "1" + "0" * 30, "x", "", "2.5", "1e3", " 5", "٣", "0x10"]
FLOATS = ["0", "0.5", "1", "-0.1", "1.5", "nan", "inf", "-inf", "1e400", "x", "", "1e-300", "0.2"]
DATES = ["2015-01-01", "2020-13-45", "yesterday", "", "0", "99999-01-01", "1600-01-01", "2262-04-12", "2099-01-01",
         "1e10", "nan", "NaT", "2020-02-30", "2020-06-01", "2010-01-01", "1677-09-21", "20200102", "now", "today"]
LOCK_TIMEOUTS = ["5", "abc", "-1", "inf", "nan", "", "1e400", "0", " 5 ", "-inf", "1e-9", "٣"]


def out_path(box: Box, choice: str) -> str:
    return {
        "file": str(box.home / "out.csv"), "json": str(box.home / "out.json"), "svg": str(box.home / "c.svg"),
        "png": str(box.home / "c.png"), "pdf": str(box.home / "c.pdf"), "txt": str(box.home / "c.txt"),
        "noext": str(box.home / "c"), "under-file": str(box.root / "afile" / "x.csv"),
        "under-file-png": str(box.root / "afile" / "x.png"), "dir": str(box.home / "data"),
        "missing-parents": str(box.home / "deep" / "er" / "x.csv"), "empty": "", "dot": ".",
        "existing-store-file": str(box.home / "forecast.toml"),
    }[choice]


OUTS = st.sampled_from(["none", "none", "file", "json", "svg", "png", "pdf", "txt", "noext", "under-file",
                        "under-file-png", "dir", "missing-parents", "empty", "dot", "existing-store-file"])


def _run_and_check(box: Box, test: str, args: list, context: str = "", env: dict | None = None):
    result = cli(box.home, args, env)
    check(result, args, test, context)
    return result


@fuzz_settings(30)
@given(names=st.lists(st.one_of(st.just(GOOD), st.just(OTHER), tickers), min_size=1, max_size=3),
       model=st.one_of(st.none(), st.sampled_from(["naive", "drift", "ma5", "linear"]), models),
       horizon=st.one_of(st.none(), st.sampled_from(["1", "3", "5"]), st.sampled_from(INTS)), out=OUTS, as_json=st.booleans(),
       lock=st.one_of(st.none(), st.sampled_from(LOCK_TIMEOUTS)))
def test_fuzz_predict_flags(good_home, names, model, horizon, out, as_json, lock):
    test = "flags"
    with sandbox(good_home) as box:
        args = ["predict", *names]
        args += ["--model", model] if model is not None else []
        args += ["--horizon", horizon] if horizon is not None else []
        args += ["--out", out_path(box, out)] if out != "none" else []
        args += ["--json"] if as_json else []
        env = {"FORECAST_LOCK_TIMEOUT": lock} if lock is not None else None
        context = f"FORECAST_LOCK_TIMEOUT={lock!r}" if lock is not None else ""
        outside = box.outside()
        _run_and_check(box, test, args, context, env)
        assert_good_state(box, test, args, context)
        check_state(box.outside() == outside, test, args, "a file outside the home changed", context)


@fuzz_settings(25)
@given(ticker=st.one_of(st.just(GOOD), st.just(GOOD), st.just(OTHER), tickers),
       chosen=st.lists(st.one_of(st.sampled_from(["naive", "drift", "ma", "ma5", "linear"]),
                                 st.sampled_from(["ma0", "ma99999", "junk", "../x", "", "default", "tutorial-gru", "ma1"]),
                                 st.text(max_size=6)), min_size=1, max_size=3),
       test_days=st.one_of(st.sampled_from(["1", "2", "5", "30", "60"]),
                           st.sampled_from(["0", "-1", "2369", "2370", "2429", "1000000", "x", "1e3", "140", "141"])),
       refit=st.one_of(st.sampled_from(["1", "5", "10", "30"]), st.sampled_from(["1000000000", "0", "-3", "x"])),
       horizon=st.one_of(st.sampled_from(["1", "2", "5", "20"]),
                         st.sampled_from(["0", "-1", "100000", "1000000000000", "x", "200", "2429"])),
       rolling=st.one_of(st.none(), st.none(), st.sampled_from(["59", "60", "61", "100", "2429", "100000", "0", "x"])),
       expanding=st.integers(0, 4).map(lambda n: n == 0),
       target=st.one_of(st.none(), st.none(), st.sampled_from(["close", "open", "high", "volume", "", "junk",
                                                               "adj_factor", "date"])),
       adjust=st.one_of(st.none(), st.sampled_from(["qfq", "hfq", "none", "weird"])),
       extras=st.lists(st.sampled_from([("--units", "abc"), ("--units", "0"), ("--lookback", "0"),
                                        ("--lookback", "5000"), ("--epochs", "0"), ("--units", "4")]), max_size=2),
       out=OUTS, as_json=st.booleans())
def test_fuzz_backtest_flags(good_home, ticker, chosen, test_days, refit, horizon, rolling, expanding, target, adjust,
                             extras, out, as_json):
    test = "flags"
    if test_days.isdigit() and refit.isdigit() and int(refit) and int(test_days) // int(refit) > 10:
        refit = str(max(int(refit), int(test_days) // 10))  # at most ~10 refits: the fuzz is about inputs, not time
    with sandbox(good_home) as box:
        args = ["backtest", ticker, "--models", ",".join(chosen), "--test-days", test_days, "--refit-every", refit,
                "--horizon", horizon]
        args += ["--rolling", rolling] if rolling is not None else []
        args += ["--expanding"] if expanding else []
        args += ["--target", target] if target is not None else []
        args += ["--adjust", adjust] if adjust is not None else []
        for flag, value in extras:
            args += [flag, value]
        args += ["--out", out_path(box, out)] if out != "none" else []
        args += ["--json"] if as_json else []
        outside = box.outside()
        _run_and_check(box, test, args)
        assert_good_state(box, test, args, "")
        check_state(box.outside() == outside, test, args, "a file outside the home changed")


TRAIN_BAD = {
    "--units": ["0", "abc", "", "64,", ",", "-1", "1e3", "99999999999999999999", "3.5", " 4", "64,,32", "٣", "0,4"],
    "--dropout": ["nan", "inf", "-inf", "-0.1", "1", "1.5", "1e400", "x", ""],
    "--lr": ["0", "-1", "nan", "inf", "1e400", "-0", "x", "-inf"],
    "--start": DATES,
    "--end": DATES + ["2000-01-01", "2010-12-27"],
    "--lookback": ["0", "-1", "1000000", "1" + "0" * 30, "x", "2.5", "2429", "2400"],
    "--horizon": ["0", "-1", "1000000", "1" + "0" * 30, "x", "2.5", "2429"],
    "--epochs": ["0", "-1", "1.5", "x", ""],
    "--batch-size": ["0", "-5", "x"],
    "--features": ["", "junk", ",", "return,,", "close,junk", "volume", "return,return", "amount", "adj_factor"],
    "--target": ["", "junk", "volume", "high", "date", "amount"],
    "--seed": ["x", "-1", "1e3", "99999999999999999999999"],
    "--arch": ["transformer", "", "LSTM"],
    "--preset": ["x", ""],
    "--target-transform": ["x", ""],
    "--adjust": ["x", "hfq", "none"],
    "--config": ["<dir>", "<missing>", "<binary>"],
}


@fuzz_settings(30)
@given(flag=st.sampled_from(sorted(TRAIN_BAD)), data=st.data(),
       ticker=st.sampled_from([GOOD, GOOD, OTHER, "NOPE", "../x", "", "600519"]), as_json=st.booleans())
def test_fuzz_train_flags_that_must_stop_before_training(good_home, flag, data, ticker, as_json):
    test = "flags"
    value = data.draw(st.one_of(st.sampled_from(TRAIN_BAD[flag]), st.text(max_size=8)), label="value")
    with sandbox(good_home) as box:
        if flag == "--config":
            special = {"<dir>": str(box.home / "data"), "<missing>": str(box.root / "missing.toml")}
            if value == "<binary>":
                (box.root / "binary.toml").write_bytes(b"\xff\xfe\x00[train]\nepochs = \x00")
                special[value] = str(box.root / "binary.toml")
            value = special.get(value, str(box.root / "input" / "x.toml") if value else value)
        cheap = ["--epochs", "1", "--units", "2", "--lookback", "5", "--horizon", "1", "--batch-size", "256", "--quiet"]
        args = ["train", ticker, *cheap, flag, value, *(["--json"] if as_json else [])]  # the last --flag wins
        outside = box.outside()
        _run_and_check(box, test, args)
        assert_good_state(box, test, args, "")
        check_state(box.outside() == outside, test, args, "a file outside the home changed")


@fuzz_settings(15)
@given(ticker=st.one_of(st.sampled_from([GOOD, GOOD, OTHER]), tickers),
       kind=st.sampled_from(["forecast", "backtest", "history", "training", "calibration", "junk", "FORECAST", ""]),
       model=st.one_of(st.none(), models), days=st.one_of(st.none(), st.sampled_from(INTS + ["4", "5", "6"])),
       out=OUTS, as_json=st.booleans())
def test_fuzz_plot_flags(good_home, ticker, kind, model, days, out, as_json):
    test = "flags"
    with sandbox(good_home) as box:
        args = ["plot", ticker, "--kind", kind]
        args += ["--model", model] if model is not None else []
        args += ["--days", days] if days is not None else []
        args += ["--out", out_path(box, out)] if out != "none" else []
        args += ["--json"] if as_json else []
        outside = box.outside()
        _run_and_check(box, test, args)
        assert_good_state(box, test, args, "")
        check_state(box.outside() == outside, test, args, "a file outside the home changed")


TICKER_COMMANDS = [
    lambda t: ["data", "show", t], lambda t: ["data", "show", t, "--adjust", "hfq", "--json"],
    lambda t: ["fetch", t, "--source", "sample"], lambda t: ["fetch", t, "--source", "csv", "--file", "<sample>"],
    lambda t: ["fetch", t], lambda t: ["models", "show", t], lambda t: ["models", "rm", t],
    lambda t: ["plot", t, "--kind", "history"], lambda t: ["predict", t, "--model", "naive"],
    lambda t: ["backtest", t, "--models", "naive", "--test-days", "5", "--refit-every", "5"],
    lambda t: ["run", t, "--source", "csv", "--retrain-after", "never", "--quiet"],
    lambda t: ["plot", GOOD, "--kind", "training", "--model", t],
    lambda t: ["predict", GOOD, "--model", t],
]


@fuzz_settings(30)
@given(ticker=tickers, commands=st.lists(st.sampled_from(range(len(TICKER_COMMANDS))), min_size=1, max_size=3),
       lock=st.one_of(st.none(), st.none(), st.sampled_from(LOCK_TIMEOUTS)))
def test_fuzz_ticker_and_model_id_arguments(good_home, ticker, commands, lock):
    test = "flags"
    env = {"FORECAST_LOCK_TIMEOUT": lock} if lock is not None else None
    context = f"FORECAST_LOCK_TIMEOUT={lock!r}" if lock is not None else ""
    with sandbox(good_home) as box:
        outside = box.outside()
        for index_ in commands:
            args = [str(SAMPLE_FILE) if a == "<sample>" else a for a in TICKER_COMMANDS[index_](ticker)]
            if args[0] == "run" and _is_a_good_ticker(ticker):
                continue  # run would train a model for a good ticker (the guard would stop it; nothing to learn)
            _run_and_check(box, test, args, context, env)
        assert_good_state(box, test, [ticker], context)
        check_state(box.outside() == outside, test, [ticker], "a file outside the home changed", context)


def _is_a_good_ticker(text: str) -> bool:
    from forecast.data.tickers import parse_ticker

    try:
        return str(parse_ticker(text)) in (GOOD, OTHER)
    except Exception:
        return False


@fuzz_settings(15)
@given(outdir=st.sampled_from(["none", "daily2", "<afile>", "<file>", "<under-file>", ""]),
       log_file=st.sampled_from(["none", "none", "<home-log>", "<under-file>", "<dir>", ""]),
       wait=st.sampled_from(["none", "0", "-1", "nan", "inf", "x", "1e400", "5"]),
       retrain=st.sampled_from(["never", "never", "5", "-1", "x", "", "1e3", "٣", "1" + "0" * 30]),
       source=st.sampled_from(["sample", "csv", "ftp", ""]),
       names=st.lists(st.sampled_from(["000858.SZ", "NOPE", "../x", "", "000001", "AAPL.", "x" * 300]), max_size=3),
       lock=st.one_of(st.none(), st.sampled_from(LOCK_TIMEOUTS)))
def test_fuzz_run_flags(good_home, outdir, log_file, wait, retrain, source, names, lock):
    """``run`` on tickers that have no data (so nothing is ever trained), with odd flags and environment."""
    test = "flags"
    with sandbox(good_home) as box:
        paths = {"<afile>": str(box.root / "afile"), "<file>": str(box.home / "forecast.toml"),
                 "<under-file>": str(box.root / "afile" / "x"), "<home-log>": str(box.home / "run.log"),
                 "<dir>": str(box.home / "data"), "daily2": str(box.home / "daily2"), "": ""}
        (box.home / "forecast.toml").write_text('tickers = ["000858.SZ"]\n')
        args = ["run", *names, "--retrain-after", retrain, "--source", source, "--quiet"]
        args += ["--outdir", paths[outdir]] if outdir != "none" else []
        args += ["--log-file", paths[log_file]] if log_file != "none" else []
        args += ["--wait", wait] if wait != "none" else []
        env = {"FORECAST_LOCK_TIMEOUT": lock} if lock is not None else None
        context = f"FORECAST_LOCK_TIMEOUT={lock!r}" if lock is not None else ""
        outside = box.outside()
        _run_and_check(box, test, args, context, env)
        from forecast.cli._logging import setup_logging

        setup_logging(False)  # close a --log-file handler the run opened
        assert_good_state(box, test, args, context)
        check_state(box.outside() == outside, test, args, "a file outside the home changed", context)


# --------------------------------------------------------------------------------------------------
# 4. Corrupted store and registry files

TARGETS = {
    "bars": lambda box: box.bars(GOOD),
    "card": lambda box: box.home / "models" / MODEL_ID / "metadata.json",
    "keras": lambda box: box.home / "models" / MODEL_ID / "model.keras",
    "pointer": lambda box: box.home / "models" / "latest" / GOOD,
    "forecast": lambda box: box.home / "forecasts" / GOOD / "latest.json",
    "backtest": lambda box: box.home / "backtests" / GOOD / "latest.json",
    "backtest-csv": lambda box: box.home / "backtests" / GOOD / "latest.csv",
    "model-dir": lambda box: box.home / "models" / MODEL_ID,
}
JSON_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=12),
                      st.sampled_from(["../../../../etc/passwd", "", "latest", GOOD, OTHER, "2099-01-01", "x" * 300,
                                       "600519.SH-default-gru-x", "../x", MODEL_ID, ".hidden", "0.8"]),
                      st.lists(st.integers(-3, 3), max_size=3), st.lists(st.floats(), max_size=6),
                      st.just({}), st.just([]), st.just({"a": 1}), st.just([[]]))
BYTE_DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("zero"), st.integers(0, 4096)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("binary"), st.binary(max_size=64)),
    st.tuples(st.just("text"), st.sampled_from(["", "\n", "null", "{", "[]", "{}", '{"id": 1', "\ufeff{}", "\xff\xfe",
                                                "not json at all", "PAR1", "PK\x03\x04"])),
    st.tuples(st.just("delete")),
    st.tuples(st.just("directory")),
    st.tuples(st.just("link"), st.sampled_from(["passwd", "outside.parquet", "model", "missing", "self"])),
)
PARQUET_DAMAGE = st.sampled_from(["zero-rows", "no-metadata", "junk-metadata", "metadata-missing-validation",
                                  "weird-basis", "nan-close", "inf-close", "negative-close", "string-close",
                                  "unsorted", "duplicate-dates", "no-date", "far-future", "one-row", "extra-column",
                                  "metadata-not-object", "validation-junk", "other-schema", "dates-as-text",
                                  "zero-factor"])
COMMANDS = {
    "data list": ["data", "list"], "data list --json": ["data", "list", "--json"],
    "data show": ["data", "show", GOOD], "data show hfq": ["data", "show", GOOD, "--adjust", "hfq"],
    "models list": ["models", "list"], "models list --json": ["models", "list", "--json"],
    "models show": ["models", "show", MODEL_ID], "models show --json": ["models", "show", MODEL_ID, "--json"],
    "models rm": ["models", "rm", MODEL_ID], "predict": ["predict", GOOD],
    "predict model": ["predict", GOOD, "--model", MODEL_ID], "predict naive": ["predict", GOOD, "--model", "naive"],
    "plot": ["plot", GOOD], "plot backtest": ["plot", GOOD, "--kind", "backtest"],
    "plot training": ["plot", GOOD, "--kind", "training"], "plot history": ["plot", GOOD, "--kind", "history"],
    "plot calibration": ["plot", GOOD, "--kind", "calibration"],
    "fetch sample": ["fetch", GOOD, "--source", "sample"],
    "backtest": ["backtest", GOOD, "--models", "naive,drift", "--test-days", "30", "--refit-every", "10"],
    "run": ["run", GOOD, "--source", "csv", "--retrain-after", "never", "--quiet"],
}
if HAS_DOCTOR:
    COMMANDS.update({"doctor": ["doctor"], "doctor --json": ["doctor", "--json"], "doctor --repair": ["doctor", "--repair"]})


def _damage_bytes(path: Path, damage: tuple, box: Box) -> None:
    kind = damage[0]
    if path.is_dir() and not path.is_symlink() and kind not in ("delete", "link"):
        kind, damage = "delete", ("delete",)
    original = path.read_bytes() if path.is_file() else b""
    if kind == "truncate":
        path.write_bytes(original[: int(len(original) * damage[1])])
    elif kind == "zero":
        path.write_bytes(b"\x00" * damage[1])
    elif kind == "flip":
        data = bytearray(original)
        for where, byte in damage[1]:
            if data:
                data[min(len(data) - 1, int(len(data) * where))] = byte
        path.write_bytes(bytes(data))
    elif kind == "binary":
        path.write_bytes(damage[1])
    elif kind == "text":
        path.write_text(damage[1], encoding="utf-8", errors="surrogatepass")
    elif kind in ("delete", "directory", "link"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        if kind == "directory":
            path.mkdir()
            (path / "inside").write_text("x")
        elif kind == "link":
            target = damage[1]
            path.symlink_to(path if target == "self" else box.sibling / target)


def _damage_json(path: Path, data, box: Box) -> str:
    """Replace or delete one node of the JSON document at ``path``; return what was done."""
    document = json.loads(path.read_text())
    trail: list = []
    node = document
    while isinstance(node, (dict, list)) and node and data.draw(st.integers(0, 2), label="descend") > 0:
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))), label="key")
        trail.append(key)
        node = node[key]
    action = data.draw(st.sampled_from(["replace", "replace", "delete"]), label="action")
    value = data.draw(JSON_JUNK, label="value")
    if not trail:
        document = value
    else:
        parent = document
        for key in trail[:-1]:
            parent = parent[key]
        if action == "delete":
            del parent[trail[-1]]
        else:
            parent[trail[-1]] = value
    path.write_text(json.dumps(document, allow_nan=True))
    return f"{action} {'.'.join(map(str, trail)) or '<root>'} = {_short(value, 60)}"


def _damage_parquet(path: Path, damage: str) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"forecast"])
    frame = table.to_pandas()
    if damage == "zero-rows":
        frame = frame.iloc[:0]
    elif damage == "one-row":
        frame = frame.iloc[-1:]
    elif damage == "nan-close":
        frame["close"] = np.nan
    elif damage == "inf-close":
        frame.loc[frame.index[-5:], "close"] = np.inf
    elif damage == "negative-close":
        frame["close"] = -frame["close"]
    elif damage == "string-close":
        frame["close"] = frame["close"].astype(str)
    elif damage == "unsorted":
        frame = frame.iloc[::-1].reset_index(drop=True)
    elif damage == "duplicate-dates":
        frame["date"] = frame["date"].iloc[0]
    elif damage == "no-date":
        frame = frame.drop(columns=["date"])
    elif damage == "far-future":
        frame["date"] = frame["date"].to_numpy().astype("datetime64[us]") + np.timedelta64(146_000, "D")  # past 2262
    elif damage == "extra-column":
        frame["extra"] = "x"
    elif damage == "dates-as-text":
        frame["date"] = frame["date"].dt.strftime("%d/%m/%Y")
    elif damage == "other-schema":
        frame = pd.DataFrame({"a": [1, 2, 3]})
    elif damage == "zero-factor":
        frame["adj_factor"] = 0.0
    out = pa.Table.from_pandas(frame, preserve_index=False)
    if damage == "no-metadata":
        out = out.replace_schema_metadata({})
        pq.write_table(out, path)
        return
    if damage == "junk-metadata":
        blob = b"{not json"
    elif damage == "metadata-not-object":
        blob = b"[1, 2]"
    else:
        if damage == "metadata-missing-validation":
            meta.pop("validation", None)
        elif damage == "weird-basis":
            meta["price_basis"] = "weird"
        elif damage == "validation-junk":
            meta["validation"] = {"rows": "x", "findings": [{"check": 5}]}
        blob = json.dumps(meta).encode()
    pq.write_table(out.replace_schema_metadata({**(out.schema.metadata or {}), b"forecast": blob}), path)


@fuzz_settings(50)
@given(target=st.sampled_from(sorted(TARGETS) + ["bars", "card", "card", "pointer"]), data=st.data(),
       commands=st.lists(st.sampled_from(sorted(COMMANDS)), min_size=1, max_size=3))
def test_fuzz_corrupted_store_and_registry_files(good_home, target, data, commands):
    test = "corrupt"
    with sandbox(good_home) as box:
        path = TARGETS[target](box)
        if target in ("card", "forecast", "backtest") and data.draw(st.booleans(), label="json-aware"):
            damage = "json: " + _damage_json(path, data, box)
        elif target == "bars" and data.draw(st.booleans(), label="parquet-aware"):
            damage = data.draw(PARQUET_DAMAGE, label="parquet damage")
            _damage_parquet(path, damage)
            damage = "parquet: " + damage
        else:
            raw = data.draw(BYTE_DAMAGE, label="byte damage")
            _damage_bytes(path, raw, box)
            damage = f"bytes: {tuple(_short(x, 60) for x in raw)}"
        context = f"{target} ({path.relative_to(box.home)}): {damage}"
        note(context)
        outside = box.outside()
        for name in commands:
            args = COMMANDS[name]
            _run_and_check(box, test, args, context)
            check_state(box.outside() == outside, test, args, "a file outside the home changed", context)
        assert_good_state(box, test, commands, context, tickers=[OTHER])  # the other ticker never suffers
        if target == "bars" and not path.is_symlink() and not path.is_dir():  # a link out of bars/ may be refused
            refetch = ["fetch", GOOD, "--source", "sample"]  # a re-fetch over an unreadable file must work
            check(cli(box.home, refetch), refetch, test, context, expect_ok=True)
            assert_good_state(box, test, refetch, context, tickers=[GOOD])
        check_state(box.outside() == outside, test, commands, "a file outside the home changed", context)
