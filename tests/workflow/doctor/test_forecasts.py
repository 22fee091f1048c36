"""``forecast doctor`` sees what the commands see: the forecasts kept apart and the adaptive interval states.

The commands pass a damaged one over with a warning (a kept-apart forecast)
or rebuild it (an interval state); doctor names it, by path and in one line,
``--repair`` moves it to quarantine, and the next command makes it again
without a warning. The home is ``test_doctor_states``' (a handmade universe
model; no TensorFlow), with one file of each kind written by the commands.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from forecast.workspace import Workspace
from tests.workflow.doctor.test_states import OLDER, cli, doctor_json, found, global_home  # noqa: F401 (a fixture)

TICKER = "T0"
BASELINE = "drift"  # a model other than the one in use for T0 (the universe model): its forecast is kept apart


def ticker_other(workspace: Workspace) -> Path:
    return workspace.forecast_other_file(TICKER, BASELINE)


def universe_other(workspace: Workspace) -> Path:
    return workspace.forecast_batch_other_file("stored")


def adaptive_state(workspace: Workspace) -> Path:
    return workspace.adaptive_state_file(TICKER, BASELINE)


def universe_tracks(workspace: Workspace) -> Path:
    return workspace.batch_adaptive_state_file("stored", OLDER)


MAKE_AGAIN = {ticker_other: ("predict", TICKER, "--model", BASELINE), adaptive_state: ("predict", TICKER, "--model", BASELINE),
              universe_other: ("rank", "--universe", "stored", "--model", OLDER),
              universe_tracks: ("rank", "--universe", "stored", "--model", OLDER)}  # the command that writes each
ADVICE = {ticker_other: f"forecast predict {TICKER} --model {BASELINE}", adaptive_state: f"forecast predict {TICKER} --model {BASELINE}",
          universe_other: "forecast rank --universe stored",
          universe_tracks: f"forecast predict --universe stored --model {OLDER}"}  # the command doctor says makes it again
# well-formed JSON of the wrong structure for each: what a reader checks beyond parsing
WRONG_SHAPE = {ticker_other: json.dumps({"ticker": TICKER, "model_id": BASELINE}),  # no points, no dates
               universe_other: json.dumps({"universe": "stored", "forecasts": {TICKER: {"ticker": TICKER}}}),
               adaptive_state: json.dumps({"version": 1, "horizon": 1, "through": "2021-01-04", "model_id": BASELINE,
                                           "method": "tracker", "states": {"0.8": [{"version": 7}]}}),
               universe_tracks: json.dumps({"version": 1, "model_id": OLDER, "levels": ["0.8"], "horizon": 3, "tickers": []})}


@pytest.fixture
def kept_home(global_home):  # noqa: F811 (the fixture, imported above)
    """The universe model serves every ticker; a drift forecast of T0 and the older universe model's ranking are kept
    apart, and drift's interval state is kept for T0: one file of each kind, all healthy."""
    for command in {MAKE_AGAIN[ticker_other], MAKE_AGAIN[universe_other]}:
        made = cli(*command, "--json")
        assert made.exit_code == 0, made.output
    workspace = Workspace.at(global_home)
    assert all(path(workspace).is_file() for path in MAKE_AGAIN)
    return global_home


def truncated(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) // 2]  # a write cut short


