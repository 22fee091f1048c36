"""The tushare Pro API: ``daily`` + ``adj_factor``, the trading-rule facts, with retries and error classes.

Talks through tushare's own ``DataApi`` client. Failures are classified by the
server's message (the wire protocol: ``tests/fake_tushare.py`` speaks it):

* wrong token / not enough points -> AuthError at once (``NoPointsError``, its
  subclass, for the points: a caller may go on without that one endpoint);
* per-minute rate limit -> sleep and retry a bounded number of times;
* per-hour/per-day limits -> RateLimitError at once (retrying cannot help);
* each endpoint is paced to the account's per-minute limit (``pacing.CallPacer``,
  ``forecast.toml`` ``[tushare] calls_per_minute``), so a long run never hits it;
* HTTP errors (the client's silent column-less frame), non-JSON bodies,
  timeouts and refused connections -> retry with backoff, then SourceError;
* a host that gave no answer ``unreachable_after`` times in a row (timeouts,
  refused or dropped connections, across calls) is down: the call stops
  retrying, and every later call of this client fails at once with the same
  message, which names the host. Any answer from the host resets the count.

Index codes (``Ticker.is_index``: 000300.SH, 399001.SZ, 930050.CSI) are served
from ``index_daily`` by the same functions, with adjustment factor 1.0.

The A-share trading rules' facts come from ``stk_limit`` (the day's limit
prices), ``suspend_d`` (suspensions) and ``namechange`` (names, so ST days):
``fetch_stk_limit``, ``fetch_suspensions`` and ``fetch_name_changes`` return
them with tushare's field names and their dates as Timestamps.

This module asks (the client, its pages, the endpoints' fields); reading the
replies into canonical frames, and writing a request's dates, is ``tushare_wire``'s.

The token never appears in a message, a log line or a file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pandas as pd

from forecast.data.sources.pacing import DEFAULT_CALLS_PER_MINUTE, CallPacer
from forecast.data.sources.tushare_wire import dated_rows, span_params, to_canonical, tushare_date
from forecast.data.tickers import parse_ticker
from forecast.errors import AuthError, RateLimitError, SourceError
from forecast.redact import register_secret

log = logging.getLogger(__name__)

PAGE_LIMIT = 6000  # rows asked for per page: no endpoint used here answers fewer per call (daily 6000, index_daily 8000)
MAX_PAGES = 20  # 120,000 rows: far beyond any ticker's history or one day's market; more means a server loop
DAILY_FIELDS = "ts_code,trade_date,open,high,low,close,vol,amount"
FACTOR_FIELDS = "ts_code,trade_date,adj_factor"
INDEX_DAILY_FIELDS = "ts_code,trade_date,open,high,low,close,vol,amount"
STK_LIMIT_FIELDS = "trade_date,ts_code,pre_close,up_limit,down_limit"
SUSPEND_D_FIELDS = "ts_code,trade_date,suspend_timing,suspend_type"
NAMECHANGE_FIELDS = "ts_code,name,start_date,end_date,ann_date,change_reason"
# rows per call of the endpoints that answer fewer than PAGE_LIMIT (tushare's docs: stk_limit 5800, suspend_d 5000)
ENDPOINT_PAGE_LIMITS = {"stk_limit": 5800, "suspend_d": 5000}

_TOKEN_REJECTED = ("token不对", "token无效", "token错误")
_NO_PERMISSION = ("没有访问该接口的权限", "没有权限访问该接口", "没有接口访问权限")
_RATE_LIMITED = ("最多访问", "频率超限")
_SLOW_LIMITS = ("每小时", "每天", "/小时", "次/天")


class NoPointsError(AuthError):
    """The token is good, but its account has not the points for one endpoint (the message names it)."""

    def __init__(self, message: str, api_name: str):
        super().__init__(message)
        self.api_name = api_name


@dataclass
class RetryPolicy:
    attempts: int = 4  # first try included
    backoff_s: float = 2.0  # doubled after each transient failure
    rate_limit_wait_s: float = 61.0  # per-minute limits reset after a minute
    unreachable_after: int = 3  # connection failures in a row to one host, across calls, before it counts as down
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


class TushareClient:
    """A thin, retrying wrapper around tushare's real ``DataApi`` client."""

    def __init__(self, token: str | None, timeout: float = 30.0, retry: RetryPolicy | None = None,
                 pacer: CallPacer | None = None, calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE):
        if not token:
            raise AuthError(
                "no tushare token: set TUSHARE_TOKEN (get one at tushare.pro, under 个人主页 → 接口TOKEN)"
            )
        from tushare.pro.client import DataApi  # importing tushare costs ~0.5 s

        register_secret(token)  # whatever path the token came by, it is masked in every message from now on
        self._api = DataApi(token=token, timeout=timeout)
        self.retry = retry or RetryPolicy()
        self.pacer = pacer or CallPacer(calls_per_minute)  # the account's per-minute limit: forecast.toml or the environment
        self.calls = 0
        self._silences: dict[str, int] = {}  # host -> connection failures in a row
        self._down: dict[str, str] = {}  # host -> the message every later call fails with

    @property
    def host(self) -> str:
        """Return the host (and port) tushare's client sends its requests to."""
        url = str(getattr(self._api, "_DataApi__http_url", ""))
        return urlsplit(url).netloc or url

    def __repr__(self) -> str:  # never show the token
        return f"TushareClient(calls={self.calls})"

    def query(self, api_name: str, fields: str, **params) -> pd.DataFrame:
        """Return one page of ``api_name`` as a frame, retrying transient failures."""
        import requests

        host = self.host
        if host in self._down:
            raise SourceError(self._down[host])
        delay = self.retry.backoff_s
        last_problem = ""
        for attempt in range(1, self.retry.attempts + 1):
            self.calls += 1
            try:
                frame = self._send(api_name, fields, params)
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                last_problem = f"network error at {host} ({type(exc).__name__})"
                silences = self._silences[host] = self._silences.get(host, 0) + 1
                if silences >= self.retry.unreachable_after:
                    self._down[host] = (f"cannot reach tushare at {host}: no answer after {silences} tries in a row "
                                        f"({type(exc).__name__}); check the network, then try again")
                    raise SourceError(self._down[host]) from None
            except json.JSONDecodeError:
                self._silences[host] = 0
                last_problem = "the server answered with something that is not JSON"
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:  # JSON, but not tushare's shape
                self._silences[host] = 0  # tushare's client chokes on it (DataFrame constructor not properly called!)
                last_problem = f"the server's answer is not in tushare's format ({type(exc).__name__})"
            except Exception as exc:  # tushare raises a bare Exception(msg) for code != 0
                self._silences[host] = 0
                message = str(exc)
                if any(s in message for s in _TOKEN_REJECTED):
                    raise AuthError("tushare rejected the token: check TUSHARE_TOKEN") from None
                if any(s in message for s in _NO_PERMISSION):
                    raise NoPointsError(f"your tushare account has not enough points for '{api_name}'", api_name) from None
                if any(s in message for s in _RATE_LIMITED):
                    if any(s in message for s in _SLOW_LIMITS):
                        raise RateLimitError(f"tushare rate limit on '{api_name}' (hourly/daily quota): {message}") from None
                    last_problem = f"rate limited on '{api_name}'"
                    if attempt < self.retry.attempts:
                        log.warning("tushare: %s; waiting %.0f s", last_problem, self.retry.rate_limit_wait_s)
                        self.retry.sleep(self.retry.rate_limit_wait_s)
                        continue
                    raise RateLimitError(
                        f"tushare rate limit on '{api_name}' still hit after {attempt} tries; try again later"
                    ) from None
                raise SourceError(f"tushare '{api_name}' failed: {message}") from None
            else:
                self._silences[host] = 0
                if len(frame.columns) > 0:
                    return frame
                # DataApi turns any HTTP status >= 400 into a column-less frame.
                last_problem = "HTTP error from the server"
            if attempt < self.retry.attempts:
                log.warning("tushare '%s': %s; retry %d in %.0f s", api_name, last_problem, attempt, delay)
                self.retry.sleep(delay)
                delay *= 2
        raise SourceError(f"tushare '{api_name}' failed after {self.retry.attempts} tries: {last_problem}")

    def _send(self, api_name: str, fields: str, params: dict) -> pd.DataFrame:
        """Return tushare's answer to one request, paced: the pacer counts it whatever the outcome."""
        self.pacer.wait(api_name)
        try:
            return self._api.query(api_name, fields=fields, **params)
        finally:
            self.pacer.record(api_name)

    def query_paged(self, api_name: str, fields: str, **params) -> pd.DataFrame:
        """Return every row of one query, paged by ``offset`` at ``PAGE_LIMIT`` rows (see ``query_paged_at``)."""
        return self.query_paged_at(api_name, fields, PAGE_LIMIT, params)

    def query_paged_at(self, api_name: str, fields: str, page_limit: int, params: dict) -> pd.DataFrame:
        """Return every row of one query, asking for the next ``offset`` while a page comes back full.

        For endpoints whose pages cannot be cut by date (a whole market's day,
        listings, constituents, the calendar). A page holding exactly the limit
        counts as full (the rows may go on); the next page starts after the rows
        received, whatever the server's page size was. A server that answers
        fewer than asked ends the query, so ``PAGE_LIMIT`` must not exceed any
        endpoint's own limit: ``page_limit`` is the rows asked for per page,
        ``PAGE_LIMIT`` or an endpoint's own smaller one (``ENDPOINT_PAGE_LIMITS``).
        """
        limit = page_limit
        pages = [self.query(api_name, fields, **params, limit=limit)]
        while len(pages[-1]) >= limit:
            if len(pages) >= MAX_PAGES:
                raise SourceError(f"tushare '{api_name}' sent over {MAX_PAGES} full pages; the server ignores offset")
            pages.append(self.query(api_name, fields, **params, offset=sum(len(p) for p in pages), limit=limit))
        frames = [p for p in pages if len(p)]
        return pd.concat(frames, ignore_index=True) if frames else pages[0]

    def query_all(self, api_name: str, fields: str, **params) -> pd.DataFrame:
        """Return every row of a date-range query, paging past PAGE_LIMIT by end date.

        Rows come newest first, so each next page ends the day before the
        oldest row seen so far.
        """
        pages = []
        previous_oldest = None
        while True:
            page = self.query(api_name, fields, **params)
            pages.append(page)
            if len(page) < PAGE_LIMIT or "trade_date" not in page:
                break
            oldest = pd.Timestamp(str(page["trade_date"].min()))
            if (previous_oldest is not None and oldest >= previous_oldest) or len(pages) >= MAX_PAGES:
                raise SourceError(f"tushare '{api_name}' kept sending pages ({len(pages)} of {PAGE_LIMIT} rows) without "
                                  "reaching the start date; the server ignores end_date: try again later")
            previous_oldest = oldest
            params = {**params, "end_date": (oldest - pd.Timedelta(days=1)).strftime("%Y%m%d")}
        frames = [p for p in pages if len(p)]
        return pd.concat(frames, ignore_index=True) if frames else pages[0]


