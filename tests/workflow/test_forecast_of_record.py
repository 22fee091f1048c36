"""Issue 29, items 2-6: one forecast of record per ticker, by the model in use for it; the others kept apart.

No TensorFlow: the universe model's card is written by hand and its network is
a small numpy stand-in whose scores depend on the inputs compared across
tickers (each day's mean return, the ranks of the slow signals), so a score
that changed with the tickers a command included would show.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.data.store import MarketStore
from forecast.errors import ExitCode
from forecast.models.card import GlobalCard
from forecast.models.pooled.card import GlobalRegistry
from forecast.models.registry import ModelRegistry
from forecast.models.results import ForecastResult, load_forecast, save_forecast
from forecast.workspace import Workspace
from tests.models.pooled.test_commands import store_panel
from tests.models.pooled.test_data import make_panel
from tests.workflow.test_serving import no_weights, ticker_card

runner = CliRunner()
TICKERS = [f"T{i}" for i in range(6)]
TRAINED = tuple(TICKERS[:5])  # T5 and NEWCO: tickers the universe model never saw
MODEL = "stored-global-1"
OWN = "own-T0"  # T0's own model: its forecast of record is this model's


class CrossSectionalNet:
    """Stands in for NumpyGlobalNet: (B, L, F) windows and (B, S) static inputs -> (B, 1, H) scores."""

    def __init__(self, horizon: int = 3):
        self.horizon = horizon

    def predict(self, window: np.ndarray, static: np.ndarray) -> np.ndarray:
        score = window[:, :, 1].mean(axis=1) + static.sum(axis=1)  # the excess return and the ranks: cross-sectional
        return np.repeat(score[:, None, None], self.horizon, axis=2).astype("float32")


def universe_card() -> GlobalCard:
    return GlobalCard(MODEL, "stored", TRAINED, "2026-01-01T00:00:00+00:00",
                      {"lookback": 10, "horizon": 3, "adjust": "qfq"}, {"sequence": [], "static": []},
                      {"range": ["2020-01-01", "2021-08-01"]},
                      {"rank_ic": 0.03, "best_epoch": 2, "scores": [0.01, 0.03, 0.02]},
                      {"slope": [0.01, 0.02, 0.03], "intercept": [0.0, 0.0, 0.0]},
                      {"method": "test", "quantiles": {"0.8": [[-1.0, 1.0]] * 3, "0.95": [[-2.0, 2.0]] * 3}})


def cli(home, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


@pytest.fixture
def universe_home(home, monkeypatch):
    """Six stored tickers and NEWCO; a universe model trained on T0..T4; T0 also has a model of its own."""
    from forecast.models.pooled import numpy_net

    store_panel(home, make_panel({t: 420 for t in TICKERS}, seed=21))
    store_panel(home, make_panel({"NEWCO": 420}, seed=5))
    monkeypatch.setattr(numpy_net.NumpyGlobalNet, "from_keras_file", classmethod(lambda cls, path: CrossSectionalNet()))
    workspace = Workspace.at(home)
    GlobalRegistry(workspace).save(universe_card(), no_weights)
    ModelRegistry(workspace).save(dataclasses.replace(ticker_card(OWN), ticker="T0"), no_weights)
    return home


def own_forecast_of_t0(home) -> ForecastResult:
    """T0's forecast of record, by its own model (a drift path standing in for the network's)."""
    from forecast.models.predicting import predict_baseline

    made = predict_baseline(MarketStore(home), "T0", "drift")
    result = dataclasses.replace(made, model_id=OWN, created_at="2026-01-02T00:00:00+00:00")
    save_forecast(home, result)
    return result


# item 2: rank keeps its forecasts of tickers with models of their own apart
def test_rank_never_replaces_the_forecast_of_record_of_a_ticker_with_its_own_model(universe_home):
    own_forecast_of_t0(universe_home)
    ranked = cli(universe_home, "rank", "--universe", "stored", "--json")
    assert ranked.exit_code == 0, ranked.output
    record = load_forecast(universe_home, "T0")
    assert record.model_id == OWN and record.of_record  # plot and the report show T0's own model's forecast
    rows = {r["ticker"]: r for r in json.loads(ranked.stdout)["ranking"]}
    assert rows["T0"]["of_record"] is False and all(rows[t]["of_record"] for t in TICKERS[1:])
    assert load_forecast(universe_home, "T1").model_id == MODEL  # a ticker the universe model serves: rank's is of record
    apart = load_forecast(universe_home, "T0", MODEL)
    assert apart is not None and apart.model_id == MODEL and apart.of_record is False
    assert (universe_home / "forecasts" / "@stored" / "other.json").is_file()
    from forecast.outputs.plotting import render

    assert cli(universe_home, "plot", "T0").exit_code == 0
    assert "kept apart" not in render(universe_home, "T0", "forecast", name="").title
    other = cli(universe_home, "plot", "T0", "--model", MODEL)
    assert other.exit_code == 0, other.output
    assert "kept apart: not the forecast of record" in render(universe_home, "T0", "forecast", MODEL, name="").title
    text = cli(universe_home, "rank", "--universe", "stored")
    assert "kept apart" in text.stdout and "T0" in text.stdout


# item 3: a throw-away predict --model never replaces the forecast of record
def test_predict_with_another_model_is_kept_apart_and_the_forecast_of_record_stands(universe_home):
    first = cli(universe_home, "predict", "T1", "--json")
    assert first.exit_code == 0, first.output
    other = cli(universe_home, "predict", "T1", "--model", "drift", "--horizon", "2")
    assert other.exit_code == 0, other.output
    record = load_forecast(universe_home, "T1")
    assert record.model_id == MODEL and len(record.points) == 3  # the default model's, whole
    assert json.loads(first.stdout)["of_record"] is True
    assert "kept apart" in other.stdout
    apart = load_forecast(universe_home, "T1", "drift")
    assert apart.of_record is False and len(apart.points) == 2
    assert (universe_home / "forecasts" / "T1" / "other" / "drift.json").is_file()
    assert not (universe_home / "forecasts" / "T1" / "latest.json").exists()
    short = json.loads(cli(universe_home, "predict", "T1", "--horizon", "2", "--json").stdout)
    assert len(short["points"]) == 2 and short["of_record"] is True
    assert len(load_forecast(universe_home, "T1").points) == 3  # --horizon shows fewer days; the record keeps them all
    # the report shows the record, not the throw-away
    from forecast.outputs.report.context import load_context

    context = load_context(universe_home, ["T1"])
    assert context.tickers[0].forecast.model_id == MODEL


# item 4: a ticker's universe-model forecast never depends on the other tickers of the command
def test_a_universe_model_forecast_is_the_same_whichever_tickers_a_command_includes(universe_home):
    from forecast.workflow.universe_jobs import predict_batch

    workspace = Workspace.at(universe_home)
    card = GlobalRegistry(workspace).card(MODEL)
    batches = [predict_batch(workspace, chosen, card, save=False)
               for chosen in (["T2"], ["T2", "T3"], TICKERS, ["T2", "NEWCO"], ["NEWCO"], ["NEWCO", "T5"])]
    t2 = [b.forecasts["T2"] for b in batches if "T2" in b.forecasts]
    assert len(t2) == 4
    assert len({f.score for f in t2}) == 1 and len({f.result.points[-1].value for f in t2}) == 1
    newco = [b.forecasts["NEWCO"] for b in batches if "NEWCO" in b.forecasts]
    assert len(newco) == 3 and len({f.score for f in newco}) == 1  # outside the model's universe: each against it alone


def test_predict_rank_and_predict_universe_give_one_number_and_one_order(universe_home):
    one = json.loads(cli(universe_home, "predict", "T2", "--json").stdout)
    everyone = json.loads(cli(universe_home, "predict", "--universe", "stored", "--json").stdout)
    everyone = everyone.get("results", everyone) if isinstance(everyone, dict) else everyone
    from_universe = next(r for r in everyone if r["ticker"] == "T2")
    assert one["points"][-1]["value"] == from_universe["points"][-1]["value"]
    full = json.loads(cli(universe_home, "rank", "--universe", "stored", "--json").stdout)["ranking"]
    part = json.loads(cli(universe_home, "rank", "T1", "T2", "T4", "--json").stdout)["ranking"]
    by_ticker = {r["ticker"]: r["expected_return"] for r in full}
    assert one["points"][-1]["value"] / one["last_close"] - 1 == pytest.approx(by_ticker["T2"], rel=1e-12)
    assert [r["ticker"] for r in part] == [t for t in (r["ticker"] for r in full) if t in {"T1", "T2", "T4"}]
    assert all(r["expected_return"] == by_ticker[r["ticker"]] for r in part)


def cross_backtest(home, rank_ic: float = 0.05, t: float = 3.0, intervals: dict | None = None) -> None:
    """A stored cross-sectional backtest of the universe that scored the universe model (and its bands, when given)."""
    def scores(ic: float, t_stat: float) -> dict:
        return {"ic": ic, "rank_ic": ic, "icir": 0.2, "rank_icir": 0.2, "t_naive": t_stat, "t_newey_west": t_stat,
                "spread": 0.001, "turnover": 0.3, "days": 200}

    path = Workspace.at(home).cross_backtest_json("stored")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"universe": "stored", "schedule": "expanding", "test_range": ["2021-01-01", "2021-08-01"],
                                "horizon": 3, "quantiles": 5, "min_tickers": 5,
                                "models": {"global": scores(rank_ic, t), "momentum": scores(0.01, 0.5)},
                                **({"intervals": intervals} if intervals else {})}))


# item 5: the universe report ranks as rank does, and judges the universe model by its cross-sectional backtest
def test_the_universe_report_ranks_as_rank_does_and_judges_the_universe_model_by_its_backtest(universe_home, tmp_path):
    from forecast.outputs.report import write_report
    from forecast.outputs.report.context import load_context

    own_forecast_of_t0(universe_home)
    cross_backtest(universe_home)
    ranked = json.loads(cli(universe_home, "rank", "--universe", "stored", "--json").stdout)["ranking"]
    ranked = [r for r in ranked if r["ticker"] in TICKERS]  # the report's tickers (the stored universe also holds NEWCO)
    context = load_context(universe_home, TICKERS, universe="stored")
    assert context.ranked_by == MODEL
    assert [r.ticker for r in context.ranking] == [r["ticker"] for r in ranked]  # T0 included: rank ranked it
    assert [r.expected for r in context.ranking] == pytest.approx([r["expected_return"] for r in ranked], rel=1e-12)
    assert {r.model for r in context.ranking} == {"global"}
    by = {t.ticker: t for t in context.tickers}
    assert by["T0"].forecast.model_id == OWN  # its own section shows its own model's forecast of record
    verdict = by["T1"].verdict
    assert verdict.key == "ranks" and "Rank IC +0.050" in verdict.label and "not backtested" not in verdict.label
    out = tmp_path / "r.html"
    write_report(universe_home, TICKERS, out, universe="stored")
    page = out.read_text(encoding="utf-8")
    ranking_section = page[page.index('id="ranking"'):page.index("Cross-sectional backtest")]
    assert MODEL in ranking_section and "not backtested" not in ranking_section
    assert "universe model's (global) Rank IC below" in ranking_section


def test_the_universe_report_shows_the_universe_models_bands_as_its_backtest_scored_them(universe_home, tmp_path):
    from forecast.outputs.report import write_report

    def cells(fixed: list, moved: list) -> dict:
        return {"coverage": fixed, "adaptive_coverage": moved, "within_5": [0.611, 0.75, 0.7], "adaptive_within_5": [0.9, 0.85, 0.837],
                "adaptive_below": [0.117, 0.123, 0.131], "adaptive_above": [0.09, 0.1, 0.104], "adaptive_winkler": [0.0469, 0.0672, 0.0841]}

    intervals = {"global": {"tickers": 6, "forecasts": 1234, "levels": {"0.8": cells([0.761, 0.752, 0.743], [0.793, 0.777, 0.765]),
                                                                       "0.95": cells([0.931, 0.922, 0.915], [0.948, 0.941, 0.933])}}}
    cross_backtest(universe_home, intervals=intervals)
    out = tmp_path / "r.html"
    write_report(universe_home, TICKERS, out, universe="stored")
    page = out.read_text(encoding="utf-8")
    section = page[page.index("Intervals of global"):]
    section = section[:section.index("</table>")]
    assert "6 tickers, 1,234 forecasts" in section
    rows = [re.findall(r"<td>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", section, re.S)[1:]]
    assert rows[0] == ["80%", "1", "76.1%", "79.3%", "61.1%", "90.0%", "11.7%", "9.0%", "4.69%"]
    assert rows[2][1:] == ["3", "74.3%", "76.5%", "70.0%", "83.7%", "13.1%", "10.4%", "8.41%"]
    assert rows[3][:4] == ["95%", "1", "93.1%", "94.8%"] and len(rows) == 6
    cross_backtest(universe_home)  # a backtest without bands (no global among its models, or stored before): no section
    write_report(universe_home, TICKERS, out, universe="stored")
    assert "Intervals of" not in out.read_text(encoding="utf-8")


def test_the_chart_of_a_universe_model_forecast_names_its_cross_sectional_score(universe_home):
    cross_backtest(universe_home, 0.05, 3.0)
    assert cli(universe_home, "predict", "T1").exit_code == 0
    from forecast.outputs.plotting import _ranking_words

    words = _ranking_words(Workspace.at(universe_home), load_forecast(universe_home, "T1"))
    assert words == "cross-sectional backtest of stored: Rank IC +0.050, t 3.0"


# item 6: models show and plot --kind training know the universe model that serves a ticker
def test_models_show_and_the_training_chart_know_the_universe_model(universe_home):
    shown = cli(universe_home, "models", "show", "T1")
    assert shown.exit_code == 0 and f"predict uses {MODEL}" in shown.stdout
    from forecast.outputs.plotting import render

    drawn = cli(universe_home, "plot", "T1", "--kind", "training", "--model", MODEL)
    assert drawn.exit_code == 0, drawn.output
    assert f"training of the universe model {MODEL}" in render(universe_home, "T1", "training", MODEL, name="").title
    assert cli(universe_home, "predict", "T1").exit_code == 0
    served = cli(universe_home, "plot", "T1", "--kind", "training")  # no model of its own: the one that serves it
    assert served.exit_code == 0, served.output
    assert MODEL in render(universe_home, "T1", "training", name="").title


def test_a_ticker_outside_the_models_universe_is_pooled_as_with_the_universe_and_itself_alone():
    from forecast.models.pooled.data import pool
    from forecast.models.pooled.model import pooled_against

    panel = make_panel({**{t: 400 for t in TICKERS}, "NEW1": 300, "NEW2": 380}, seed=9)
    static_from = panel.index.get_level_values("date")[-30]
    mixed = pooled_against(panel, 3, set(TICKERS), static_from=static_from)
    names = panel.index.get_level_values("ticker")
    for outsider in ("NEW1", "NEW2"):
        alone = pool(panel[names.isin(TICKERS) | (names == outsider)], 3, static_from=static_from)
        mine, theirs = mixed.tickers == outsider, alone.tickers == outsider
        np.testing.assert_allclose(mixed.sequence[mine], alone.sequence[theirs], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mixed.static[mine], alone.static[theirs], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(mixed.dates[mine], alone.dates[theirs])
    universe = pool(panel[names.isin(TICKERS)], 3, static_from=static_from)
    inside = np.isin(mixed.tickers, TICKERS)
    np.testing.assert_array_equal(mixed.sequence[inside], universe.sequence)
    np.testing.assert_array_equal(mixed.static[inside], universe.static)


def test_with_no_model_in_use_a_baseline_forecast_is_the_forecast_of_record(home):
    store_panel(home, make_panel({"SOLO": 300}, seed=2))
    assert cli(home, "predict", "SOLO", "--model", "naive").exit_code == 0
    record = load_forecast(home, "SOLO")
    assert record is not None and record.model_id == "naive" and record.of_record  # nothing else serves it: plot draws it
    assert cli(home, "plot", "SOLO").exit_code == 0


def test_a_universe_forecast_records_the_basis_its_bars_were_read_on(universe_home):
    from forecast.data.validation import ValidationReport

    frame = make_panel({"USCO": 420}, seed=9).droplevel("ticker").reset_index()  # a US file's raw prices
    frame["amount"], frame["adj_factor"] = frame["close"] * frame["volume"], 1.0
    store = MarketStore(universe_home)
    with store.writing():
        store.write("USCO", frame, "csv", "none", ValidationReport(len(frame), []), calendar="business")
    assert cli(universe_home, "predict", "USCO", "T1", "--model", MODEL).exit_code == 0
    assert load_forecast(universe_home, "USCO").summary.adjust == "none"  # not the card's qfq: it is not adjusted
    assert load_forecast(universe_home, "T1").summary.adjust == "qfq"


def test_a_ticker_never_fetched_is_told_to_fetch_not_that_its_bars_are_old(universe_home):
    result = cli(universe_home, "predict", "NEVER", "--model", MODEL)
    assert result.exit_code == ExitCode.NOT_FOUND and "no stored data for NEVER; run: forecast fetch NEVER" in result.output
    assert "recent" not in result.output


def test_a_series_that_stopped_long_before_its_universe_is_refused_alone_and_in_a_batch(universe_home):
    store_panel(universe_home, make_panel({"OLDCO": 300}, seed=8, start="2018-01-01"))
    alone = cli(universe_home, "predict", "OLDCO", "--model", MODEL)
    assert alone.exit_code != 0 and "no recent stored bars for OLDCO" in alone.output
    ranked = json.loads(cli(universe_home, "rank", "OLDCO", "T1", "--json").stdout)
    assert [r["ticker"] for r in ranked["ranking"]] == ["T1"]
    assert [s["ticker"] for s in ranked["skipped"]] == ["OLDCO"]
