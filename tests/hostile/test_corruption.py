"""Hostile state, corrupted store and registry files (moved from tests/hostile/test_fuzz_core.py, category 4).

The property and the good home are tests/hostile/test_fuzz_core.py's (see its docstring).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hypothesis import given, note
from hypothesis import strategies as st

from tests.hostile import test_fuzz_core as test_fuzz
from tests.hostile.test_fuzz_core import (
    GOOD,
    HAS_DOCTOR,
    MODEL_ID,
    OTHER,
    Box,
    _run_and_check,
    _short,
    assert_good_state,
    check,
    check_state,
    cli,
    fuzz_settings,
    sandbox,
)

# the suite's fixtures, from its shared core (fuzz_summary and no_network_fits are autouse for this module)
good_home, fuzz_summary, no_network_fits = test_fuzz.good_home, test_fuzz.fuzz_summary, test_fuzz.no_network_fits

# Corrupted store and registry files

def _stored_forecast(box: Box) -> Path:
    """The good home's stored forecast of GOOD: of record (latest.json), or by ``--model naive`` kept apart under other/."""
    record = box.home / "forecasts" / GOOD / "latest.json"
    return record if record.exists() else box.home / "forecasts" / GOOD / "other" / "naive.json"


TARGETS = {
    "bars": lambda box: box.bars(GOOD),
    "card": lambda box: box.home / "models" / MODEL_ID / "metadata.json",
    "keras": lambda box: box.home / "models" / MODEL_ID / "model.keras",
    "pointer": lambda box: box.home / "models" / "latest" / GOOD,
    "forecast": lambda box: _stored_forecast(box),
    "backtest": lambda box: box.home / "backtests" / GOOD / "latest.json",
    "backtest-csv": lambda box: box.home / "backtests" / GOOD / "latest.csv",
    "model-dir": lambda box: box.home / "models" / MODEL_ID,
}
JSON_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=12),
                      st.sampled_from(["../../../../etc/passwd", "", "latest", GOOD, OTHER, "2099-01-01", "x" * 300,
                                       "600519.SH-default-gru-x", "../x", MODEL_ID, ".hidden", "0.8"]),
                      st.lists(st.integers(-3, 3), max_size=3), st.lists(st.floats(), max_size=6),
                      st.just({}), st.just([]), st.just({"a": 1}), st.just([[]]))
BYTE_DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("zero"), st.integers(0, 4096)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("binary"), st.binary(max_size=64)),
    st.tuples(st.just("text"), st.sampled_from(["", "\n", "null", "{", "[]", "{}", '{"id": 1', "\ufeff{}", "\xff\xfe",
                                                "not json at all", "PAR1", "PK\x03\x04"])),
    st.tuples(st.just("delete")),
    st.tuples(st.just("directory")),
    st.tuples(st.just("link"), st.sampled_from(["passwd", "outside.parquet", "model", "missing", "self"])),
)
PARQUET_DAMAGE = st.sampled_from(["zero-rows", "no-metadata", "junk-metadata", "metadata-missing-validation",
                                  "weird-basis", "nan-close", "inf-close", "negative-close", "string-close",
                                  "unsorted", "duplicate-dates", "no-date", "far-future", "one-row", "extra-column",
                                  "metadata-not-object", "validation-junk", "other-schema", "dates-as-text",
                                  "zero-factor"])
COMMANDS = {
    "data list": ["data", "list"], "data list --json": ["data", "list", "--json"],
    "data show": ["data", "show", GOOD], "data show hfq": ["data", "show", GOOD, "--adjust", "hfq"],
    "models list": ["models", "list"], "models list --json": ["models", "list", "--json"],
    "models show": ["models", "show", MODEL_ID], "models show --json": ["models", "show", MODEL_ID, "--json"],
    "models rm": ["models", "rm", MODEL_ID], "predict": ["predict", GOOD],
    "predict model": ["predict", GOOD, "--model", MODEL_ID], "predict naive": ["predict", GOOD, "--model", "naive"],
    "plot": ["plot", GOOD], "plot backtest": ["plot", GOOD, "--kind", "backtest"],
    "plot training": ["plot", GOOD, "--kind", "training"], "plot history": ["plot", GOOD, "--kind", "history"],
    "plot calibration": ["plot", GOOD, "--kind", "calibration"],
    "fetch sample": ["fetch", GOOD, "--source", "sample"],
    "backtest": ["backtest", GOOD, "--models", "naive,drift", "--test-days", "30", "--refit-every", "10"],
    "run": ["run", GOOD, "--source", "csv", "--retrain-after", "never", "--quiet"],
}
if HAS_DOCTOR:
    COMMANDS.update({"doctor": ["doctor"], "doctor --json": ["doctor", "--json"], "doctor --repair": ["doctor", "--repair"]})


