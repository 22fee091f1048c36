"""A loopback HTTP server that speaks tushare Pro's wire protocol.

The REAL ``tushare.pro.client.DataApi`` talks to it (tests point the client's
private base URL here). It serves ``daily`` and ``adj_factor`` from an
in-memory market, newest rows first, at most ``page_limit`` rows per call
(``offset``/``limit`` page within it), and the reference endpoints
``stock_basic``, ``index_weight``, ``index_daily`` and ``trade_cal`` with their
real fields when the market holds them, and the trading-rule endpoints
``stk_limit``, ``suspend_d`` and ``namechange`` (selected by ts_code and dates
as the real ones: ``namechange``'s start_date/end_date bound the announcement
date, ``suspend_d`` also takes ``suspend_type``). Each endpoint answers at most its
real number of rows per call (``ENDPOINT_LIMITS``). It can be told to fail the
next calls in the ways the real service fails, or drop a connection without
answering (what a dead route looks like to the client), and to enforce a
per-minute limit per endpoint (``calls_per_minute``) on its own clock, with the
real service's message.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd

TOKEN_REJECTED = "您的token不对，请确认。"
NO_POINTS = "抱歉，您没有访问该接口的权限，权限的具体详情访问：https://tushare.pro/document/1?doc_id=108。"
PER_MINUTE = "抱歉，您每分钟最多访问该接口500次，权限的具体详情访问：https://tushare.pro/document/1?doc_id=108。"


def per_minute_message(calls: int) -> str:
    """The real service's per-minute limit message for a limit of ``calls``."""
    return PER_MINUTE.replace("500", str(calls))

PER_DAY = "抱歉，您每天最多访问该接口2次，权限的具体详情访问：https://tushare.pro/document/1?doc_id=108。"


@dataclass
class FakeMarket:
    """Raw daily rows and factors per ts_code (tushare units: lots, thousands of CNY)."""

    daily: pd.DataFrame  # ts_code, trade_date (YYYYMMDD str), open, high, low, close, vol, amount
    factors: pd.DataFrame  # ts_code, trade_date, adj_factor
    # reference data, each with tushare's own column names (None: the endpoint answers zero rows)
    stock_basic: pd.DataFrame | None = None  # ts_code, symbol, name, area, industry, market, list_status, list_date, delist_date
    index_weight: pd.DataFrame | None = None  # index_code, con_code, trade_date, weight
    index_daily: pd.DataFrame | None = None  # ts_code, trade_date, open, high, low, close, vol, amount
    trade_cal: pd.DataFrame | None = None  # exchange, cal_date, is_open, pretrade_date
    # trading-rule facts (None: the endpoint answers zero rows)
    stk_limit: pd.DataFrame | None = None  # trade_date, ts_code, pre_close, up_limit, down_limit
    suspend_d: pd.DataFrame | None = None  # ts_code, trade_date, suspend_timing, suspend_type
    namechange: pd.DataFrame | None = None  # ts_code, name, start_date, end_date, ann_date, change_reason


STOCK_BASIC_COLUMNS = ["ts_code", "symbol", "name", "area", "industry", "market", "list_status", "list_date", "delist_date"]
INDEX_WEIGHT_COLUMNS = ["index_code", "con_code", "trade_date", "weight"]
TRADE_CAL_COLUMNS = ["exchange", "cal_date", "is_open", "pretrade_date"]
INDEX_DAILY_COLUMNS = ["ts_code", "trade_date", "open", "high", "low", "close", "vol", "amount"]
STK_LIMIT_COLUMNS = ["trade_date", "ts_code", "pre_close", "up_limit", "down_limit"]
SUSPEND_D_COLUMNS = ["ts_code", "trade_date", "suspend_timing", "suspend_type"]
NAMECHANGE_COLUMNS = ["ts_code", "name", "start_date", "end_date", "ann_date", "change_reason"]
# the real service's rows per call, per endpoint (tushare's docs: daily 6000, index_daily 8000); ``page_limit`` lowers them all
ENDPOINT_LIMITS = {"daily": 6000, "adj_factor": 6000, "stock_basic": 6000, "index_weight": 6000, "index_daily": 8000,
                   "trade_cal": 6000, "stk_limit": 5800, "suspend_d": 5000, "namechange": 10000}
