"""A synthetic A-share market of any size for the fake tushare server: N tickers x D days, deterministic by seed.

Built with numpy on (days, tickers) matrices, no loop over tickers, so 5,400
tickers x 2,500 days takes seconds. Prices are a random walk in raw CNY with
one dividend for about a tenth of the tickers (the factor steps up and the raw
price steps down by the same ratio, as on a real ex-dividend day), so the
adjustment maths is exercised. ``fake_market`` serves any span of days (the
server filters a frame per call: keep that frame to the days a test needs);
``write_store`` lays the stored files down directly, as fetches would have
left them, without validating 5,400 series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from fake_tushare import FakeMarket

from forecast.data.calendar import TradingCalendar
from forecast.data.validation import ValidationReport

CHINA = TradingCalendar("XSHG")


@dataclass
class SyntheticBars:
    codes: list[str]
    dates: pd.DatetimeIndex  # XSHG sessions, ascending
    open: np.ndarray  # (days, tickers), raw CNY
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    vol: np.ndarray  # lots (100 shares), as tushare sends
    amount: np.ndarray  # thousands of CNY, as tushare sends
    factor: np.ndarray  # tushare's cumulative adj_factor

    def span(self, start=None, end=None) -> slice:
        lo = 0 if start is None else int(self.dates.searchsorted(pd.Timestamp(start), side="left"))
        hi = len(self.dates) if end is None else int(self.dates.searchsorted(pd.Timestamp(end), side="right"))
        return slice(lo, hi)

    def fake_market(self, start=None, end=None) -> FakeMarket:
        """The days in [start, end] as tushare's ``daily`` and ``adj_factor`` rows."""
        rows = self.span(start, end)
        days = len(self.dates[rows])
        codes = np.tile(np.asarray(self.codes, dtype=object), days)
        trade_date = np.repeat(self.dates[rows].strftime("%Y%m%d").to_numpy(dtype=object), len(self.codes))
        daily = pd.DataFrame({"ts_code": codes, "trade_date": trade_date,
                              **{k: getattr(self, k)[rows].ravel() for k in ("open", "high", "low", "close", "vol", "amount")}})
        factors = pd.DataFrame({"ts_code": codes, "trade_date": trade_date, "adj_factor": self.factor[rows].ravel()})
        return FakeMarket(daily, factors)

    def stored_frame(self, j: int, start=None, end=None) -> pd.DataFrame:
        """Ticker ``j``'s rows in [start, end] in the store's canonical units (shares, CNY)."""
        rows = self.span(start, end)
        return pd.DataFrame({"date": self.dates[rows], "open": self.open[rows, j], "high": self.high[rows, j],
                             "low": self.low[rows, j], "close": self.close[rows, j], "volume": self.vol[rows, j] * 100.0,
                             "amount": self.amount[rows, j] * 1000.0, "adj_factor": self.factor[rows, j]})


def synthetic_bars(n_tickers: int, n_days: int, seed: int = 0, end: str = "2020-12-24") -> SyntheticBars:
    """``n_tickers`` codes (SH from 600000, then SZ from 000001) over the ``n_days`` XSHG sessions up to ``end``."""
    rng = np.random.default_rng(seed)
    dates = CHINA.sessions_between(pd.Timestamp(end) - pd.Timedelta(days=int(n_days * 1.6) + 30), pd.Timestamp(end))[-n_days:]
    half = (n_tickers + 1) // 2
    codes = [f"{600000 + i:06d}.SH" for i in range(half)] + [f"{1 + i:06d}.SZ" for i in range(n_tickers - half)]
    shape = (len(dates), n_tickers)
    base = rng.uniform(3.0, 200.0, n_tickers)
    adjusted = base * np.exp(np.cumsum(rng.normal(0.0, 0.015, shape), axis=0))  # hfq-continuous path
    step = np.ones(shape)
    payers = rng.random(n_tickers) < 0.1
    ex_day = rng.integers(1, max(2, len(dates)), n_tickers)
    step[ex_day[payers], np.flatnonzero(payers)] = 1.05
    factor = 10.0 * np.cumprod(step, axis=0)
    close = np.round(adjusted / factor * 10.0, 2)  # raw = hfq / factor: the raw price drops on the ex-day
    opened = np.round(close * (1 + rng.normal(0.0, 0.005, shape)), 2)
    spread = np.abs(rng.normal(0.0, 0.01, shape))
    high = np.round(np.maximum(opened, close) * (1 + spread), 2)
    low = np.round(np.minimum(opened, close) * (1 - spread), 2)
    vol = np.round(rng.uniform(1e3, 1e6, shape))
    amount = np.round(vol * close / 10.0, 3)  # lots x 100 shares x price / 1000
    return SyntheticBars(codes, dates, opened, high, low, close, vol, amount, factor)


def synthetic_market(n_tickers: int, n_days: int, seed: int = 0, end: str = "2020-12-24") -> FakeMarket:
    return synthetic_bars(n_tickers, n_days, seed, end).fake_market()


def write_store(store, bars: SyntheticBars, end=None, codes: list[str] | None = None) -> None:
    """Store every ticker's rows up to ``end`` as a tushare fetch leaves them (validation not run: nothing is wrong)."""
    import pyarrow as pa

    rows = bars.span(None, end)
    wanted = set(codes) if codes is not None else None
    with store.writing():
        for j, code in enumerate(bars.codes):
            if wanted is not None and code not in wanted:
                continue
            frame = bars.stored_frame(j, None, end)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            store.write_table(code, table, {"ticker": code, "source": "tushare", "price_basis": "raw", "calendar": "XSHG",
                                            "origin": None, "validation": ValidationReport(rows.stop - rows.start, []).to_dict()})
