"""Hostile inputs, forecast.toml (moved from tests/hostile/test_fuzz_core.py, category 2): documents valid and not.

The property and the good home are tests/hostile/test_fuzz_core.py's (see its docstring).
"""

from __future__ import annotations

import json
import math

from hypothesis import given, note
from hypothesis import strategies as st

from tests.hostile import test_fuzz_core as test_fuzz
from tests.hostile.test_fuzz_core import GOOD, GUARD_MESSAGE, assert_good_state, check, check_state, cli, fuzz_settings, sandbox

# the suite's fixtures, from its shared core (fuzz_summary and no_network_fits are autouse for this module)
good_home, fuzz_summary, no_network_fits = test_fuzz.good_home, test_fuzz.fuzz_summary, test_fuzz.no_network_fits

# forecast.toml

class Raw(str):
    """A TOML literal written as is (dates, inline tables, nested arrays)."""


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, but characters outside ASCII as they are and DEL escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")


def toml_value(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_document(top: dict, tables: dict) -> str:
    plain = {**top, **{k: v for k, v in tables.items() if not isinstance(v, dict)}}  # e.g. train = 5: before any [table]
    lines = [f"{toml_string(str(k))} = {toml_value(v)}" for k, v in plain.items()]
    for name, table in tables.items():
        if isinstance(table, dict):
            lines.append(f"\n[{toml_string(name)}]")
            lines += [f"{toml_string(str(k))} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


WRONG = st.one_of(st.integers(-10**20, 10**20), st.floats(), st.booleans(), st.text(max_size=10),
                  st.lists(st.integers(-5, 5), max_size=3), st.just([]), st.just({}),
                  st.sampled_from([Raw("2020-01-01"), Raw("2020-01-01T00:00:00Z"), Raw("07:32:00"),
                                   Raw("{ a = 1 }"), Raw("[[1, 2], [\"x\"]]"), Raw("1979-05-27T07:32:00")]))
TOKEN = st.integers(10**12, 10**13).map(lambda n: f"tok-fuzz-{n}")  # long and unique: never masks ordinary words

def good_or_bad(good: list, bad: list):
    """Two thirds a valid value, one third a wrong one: deep paths need documents that parse."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.one_of(st.sampled_from(bad), WRONG))


TOP_LEVEL_VALUES = {  # (valid values, wrong ones)
    "tickers": ([["600519.SH"], ["600519.SH", "000858.SZ"], []],
                ["600519.SH", 5, [1, 2], ["../../etc/passwd"], [""], [True], ["600519.SH", "600519.SH"], ["AAPL", "nope!"]]),
    "source": (["sample", "csv", "tushare"], ["ftp", "", "SAMPLE", "Sample", " sample"]),
    "adjust": (["qfq", "hfq", "none"], ["weird", "", "QFQ"]),
    "preset": (["default", "tutorial"], ["", "x", "tutorial-gru"]),
    "retrain_after_days": ([20, "never", 0, 1], [-3, "x", 2.5, -1, 10**18, True, math.nan, math.inf, "20", "Never", -2]),
    "outdir": (["daily", "out", "out dir/ü"], ["", 5, ["x"], "forecast.toml", "data", "data/bars", True, "daily/latest",
                                              "models/latest"]),
    "levels": ([[0.8, 0.95], [0.5], [0.9, 0.99], [0.95, 0.8]],
               [[1.5], [], "x", [0.8, 0.8], [0, 1], [math.nan], [math.inf], [-0.1], 0.8, [True], ["0.8"], [1e-300],
                [0.999999999999], [i / 25 for i in range(1, 25)], [1], [1.0], [0.0], [80, 95]]),
}


def _top_value(key: str, valid: bool):
    if key == "tushare_token":
        return TOKEN if valid else st.one_of(TOKEN, st.sampled_from([5, [], ""]), st.lists(TOKEN, max_size=2))
    good, bad = TOP_LEVEL_VALUES[key]
    if valid:
        return st.sampled_from(good)
    extra = [st.lists(st.floats(), max_size=4)] if key == "levels" else []
    return st.one_of(good_or_bad(good, bad), *extra)


TRAIN_KEYS = {  # (valid values, wrong ones)
    "epochs": ([1, 60, 2], [2.5, "x", 0, -1, 10**30, True, math.nan, "60"]),
    "units": ([[32], [4, 2], "64,32", "8"], [[0], "abc", [], 32, [1.5], ["x"], [-1], [True], "", ",", "0"]),
    "lookback": ([30, 5, 60], ["thirty", 0, -5, 1e9, 10**9, 2.0, "30"]),
    "horizon": ([5, 1, 10], [0, 10**6, "5", -1, 1.0]),
    "dropout": ([0.1, 0.0, 0.5], [1.0, -0.1, math.nan, "0.1", math.inf, 0.99999, 2]),
    "lr": ([1e-3, 0.01], [0, -1, math.inf, "x", math.nan, 1e308, True]),
    "batch_size": ([64, 1], [0, -1, "x", 1.5]),
    "patience": ([0, 8], [-1, "x"]),
    "seed": ([7, 0], ["x", -1, 2**70, 1.5]),
    "target": (["close", "open"], ["junk", "", "volume", 5]),
    "transform": (["level", "log-return"], ["junk", "", 1]),
    "features": ([["return"], ["close", "open"], "return,volume"], [[], ["junk"], ["return", 5], [""], 5]),
    "arch": (["gru", "lstm", "rnn"], ["transformer", 1, "", "LSTM"]),
    "scaler": (["standard", "minmax"], ["weird", 0]),
    "val_fraction": ([0.15, 0.3], [0.5, 0, math.nan, -1, "x", 0.49]),
    "start": (["2015-01-01", Raw("2015-01-01")], ["2099-01-01", "x", 5, "", "1600-01-01"]),
    "end": (["2019-01-01"], ["2000-01-01", "x", Raw("2020-01-01T00:00:00Z"), "2262-04-12"]),
    "adjust": (["qfq", "hfq"], ["weird", 5]),
    "preset": (["tutorial", "default"], ["x", 1]),
    "zero_head": ([True, False], ["x", 1]),
    "bidirectional": ([False, True], ["x", 1]),
    "unknown_option": ([], [1, "x"]),
    "id": ([], ["x"]),
}


def _train_value(key: str, valid: bool):
    good, bad = TRAIN_KEYS[key]
    if valid:
        return st.sampled_from(good)
    return good_or_bad(good, bad) if good else st.one_of(st.sampled_from(bad), WRONG)


@st.composite
def config_documents(draw) -> bytes:
    kind = draw(st.sampled_from(["typed"] * 15 + ["binary", "cut", "garbled"]))
    if kind == "binary":
        return draw(st.binary(max_size=200))
    valid = draw(st.integers(0, 4)) < 2  # two in five documents hold only valid values (their paths go deeper)
    keys = [*TOP_LEVEL_VALUES, "tushare_token"]
    top = {k: draw(_top_value(k, valid)) for k in keys if draw(st.integers(0, 2)) == 0}
    if not valid and draw(st.integers(0, 5)) == 0:  # an unknown top-level key
        top[draw(st.sampled_from(["ticker", "Tickers", "retrain_after", "home", "x"]))] = draw(WRONG)
    tables: dict = {}
    shape = draw(st.sampled_from(["table", "table", "none", "none", "forecast-section", *([] if valid else ["not-a-table"])]))
    if shape == "table":
        names = sorted(k for k, (good, _) in TRAIN_KEYS.items() if good or not valid)
        chosen = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
        tables["train"] = {k: draw(_train_value(k, valid)) for k in chosen}
    elif shape == "not-a-table":
        tables["train"] = draw(WRONG)
    elif shape == "forecast-section":
        tables["forecast"] = {k: draw(_top_value(k, valid)) for k in keys if draw(st.integers(0, 2)) == 0}
    if draw(st.integers(0, 3)) == 0:
        tables["tushare"] = draw(st.fixed_dictionaries({"token": TOKEN}) if valid else
                                 st.one_of(st.fixed_dictionaries({"token": st.one_of(TOKEN, WRONG)}), WRONG))
    text = toml_document(top, tables)
    data = text.encode("utf-8", errors="surrogatepass")
    if kind == "typed" or valid:
        return data
    if kind == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "garbled":
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.one_of(st.binary(min_size=1, max_size=8),
                                                st.sampled_from([b"=", b"[", b"\"", b"\n[train]\n", b"\xff"]))) + data[position:]
    return data


@fuzz_settings(40)
@given(document=config_documents(), via_flag=st.integers(0, 4), json_output=st.booleans(), backtest=st.integers(0, 2))
def test_fuzz_forecast_toml(good_home, document, via_flag, json_output, backtest):
    test = "config"
    context = f"forecast.toml={document!r}"
    note(context)
    with sandbox(good_home) as box:
        if via_flag == 0:  # --config FILE instead of the home's forecast.toml
            config_path = box.root / "input" / "alt.toml"
            config_path.parent.mkdir()
            config_flag = ["--config", str(config_path)]
        else:
            config_path, config_flag = box.home / "forecast.toml", []
        config_path.write_bytes(document)
        outside = box.outside()
        show = ["config", "show", *config_flag, *(["--json"] if json_output else [])]
        shown = cli(box.home, show)
        check(shown, show, test, context)
        commands = [
            ["predict", GOOD, "--model", "naive", *(["--json"] if json_output else [])],
            ["run", "000858.SZ", "--source", "sample", "--retrain-after", "never", "--quiet", *config_flag],
        ]
        if backtest == 0:
            commands.append(["backtest", GOOD, "--models", "naive,drift", "--test-days", "30", "--refit-every", "10"])
        if shown.exit_code != 0:  # an invalid config must stop train before any training
            commands.append(["train", GOOD, "--epochs", "1", "--units", "2", "--lookback", "5", "--horizon", "1",
                             "--quiet", *config_flag])
        for args in commands:
            result = cli(box.home, args)
            check(result, args, test, context)
            if args[0] == "train" and shown.exit_code == 2:  # refused as invalid (not a crash of config show)
                check_state(result.exit_code != 0 and GUARD_MESSAGE not in result.output, test, args,
                            f"train went on (exit {result.exit_code}) with a config that config show refused", context)
        assert_good_state(box, test, ["config"], context)
        check_state(box.outside() == outside, test, show, "a file outside the home changed", context)


