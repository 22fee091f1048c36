"""``fetch``'s plan: which source answers (tushare, a CSV file, a long CSV, the sample, a universe), checked first.

The CLI parses the flags into a ``FetchRequest``, calls ``fetch_bars`` and
prints the ``Fetched`` it returns; every wrong combination of flags is a
``UsageError`` (exit 2) raised here, before anything is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.choices import Source
from forecast.data.store import MarketStore
from forecast.workflow.usage import UsageError


@dataclass(frozen=True)
class FetchRequest:
    """What ``fetch`` was asked: its tickers and flags, as parsed."""

    tickers: Sequence[str] = ()
    source: Source = Source.TUSHARE
    file: Path | None = None
    start: str | None = None
    end: str | None = None
    adjust: str = "qfq"  # the basis of each report's last close
    date_format: str | None = None
    columns: str | None = None
    strict: bool = False
    replace: bool = False
    calendar: str | None = None
    ticker_column: str | None = None
    universe: str | None = None
    backfill: str = "auto"


@dataclass
class Fetched:
    """What a fetch stored: one report per ticker, the tickers that failed, and a long CSV's import (else None)."""

    reports: list[Any] = field(default_factory=list)
    failures: list[Any] = field(default_factory=list)  # TickerFailure
    long_import: Any = None  # importing.LongImport, for a long-format CSV of several tickers

    def exit_code(self) -> int:
        """The exit code of every multi-ticker command: 0, the one failure's code, 8 or 9."""
        from forecast.workflow.executors import Outcome, exit_code_for

        if self.long_import is not None:
            imported = self.long_import
            outcomes: list[Outcome] = [Outcome(r.ticker) for r in imported.reports]
            outcomes += [Outcome(r.ticker, error=r.reason, exit_code=r.exit_code) for r in imported.refused]
            return exit_code_for(outcomes) if imported.refused else 0
        if not self.failures:
            return 0
        outcomes = [Outcome(r.ticker) for r in self.reports]
        outcomes += [Outcome(f.ticker, error=str(f.error), exit_code=int(f.error.exit_code)) for f in self.failures]
        return exit_code_for(outcomes)


def normalised(store: MarketStore, texts: Sequence[str]) -> list[str]:
    """Return the tickers as stored (600519 -> 600519.SH); a bare index number is settled by the cached listing.

    ``000300`` is the CSI 300 index when no SZSE stock has that code; the listing says so (tickers.parse_ticker).
    """
    from forecast.data.tickers import COMMON_INDICES, parse_ticker

    listed: dict[str, str] = {}
    if any(t.strip() in COMMON_INDICES for t in texts):
        from forecast.data.universe_cache import cached_names

        listed = cached_names(store.workspace)
    return [str(parse_ticker(t, listed)) for t in texts]


def _check_calendar(request: FetchRequest) -> None:
    if request.calendar is None:
        return
    if request.source is Source.TUSHARE:
        raise UsageError("--calendar applies to --source csv and sample imports; tushare series follow XSHG")
    from forecast.data.calendar import get_calendar
    from forecast.errors import BadInputError

    try:
        get_calendar(request.calendar)
    except BadInputError as exc:
        raise UsageError(f"--calendar: {exc}") from None


def _from_csv(store: MarketStore, request: FetchRequest) -> Fetched:
    from forecast.data import fetching

    tickers = list(request.tickers)
    if request.file is None:
        raise UsageError("--source csv needs --file PATH")
    if len(tickers) > 1:
        raise UsageError("--source csv imports one file: name one ticker, or none to import every ticker of a long-format file")
    if tickers and request.ticker_column is not None:
        raise UsageError("--ticker-column imports every ticker of the file; name no ticker with it")
    if tickers:
        return Fetched([fetching.import_csv(store, tickers[0], request.file, date_format=request.date_format,
                                           column_map=request.columns, strict=request.strict, replace=request.replace,
                                           calendar=request.calendar)])
    from forecast.data.importing import import_long_csv

    imported = import_long_csv(store, request.file, ticker_column=request.ticker_column, date_format=request.date_format,
                               column_map=request.columns, strict=request.strict, replace=request.replace,
                               calendar=request.calendar)
    return Fetched(imported.reports) if imported.single else Fetched(imported.reports, long_import=imported)


def _gather(store: MarketStore, request: FetchRequest, client: Callable[[], Any],
            watchlist: Callable[[], Sequence[str]] | None) -> Fetched:
    from forecast.data import fetching

    tickers = list(request.tickers)
    if request.universe is not None:
        if tickers:
            raise UsageError("name tickers or --universe, not both")
        if request.source is not Source.TUSHARE:
            raise UsageError("--universe fetches from tushare; import CSV files one by one")
        from forecast.data.backfill import fetch_universe

        return Fetched(*fetch_universe(store, request.universe, client, start=request.start, end=request.end,
                                       strict=request.strict, plan=request.backfill, watchlist=watchlist, trading_facts=True))
    if request.source is Source.SAMPLE:
        return Fetched([fetching.import_sample(store, t, strict=request.strict, calendar=request.calendar)
                        for t in (tickers or [fetching.SAMPLE_TICKER])])
    if request.source is Source.CSV:
        return _from_csv(store, request)
    if not tickers:
        raise UsageError("name at least one ticker, e.g. forecast fetch 600519.SH")
    tickers = normalised(store, tickers)  # a typo should not wait for a token check
    return Fetched(*fetching.update_from_tushare(store, tickers, client, start=request.start, end=request.end,
                                                 strict=request.strict, trading_facts=True))


def fetch_bars(store: MarketStore, request: FetchRequest, client: Callable[[], Any],
               watchlist: Callable[[], Sequence[str]] | None = None) -> Fetched:
    """Check the request's flags, fetch or import its bars into ``store``, and give each report its last close
    on ``request.adjust``. ``client`` makes the tushare client, called only if something needs the network."""
    from forecast.data import fetching

    _check_calendar(request)
    fetched = _gather(store, request, client, watchlist)
    for report in fetched.reports:  # the newest close on the basis the user asked for
        fetching.add_last_close(store, report, request.adjust)
    return fetched