def _damage_bytes(path: Path, damage: tuple, box: Box) -> None:
    kind = damage[0]
    if path.is_dir() and not path.is_symlink() and kind not in ("delete", "link"):
        kind, damage = "delete", ("delete",)
    original = path.read_bytes() if path.is_file() else b""
    if kind == "truncate":
        path.write_bytes(original[: int(len(original) * damage[1])])
    elif kind == "zero":
        path.write_bytes(b"\x00" * damage[1])
    elif kind == "flip":
        data = bytearray(original)
        for where, byte in damage[1]:
            if data:
                data[min(len(data) - 1, int(len(data) * where))] = byte
        path.write_bytes(bytes(data))
    elif kind == "binary":
        path.write_bytes(damage[1])
    elif kind == "text":
        path.write_text(damage[1], encoding="utf-8", errors="surrogatepass")
    elif kind in ("delete", "directory", "link"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        if kind == "directory":
            path.mkdir()
            (path / "inside").write_text("x")
        elif kind == "link":
            target = damage[1]
            path.symlink_to(path if target == "self" else box.sibling / target)


def _damage_json(path: Path, data, box: Box) -> str:
    """Replace or delete one node of the JSON document at ``path``; return what was done."""
    document = json.loads(path.read_text())
    trail: list = []
    node = document
    while isinstance(node, (dict, list)) and node and data.draw(st.integers(0, 2), label="descend") > 0:
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))), label="key")
        trail.append(key)
        node = node[key]
    action = data.draw(st.sampled_from(["replace", "replace", "delete"]), label="action")
    value = data.draw(JSON_JUNK, label="value")
    if not trail:
        document = value
    else:
        parent = document
        for key in trail[:-1]:
            parent = parent[key]
        if action == "delete":
            del parent[trail[-1]]
        else:
            parent[trail[-1]] = value
    path.write_text(json.dumps(document, allow_nan=True))
    return f"{action} {'.'.join(map(str, trail)) or '<root>'} = {_short(value, 60)}"


def _damage_parquet(path: Path, damage: str) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"forecast"])
    frame = table.to_pandas()
    if damage == "zero-rows":
        frame = frame.iloc[:0]
    elif damage == "one-row":
        frame = frame.iloc[-1:]
    elif damage == "nan-close":
        frame["close"] = np.nan
    elif damage == "inf-close":
        frame.loc[frame.index[-5:], "close"] = np.inf
    elif damage == "negative-close":
        frame["close"] = -frame["close"]
    elif damage == "string-close":
        frame["close"] = frame["close"].astype(str)
    elif damage == "unsorted":
        frame = frame.iloc[::-1].reset_index(drop=True)
    elif damage == "duplicate-dates":
        frame["date"] = frame["date"].iloc[0]
    elif damage == "no-date":
        frame = frame.drop(columns=["date"])
    elif damage == "far-future":
        frame["date"] = frame["date"].to_numpy().astype("datetime64[us]") + np.timedelta64(146_000, "D")  # past 2262
    elif damage == "extra-column":
        frame["extra"] = "x"
    elif damage == "dates-as-text":
        frame["date"] = frame["date"].dt.strftime("%d/%m/%Y")
    elif damage == "other-schema":
        frame = pd.DataFrame({"a": [1, 2, 3]})
    elif damage == "zero-factor":
        frame["adj_factor"] = 0.0
    out = pa.Table.from_pandas(frame, preserve_index=False)
    if damage == "no-metadata":
        out = out.replace_schema_metadata({})
        pq.write_table(out, path)
        return
    if damage == "junk-metadata":
        blob = b"{not json"
    elif damage == "metadata-not-object":
        blob = b"[1, 2]"
    else:
        if damage == "metadata-missing-validation":
            meta.pop("validation", None)
        elif damage == "weird-basis":
            meta["price_basis"] = "weird"
        elif damage == "validation-junk":
            meta["validation"] = {"rows": "x", "findings": [{"check": 5}]}
        blob = json.dumps(meta).encode()
    pq.write_table(out.replace_schema_metadata({**(out.schema.metadata or {}), b"forecast": blob}), path)


@fuzz_settings(50)
@given(target=st.sampled_from(sorted(TARGETS) + ["bars", "card", "card", "pointer"]), data=st.data(),
       commands=st.lists(st.sampled_from(sorted(COMMANDS)), min_size=1, max_size=3))
def test_fuzz_corrupted_store_and_registry_files(good_home, target, data, commands):
    test = "corrupt"
    with sandbox(good_home) as box:
        path = TARGETS[target](box)
        if target in ("card", "forecast", "backtest") and data.draw(st.booleans(), label="json-aware"):
            damage = "json: " + _damage_json(path, data, box)
        elif target == "bars" and data.draw(st.booleans(), label="parquet-aware"):
            damage = data.draw(PARQUET_DAMAGE, label="parquet damage")
            _damage_parquet(path, damage)
            damage = "parquet: " + damage
        else:
            raw = data.draw(BYTE_DAMAGE, label="byte damage")
            _damage_bytes(path, raw, box)
            damage = f"bytes: {tuple(_short(x, 60) for x in raw)}"
        context = f"{target} ({path.relative_to(box.home)}): {damage}"
        note(context)
        outside = box.outside()
        for name in commands:
            args = COMMANDS[name]
            _run_and_check(box, test, args, context)
            check_state(box.outside() == outside, test, args, "a file outside the home changed", context)
        assert_good_state(box, test, commands, context, tickers=[OTHER])  # the other ticker never suffers
        if target == "bars" and not path.is_symlink() and not path.is_dir():  # a link out of bars/ may be refused
            refetch = ["fetch", GOOD, "--source", "sample"]  # a re-fetch over an unreadable file must work
            check(cli(box.home, refetch), refetch, test, context, expect_ok=True)
            assert_good_state(box, test, refetch, context, tickers=[GOOD])
        check_state(box.outside() == outside, test, commands, "a file outside the home changed", context)