REFERENCE_ENDPOINTS = ("stock_basic", "index_weight", "index_daily", "trade_cal")
TRADING_ENDPOINTS = ("stk_limit", "suspend_d", "namechange")


@dataclass
class FakeTushare:
    market: FakeMarket
    valid_token: str = "test-token-0123456789"
    page_limit: int = 6000
    failures: list[str] = field(default_factory=list)  # consumed one per call: http500 nonjson shapeless slow drop rate_minute rate_day points
    requests: list[dict] = field(default_factory=list)
    slow_seconds: float = 1.0
    restricted: set[str] = field(default_factory=set)  # endpoints this account has not the points for
    calls_per_minute: int | None = None  # per endpoint, as the real service counts; None: no limit
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)  # share a fake clock with the client's pacer
    rate_limited: int = 0  # calls refused by ``calls_per_minute``
    _answered: dict[str, deque] = field(default_factory=dict, repr=False)  # endpoint -> clock times of counted calls

    def answer(self, body: dict) -> tuple[int | None, bytes]:
        """Return (HTTP status, body); status None: close the connection without an answer."""
        self.requests.append(body)
        failure = self.failures.pop(0) if self.failures else None
        if failure == "drop":
            return None, b""
        if failure == "http500":
            return 500, b"internal error"
        if failure == "nonjson":
            return 200, b"<html>gateway</html>"
        if failure == "shapeless":  # JSON, code 0, but no table where the rows belong
            return 200, json.dumps({"request_id": "fake", "code": 0, "msg": "", "data": None}).encode()
        if failure == "slow":
            time.sleep(self.slow_seconds)
        if failure in ("rate_minute", "rate_day", "points"):
            msg = {"rate_minute": PER_MINUTE, "rate_day": PER_DAY, "points": NO_POINTS}[failure]
            return 200, self._error(-2002 if failure == "points" else 40203, msg)
        if body.get("token") != self.valid_token:
            return 200, self._error(-2001, TOKEN_REJECTED)
        api = body["api_name"]
        if api in self.restricted:
            return 200, self._error(-2002, NO_POINTS)
        if self._over_limit(api):
            self.rate_limited += 1
            return 200, self._error(40203, per_minute_message(self.calls_per_minute or 0))
        empty = {"stock_basic": STOCK_BASIC_COLUMNS, "index_weight": INDEX_WEIGHT_COLUMNS, "trade_cal": TRADE_CAL_COLUMNS,
                 "index_daily": INDEX_DAILY_COLUMNS, "stk_limit": STK_LIMIT_COLUMNS, "suspend_d": SUSPEND_D_COLUMNS,
                 "namechange": NAMECHANGE_COLUMNS}
        tables = {"daily": self.market.daily, "adj_factor": self.market.factors, "stock_basic": self.market.stock_basic,
                  "index_weight": self.market.index_weight, "index_daily": self.market.index_daily, "trade_cal": self.market.trade_cal,
                  "stk_limit": self.market.stk_limit, "suspend_d": self.market.suspend_d, "namechange": self.market.namechange}
        if api not in tables:
            return 200, self._error(-1, f"unknown api {api}")
        source = tables[api]
        if source is None:
            source = pd.DataFrame(columns=empty[api])
        params = body.get("params", {})
        if api in REFERENCE_ENDPOINTS:
            rows = self._select_reference(api, source, params)
        elif api in TRADING_ENDPOINTS:
            rows = self._select_trading(api, source, params)
        else:
            rows = self._select(api, source, params)
        fields = [f for f in body.get("fields", "").split(",") if f] or list(source.columns)
        fields = [f for f in fields if f in source.columns]  # the real service drops fields it does not know
        rows = rows[fields]
        if api in REFERENCE_ENDPOINTS + TRADING_ENDPOINTS:  # rows with gaps (no delist date, no end date): JSON null
            rows = rows.astype(object).where(rows.notna(), None)
        payload = {
            "request_id": f"fake-{len(self.requests)}",
            "code": 0,
            "msg": "",
            "data": {"fields": fields, "items": rows.values.tolist(), "has_more": False},
        }
        return 200, json.dumps(payload, ensure_ascii=False).encode()

    def _over_limit(self, api: str) -> bool:
        """True when this call would be one more than ``calls_per_minute`` of ``api`` within 60 s (it is then not counted)."""
        if self.calls_per_minute is None:
            return False
        now = self.clock()
        answered = self._answered.setdefault(api, deque())
        while answered and answered[0] <= now - 60.0:
            answered.popleft()
        if len(answered) >= self.calls_per_minute:
            return True
        answered.append(now)
        return False

    def _select(self, api: str, frame: pd.DataFrame, params: dict) -> pd.DataFrame:
        rows = frame
        if codes := params.get("ts_code"):
            rows = rows[rows["ts_code"].isin(codes.split(","))]
        rows = _in_dates(rows, params)
        rows = rows.sort_values(["trade_date", "ts_code"], ascending=[False, True])
        offset = int(params.get("offset", 0))
        cap = min(ENDPOINT_LIMITS[api], self.page_limit)
        limit = min(int(params.get("limit") or cap), cap)
        return rows.iloc[offset: offset + limit]

    def _select_reference(self, api: str, frame: pd.DataFrame, params: dict) -> pd.DataFrame:
        rows = frame
        if api == "stock_basic":
            rows = rows[rows["list_status"] == params.get("list_status", "L")]  # the real default: listed only
            if codes := params.get("ts_code"):
                rows = rows[rows["ts_code"].isin(codes.split(","))]
            rows = rows.sort_values("ts_code")
        elif api == "trade_cal":
            rows = _in_dates(rows[rows["exchange"] == (params.get("exchange") or "SSE")], params, "cal_date")
            if "is_open" in params and params["is_open"] != "":
                rows = rows[rows["is_open"].astype(str) == str(params["is_open"])]
            rows = rows.sort_values("cal_date", ascending=False)
        else:
            key = "index_code" if api == "index_weight" else "ts_code"
            code = params.get(key) or params.get("ts_code")
            if not code:
                return rows.iloc[0:0]
            rows = _in_dates(rows[rows[key] == code], params)
            rows = rows.sort_values(["trade_date", "con_code" if api == "index_weight" else "ts_code"], ascending=[False, True])
        offset = int(params.get("offset", 0))
        cap = min(ENDPOINT_LIMITS[api], self.page_limit)
        limit = min(int(params.get("limit") or cap), cap)
        return rows.iloc[offset: offset + limit]

    def _select_trading(self, api: str, frame: pd.DataFrame, params: dict) -> pd.DataFrame:
        """``stk_limit`` and ``suspend_d`` by ts_code (several comma-joined) and trade dates, newest first;
        ``namechange`` by ts_code and announcement date (its start_date/end_date params), latest name first."""
        rows = frame
        if codes := params.get("ts_code"):
            rows = rows[rows["ts_code"].isin(codes.split(","))]
        if api == "namechange":
            announced = rows["ann_date"].fillna("").astype(str)
            if start := params.get("start_date"):
                rows = rows[announced >= start]
                announced = announced[rows.index]
            if end := params.get("end_date"):
                rows = rows[(announced != "") & (announced <= end)]
            rows = rows.sort_values(["start_date", "ts_code"], ascending=[False, True])
        else:
            rows = _in_dates(rows, params)
            if api == "suspend_d" and (kind := params.get("suspend_type")):
                rows = rows[rows["suspend_type"] == kind]
            rows = rows.sort_values(["trade_date", "ts_code"], ascending=[False, True])
        offset = int(params.get("offset", 0))
        cap = min(ENDPOINT_LIMITS[api], self.page_limit)
        limit = min(int(params.get("limit") or cap), cap)
        return rows.iloc[offset: offset + limit]

    @staticmethod
    def _error(code: int, msg: str) -> bytes:
        return json.dumps({"request_id": "fake", "code": code, "msg": msg, "data": None}, ensure_ascii=False).encode()

    def calls(self, api_name: str | None = None) -> int:
        return sum(1 for r in self.requests if api_name is None or r["api_name"] == api_name)


