"""The market-scale sections of run_benchmarks.py: nightly update, backfill and whole-universe read at 5,400 tickers.

    python benchmarks/run_benchmarks.py --only universe_update,backfill,panel

Each figure is printed with the machine's load average (1 minute) before and
after it: on a shared machine other processes take cores, and a figure read
without its load misleads. Prints, asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
UNIVERSE = 5_400
NOW_AFTER_LAST = "2020-12-24T20:00"  # the synthetic market's last session (Thursday 24th), published
REAL_LIMIT = 500  # tushare's calls per minute per endpoint on daily and adj_factor at the usual points


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


class SimulatedClock:
    """Real time plus every pause the pacer asked for: the fake server's per-minute count sees the pauses, nobody waits them."""

    def __init__(self):
        self.paused = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.paused

    def sleep(self, seconds: float) -> None:
        self.paused += max(0.0, seconds)


def _fake_server(market, calls_per_minute: int | None = None):
    """The fake tushare server on ``market`` and a client pointed at it; (fake, server, client).

    With ``calls_per_minute`` the fake refuses calls over that limit, as the
    real service does, and the client is paced at it on a shared simulated clock.
    """
    from fake_tushare import FakeTushare, serve
    from tushare.pro.client import DataApi

    from forecast.data.sources.pacing import CallPacer
    from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient

    clock = SimulatedClock()
    fake = FakeTushare(market, calls_per_minute=calls_per_minute, clock=clock)
    server, url = serve(fake)
    DataApi._DataApi__http_url = url
    pacer = CallPacer(calls_per_minute, clock=clock, sleep=clock.sleep)
    return fake, server, TushareClient(fake.valid_token, retry=RetryPolicy(sleep=lambda s: None), pacer=pacer)


def _time_function(module, name: str) -> list[float]:
    """Wrap ``module.name`` (a module's function, or an object's method such as a client's ``_send``, whose time is
    the network's and here the fake server's own work) to record the wall time of each call; return the list it fills."""
    spent: list[float] = []
    original = getattr(module, name)

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - began)

    setattr(module, name, timed)
    return spent


def bench_universe_update() -> None:
    from synthetic_market import synthetic_bars, write_store

    from forecast.data import fetching
    from forecast.data.store import MarketStore

    print(f"== nightly update of one new day, {UNIVERSE} stored tickers x ~2,500 days (fake server)")
    started = time.perf_counter()
    bars = synthetic_bars(UNIVERSE, 2_500, seed=1)
    with tempfile.TemporaryDirectory() as home:
        store = MarketStore(home)
        write_store(store, bars, end=bars.dates[-2])
        os.sync()  # a nightly store was written long ago: its 650 MB are not still being flushed under the commit's fsyncs
        print(f"   store built in {time.perf_counter() - started:.0f} s (files written directly, then synced)")
        fake, server, client = _fake_server(bars.fake_market(start=bars.dates[-5]))
        calls_s = _time_function(client, "_send")
        original = fetching.commit_many
        commit_s = _time_function(fetching, "commit_many")
        before = load()
        try:
            began, cpu = time.perf_counter(), time.process_time()
            reports, failures = fetching.update_from_tushare(store, bars.codes, client, now=dt.datetime.fromisoformat(NOW_AFTER_LAST))
            seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        finally:
            fetching.commit_many = original
        by_endpoint = ", ".join(f"{api} {fake.calls(api)}" for api in sorted({r["api_name"] for r in fake.requests}))
        print(f"   {fake.calls()} calls ({by_endpoint}); {sum(r.new_rows for r in reports)} new rows, {len(failures)} failures; "
              f"{seconds:.1f} s wall = calls {sum(calls_s):.1f} s (network) + footers and split {seconds - sum(calls_s) - sum(commit_s):.1f} s "
              f"+ commit {sum(commit_s):.1f} s; {seconds - sum(calls_s):.1f} s excluding the network "
              f"({'within' if seconds - sum(calls_s) <= 30 else 'OVER'} the 30 s bar); CPU {cpu:.1f} s (this process, the fake "
              f"server's thread included); load average {before} -> {load()}")
        server.shutdown()


BACKFILL_CHILD = """
import sys, datetime as dt
sys.path.insert(0, {tests!r})
from tushare.pro.client import DataApi
DataApi._DataApi__http_url = sys.argv[1]
from forecast.data.backfill import backfill
from forecast.data.sources.tushare_pro import RetryPolicy, TushareClient
from forecast.data.store import MarketStore
backfill(MarketStore(sys.argv[2]), sys.argv[3].split(","), TushareClient(sys.argv[4], retry=RetryPolicy(sleep=lambda s: None)),
         start=sys.argv[5], now=dt.datetime.fromisoformat({now!r}))
"""