@pytest.mark.parametrize("which", [ticker_other, universe_other, adaptive_state, universe_tracks], ids=lambda f: f.__name__)
@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong shape"])
def test_a_damaged_kept_apart_forecast_or_interval_state_is_named_moved_aside_and_made_again(kept_home, which, damage):
    home, workspace = kept_home, Workspace.at(kept_home)
    assert cli("doctor").stdout.strip() == "healthy"  # every file of each kind, as the commands wrote it
    path = which(workspace)
    bad = {"truncated": lambda: truncated(path), "garbage": lambda: b"\x00\xff not json at all",
           "wrong shape": lambda: WRONG_SHAPE[which].encode()}[damage]()
    path.write_bytes(bad)

    code, report = doctor_json()
    assert code == 3 and report["healthy"] is False
    named = found(report, home)
    assert list(named) == [os.path.relpath(path, home)]  # this one file, and nothing else of the healthy home
    finding = named[os.path.relpath(path, home)]
    assert finding["kind"] == ("adaptive" if which in (adaptive_state, universe_tracks) else "forecast")
    assert finding["problem"].startswith("unreadable (") and ADVICE[which] in finding["advice"]
    text = cli("doctor")
    assert text.exit_code == 3
    lines = [line for line in text.stdout.splitlines() if os.path.relpath(path, home) in line]
    assert len(lines) == 1 and finding["problem"] in lines[0]  # named by path, and what is wrong, in one line

    repaired = cli("doctor", "--repair", "--json")
    assert repaired.exit_code == 0, repaired.output
    moved = Path(json.loads(repaired.stdout)["findings"][0]["moved_to"])
    assert moved.is_relative_to(workspace.quarantine_dir) and moved.parts[-len(path.relative_to(home).parts):] == path.relative_to(home).parts
    assert moved.read_bytes() == bad and not path.exists()  # moved whole, nothing deleted

    again = cli(*MAKE_AGAIN[which], "--json")
    assert again.exit_code == 0, again.output
    if which is adaptive_state:  # started afresh from the bars, not rebuilt over an unreadable file
        assert json.loads(again.stdout)["adaptive"]["rebuilt"] == "new"
    assert path.is_file() and cli("doctor").stdout.strip() == "healthy"


def test_a_state_kept_for_other_levels_is_no_damage(kept_home):
    # predict starts again for its own levels (test_adaptive_wiring); the file is well formed, so doctor leaves it
    path = adaptive_state(Workspace.at(kept_home))
    stored = json.loads(path.read_text())
    stored["states"] = {"0.8": stored["states"]["0.8"]}
    path.write_text(json.dumps(stored))
    assert cli("doctor").stdout.strip() == "healthy"
    stored["states"]["0.8"] = stored["states"]["0.8"][:-1]  # one step short of its horizon: no state predict wrote
    path.write_text(json.dumps(stored))
    code, report = doctor_json()
    assert code == 3 and "horizon" in found(report, kept_home)[os.path.relpath(path, kept_home)]["problem"]


def test_a_damaged_entry_of_a_readable_kept_apart_batch_is_passed_over_with_a_warning(home, caplog):
    from forecast.models.results import other_forecast
    from forecast.workspace import Workspace

    path = Workspace.at(home).forecast_batch_other_file("stored")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"forecasts": {"600519.SH": {"ticker": "600519.SH", "points": "not a list"}}}))
    assert other_forecast(home, "600519.SH", "global") is None  # not an exception that stops the command
    assert any(str(path) in record.getMessage() for record in caplog.records), caplog.text


def test_a_universe_models_damaged_row_is_no_finding_predict_drops_it_and_other_settings_are_none(kept_home):
    path = universe_tracks(Workspace.at(kept_home))
    stored = json.loads(path.read_text())
    assert stored["tickers"]  # the ranking's batch wrote a track per ticker
    ticker = sorted(stored["tickers"])[0]
    row = stored["tickers"].index(ticker)
    stored["misses"][row][0][0] = stored["updates"][row][0][0] + 1  # more misses than outcomes: no track predict wrote
    path.write_text(json.dumps(stored))
    # predict starts that ticker again and its write drops the row; quarantining the file would cost every ticker its track
    assert cli("doctor").stdout.strip() == "healthy"
    again = cli(*MAKE_AGAIN[universe_tracks], "--json")
    assert again.exit_code == 0, again.output
    rewritten = json.loads(path.read_text())
    row = rewritten["tickers"].index(ticker)
    assert rewritten["misses"][row][0][0] <= rewritten["updates"][row][0][0]
    rewritten["model_id"], rewritten["levels"] = "another", ["0.5", "0.6"]  # kept for other settings: predict leaves it
    path.write_text(json.dumps(rewritten))
    assert cli("doctor").stdout.strip() == "healthy"
    rewritten["horizon"] = 10**300  # no header this version writes: unreadable, and said in one short line
    path.write_text(json.dumps(rewritten))
    code, report = doctor_json()
    problem = found(report, kept_home)[os.path.relpath(path, kept_home)]["problem"]
    assert code == 3 and problem.startswith("unreadable (") and len(problem) < 200
