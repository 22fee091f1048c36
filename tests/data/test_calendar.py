"""Trading calendars: forecast dates skip weekends and exchange holidays (no Keras, no subprocess)."""

from __future__ import annotations

from forecast.data.calendar import next_sessions
from forecast.data.tickers import parse_ticker


def test_forecast_dates_skip_weekends_and_xshg_holidays():
    china = parse_ticker("600519.SH")
    assert [d.date().isoformat() for d in next_sessions("2020-12-31", 2, china)] == ["2021-01-04", "2021-01-05"]
    # Spring Festival 2021: closed 11-17 February
    assert [d.date().isoformat() for d in next_sessions("2021-02-10", 3, china)] == ["2021-02-18", "2021-02-19", "2021-02-22"]
    # other markets: business days
    assert [d.date().isoformat() for d in next_sessions("2021-02-10", 3, parse_ticker("AAPL"))] == ["2021-02-11", "2021-02-12", "2021-02-15"]
