"""Issue 27: the universe model's bands are recalibrated online too, from the batch's own past forecasts.

The universe model is the hand-written card and numpy stand-in of
test_forecast_of_record (no TensorFlow). Its 80 % band is +-1 sigma, too
narrow for the random walk's normal returns, so the tracker has something to
correct.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from forecast.maths.adaptive_replay import replay
from forecast.maths.adaptive_state import DEFAULT_ETA
from forecast.maths.band_scores import scale_band
from forecast.models.pooled.card import GlobalRegistry
from forecast.models.pooled.recalibration import read_tracks, write_tracks
from forecast.models.results import load_forecast_batch
from forecast.workspace import Workspace
from tests.models.pooled.test_commands import store_panel
from tests.models.pooled.test_data import make_panel
from tests.workflow.test_forecast_of_record import MODEL, TICKERS, CrossSectionalNet, cli, universe_card
from tests.workflow.test_serving import no_weights

FIRST_DAY, DAYS = 395, 420  # batches at every bar from the 396th to the 420th


@pytest.fixture
def panel_home(home, monkeypatch):
    """The universe model registered; the bars are stored day by day by ``day``."""
    from forecast.models.pooled import numpy_net

    monkeypatch.setattr(numpy_net.NumpyGlobalNet, "from_keras_file", classmethod(lambda cls, path: CrossSectionalNet()))
    GlobalRegistry(Workspace.at(home)).save(universe_card(), no_weights)
    return home


PANEL = make_panel({t: DAYS for t in TICKERS}, seed=21)
DATES = PANEL.index.get_level_values("date").unique().sort_values()


def day(home, last: int) -> None:
    """Store every ticker's bars up to row ``last`` (0-based), as a nightly fetch would have."""
    store_panel(home, PANEL[PANEL.index.get_level_values("date") <= DATES[last]])


def batch(home, save: bool = True):
    from forecast.workflow.universe_jobs import predict_batch

    workspace = Workspace.at(home)
    return predict_batch(workspace, TICKERS[:5], GlobalRegistry(workspace).card(MODEL), save=save)


