"""Hostile inputs, flags and arguments (moved from tests/hostile/test_fuzz_core.py, category 3): predict, backtest, train, plot,
run, and ticker and model-id arguments.

The property and the good home are tests/hostile/test_fuzz_core.py's (see its docstring).
"""

from __future__ import annotations

from conftest import SAMPLE_FILE
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import test_fuzz_core as test_fuzz
from tests.hostile.test_fuzz_core import GOOD, MODEL_ID, OTHER, Box, _run_and_check, assert_good_state, check_state, fuzz_settings, sandbox

# the suite's fixtures, from its shared core (fuzz_summary and no_network_fits are autouse for this module)
good_home, fuzz_summary, no_network_fits = test_fuzz.good_home, test_fuzz.fuzz_summary, test_fuzz.no_network_fits

# Flags

TICKERS = ["600519.SH", "600519", "sh600519", "SH.600519", "600519.sh", "000001", "AAPL", "aapl", "../../etc/passwd",
           "..", ".", "", " ", "--", "600519.SH/../x", "latest", ".hidden", "a" * 300, "六〇〇五一九", "600519.ＳＨ",
           "\x00", "CON", "NUL", "x\ny", "600519.SH ", "ＡＡＰＬ", "😀", "000858.SZ", "999999.SH", "1.2.3", "A/B",
           "A\\B", "600519.SZ", "600519.BJ", "sz600519", "6005190", "00700.HK", "BRK-B", "^GSPC", "SH", ".SH"]
tickers = st.one_of(st.sampled_from(TICKERS), st.text(max_size=16))
MODELS = ["naive", "drift", "ma", "ma5", "ma0", "ma1", "ma99999", "ma-1", "ma1e3", "linear", "junk", "../x", "",
          " ", "NAIVE", "latest", MODEL_ID, MODEL_ID + "x", "600519.SH", "default", "tutorial", ".staging", "ma 5",
          "ma٣", "ma05"]
models = st.one_of(st.sampled_from(MODELS), st.text(max_size=12))
INTS = ["0", "1", "2", "5", "-1", "10", "1000000", "1" + "0" * 30, "x", "", "2.5", "1e3", " 5", "٣", "0x10"]
FLOATS = ["0", "0.5", "1", "-0.1", "1.5", "nan", "inf", "-inf", "1e400", "x", "", "1e-300", "0.2"]
DATES = ["2015-01-01", "2020-13-45", "yesterday", "", "0", "99999-01-01", "1600-01-01", "2262-04-12", "2099-01-01",
         "1e10", "nan", "NaT", "2020-02-30", "2020-06-01", "2010-01-01", "1677-09-21", "20200102", "now", "today"]
LOCK_TIMEOUTS = ["5", "abc", "-1", "inf", "nan", "", "1e400", "0", " 5 ", "-inf", "1e-9", "٣"]


def out_path(box: Box, choice: str) -> str:
    return {
        "file": str(box.home / "out.csv"), "json": str(box.home / "out.json"), "svg": str(box.home / "c.svg"),
        "png": str(box.home / "c.png"), "pdf": str(box.home / "c.pdf"), "txt": str(box.home / "c.txt"),
        "noext": str(box.home / "c"), "under-file": str(box.root / "afile" / "x.csv"),
        "under-file-png": str(box.root / "afile" / "x.png"), "dir": str(box.home / "data"),
        "missing-parents": str(box.home / "deep" / "er" / "x.csv"), "empty": "", "dot": ".",
        "existing-store-file": str(box.home / "forecast.toml"),
    }[choice]


OUTS = st.sampled_from(["none", "none", "file", "json", "svg", "png", "pdf", "txt", "noext", "under-file",
                        "under-file-png", "dir", "missing-parents", "empty", "dot", "existing-store-file"])


@fuzz_settings(30)
@given(names=st.lists(st.one_of(st.just(GOOD), st.just(OTHER), tickers), min_size=1, max_size=3),
       model=st.one_of(st.none(), st.sampled_from(["naive", "drift", "ma5", "linear"]), models),
       horizon=st.one_of(st.none(), st.sampled_from(["1", "3", "5"]), st.sampled_from(INTS)), out=OUTS, as_json=st.booleans(),
       lock=st.one_of(st.none(), st.sampled_from(LOCK_TIMEOUTS)))
