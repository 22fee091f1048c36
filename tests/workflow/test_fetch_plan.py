"""``workflow.fetch_plan``: which source answers ``fetch``, every wrong combination of flags refused first.

Each wrong combination is a UsageError (exit 2) before anything is stored and before the tushare client is
made; the sample, a one-ticker CSV and a long CSV are imported into an empty home, each report carrying its
last close on the basis asked for; ``Fetched.exit_code`` is 0, the one failure's code, 8 or 9.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from conftest import COURSE_POSITIVE, DATA, SAMPLE_FILE

from forecast.choices import Source
from forecast.data.importing import LongImport, Refusal
from forecast.data.series_writes import FetchReport, TickerFailure
from forecast.data.store import MarketStore
from forecast.errors import BadInputError, NotFoundError
from forecast.workflow.fetch_plan import Fetched, FetchRequest, fetch_bars, normalised
from forecast.workflow.usage import UsageError
from forecast.workspace import Workspace

LONG_CSV = DATA / "long_daily_three_tickers.csv"


@pytest.fixture
def store(home) -> MarketStore:
    return MarketStore(Workspace.at(home))


class NoNetwork:
    """A client factory that must not be called: these fetches need no network."""

    calls = 0

    def __call__(self):
        self.calls += 1
        raise AssertionError("the tushare client was made")


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(("request_", "message"), [
    (FetchRequest(["600519.SH"], calendar="XSHG"), "--calendar applies to --source csv"),
    (FetchRequest(["600519.SH"], source=Source.SAMPLE, calendar="NO-SUCH-CALENDAR"), "--calendar: "),
    (FetchRequest(["600519.SH"], source=Source.CSV), "--source csv needs --file PATH"),
    (FetchRequest(["600519.SH", "000001.SZ"], source=Source.CSV, file=COURSE_POSITIVE), "imports one file"),
    (FetchRequest(["600519.SH"], source=Source.CSV, file=COURSE_POSITIVE, ticker_column="code"), "name no ticker with it"),
    (FetchRequest(["600519.SH"], universe="csi300"), "name tickers or --universe, not both"),
    (FetchRequest(source=Source.CSV, universe="csi300"), "--universe fetches from tushare"),
    (FetchRequest(), "name at least one ticker"),
], ids=["calendar-with-tushare", "unknown-calendar", "csv-without-file", "csv-two-tickers", "ticker-and-ticker-column",
        "tickers-and-universe", "universe-not-tushare", "no-tickers"])
def test_flags_that_do_not_go_together_are_refused_before_anything_is_stored(store, request_, message):
    client = NoNetwork()
    with pytest.raises(UsageError, match=re.escape(message)) as raised:
        fetch_bars(store, request_, client)
    assert raised.value.exit_code == 2
    assert client.calls == 0
    assert store.tickers() == []


def test_a_fetch_request_defaults_to_tushare_qfq_and_the_automatic_backfill():
    request = FetchRequest()
    assert (request.source, request.adjust, request.backfill, tuple(request.tickers)) == (Source.TUSHARE, "qfq", "auto", ())


# ---------------------------------------------------------------- imports


def test_the_sample_is_imported_without_the_network_and_reports_its_last_close(store):
    client = NoNetwork()
    fetched = fetch_bars(store, FetchRequest(source=Source.SAMPLE), client)
    assert client.calls == 0
    [report] = fetched.reports
    assert report.ticker == "600519.SH"  # the sample's own ticker when none is named
    assert store.tickers() == ["600519.SH"]
    assert report.last_close == pytest.approx(pd.read_csv(SAMPLE_FILE).sort_values("date")["close"].iloc[-1])
    assert fetched.failures == [] and fetched.exit_code() == 0


def test_a_one_ticker_csv_is_imported_under_the_ticker_named(store):
    fetched = fetch_bars(store, FetchRequest(["600519"], source=Source.CSV, file=COURSE_POSITIVE), NoNetwork())
    [report] = fetched.reports
    assert report.ticker == "600519.SH"
    expected_close = pd.read_csv(COURSE_POSITIVE).sort_values("date")["close"].iloc[-1]
    assert report.last_close == pytest.approx(expected_close)  # imported as qfq, read back as qfq
    assert fetched.long_import is None


def test_a_long_csv_without_a_ticker_imports_every_good_ticker_in_it_and_refuses_the_bad_one(store):
    fetched = fetch_bars(store, FetchRequest(source=Source.CSV, file=LONG_CSV), NoNetwork())
    frame = pd.read_csv(LONG_CSV)
    bad = frame[pd.to_numeric(frame["close"], errors="coerce").isna()]["ts_code"].unique().tolist()
    assert bad == ["600036.SH"]  # the fixture's one ticker with a close that is no number
    good = sorted(set(frame["ts_code"]) - set(bad))
    assert isinstance(fetched.long_import, LongImport)
    assert sorted(r.ticker for r in fetched.reports) == good
    assert sorted(store.tickers()) == good
    assert [r.ticker for r in fetched.long_import.refused] == bad
    assert all(r.last_close is not None for r in fetched.reports)
    assert fetched.exit_code() == 8  # some stored, one refused: partial


def test_a_ticker_tushare_cannot_serve_fails_on_its_own_without_the_network(store):
    client = NoNetwork()
    fetched = fetch_bars(store, FetchRequest(["AAPL"]), client)
    assert client.calls == 0
    assert fetched.reports == []
    [failure] = fetched.failures
    assert failure.ticker == "AAPL"
    assert fetched.exit_code() == int(failure.error.exit_code)


# ---------------------------------------------------------------- normalised


def test_tickers_are_normalised_as_stored(store):
    assert normalised(store, ["600519", "000001.sz", "300750"]) == ["600519.SH", "000001.SZ", "300750.SZ"]


# ---------------------------------------------------------------- exit codes


def report(ticker: str) -> FetchReport:
    return FetchReport(ticker, "tushare")


def test_a_fetch_with_no_failure_exits_0():
    assert Fetched([report("A")]).exit_code() == 0


def test_one_ticker_that_failed_exits_with_its_own_code():
    assert Fetched([], [TickerFailure("A", NotFoundError("x"))]).exit_code() == 4
    assert Fetched([], [TickerFailure("A", BadInputError("x"))]).exit_code() == 3


def test_some_failed_exits_8_and_all_failed_exits_9():
    assert Fetched([report("A")], [TickerFailure("B", NotFoundError("x"))]).exit_code() == 8
    assert Fetched([], [TickerFailure("A", NotFoundError("x")), TickerFailure("B", BadInputError("y"))]).exit_code() == 9


def test_a_long_imports_refusals_decide_its_exit_code():
    clean = LongImport("f.csv", None, reports=[report("A")])
    assert Fetched(long_import=clean).exit_code() == 0
    partial = LongImport("f.csv", None, reports=[report("A")], refused=[Refusal("B", "too short", 3, 0)])
    assert Fetched(long_import=partial).exit_code() == 8
    none_stored = LongImport("f.csv", None, refused=[Refusal("B", "too short", 3, 0), Refusal("C", "bad", 3, 0)])
    assert Fetched(long_import=none_stored).exit_code() == 9


def test_tushare_is_asked_through_the_client_made_only_then(store, fake_tushare):
    from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient

    made = []

    def client():
        made.append(1)
        return TushareClient(fake_tushare.valid_token, timeout=2.0, retry=RetryPolicy(attempts=2, sleep=lambda s: None))

    fetched = fetch_bars(store, FetchRequest(["600519"], adjust="hfq"), client)
    assert made == [1]
    [report] = fetched.reports
    assert report.ticker == "600519.SH" and report.new_rows == len(fake_tushare.market.daily)
    daily = fake_tushare.market.daily.sort_values("trade_date")
    factors = fake_tushare.market.factors.sort_values("trade_date")
    assert report.adjust == "hfq"
    assert report.last_close == pytest.approx(daily["close"].iloc[-1] * factors["adj_factor"].iloc[-1])  # raw x its factor
