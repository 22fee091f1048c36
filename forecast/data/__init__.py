"""Market data: tickers, calendars, bars, the store, imports and fetches, universes."""
