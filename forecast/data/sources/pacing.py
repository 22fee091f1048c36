"""Client-side pacing: at most N calls per endpoint in any sliding 60-second window.

tushare limits each endpoint's calls per minute by the account's points (500 a
minute on ``daily``; 200 on ``index_daily`` at 2,000 points). Hitting the limit
costs a 61 s wait and a retry (``RetryPolicy``); a paced client never hits it,
so a long backfill runs at the allowed rate instead of in bursts and pauses.

What it promises: for each endpoint, no ``calls_per_minute + 1`` calls of this
client fall within 60 s of the server's clock. A call counts from the moment its
answer came back (the server saw it no later than that), and the next call waits
until the oldest counted one is a full window old, so network latency can only
spread calls out on the server's side, never bunch them. What it does not: calls
made by another process with the same token are not counted; the server's own
limit message still triggers the retry path then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

# tushare's per-minute limit on daily and adj_factor from its lowest paid tier up (its docs: 500 a minute at
# 120 points and at 2,000); a lower limit (index_daily: 200 at 2,000 points) still ends in the retry path.
DEFAULT_CALLS_PER_MINUTE = 500
WINDOW_S = 60.0


class CallPacer:
    """Waits before a call when ``calls_per_minute`` calls of its endpoint already lie within the window.

    ``calls_per_minute=None`` never waits (the client then relies on the retry
    path alone). ``clock`` and ``sleep`` are injectable so tests need not wait.
    """

    def __init__(self, calls_per_minute: int | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, window_s: float = WINDOW_S):
        if calls_per_minute is not None and calls_per_minute < 1:
            raise ValueError(f"calls_per_minute must be at least 1 (or None: unpaced), not {calls_per_minute}")
        self.calls_per_minute = calls_per_minute
        self.window_s = window_s
        self.clock = clock
        self.sleep = sleep
        self.waited_s = 0.0  # total pause so far: a figure for reports and tests
        self._done: dict[str, deque[float]] = {}  # endpoint -> times its recent calls came back, oldest first
        self._lock = threading.Lock()  # a client shared by threads still keeps the count whole

    def __repr__(self) -> str:
        return f"CallPacer(calls_per_minute={self.calls_per_minute})"

    def wait(self, endpoint: str) -> float:
        """Sleep until one more call of ``endpoint`` stays within the limit; return the seconds slept."""
        if self.calls_per_minute is None:
            return 0.0
        slept = 0.0
        with self._lock:
            done = self._done.setdefault(endpoint, deque())
            while True:
                now = self.clock()
                while done and done[0] <= now - self.window_s:
                    done.popleft()
                if len(done) < self.calls_per_minute:
                    break
                pause = done[0] + self.window_s - now
                if slept == 0.0:
                    log.info("tushare: %d calls to '%s' in the last %.0f s; pausing %.1f s to stay under the limit",
                             len(done), endpoint, self.window_s, pause)
                self.sleep(pause)
                slept += pause
        self.waited_s += slept
        return slept

    def record(self, endpoint: str) -> None:
        """Count one call of ``endpoint`` as answered now (whatever the answer was: the server counted it too)."""
        if self.calls_per_minute is None:
            return
        with self._lock:
            self._done.setdefault(endpoint, deque()).append(self.clock())