def raw(result, level: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, lower, upper) over the steps of a stored forecast."""
    return (np.array([p.value for p in result.points]), np.array([p.intervals[level][0] for p in result.points]),
            np.array([p.intervals[level][1] for p in result.points]))


def test_every_nights_batch_moves_each_tickers_band_exactly_as_replay_would(panel_home, monkeypatch):
    from forecast.models.pooled import model

    raws: dict[int, dict] = {}
    for last in range(FIRST_DAY, DAYS):
        day(panel_home, last)
        with monkeypatch.context() as own:  # the model's own band that night: the same code path, no track applied
            own.setattr(model, "recalibrate", lambda tracks, tickers, dates, closes, point, scale, shape, *rest:
                        (None, *shape.bands(point, scale), [None] * len(tickers)))
            raws[last] = {t: f.result for t, f in batch(panel_home, save=False).forecasts.items()}
        shown = batch(panel_home)
    closes = PANEL.xs("T1", level="ticker")["close"].to_numpy()
    origins = np.arange(FIRST_DAY, DAYS)
    horizon = len(raws[FIRST_DAY]["T1"].points)
    rows = origins[:, None] + np.arange(1, horizon + 1)
    actual = np.where(rows < DAYS, closes[np.minimum(rows, DAYS - 1)], np.nan)
    for level in ("0.8", "0.95"):
        paths = [raw(raws[o]["T1"], level) for o in origins]
        points, lowers, uppers = (np.array([p[i] for p in paths]) for i in range(3))
        expected = replay(points, lowers, uppers, actual, float(level), "tracker", eta=DEFAULT_ETA, origins=origins)
        today = shown.forecasts["T1"].result
        np.testing.assert_allclose(raw(today, level)[1], expected.lower[-1], rtol=1e-10)
        np.testing.assert_allclose(raw(today, level)[2], expected.upper[-1], rtol=1e-10)
        record = today.adaptive["levels"][level]
        np.testing.assert_allclose(record["multiplier"], expected.multipliers[-1], atol=1e-6)
        assert record["outcomes"] == [s.updates for s in expected.states]
    assert expected.multipliers[-1].max() > 1.05  # +-1 sigma at 80 %: the tracker widened it
    stored = load_forecast_batch(Workspace.at(panel_home).forecast_batch_file("stored"))["T1"]
    assert stored.adaptive["through"] == str(DATES[DAYS - 1].date())


def test_a_run_killed_between_the_tracks_and_the_forecasts_gives_the_unbroken_runs_forecast(panel_home, tmp_path, monkeypatch):
    from forecast.workflow import universe_jobs

    for last in range(FIRST_DAY, FIRST_DAY + 6):
        day(panel_home, last)
        batch(panel_home)
    day(panel_home, FIRST_DAY + 6)
    unbroken = tmp_path / "unbroken"
    shutil.copytree(panel_home, unbroken)
    workspace = Workspace.at(panel_home)
    tracks_file = workspace.batch_adaptive_state_file("stored", MODEL)
    before = tracks_file.read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the machine stops after the tracks' write, before the forecasts'

    with monkeypatch.context() as stopped, pytest.raises(KeyboardInterrupt):
        stopped.setattr(universe_jobs, "save_forecast_batch", killed)
        batch(panel_home)
    assert tracks_file.read_bytes() != before  # the tracks had moved
    again = batch(panel_home)
    straight = batch(unbroken)
    for ticker in TICKERS[:5]:
        assert again.forecasts[ticker].result.points == straight.forecasts[ticker].result.points
        ours, theirs = (dict(run.forecasts[ticker].result.adaptive) for run in (again, straight))
        assert (ours.pop("applied"), theirs.pop("applied")) == (0, 3)  # what this run applied: the killed one had
        assert ours == theirs
    ours = json.loads(tracks_file.read_text())
    theirs = json.loads(Workspace.at(unbroken).batch_adaptive_state_file("stored", MODEL).read_text())
    assert ours == theirs


def test_predict_shows_the_recalibration_and_a_damaged_track_starts_again_for_that_ticker_alone(panel_home, capfd):
    for last in range(FIRST_DAY, FIRST_DAY + 8):
        day(panel_home, last)
        result = cli(panel_home, "predict", "--universe", "stored", "--model", MODEL, "--json")
        assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    rows = payload.get("results", payload) if isinstance(payload, dict) else payload
    t1 = next(r for r in rows if r["ticker"] == "T1")
    assert t1["adaptive"]["method"] == "tracker" and sum(t1["adaptive"]["levels"]["0.8"]["outcomes"]) > 0
    workspace = Workspace.at(panel_home)
    path = workspace.batch_adaptive_state_file("stored", MODEL)
    data = json.loads(path.read_text())
    data["misses"][data["tickers"].index("T2")][0][0] = -1  # one ticker's row damaged, the file well formed
    path.write_text(json.dumps(data))
    tracks, why, damaged = read_tracks(path, MODEL, ["0.8", "0.95"], 3)
    assert why is None and damaged == {"T2"} and sorted(tracks.tickers) == sorted(set(TICKERS) - {"T2"})  # T5: never trained on
    assert tracks.updates.sum() > 0  # the others keep theirs
    warned = capfd.readouterr().err
    assert "cannot be read" in warned and "(T2)" in warned
    day(panel_home, FIRST_DAY + 8)
    moved = batch(panel_home)
    assert moved.forecasts["T2"].result.adaptive["rebuilt"] == "unreadable"
    assert sum(moved.forecasts["T1"].result.adaptive["levels"]["0.8"]["outcomes"]) > 0
    assert read_tracks(path, MODEL, ["0.8", "0.95"], 3)[2] == set()  # the write dropped the damaged row: no more warning
    later = read_tracks(path, MODEL, ["0.8", "0.95"], 3)[0].tickers
    assert "T2" in later and "T5" in later  # T2 started again; T5, not in this batch, kept its row


def test_tracks_of_other_settings_or_an_unreadable_file_are_not_used(panel_home):
    workspace = Workspace.at(panel_home)
    path = workspace.batch_adaptive_state_file("stored", MODEL)
    assert read_tracks(path, MODEL, ["0.8"], 3)[1] == "new"
    day(panel_home, FIRST_DAY)
    batch(panel_home)
    tracks, why, _ = read_tracks(path, MODEL, ["0.8", "0.95"], 3)
    assert why is None and sorted(tracks.tickers) == TICKERS[:5]
    for levels, model_id in ((["0.8"], MODEL), (["0.8", "0.95"], "another-model")):
        none, why, _ = read_tracks(path, model_id, levels, 3)
        assert (len(none), why) == (0, "other settings")
    for broken in ("{not json", json.dumps({**json.loads(path.read_text()), "point": [[1.0]]})):
        path.write_text(broken)
        none, why, _ = read_tracks(path, MODEL, ["0.8", "0.95"], 3)
        assert (len(none), why) == (0, "unreadable")


def test_a_write_keeps_the_tickers_another_batch_moved_and_reads_back_what_it_wrote(panel_home):
    for last in range(FIRST_DAY, FIRST_DAY + 4):
        day(panel_home, last)
        batch(panel_home)
    workspace = Workspace.at(panel_home)
    path = workspace.batch_adaptive_state_file("stored", MODEL)
    tracks, _, _ = read_tracks(path, MODEL, ["0.8", "0.95"], 3)
    t1 = tracks.rows(np.array([tracks.tickers.index("T1")]))
    t1.multiplier = t1.multiplier + 0.5
    write_tracks(workspace, "stored", MODEL, ["0.8", "0.95"], 3, t1)
    back, _, _ = read_tracks(path, MODEL, ["0.8", "0.95"], 3)
    assert sorted(back.tickers) == TICKERS[:5]
    for ticker in TICKERS[:5]:
        before, after = tracks.tickers.index(ticker), back.tickers.index(ticker)
        shift = 0.5 if ticker == "T1" else 0.0
        np.testing.assert_array_equal(back.multiplier[after], tracks.multiplier[before] + shift)
        np.testing.assert_array_equal(back.origins[after], tracks.origins[before])
        np.testing.assert_array_equal(back.point[after], tracks.point[before])  # NaN where a slot is empty, both
        np.testing.assert_array_equal(back.scale[after], tracks.scale[before])
        assert back.through[after] == tracks.through[before]


def test_todays_band_is_the_models_own_times_the_multiplier_shown_and_the_same_night_again_moves_nothing(panel_home, monkeypatch):
    from forecast.models.pooled import model

    for last in range(FIRST_DAY, FIRST_DAY + 10):
        day(panel_home, last)
        shown = batch(panel_home).forecasts["T3"].result
    again = batch(panel_home).forecasts["T3"].result  # the same night again: nothing new to apply, the same band
    assert again.points == shown.points and again.adaptive["applied"] == 0
    with monkeypatch.context() as own:
        own.setattr(model, "recalibrate", lambda tracks, tickers, dates, closes, point, scale, shape, *rest:
                    (None, *shape.bands(point, scale), [None] * len(tickers)))
        raw_result = batch(panel_home, save=False).forecasts["T3"].result
    for level in ("0.8", "0.95"):
        m = np.array(shown.adaptive["levels"][level]["multiplier"])
        assert not np.allclose(m, 1.0)
        expected = scale_band(*raw(raw_result, level)[1:], raw(raw_result, level)[0], m)
        np.testing.assert_allclose(raw(shown, level)[1], expected[0], rtol=1e-5)
        np.testing.assert_allclose(raw(shown, level)[2], expected[1], rtol=1e-5)


def test_hostile_rows_are_left_out_and_a_file_with_no_ticker_or_a_flat_ticker_reads_back(panel_home):
    from forecast.maths.adaptive_batch import fresh

    workspace = Workspace.at(panel_home)
    path = workspace.batch_adaptive_state_file("stored", MODEL)
    write_tracks(workspace, "stored", MODEL, ["0.8", "0.95"], 3, fresh([], 2, 3))  # a batch with nothing finite
    assert read_tracks(path, MODEL, ["0.8", "0.95"], 3)[1:] == (None, set())
    for last in range(FIRST_DAY, FIRST_DAY + 4):
        day(panel_home, last)
        batch(panel_home)
    data = json.loads(path.read_text())
    rows = {t: i for i, t in enumerate(data["tickers"])}
    data["scale"][rows["T0"]] = [0.0 if v is not None else None for v in data["scale"][rows["T0"]]]  # a flat price: scale 0
    data["updates"][rows["T1"]][0][0] = data["misses"][rows["T1"]][0][0] = 1e300  # a count past any series' days
    data["multiplier"][rows["T2"]][0][0] = 1e308
    data["origins"][rows["T3"]][1] = data["origins"][rows["T3"]][0]  # the same forecast kept twice
    path.write_text(json.dumps(data))
    tracks, why, damaged = read_tracks(path, MODEL, ["0.8", "0.95"], 3)
    assert why is None and damaged == {"T1", "T2", "T3"} and tracks.tickers == ["T0", "T4"]
    data["through"][rows["T4"]] = 5  # a number where a date is written: that row too, not 1970-01-06
    path.write_text(json.dumps(data))
    tracks, why, damaged = read_tracks(path, MODEL, ["0.8", "0.95"], 3)
    assert why is None and damaged == {"T1", "T2", "T3", "T4"} and tracks.tickers == ["T0"]
    data["through"] = data["through"][:-1]  # a field without a row per ticker: the file is no tracks file
    path.write_text(json.dumps(data))
    assert read_tracks(path, MODEL, ["0.8", "0.95"], 3)[1] == "unreadable"


def test_a_wrong_type_in_one_tickers_row_costs_that_ticker_alone(panel_home, capfd):
    from forecast.cli._logging import setup_logging

    setup_logging(verbose=False)  # warnings reach stderr as under the CLI, whichever test ran before (none may have)
    for last in range(FIRST_DAY, FIRST_DAY + 4):
        day(panel_home, last)
        batch(panel_home)
    path = Workspace.at(panel_home).batch_adaptive_state_file("stored", MODEL)
    data = json.loads(path.read_text())
    rows = {t: i for i, t in enumerate(data["tickers"])}
    data["multiplier"][rows["T1"]] = [["x"] * 3, ["y"] * 3]  # text where numbers are written
    data["point"][rows["T2"]] = [[1.0]]  # a row of the wrong length
    data["origins"][rows["T3"]][0] = "not a date"
    path.write_text(json.dumps(data))
    tracks, why, damaged = read_tracks(path, MODEL, ["0.8", "0.95"], 3)
    assert why is None and damaged == {"T1", "T2", "T3"} and sorted(tracks.tickers) == ["T0", "T4"]
    assert tracks.updates.sum() > 0  # the others keep what they learnt
    assert capfd.readouterr().err.count("cannot be read") == 1


def test_a_retrained_universe_model_starts_from_the_previous_models_tracks_without_its_kept_forecasts(panel_home):
    import dataclasses

    for last in range(FIRST_DAY, FIRST_DAY + 8):
        day(panel_home, last)
        batch(panel_home)
    workspace = Workspace.at(panel_home)
    old, _, _ = read_tracks(workspace.batch_adaptive_state_file("stored", MODEL), MODEL, ["0.8", "0.95"], 3)
    assert not np.allclose(old.multiplier, 1.0)  # the old model's tracks moved: something to carry
    newer = dataclasses.replace(universe_card(), id=MODEL + "-retrained")  # trained later: its id sorts after
    GlobalRegistry(workspace).save(newer, no_weights)
    day(panel_home, FIRST_DAY + 9)  # a night later: the old model's last forecasts have outcomes it never applied
    # a batch of one ticker first (forecast predict T1) must not cost the others their carry
    assert predict(panel_home, newer, TICKERS[1:2]).forecasts["T1"].result.adaptive["carried_from"] == MODEL
    first = predict(panel_home, newer)
    for ticker in TICKERS[:5]:
        record = first.forecasts[ticker].result.adaptive
        row = old.tickers.index(ticker)
        assert record["applied"] == 0 and "rebuilt" not in record  # carried, not started again; nothing of the old kept
        assert record.get("carried_from") == (None if ticker == "T1" else MODEL)  # said once, on the batch that carried it
        for j, level in enumerate(("0.8", "0.95")):
            np.testing.assert_allclose(record["levels"][level]["multiplier"], np.maximum(old.multiplier[row, j], 0), atol=1e-6)
    # a model trained before any other starts at its own band
    alone = dataclasses.replace(universe_card(), id="stored-global-0")
    GlobalRegistry(workspace).save(alone, no_weights)
    for forecast in predict(panel_home, alone).forecasts.values():
        assert forecast.result.adaptive["rebuilt"] == "new" and "carried_from" not in forecast.result.adaptive
        assert all(np.allclose(forecast.result.adaptive["levels"][level]["multiplier"], 1.0) for level in ("0.8", "0.95"))


def test_the_carry_takes_the_newest_earlier_match_skipping_removed_models_and_other_levels(panel_home):
    import dataclasses

    workspace = Workspace.at(panel_home)
    registry = GlobalRegistry(workspace)
    day(panel_home, FIRST_DAY)
    batch(panel_home)  # MODEL's tracks: the match
    folder = workspace.batch_adaptive_state_file("stored", MODEL).parent
    mine = json.loads((folder / f"{MODEL}.json").read_text())
    # after MODEL: a match (-a), then a model of other levels (-b) and a removed one (-c), then the model now trained
    for suffix, levels, m in (("-a", mine["levels"], 3.0), ("-b", ["0.9", "0.99"], 5.0)):
        registry.save(dataclasses.replace(universe_card(), id=MODEL + suffix), no_weights)
        (folder / f"{MODEL}{suffix}.json").write_text(json.dumps({**mine, "model_id": MODEL + suffix, "levels": levels,
                                                                 "multiplier": [[[m] * 3] * 2 for _ in mine["tickers"]]}))
    (folder / f"{MODEL}-c.json").write_text(json.dumps({**mine, "model_id": f"{MODEL}-c",
                                                       "multiplier": [[[7.0] * 3] * 2 for _ in mine["tickers"]]}))
    latest = dataclasses.replace(universe_card(), id=MODEL + "-d")
    registry.save(latest, no_weights)
    day(panel_home, FIRST_DAY + 1)
    for forecast in predict(panel_home, latest).forecasts.values():
        record = forecast.result.adaptive  # the newest earlier match: not -c (removed: no card), not -b (other levels)
        assert record["carried_from"] == MODEL + "-a" and record["levels"]["0.8"]["multiplier"] == [3.0] * 3


def predict(home, card, tickers=None):
    from forecast.workflow.universe_jobs import predict_batch

    workspace = Workspace.at(home)
    return predict_batch(workspace, tickers or TICKERS[:5], GlobalRegistry(workspace).card(card.id), save=True)