def test_fuzz_predict_flags(good_home, names, model, horizon, out, as_json, lock):
    test = "flags"
    with sandbox(good_home) as box:
        args = ["predict", *names]
        args += ["--model", model] if model is not None else []
        args += ["--horizon", horizon] if horizon is not None else []
        args += ["--out", out_path(box, out)] if out != "none" else []
        args += ["--json"] if as_json else []
        env = {"FORECAST_LOCK_TIMEOUT": lock} if lock is not None else None
        context = f"FORECAST_LOCK_TIMEOUT={lock!r}" if lock is not None else ""
        outside = box.outside()
        _run_and_check(box, test, args, context, env)
        assert_good_state(box, test, args, context)
        check_state(box.outside() == outside, test, args, "a file outside the home changed", context)


@fuzz_settings(25)
@given(ticker=st.one_of(st.just(GOOD), st.just(GOOD), st.just(OTHER), tickers),
       chosen=st.lists(st.one_of(st.sampled_from(["naive", "drift", "ma", "ma5", "linear"]),
                                 st.sampled_from(["ma0", "ma99999", "junk", "../x", "", "default", "tutorial-gru", "ma1"]),
                                 st.text(max_size=6)), min_size=1, max_size=3),
       test_days=st.one_of(st.sampled_from(["1", "2", "5", "30", "60"]),
                           st.sampled_from(["0", "-1", "2369", "2370", "2429", "1000000", "x", "1e3", "140", "141"])),
       refit=st.one_of(st.sampled_from(["1", "5", "10", "30"]), st.sampled_from(["1000000000", "0", "-3", "x"])),
       horizon=st.one_of(st.sampled_from(["1", "2", "5", "20"]),
                         st.sampled_from(["0", "-1", "100000", "1000000000000", "x", "200", "2429"])),
       rolling=st.one_of(st.none(), st.none(), st.sampled_from(["59", "60", "61", "100", "2429", "100000", "0", "x"])),
       expanding=st.integers(0, 4).map(lambda n: n == 0),
       target=st.one_of(st.none(), st.none(), st.sampled_from(["close", "open", "high", "volume", "", "junk",
                                                               "adj_factor", "date"])),
       adjust=st.one_of(st.none(), st.sampled_from(["qfq", "hfq", "none", "weird"])),
       extras=st.lists(st.sampled_from([("--units", "abc"), ("--units", "0"), ("--lookback", "0"),
                                        ("--lookback", "5000"), ("--epochs", "0"), ("--units", "4")]), max_size=2),
       out=OUTS, as_json=st.booleans())