def is_index_code(ts_code: str) -> bool:
    """True when tushare serves ``ts_code`` from ``index_daily`` (see ``Ticker.is_index``)."""
    return parse_ticker(ts_code).is_index


def fetch_ticker_range(client: TushareClient, ts_code: str, start, end) -> pd.DataFrame:
    """Return raw bars plus factors for one ticker over [start, end] (canonical units).

    An index comes from ``index_daily`` with factor 1.0: an index is never adjusted.
    """
    if is_index_code(ts_code):
        return fetch_index_bars(client, ts_code, start, end)
    span = {"ts_code": ts_code, "start_date": tushare_date(start), "end_date": tushare_date(end)}
    daily = client.query_all("daily", DAILY_FIELDS, **span)
    if daily.empty:
        return to_canonical(daily, daily)
    factors = client.query_all("adj_factor", FACTOR_FIELDS, **span)
    return to_canonical(daily, factors)


def fetch_index_bars(client: TushareClient, ts_code: str, start, end) -> pd.DataFrame:
    """Return an index's daily bars over [start, end] in canonical units, with adj_factor 1.0 (an index is never adjusted)."""
    span = {"ts_code": ts_code, "start_date": tushare_date(start), "end_date": tushare_date(end)}
    daily = client.query_paged("index_daily", INDEX_DAILY_FIELDS, **span)
    if daily.empty:
        return to_canonical(daily, daily)
    factors = pd.DataFrame({"ts_code": daily["ts_code"], "trade_date": daily["trade_date"], "adj_factor": 1.0})
    return to_canonical(daily, factors)


