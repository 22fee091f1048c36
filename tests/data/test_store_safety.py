"""Crash safety and concurrency of the store, with real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from conftest import SAMPLE_FILE, subprocess_env

from forecast.data.fetching import import_sample
from forecast.data.store import MarketStore
from forecast.errors import StoreBusyError

# Writes a grown copy of the series, but stops for good halfway through the
# temporary file, after flushing part of it, so the parent can kill it there.
WRITER = textwrap.dedent(
    """
    import sys, time, pathlib
    import pandas as pd
    import forecast.atomic as atomic
    from forecast.data.store import MarketStore
    from forecast.data.validation import ValidationReport

    real_open = open
    class Stalling:
        def __init__(self, handle): self.handle = handle
        def write(self, data):
            n = self.handle.write(data[: len(data) // 2]); self.handle.flush()
            pathlib.Path(sys.argv[2]).write_text("mid-write")
            time.sleep(60)
            return n
        def __getattr__(self, name): return getattr(self.handle, name)
    from contextlib import contextmanager
    original = atomic.atomic_open
    @contextmanager
    def stalling_open(path):
        with original(path) as handle:
            yield Stalling(handle)
    import forecast.data.store as store_module
    store_module.atomic_open = stalling_open
    store = MarketStore(sys.argv[1])
    frame = store.read("600519.SH").frame
    grown = pd.concat([frame, frame.tail(1).assign(date=frame.date.iloc[-1] + pd.Timedelta(days=3))])
    store.write("600519.SH", grown, "sample", "qfq", ValidationReport(len(grown), []))
    """
)


def test_a_kill_in_the_middle_of_a_write_leaves_the_previous_state(home, tmp_path):
    store = MarketStore(home)
    import_sample(store)
    before = store.read("600519.SH").frame
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(home), str(marker)], env=subprocess_env())
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "the writer never reached the middle of its write"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = store.read("600519.SH").frame
    pd.testing.assert_frame_equal(after, before)
    assert store.tickers() == ["600519.SH"]  # the stray temporary file is not a ticker


def test_a_second_writer_waits_for_the_lock_within_a_bound(home):
    store = MarketStore(home)
    with store.writing(), pytest.raises(StoreBusyError, match="another forecast process"), MarketStore(home, lock_timeout_s=0.2).writing():
        pass


CONCURRENT_FETCH = textwrap.dedent(
    """
    import sys
    from tushare.pro.client import DataApi
    DataApi._DataApi__http_url = sys.argv[1]
    from forecast.cli import app
    app(sys.argv[2:], standalone_mode=True)
    """
)


def test_two_fetch_processes_on_one_home_lose_nothing(home, fake_tushare):
    from fake_tushare import market_from_sample

    fake_tushare.market = market_from_sample(SAMPLE_FILE, codes=("600519.SH", "600036.SH"))
    fake_tushare.slow_seconds = 0.3
    fake_tushare.failures = ["slow", "slow"]  # widen the window in which they overlap
    env = subprocess_env(FORECAST_HOME=home, TUSHARE_TOKEN=fake_tushare.valid_token)
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_FETCH, fake_tushare.url, "fetch", code, "--end", "2020-12-25"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for code in ("600519.SH", "600036.SH")
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    store = MarketStore(home)
    assert store.tickers() == ["600036.SH", "600519.SH"]
    for code in store.tickers():
        assert len(store.read(code).frame) == len(fake_tushare.market.daily) // 2


def test_a_batch_that_fails_renames_nothing_and_leaves_no_temporary_file(tmp_path):
    from forecast.atomic import AtomicBatch

    old = {name: f"old {name}".encode() for name in ("a", "b", "c")}
    for name, data in old.items():
        (tmp_path / name).write_bytes(data)

    def broken(handle):
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), AtomicBatch() as batch:  # a write fails: none of the three is replaced
        batch.add(tmp_path / "a", lambda handle: handle.write(b"new a"))
        batch.add(tmp_path / "b", broken)
        batch.add(tmp_path / "c", lambda handle: handle.write(b"new c"))
    with pytest.raises(RuntimeError), AtomicBatch() as batch:  # the caller fails mid-batch: the same
        batch.add(tmp_path / "a", lambda handle: handle.write(b"new a"))
        raise RuntimeError("stop")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old  # and no temporary sibling is left behind
    with AtomicBatch() as batch:
        batch.add(tmp_path / "a", lambda handle: handle.write(b"new a"))
        with pytest.raises(ValueError, match="already in this batch"):
            batch.add(tmp_path / "a", lambda handle: handle.write(b"again"))
        batch.add(tmp_path / "c", lambda handle: handle.write(b"new c"))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"a": b"new a", "b": b"old b", "c": b"new c"}
