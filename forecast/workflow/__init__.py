"""Jobs over many tickers, the executors, the daily pipeline, the doctor and the app's settings."""
