"""Fuzz the whole CLI (issue 13): the hostile suite's shared core; the tests live in its neighbours.

The categories: tests/hostile/test_csv.py (CSV imports over a good series),
tests/hostile/test_forecast_toml.py (forecast.toml), tests/hostile/test_flags.py
(flags and arguments) and tests/hostile/test_corruption.py (corrupted store and
registry files) import the property, the good home and the fixtures below.

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
import io
import json
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
from hypothesis import HealthCheck, Phase, settings
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
    for counts in (STATS, FAILURES, SECONDS, EXITS):  # each module that imports this fixture prints its own counts
        counts.clear() if counts is not STATS else counts.update(dict.fromkeys(counts, 0))
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


def _run_and_check(box: Box, test: str, args: list, context: str = "", env: dict | None = None):
    result = cli(box.home, args, env)
    check(result, args, test, context)
    return result


def assert_good_state(box: Box, test: str, args: list, context: str, tickers=(GOOD, OTHER)) -> None:
    """The good tickers are readable, whatever the example did."""
    for ticker in tickers:
        show = ["data", "show", ticker]
        check(cli(box.home, show), show, test, f"after {args!r}; {context}", expect_ok=True)


NEIGHBOURS = ("test_csv.py", "test_forecast_toml.py", "test_flags.py", "test_corruption.py")


def test_every_category_of_the_suite_lives_in_a_neighbour_that_uses_this_core():
    """The four categories moved out of this file; none may be lost, and each runs the property defined here."""
    folder = Path(__file__).parent
    for name in NEIGHBOURS:
        text = (folder / name).read_text(encoding="utf-8")
        assert "from tests.hostile.test_fuzz_core import" in text and "@given(" in text and "check(" in text, name  # check or _run_and_check