def test_fuzz_backtest_flags(good_home, ticker, chosen, test_days, refit, horizon, rolling, expanding, target, adjust,
                             extras, out, as_json):
    test = "flags"
    if test_days.isdigit() and refit.isdigit() and int(refit) and int(test_days) // int(refit) > 10:
        refit = str(max(int(refit), int(test_days) // 10))  # at most ~10 refits: the fuzz is about inputs, not time
    with sandbox(good_home) as box:
        args = ["backtest", ticker, "--models", ",".join(chosen), "--test-days", test_days, "--refit-every", refit,
                "--horizon", horizon]
        args += ["--rolling", rolling] if rolling is not None else []
        args += ["--expanding"] if expanding else []
        args += ["--target", target] if target is not None else []
        args += ["--adjust", adjust] if adjust is not None else []
        for flag, value in extras:
            args += [flag, value]
        args += ["--out", out_path(box, out)] if out != "none" else []
        args += ["--json"] if as_json else []
        outside = box.outside()
        _run_and_check(box, test, args)
        assert_good_state(box, test, args, "")
        check_state(box.outside() == outside, test, args, "a file outside the home changed")


TRAIN_BAD = {
    "--units": ["0", "abc", "", "64,", ",", "-1", "1e3", "99999999999999999999", "3.5", " 4", "64,,32", "٣", "0,4"],
    "--dropout": ["nan", "inf", "-inf", "-0.1", "1", "1.5", "1e400", "x", ""],
    "--lr": ["0", "-1", "nan", "inf", "1e400", "-0", "x", "-inf"],
    "--start": DATES,
    "--end": DATES + ["2000-01-01", "2010-12-27"],
    "--lookback": ["0", "-1", "1000000", "1" + "0" * 30, "x", "2.5", "2429", "2400"],
    "--horizon": ["0", "-1", "1000000", "1" + "0" * 30, "x", "2.5", "2429"],
    "--epochs": ["0", "-1", "1.5", "x", ""],
    "--batch-size": ["0", "-5", "x"],
    "--features": ["", "junk", ",", "return,,", "close,junk", "volume", "return,return", "amount", "adj_factor"],
    "--target": ["", "junk", "volume", "high", "date", "amount"],
    "--seed": ["x", "-1", "1e3", "99999999999999999999999"],
    "--arch": ["transformer", "", "LSTM"],
    "--preset": ["x", ""],
    "--target-transform": ["x", ""],
    "--adjust": ["x", "hfq", "none"],
    "--config": ["<dir>", "<missing>", "<binary>"],
}


@fuzz_settings(30)
@given(flag=st.sampled_from(sorted(TRAIN_BAD)), data=st.data(),
       ticker=st.sampled_from([GOOD, GOOD, OTHER, "NOPE", "../x", "", "600519"]), as_json=st.booleans())
def test_fuzz_train_flags_that_must_stop_before_training(good_home, flag, data, ticker, as_json):
    test = "flags"
    value = data.draw(st.one_of(st.sampled_from(TRAIN_BAD[flag]), st.text(max_size=8)), label="value")
    with sandbox(good_home) as box:
        if flag == "--config":
            special = {"<dir>": str(box.home / "data"), "<missing>": str(box.root / "missing.toml")}
            if value == "<binary>":
                (box.root / "binary.toml").write_bytes(b"\xff\xfe\x00[train]\nepochs = \x00")
                special[value] = str(box.root / "binary.toml")
            value = special.get(value, str(box.root / "input" / "x.toml") if value else value)
        cheap = ["--epochs", "1", "--units", "2", "--lookback", "5", "--horizon", "1", "--batch-size", "256", "--quiet"]
        args = ["train", ticker, *cheap, flag, value, *(["--json"] if as_json else [])]  # the last --flag wins
        outside = box.outside()
        _run_and_check(box, test, args)
        assert_good_state(box, test, args, "")
        check_state(box.outside() == outside, test, args, "a file outside the home changed")


@fuzz_settings(15)
@given(ticker=st.one_of(st.sampled_from([GOOD, GOOD, OTHER]), tickers),
       kind=st.sampled_from(["forecast", "backtest", "history", "training", "calibration", "junk", "FORECAST", ""]),
       model=st.one_of(st.none(), models), days=st.one_of(st.none(), st.sampled_from(INTS + ["4", "5", "6"])),
       out=OUTS, as_json=st.booleans())
def test_fuzz_plot_flags(good_home, ticker, kind, model, days, out, as_json):
    test = "flags"
    with sandbox(good_home) as box:
        args = ["plot", ticker, "--kind", kind]
        args += ["--model", model] if model is not None else []
        args += ["--days", days] if days is not None else []
        args += ["--out", out_path(box, out)] if out != "none" else []
        args += ["--json"] if as_json else []
        outside = box.outside()
        _run_and_check(box, test, args)
        assert_good_state(box, test, args, "")
        check_state(box.outside() == outside, test, args, "a file outside the home changed")


TICKER_COMMANDS = [
    lambda t: ["data", "show", t], lambda t: ["data", "show", t, "--adjust", "hfq", "--json"],
    lambda t: ["fetch", t, "--source", "sample"], lambda t: ["fetch", t, "--source", "csv", "--file", "<sample>"],
    lambda t: ["fetch", t], lambda t: ["models", "show", t], lambda t: ["models", "rm", t],
    lambda t: ["plot", t, "--kind", "history"], lambda t: ["predict", t, "--model", "naive"],
    lambda t: ["backtest", t, "--models", "naive", "--test-days", "5", "--refit-every", "5"],
    lambda t: ["run", t, "--source", "csv", "--retrain-after", "never", "--quiet"],
    lambda t: ["plot", GOOD, "--kind", "training", "--model", t],
    lambda t: ["predict", GOOD, "--model", t],
]


@fuzz_settings(30)
@given(ticker=tickers, commands=st.lists(st.sampled_from(range(len(TICKER_COMMANDS))), min_size=1, max_size=3),
       lock=st.one_of(st.none(), st.none(), st.sampled_from(LOCK_TIMEOUTS)))
def test_fuzz_ticker_and_model_id_arguments(good_home, ticker, commands, lock):
    test = "flags"
    env = {"FORECAST_LOCK_TIMEOUT": lock} if lock is not None else None
    context = f"FORECAST_LOCK_TIMEOUT={lock!r}" if lock is not None else ""
    with sandbox(good_home) as box:
        outside = box.outside()
        for index_ in commands:
            args = [str(SAMPLE_FILE) if a == "<sample>" else a for a in TICKER_COMMANDS[index_](ticker)]
            if args[0] == "run" and _is_a_good_ticker(ticker):
                continue  # run would train a model for a good ticker (the guard would stop it; nothing to learn)
            _run_and_check(box, test, args, context, env)
        assert_good_state(box, test, [ticker], context)
        check_state(box.outside() == outside, test, [ticker], "a file outside the home changed", context)


def _is_a_good_ticker(text: str) -> bool:
    from forecast.data.tickers import parse_ticker

    try:
        return str(parse_ticker(text)) in (GOOD, OTHER)
    except Exception:
        return False


@fuzz_settings(15)
@given(outdir=st.sampled_from(["none", "daily2", "<afile>", "<file>", "<under-file>", ""]),
       log_file=st.sampled_from(["none", "none", "<home-log>", "<under-file>", "<dir>", ""]),
       wait=st.sampled_from(["none", "0", "-1", "nan", "inf", "x", "1e400", "5"]),
       retrain=st.sampled_from(["never", "never", "5", "-1", "x", "", "1e3", "٣", "1" + "0" * 30]),
       source=st.sampled_from(["sample", "csv", "ftp", ""]),
       names=st.lists(st.sampled_from(["000858.SZ", "NOPE", "../x", "", "000001", "AAPL.", "x" * 300]), max_size=3),
       lock=st.one_of(st.none(), st.sampled_from(LOCK_TIMEOUTS)))
def test_fuzz_run_flags(good_home, outdir, log_file, wait, retrain, source, names, lock):
    """``run`` on tickers that have no data (so nothing is ever trained), with odd flags and environment."""
    test = "flags"
    with sandbox(good_home) as box:
        paths = {"<afile>": str(box.root / "afile"), "<file>": str(box.home / "forecast.toml"),
                 "<under-file>": str(box.root / "afile" / "x"), "<home-log>": str(box.home / "run.log"),
                 "<dir>": str(box.home / "data"), "daily2": str(box.home / "daily2"), "": ""}
        (box.home / "forecast.toml").write_text('tickers = ["000858.SZ"]\n')
        args = ["run", *names, "--retrain-after", retrain, "--source", source, "--quiet"]
        args += ["--outdir", paths[outdir]] if outdir != "none" else []
        args += ["--log-file", paths[log_file]] if log_file != "none" else []
        args += ["--wait", wait] if wait != "none" else []
        env = {"FORECAST_LOCK_TIMEOUT": lock} if lock is not None else None
        context = f"FORECAST_LOCK_TIMEOUT={lock!r}" if lock is not None else ""
        outside = box.outside()
        _run_and_check(box, test, args, context, env)
        from forecast.cli._logging import setup_logging

        setup_logging(False)  # close a --log-file handler the run opened
        assert_good_state(box, test, args, context)
        check_state(box.outside() == outside, test, args, "a file outside the home changed", context)


