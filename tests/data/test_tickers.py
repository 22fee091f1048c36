import pytest

from forecast.data.tickers import parse_ticker
from forecast.errors import AmbiguousTickerError, BadInputError


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("600519", "600519.SH"), ("sh600519", "600519.SH"), ("SH.600519", "600519.SH"), ("600519.sh", "600519.SH"),
        ("688981", "688981.SH"), ("000858", "000858.SZ"), ("sz000858", "000858.SZ"), ("300750", "300750.SZ"),
        ("430047", "430047.BJ"), ("920118", "920118.BJ"), ("000001.SZ", "000001.SZ"), ("000001.SH", "000001.SH"),
        ("aapl", "AAPL"), ("SPX", "SPX"), ("^GSPC", "^GSPC"),
    ],
)
def test_normalises_what_users_type(typed, expected):
    assert str(parse_ticker(typed)) == expected


def test_china_codes_know_their_exchange_and_others_do_not():
    assert parse_ticker("600519").exchange == "SH"
    assert parse_ticker("AAPL").exchange is None


def test_an_ambiguous_bare_code_lists_both_readings():
    with pytest.raises(AmbiguousTickerError) as info:
        parse_ticker("000001")
    message = str(info.value)
    assert "000001.SH" in message and "000001.SZ" in message and "Ping An" in message


@pytest.mark.parametrize("typed", ["", "12345", "60051.SH", "hello world", "600519.XX"])
def test_rejects_what_is_not_a_ticker(typed):
    with pytest.raises(BadInputError):
        parse_ticker(typed)


def test_dates_past_the_published_xshg_calendar_come_with_a_warning(caplog):
    import logging

    import pandas as pd

    from forecast.data import calendar

    calendar._warn_beyond.cache_clear()
    last = calendar._xshg().last_session
    with caplog.at_level(logging.WARNING, logger="forecast.data.calendar"):
        days = calendar.next_sessions(last, 3, parse_ticker("600519.SH"))
    assert all(d.weekday() < 5 and d > last for d in days)
    assert any("not in exchange-calendars yet" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="forecast.data.calendar"):
        calendar.next_sessions(pd.Timestamp("2020-12-31"), 3, parse_ticker("600519.SH"))
    assert not caplog.records