def fetch_factors(client: TushareClient, ts_code: str, start, end) -> pd.DataFrame:
    """Return ``date, adj_factor`` for one ticker over [start, end]; 1.0 on each of an index's days."""
    if is_index_code(ts_code):
        bars = fetch_ticker_range(client, ts_code, start, end)
        return bars[["date", "adj_factor"]].reset_index(drop=True)
    span = {"ts_code": ts_code, "start_date": tushare_date(start), "end_date": tushare_date(end)}
    factors = client.query_all("adj_factor", FACTOR_FIELDS, **span)
    try:
        return pd.DataFrame(
            {
                "date": pd.to_datetime(factors["trade_date"].astype(str), format="%Y%m%d") if len(factors) else [],
                "adj_factor": factors["adj_factor"].astype(float) if len(factors) else [],
            }
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise SourceError(f"tushare sent adj_factor rows this version cannot read ({type(exc).__name__}: {exc})") from None


def fetch_market_day(client: TushareClient, day, ts_codes: set[str]) -> pd.DataFrame:
    """Return one day's bars for ``ts_codes``: one whole-market call per endpoint, plus one ``index_daily`` call per index.

    ``index_daily`` needs a ts_code, so an index costs a call of its own; stocks share theirs.
    """
    indices = sorted(c for c in ts_codes if is_index_code(c))
    stocks = set(ts_codes) - set(indices)
    parts = [fetch_ticker_range(client, code, day, day) for code in indices]
    if stocks:
        day_rows = fetch_whole_market_day(client, day)
        if len(day_rows):
            parts.append(day_rows[day_rows["ts_code"].isin(stocks)])
    found = [p for p in parts if len(p)]
    if not found:
        return to_canonical(pd.DataFrame(), pd.DataFrame())
    return pd.concat(found, ignore_index=True).sort_values(["ts_code", "date"]).reset_index(drop=True)


def fetch_whole_market_day(client: TushareClient, day) -> pd.DataFrame:
    """Return every stock's bars and factors of one trading day, canonical (two whole-market calls, paged by offset)."""
    daily = client.query_paged("daily", DAILY_FIELDS, trade_date=tushare_date(day))
    if len(daily) and "ts_code" not in daily:
        raise SourceError("tushare sent a whole-market reply without ts_code; try again later")
    if not len(daily):
        return to_canonical(daily, daily)
    return to_canonical(daily, client.query_paged("adj_factor", FACTOR_FIELDS, trade_date=tushare_date(day)))


# --- the trading rules' facts ----------------------------------------------------------------------

def fetch_stk_limit(client: TushareClient, ts_code: str | None, start, end) -> pd.DataFrame:
    """Return ``trade_date, ts_code, pre_close, up_limit, down_limit`` over [start, end], oldest first.

    ``ts_code`` None: the whole market (about 7,000 rows a day: keep the span short).
    """
    rows = client.query_paged_at("stk_limit", STK_LIMIT_FIELDS, ENDPOINT_PAGE_LIMITS["stk_limit"],
                                 span_params(ts_code, start, end))
    out = dated_rows(rows, STK_LIMIT_FIELDS, ("trade_date",), "stk_limit")
    for column in ("pre_close", "up_limit", "down_limit"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out.sort_values(["trade_date", "ts_code"], ignore_index=True)


def fetch_suspensions(client: TushareClient, ts_code: str | None, start, end) -> pd.DataFrame:
    """Return ``ts_code, trade_date, suspend_timing, suspend_type`` ('S' suspended, 'R' resumed) over [start, end].

    ``suspend_timing`` is the intraday halt (e.g. ``09:30-10:30``), None for a
    whole day. ``ts_code`` None: the whole market.
    """
    rows = client.query_paged_at("suspend_d", SUSPEND_D_FIELDS, ENDPOINT_PAGE_LIMITS["suspend_d"],
                                 span_params(ts_code, start, end))
    out = dated_rows(rows, SUSPEND_D_FIELDS, ("trade_date",), "suspend_d")
    out["suspend_timing"] = out["suspend_timing"].astype(object).where(out["suspend_timing"].notna(), None)
    return out.sort_values(["trade_date", "ts_code"], ignore_index=True)


def fetch_name_changes(client: TushareClient, ts_code: str | None, *, announced_from=None,
                       announced_to=None) -> pd.DataFrame:
    """Return ``ts_code, name, start_date, end_date, ann_date, change_reason``, each name's span (end NaT: current).

    ``ts_code`` None: every ticker's changes announced in [announced_from,
    announced_to] (``namechange``'s own start_date/end_date bound the announcement).
    """
    params: dict[str, str] = {"ts_code": ts_code} if ts_code else {}
    if announced_from is not None:
        params["start_date"] = tushare_date(announced_from)
    if announced_to is not None:
        params["end_date"] = tushare_date(announced_to)
    rows = client.query_paged("namechange", NAMECHANGE_FIELDS, **params)
    out = dated_rows(rows, NAMECHANGE_FIELDS, ("start_date", "end_date", "ann_date"), "namechange")
    return out.sort_values(["ts_code", "start_date"], ignore_index=True)
