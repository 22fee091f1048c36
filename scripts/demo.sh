#!/usr/bin/env bash
# The main job on the bundled sample (real Moutai bars), as a user would run it:
# fetch -> train (default preset) -> predict -> backtest summary -> chart.
set -euo pipefail
forecast() { .venv/bin/forecast "$@"; }
ticker=600519.SH
echo "== workspace: ${FORECAST_HOME}"
echo "== fetch the offline sample"
forecast fetch --source sample
echo "== train the default model"
forecast train "$ticker" --quiet
echo "== forecast the next 5 trading days"
forecast predict "$ticker"
echo "== walk-forward backtest over the last 250 days (refit every 50), against the baselines"
forecast backtest "$ticker" --models default,naive,drift,ma,linear --test-days 250 --refit-every 50
echo "== chart"
chart=$(forecast plot "$ticker" --kind forecast)
echo "forecast chart: ${chart}"
