"""The README's own examples run on the sample, as sqlite-utils' test_docs.py checks its commands.

Every ``forecast ...`` line of the README's ```sh blocks and every ``forecast
...`` code span in its Commands table runs, in the order the README gives
them, in one temporary home, and must exit 0. Only what cannot run offline on
the sample is left out, by name (TUSHARE_ONLY), and only what a reader would
bring is supplied: the CSV file an import names, the ``forecast.toml`` that
``run`` reads, and real model ids for the README's made-up ones. Networks fit
for one epoch and backtests walk 40 days: the commands are under test here,
not the accuracy (see benchmarks/).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, SAMPLE_FILE
from typer.testing import CliRunner

from forecast.cli import app

pytestmark = pytest.mark.slow  # real Keras fits (one epoch each)

README = REPO / "README.md"
runner = CliRunner()

# examples that need the real tushare service: none; tushare examples run against the loopback fake (readme_market)
TUSHARE_ONLY: set[str] = set()
# the codes the fake serves: the README's own (600519, 000858.SZ, 601318.SH) and CSI 300 members
MARKET_CODES = ("600519.SH", "000858.SZ", "601318.SH", "600036.SH")
CSI300 = {"20200302": ["600519.SH", "000858.SZ", "601318.SH"], "20200401": ["600519.SH", "601318.SH", "600036.SH"]}
# flags appended (the last occurrence of an option wins) so that networks fit quickly
QUICK = {
    "train": ["--epochs", "1"],
    "backtest": ["--epochs", "1", "--test-days", "40", "--refit-every", "40"],
}
# the README's made-up model ids, e.g. 600519.SH-default-lstm-20261123T020000-1a2b
MODEL_ID = re.compile(r"\b(?P<ticker>[0-9A-Za-z.]+)-(?P<preset>[a-z]+)-(?P<arch>[a-z]+)-\d{8}T\d{6}-[0-9a-f]{4}\b")
# what a reader has when they follow the README: the daily job's settings
# The examples' bars end in 2020 and 2018: run would call them stale (exit 8, tests/workflow/test_run_freshness.py); here it must run.
FORECAST_TOML = 'tickers = ["600519.SH", "AAPL"]\nsource = "csv"\nretrain_after_days = "never"\nstale_after_days = 100000\n'


def readme_examples(text: str) -> list[str]:
    """Every ``forecast ...`` command of the ```sh blocks and of the Commands table, in README order."""
    found: list[tuple[int, str]] = []
    for block in re.finditer(r"```sh\n(.*?)```", text, re.S):
        offset = block.start(1)
        for line in block.group(1).splitlines(keepends=True):
            words = shlex.split(line, comments=True)
            if words[:1] == ["forecast"]:
                found.append((offset, shlex.join(words)))
            offset += len(line)
    table = re.search(r"^\| command \| example \|\n\|---\|---\|\n((?:\|.*\n)+)", text, re.M)
    assert table, "the README has no Commands table"
    for row in re.finditer(r"^\|[^|]*\|(.*)\|$", table.group(1), re.M):
        for span in re.finditer(r"`([^`]+)`", row.group(1)):
            if span.group(1).startswith("forecast "):
                found.append((table.start(1) + row.start(1) + span.start(1), span.group(1)))
    return [command for _, command in sorted(found)]


def test_the_readme_examples_are_found():
    examples = readme_examples(README.read_text(encoding="utf-8"))
    assert set(examples) >= TUSHARE_ONLY, "a skipped example left the README: update TUSHARE_ONLY"
    assert {"forecast fetch --source sample", "forecast run --quiet", "forecast doctor"} <= set(examples)
    assert len(examples) >= 20


def _real_ids(match: re.Match, ids: list[dict]) -> str:
    candidates = [m["id"] for m in ids if m.get("ticker") == match["ticker"] and m["preset"] == match["preset"] and m["arch"] == match["arch"]]
    assert candidates, f"no {match['preset']}-{match['arch']} model of {match['ticker']} to stand for {match[0]}"
    return candidates[-1]


def _write_aapl_csv(path: Path) -> None:
    """A Yahoo-layout file, as `forecast fetch AAPL --source csv --file aapl.csv` expects one."""
    sample = pd.read_csv(SAMPLE_FILE)
    pd.DataFrame({"Date": sample["date"], "Open": sample["open"], "High": sample["high"], "Low": sample["low"],
                  "Close": sample["close"], "Adj Close": sample["close"] * 0.9, "Volume": sample["volume"]}).to_csv(path, index=False)


def _write_long_csv(path: Path) -> None:
    """A long US-style file with two tickers, as `forecast fetch --source csv --file all.csv` expects one."""
    sample = pd.read_csv(SAMPLE_FILE)
    parts = [pd.DataFrame({"date": sample["date"], "open": sample["open"] * k, "high": sample["high"] * k,
                           "low": sample["low"] * k, "close": sample["close"] * k, "volume": sample["volume"], "Name": name})
             for name, k in (("MSFT", 0.1), ("IBM", 0.2))]
    pd.concat(parts).to_csv(path, index=False)


@pytest.fixture
def readme_market(fake_tushare, monkeypatch):
    """The fake tushare server with what the README's tushare examples ask for: bars of a few codes that move
    differently (so a cross-section can be ranked), CSI 300 snapshots, listings, the index's own bars."""
    import numpy as np
    from fake_tushare import index_weight_frame, listings_frame, market_from_sample

    sample = market_from_sample(SAMPLE_FILE, codes=MARKET_CODES)
    daily = sample.daily.copy()
    rng = np.random.default_rng(0)
    for i, code in enumerate(MARKET_CODES):
        rows = daily["ts_code"] == code
        drift = np.exp(np.cumsum(rng.normal(0, 0.01, int(rows.sum())))) if i else 1.0  # the first keeps the real bars
        for column in ("open", "high", "low", "close"):
            daily.loc[rows, column] = (daily.loc[rows, column] * drift).round(4)
    market = fake_tushare.market
    market.daily, market.factors = daily, sample.factors
    market.stock_basic = listings_frame([(code, name, "", "主板", "L", "20010827", None) for code, name in
                                         zip(MARKET_CODES, ("贵州茅台", "五粮液", "中国平安", "招商银行"))])
    market.index_weight = index_weight_frame("000300.SH", CSI300)
    index_bars = daily[daily["ts_code"] == "600519.SH"].assign(ts_code="000300.SH")
    market.index_daily = index_bars[["ts_code", "trade_date", "open", "high", "low", "close", "vol", "amount"]]
    monkeypatch.setenv("FORECAST_TUSHARE_CALLS_PER_MINUTE", "100000")  # the fake has no limit to pace for
    return fake_tushare


def test_every_readme_example_runs_on_the_sample(home, monkeypatch, readme_market):
    monkeypatch.chdir(home)  # relative files (aapl.csv, next.csv, bt.json) live in the home
    _write_aapl_csv(home / "aapl.csv")
    _write_long_csv(home / "all.csv")
    (home / "forecast.toml").write_text(FORECAST_TOML)
    failures, ran = [], 0
    for example in readme_examples(README.read_text(encoding="utf-8")):
        if example in TUSHARE_ONLY:
            continue
        if MODEL_ID.search(example):
            listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
            example = MODEL_ID.sub(lambda m, listed=listed: _real_ids(m, listed), example)
        args = shlex.split(example)[1:]
        args += QUICK.get(args[0], [])
        result = runner.invoke(app, args)
        ran += 1
        if result.exit_code != 0:
            failures.append(f"{example} -> exit {result.exit_code}: {(result.stderr or result.stdout).strip()[-300:]}")
    assert not failures, "\n".join(failures)
    assert ran >= 18
