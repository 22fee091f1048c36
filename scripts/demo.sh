#!/usr/bin/env bash
# The main job on the bundled sample, as a user would run it.
set -euo pipefail
forecast() { .venv/bin/forecast "$@"; }
echo "== workspace: ${FORECAST_HOME}"
forecast fetch --source sample
forecast data show 600519.SH