def bench_backfill() -> None:
    from synthetic_market import synthetic_bars

    from forecast.data import backfill as backfilling
    from forecast.data.store import MarketStore

    days = 250
    print(f"== backfill of {days} days for {UNIVERSE} tickers by trade_date (fake server enforcing {REAL_LIMIT} calls/min, "
          "client paced on a simulated clock)")
    bars = synthetic_bars(UNIVERSE, days, seed=2)
    fake, server, client = _fake_server(bars.fake_market(), calls_per_minute=REAL_LIMIT)
    calls_s = _time_function(client, "_send")
    original = backfilling._commit_all
    commit_s = _time_function(backfilling, "_commit_all")
    with tempfile.TemporaryDirectory() as home:
        before = load()
        began = time.perf_counter()
        try:
            result = backfilling.backfill(MarketStore(home), bars.codes, client, start=bars.dates[0],
                                          now=dt.datetime.fromisoformat(NOW_AFTER_LAST))
        finally:
            backfilling._commit_all = original
        seconds = time.perf_counter() - began
        network = sum(calls_s)
        print(f"   {fake.calls()} calls (daily {fake.calls('daily')}, adj_factor {fake.calls('adj_factor')}; 2 x {days} days "
              f"= {2 * days}), {fake.rate_limited} refused by the rate limit, pacer waits {client.pacer.waited_s:.0f} s (simulated); "
              f"{result.tickers} tickers written, {len(result.failures)} failures")
        print(f"   {seconds:.0f} s wall = calls {network:.0f} s (network, and the fake server's own work) + staging "
              f"{seconds - network - sum(commit_s):.0f} s + commit {sum(commit_s):.0f} s; {seconds - network:.0f} s excluding "
              f"the network and the pacing; load average {before} -> {load()}")
    server.shutdown()
    _paced_burst()
    # the kill check on a server of its own with no limit: the child's pacer cannot count the calls made above
    fake, server, _ = _fake_server(bars.fake_market())
    with tempfile.TemporaryDirectory() as home:
        from tushare.pro.client import DataApi

        script = BACKFILL_CHILD.format(tests=str(REPO / "tests"), now=NOW_AFTER_LAST)
        args = [PY, "-c", script, DataApi._DataApi__http_url, home, ",".join(bars.codes), fake.valid_token, str(bars.dates[0].date())]
        child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        journal = Path(home) / "data" / "backfill" / "market.journal"
        while child.poll() is None:
            if journal.is_file() and len(journal.read_text().splitlines()) >= days // 2:
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        child.wait()
        first = [r["params"]["trade_date"] for r in fake.requests if r.get("api_name") == "daily"]  # a request cut by the kill has no body
        journaled = set(journal.read_text().split()) if journal.is_file() else set()
        fake.requests.clear()
        rerun = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if rerun.returncode != 0:
            raise SystemExit(f"the rerun after the kill failed: {rerun.stderr[-1500:]}")
        second = [r["params"]["trade_date"] for r in fake.requests if r.get("api_name") == "daily"]
        stored = MarketStore(home).tickers()
        print(f"   killed (SIGKILL) after {len(journaled)} journaled days, {len(first)} daily calls made; the rerun made "
              f"{len(second)}: repeated days: {len(journaled & set(second))}; {len(stored)} tickers stored")
    server.shutdown()


def _paced_burst(limit: int = 20, days: int = 60, tickers: int = 200) -> None:
    """A backfill that must pause: more calls per endpoint than ``limit`` a minute, paced, against a fake enforcing it."""
    from synthetic_market import synthetic_bars

    from forecast.data.backfill import backfill
    from forecast.data.store import MarketStore

    small = synthetic_bars(tickers, days, seed=4)
    fake, server, client = _fake_server(small.fake_market(), calls_per_minute=limit)
    with tempfile.TemporaryDirectory() as home:
        backfill(MarketStore(home), small.codes, client, start=small.dates[0], now=dt.datetime.fromisoformat(NOW_AFTER_LAST))
    print(f"   paced at {limit}/min ({tickers} tickers x {days} days, {fake.calls()} calls): {fake.rate_limited} refused by the "
          f"rate limit, pacer waits {client.pacer.waited_s:.0f} s (simulated)")
    server.shutdown()


PANEL_CHILD = """
import sys, time, json
sys.path.insert(0, {repo!r})
vm_hwm_mb = lambda: next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
from forecast.data.panel import load_panel
from forecast.data.store import MarketStore
import pyarrow, pandas
before = vm_hwm_mb()
began = time.perf_counter()
frame = load_panel(MarketStore({home!r})).frame
print(json.dumps({{"seconds": time.perf_counter() - began, "rows": len(frame), "peak_rss_mb": vm_hwm_mb(),
                  "after_imports_mb": before, "frame_mb": frame.memory_usage(deep=True).sum() / 2**20}}))
"""


def bench_panel() -> None:
    from synthetic_market import synthetic_bars, write_store

    from forecast.data.store import MarketStore

    print(f"== read the whole universe into one frame: {UNIVERSE} tickers x 2,500 days (child process)")
    bars = synthetic_bars(UNIVERSE, 2_500, seed=3)
    with tempfile.TemporaryDirectory() as home:
        write_store(MarketStore(home), bars)
        del bars
        before = load()
        out = subprocess.run([PY, "-c", PANEL_CHILD.format(repo=str(REPO), home=home)], capture_output=True, text=True, check=True)
        got = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"   {got['rows']:,} rows in {got['seconds']:.1f} s; peak RSS {got['peak_rss_mb']:.0f} MB "
              f"({got['after_imports_mb']:.0f} MB after imports; the frame itself {got['frame_mb']:.0f} MB); "
              f"load average {before} -> {load()}")
