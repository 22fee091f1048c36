"""Issue 17: the global model against per-ticker ``default`` networks, same tickers, same days.

    python benchmarks/global_vs_per_ticker.py [--tickers 20] [--test-days 250] [--refit-every 60]

On the first N tickers (alphabetical) of ../shared's S&P 500 half: every model
walks forward over the last ``test-days`` days with a refit every
``refit-every``. Per-ticker ``default`` networks forecast each ticker's own
5-day path; their predicted 5-day return at each origin becomes a signal
across the N tickers. The global network is trained on the same N tickers.
Both are scored the same two ways: cross-sectionally (Rank IC, Newey-West t)
and per ticker (price skill of the 5-day return against naive's zero: the
median over tickers). Needs ../shared (FORECAST_SHARED overrides it); says so
and exits 0 when it is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("FORECAST_SHARED", REPO.parent / "shared"))
SP500 = SHARED / "datasets" / "us_sp500" / "sp500_5yr_half_A.csv.gz"
HORIZON = 5


def per_ticker_signal(panel: pd.DataFrame, tickers: list[str], test_days: int, refit_every: int) -> pd.Series:
    """Each ticker's ``default`` network walked forward; its predicted 5-day simple return at every origin."""
    from forecast.evaluation.backtest import walk_forward

    parts = []
    for ticker in tickers:
        frame = panel.xs(ticker, level="ticker").reset_index()
        result = walk_forward(frame, ticker, models=("default",), test_days=test_days, refit_every=refit_every,
                              horizon=HORIZON)
        rows = result.forecasts_frame()
        rows = rows[(rows["model"] == "default") & (rows["step"] == HORIZON)]
        parts.append(pd.Series((rows["predicted"] / rows["origin_value"] - 1).to_numpy(),
                               index=pd.MultiIndex.from_arrays([pd.to_datetime(rows["origin_date"]), [ticker] * len(rows)],
                                                               names=["date", "ticker"])))
        print(f"   {ticker}: {len(rows)} origins", flush=True)
    return pd.concat(parts).sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--test-days", type=int, default=250)
    parser.add_argument("--refit-every", type=int, default=60)
    args = parser.parse_args()
    if not SP500.exists():
        print(f"needs {SP500}; skipped")
        return
    from forecast.evaluation.cross_backtest import CrossSettings, cross_backtest, price_skill
    from forecast.maths import signals
    from forecast.maths.cross_section import score
    from forecast.models.pooled.data import pool

    frame = pd.read_csv(SP500, parse_dates=["date"]).rename(columns={"Name": "ticker"})
    tickers = sorted(frame["ticker"].unique())[: args.tickers]
    panel = frame[frame["ticker"].isin(tickers)].set_index(["date", "ticker"]).sort_index()
    started = time.perf_counter()
    crossed = cross_backtest(panel, CrossSettings(models=("global", "linear", "momentum"), horizon=HORIZON,
                                                  test_days=args.test_days, refit_every=args.refit_every))
    global_seconds = time.perf_counter() - started
    test_days = pd.DatetimeIndex(crossed.rank_ic.index)
    started = time.perf_counter()
    own = per_ticker_signal(panel, tickers, args.test_days, args.refit_every)
    own_seconds = time.perf_counter() - started
    own = own[own.index.get_level_values(0).isin(test_days)]
    realised = signals.forward_returns(panel["close"], HORIZON)
    realised = realised[realised.index.get_level_values(0).isin(test_days)]
    own_score = score(own, realised, HORIZON, min_tickers=5)
    data = pool(panel, HORIZON)
    own_skill = price_skill(np.log1p(own), data, HORIZON)
    print(f"\n{len(tickers)} tickers, test {crossed.test_range[0]}..{crossed.test_range[1]}, refit every {args.refit_every}, "
          f"horizon {HORIZON}")
    print(f"{'model':<24}{'RankIC':>8}{'t NW(4)':>9}{'median price skill':>20}{'share > 0':>11}{'wall':>8}")
    for name, m in crossed.report.models.items():
        skill = crossed.price_skill.get(name, {})
        median = skill.get("median")
        print(f"{name:<24}{m.rank_ic:8.4f}{m.t_newey_west:9.2f}{'-' if median is None else f'{median:+.2%}':>20}"
              f"{'-' if median is None else format(skill['share_positive'], '.0%'):>11}"
              f"{(f'{global_seconds:.0f} s' if name == 'global' else ''):>8}")
    print(f"{'per-ticker default':<24}{own_score.rank_ic:8.4f}{own_score.t_newey_west:9.2f}"
          f"{own_skill['median']:+20.2%}{own_skill['share_positive']:11.0%}{own_seconds:7.0f} s")


if __name__ == "__main__":
    main()