def serve(fake: FakeTushare) -> tuple[ThreadingHTTPServer, str]:
    """Start the fake on 127.0.0.1 and return (server, base URL ending in /dataapi)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            status, content = fake.answer(body)
            if status is None:  # hang up: the client sees a dropped connection
                self.close_connection = True
                return
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, *args):  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/dataapi"


def market_from_sample(csv_path, codes=("600519.SH",), dividend_day="2016-06-29", factor_step=1.08) -> FakeMarket:
    """Build raw tushare rows from the real Moutai sample: raw = qfq / factor-ratio.

    One factor step on ``dividend_day`` makes the adjustment maths observable.
    Extra codes get the same bars scaled, so a whole market can be served.
    """
    sample = pd.read_csv(csv_path)
    dates = pd.to_datetime(sample["date"])
    factor = pd.Series(1.0, index=sample.index).where(dates < pd.Timestamp(dividend_day), factor_step)
    raw_scale = factor.iloc[-1] / factor  # qfq = raw * f / f_last  =>  raw = qfq * f_last / f
    daily_parts, factor_parts = [], []
    for i, code in enumerate(codes):
        k = 1.0 + i * 0.01
        daily_parts.append(pd.DataFrame({
            "ts_code": code,
            "trade_date": dates.dt.strftime("%Y%m%d"),
            "open": (sample["open"] * raw_scale * k).round(4),
            "high": (sample["high"] * raw_scale * k).round(4),
            "low": (sample["low"] * raw_scale * k).round(4),
            "close": (sample["close"] * raw_scale * k).round(4),
            "vol": sample["volume"],
            "amount": (sample["volume"] * 100 * sample["close"] / 1000).round(3),
        }))
        factor_parts.append(pd.DataFrame({"ts_code": code, "trade_date": dates.dt.strftime("%Y%m%d"), "adj_factor": factor * 10.0}))
    return FakeMarket(pd.concat(daily_parts, ignore_index=True), pd.concat(factor_parts, ignore_index=True))


def listings_frame(rows: list[tuple]) -> pd.DataFrame:
    """``stock_basic`` rows from (ts_code, name, industry, market, list_status, list_date, delist_date or None)."""
    frame = pd.DataFrame(rows, columns=["ts_code", "name", "industry", "market", "list_status", "list_date", "delist_date"])
    frame["symbol"] = frame["ts_code"].str[:6]
    frame["area"] = ""
    return frame[STOCK_BASIC_COLUMNS]


def index_weight_frame(index_code: str, snapshots: dict[str, list[str]]) -> pd.DataFrame:
    """``index_weight`` rows from {YYYYMMDD: [con_code, ...]}, equal weights."""
    rows = [(index_code, code, day, round(100.0 / len(codes), 4)) for day, codes in snapshots.items() for code in codes]
    return pd.DataFrame(rows, columns=INDEX_WEIGHT_COLUMNS)


def trade_cal_frame(start: str, end: str, closed: tuple[str, ...] = (), exchange: str = "SSE") -> pd.DataFrame:
    """``trade_cal`` rows for every calendar day in [start, end]: open on weekdays not in ``closed`` (YYYY-MM-DD)."""
    days = pd.date_range(start, end, freq="D")
    is_open = (days.dayofweek < 5) & ~days.isin(pd.to_datetime(list(closed)))
    opened = days[is_open]
    before = opened.searchsorted(days, side="left") - 1
    return pd.DataFrame({
        "exchange": exchange,
        "cal_date": days.strftime("%Y%m%d"),
        "is_open": is_open.astype(int),
        "pretrade_date": [opened[i].strftime("%Y%m%d") if i >= 0 else None for i in before],
    })


def _in_dates(rows: pd.DataFrame, params: dict, column: str = "trade_date") -> pd.DataFrame:
    """The rows a real endpoint returns for trade_date / start_date / end_date (YYYYMMDD text compares in order)."""
    if day := params.get("trade_date"):
        rows = rows[rows[column] == day]
    if start := params.get("start_date"):
        rows = rows[rows[column] >= start]
    if end := params.get("end_date"):
        rows = rows[rows[column] <= end]
    return rows
