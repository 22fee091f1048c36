"""Hostile inputs, CSV files (moved from tests/hostile/test_fuzz_core.py, category 1): imports over a good series.

Hypothesis mangles the bundled sample (cells, dates, headers, encodings, garbage lines) and imports it over
the good home's series; the property and the good home are tests/hostile/test_fuzz_core.py's (see its docstring).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hypothesis import given, note
from hypothesis import strategies as st

from tests.hostile import test_fuzz_core as test_fuzz
from tests.hostile.test_fuzz_core import (
    GOOD,
    HAS_REPLACE,
    OTHER,
    SAMPLE_LINES,
    SAMPLE_ROWS,
    _short,
    _yahoo_text,
    assert_good_state,
    check,
    check_state,
    cli,
    fuzz_settings,
    sandbox,
)

# the suite's fixtures, from its shared core (fuzz_summary and no_network_fits are autouse for this module)
good_home, fuzz_summary, no_network_fits = test_fuzz.good_home, test_fuzz.fuzz_summary, test_fuzz.no_network_fits

# CSV imports over a good series

NASTY_NUMBERS = ["", " ", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400", "9" * 400,
                 "-" + "9" * 400, "1" + "0" * 399 + ".5", "0", "-0", "0.0", "-1", "-1830.5", "1e-300", "1e300",
                 "abc", "1,830.00", "1_000", "0x10", "１８３０", "٣", "True", "None", "null", " 12 ", "12 34",
                 '"12"', "1830.", ".5", "+5", "--5", "1e", "e5", "\x00", "\t"]
NASTY_DATES = ["", "1677-09-21", "1677-09-22", "1600-01-01", "2262-04-11", "2262-04-12", "2263-01-01", "2099-01-02",
               "2099-12-31", "9999-12-31", "0001-01-01", "2020-02-30", "2020-13-01", "2020-00-10", "20200102",
               "02/01/2020", "13/01/2020", "01/13/2020", "2020/1/2", "2020.01.02", "Jan 2, 2020",
               "2020-01-02T15:00:00", "2020-01-02 00:00:00+08:00", "1e10", "-1", "0", "yesterday", "NaT", "nan",
               "2020-01-02\x00", "99999999", "00000000", "20201301", "1/2/20", "2020-1-2"]
GARBAGE_LINES = ["", ",,,,,,", "\x00\x01\x02", "<html><body>502 Bad Gateway</body></html>", '"unterminated,quote',
                 "date,open,close,high,low,volume,code", "# a comment", "\ufeffdate,close", "1,2,3,4,5,6,7,8,9,10,11,12",
                 "ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount"]
HEADER_NAMES = ["", "date", "Date", "close", "Close", "Adj Close", "volume", "code", "ts_code", "trade_date", "vol",
                "open", "DATE", " date", "date ", "Day", "Last", "Vol", "high", "low", "amount", "Unnamed: 0"]
DATE_FORMATS = ["%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%Y/%m/%d", "%d.%m.%Y", "%b %d %Y", "%Y-%m-%d %H:%M", "%y-%m-%d"]

number_values = st.one_of(st.sampled_from(NASTY_NUMBERS), st.text(max_size=8),
                          st.floats().map(repr), st.integers(-10**30, 10**30).map(str))
date_values = st.one_of(st.sampled_from(NASTY_DATES), st.text(max_size=12),
                        st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(lambda d: d.isoformat()))
garbage_lines = st.one_of(st.sampled_from(GARBAGE_LINES), st.text(max_size=40))
index = st.integers(0, 10**4)

csv_operations = st.one_of(
    st.tuples(st.just("cell"), index, st.integers(0, 12), st.one_of(number_values, date_values)),
    st.tuples(st.just("date"), index, date_values),
    st.tuples(st.just("column"), st.integers(0, 12), st.one_of(number_values, date_values)),
    st.tuples(st.just("drop"), index, st.integers(1, 60)),
    st.tuples(st.just("dup"), index, st.integers(1, 5)),
    st.tuples(st.just("swap"), index, index),
    st.tuples(st.just("reverse")),
    st.tuples(st.just("shuffle"), st.integers(0, 2**32)),
    st.tuples(st.just("insert"), index, garbage_lines),
    st.tuples(st.just("header"), st.integers(0, 12), st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=8))),
    st.tuples(st.just("drop_column"), st.integers(0, 12)),
    st.tuples(st.just("negate"), st.integers(0, 12), index, st.integers(1, 200)),
    st.tuples(st.just("scale"), st.integers(0, 12), st.sampled_from([0.0, -1.0, 1e300, 1e-300, 1e6])),
    st.tuples(st.just("adj_zero"), index, st.integers(1, 200)),
    st.tuples(st.just("shift_years"), st.sampled_from([79, 90, 250, 300, -340, -2000, 7000])),
    st.tuples(st.just("mixed_dates"), index, st.integers(1, 60), st.sampled_from(DATE_FORMATS)),
    st.tuples(st.just("ragged"), index, st.integers(-3, 3)),
    st.tuples(st.just("truncate_rows"), st.integers(0, 5)),
)


@dataclass
class CsvCase:
    layout: str
    start: int
    operations: list
    delimiter: str
    newline: str
    bom: bool
    encoding: str
    quote: bool
    cut: float | None
    tail: bytes
    name: str
    flags: list

    def describe(self) -> str:
        ops = [tuple(_short(x, 30) for x in op) for op in self.operations]
        return (f"layout={self.layout} rows[{self.start}:{self.start + 200}] ops={ops} delimiter={self.delimiter!r} "
                f"newline={self.newline!r} bom={self.bom} encoding={self.encoding} quote={self.quote} cut={self.cut} "
                f"tail={self.tail!r} flags={self.flags}")


def _table(layout: str, rows: list[list[str]]) -> tuple[list[str], list[list[str]], int, str]:
    """(header, body, date column, date format) for the sample's ``rows`` in ``layout``."""
    if layout == "legacy":
        return SAMPLE_LINES[0].split(","), [list(r) for r in rows], 1, "%Y-%m-%d"
    if layout == "yahoo":
        lines = _yahoo_text(rows).splitlines()
        return lines[0].split(","), [line.split(",") for line in lines[1:]], 0, "%Y-%m-%d"
    if layout == "pro":
        header = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount"]
        body, previous = [], None
        for r in rows:
            close = float(r[3])
            pre = previous if previous is not None else close
            body.append(["600519.SH", r[1].replace("-", ""), r[2], r[4], r[5], r[3], f"{pre:.3f}", f"{close - pre:.3f}",
                         f"{(close / pre - 1) * 100:.4f}", r[6], f"{float(r[6]) * close / 10:.3f}"])
            previous = close
        return header, body[::-1], 1, "%Y%m%d"
    if layout == "generic":
        return ["Day", "Last", "Vol"], [[r[1], r[3], r[6]] for r in rows], 0, "%Y-%m-%d"
    return ["date", "close"], [[r[1], r[3]] for r in rows], 0, "%Y-%m-%d"  # minimal


def _reformat(text: str, source_format: str, target_format: str) -> str:
    try:
        return dt.datetime.strptime(text.strip(), source_format).strftime(target_format)
    except ValueError:
        return text


def _shift_year(text: str, fmt: str, years: int) -> str:
    try:
        day = dt.datetime.strptime(text.strip(), fmt).date()
    except ValueError:
        return text
    year = min(9999, max(1, day.year + years))
    try:
        moved = day.replace(year=year)
    except ValueError:
        moved = day.replace(year=year, day=28)
    return moved.strftime(fmt.replace("%Y", f"{moved.year:04d}"))


def _apply(operation: tuple, header: list[str], body: list[list[str]], date_col: int, date_fmt: str) -> None:
    kind = operation[0]
    n = len(body)
    width = max([len(header), *(len(r) for r in body)]) or 1
    if kind == "cell" and n:
        row = body[operation[1] % n]
        if row:
            row[operation[2] % len(row)] = operation[3]
    elif kind == "date" and n:
        row = body[operation[1] % n]
        if len(row) > date_col:
            row[date_col] = operation[2]
    elif kind == "column":
        col = operation[1] % width
        for row in body:
            if len(row) > col:
                row[col] = operation[2]
    elif kind == "drop" and n:
        start = operation[1] % n
        del body[start:start + operation[2]]
    elif kind == "dup" and n:
        at = operation[1] % n
        body[at:at] = [list(body[at]) for _ in range(operation[2])]
    elif kind == "swap" and n:
        i, j = operation[1] % n, operation[2] % n
        body[i], body[j] = body[j], body[i]
    elif kind == "reverse":
        body.reverse()
    elif kind == "shuffle":
        import random

        random.Random(operation[1]).shuffle(body)
    elif kind == "insert":
        body.insert(operation[1] % (n + 1), [operation[2]])
    elif kind == "header" and header:
        header[operation[1] % len(header)] = operation[2]
    elif kind == "drop_column":
        col = operation[1] % width
        for row in [header, *body]:
            if len(row) > col:
                del row[col]
    elif kind in ("negate", "scale"):
        col = operation[1] % width
        rows = body[operation[2] % n: operation[2] % n + operation[3]] if kind == "negate" and n else body
        for row in rows:
            if len(row) > col and col != date_col:
                try:
                    value = float(row[col])
                except ValueError:
                    continue
                row[col] = repr(-value if kind == "negate" else value * operation[2])
    elif kind == "adj_zero" and n and "Adj Close" in header:
        col = header.index("Adj Close")
        start = operation[1] % n
        for row in body[start:start + operation[2]]:
            if len(row) > col:
                row[col] = "0"
    elif kind == "shift_years":
        for row in body:
            if len(row) > date_col:
                row[date_col] = _shift_year(row[date_col], date_fmt, operation[1])
    elif kind == "mixed_dates" and n:
        start = operation[1] % n
        for row in body[start:start + operation[2]]:
            if len(row) > date_col:
                row[date_col] = _reformat(row[date_col], date_fmt, operation[3])
    elif kind == "ragged" and n:
        row = body[operation[1] % n]
        if operation[2] < 0:
            del row[operation[2]:]
        else:
            row.extend(["1.0"] * operation[2])
    elif kind == "truncate_rows":
        del body[operation[1]:]


def render_csv(case: CsvCase) -> bytes:
    header, body, date_col, date_fmt = _table(case.layout, SAMPLE_ROWS[case.start:case.start + 200])
    for operation in case.operations:
        _apply(operation, header, body, date_col, date_fmt)

    def line(cells: list[str]) -> str:
        return case.delimiter.join(f'"{c}"' if case.quote else c for c in cells)

    text = case.newline.join(line(r) for r in [header, *body]) + case.newline
    if case.bom:
        text = "\ufeff" + text
    data = text.encode(case.encoding, errors="replace")
    if case.cut is not None:
        data = data[: int(len(data) * case.cut)]
    return data + case.tail


@st.composite
def csv_cases(draw) -> CsvCase:
    layout = draw(st.sampled_from(["legacy", "legacy", "yahoo", "pro", "generic", "minimal"]))
    flags = []
    if layout == "generic":
        flags += ["--columns", draw(st.sampled_from(["date=Day,close=Last,volume=Vol", "date=Day,close=Last",
                                                     "date=Day,close=Nope", "date=Day", "close=Last,date=Day,open=Last",
                                                     "bogus", "date=Day,,close=Last", "date=Day,close=Day"]))]
    if draw(st.integers(0, 5)) == 0:
        flags += ["--date-format", draw(st.sampled_from(["%Y-%m-%d", "%Y%m%d", "%d/%m/%Y", "%Y", "%Q", "", "%s", "%",
                                                         "%Y-%m-%d %H", "%z"]))]
    if draw(st.integers(0, 4)) == 0:
        flags.append("--strict")
    if HAS_REPLACE and draw(st.integers(0, 4)) > 0:
        flags.append("--replace")
    if draw(st.integers(0, 5)) == 0:
        flags += ["--adjust", draw(st.sampled_from(["hfq", "none", "qfq"]))]
    return CsvCase(
        layout=layout,
        start=draw(st.integers(0, len(SAMPLE_ROWS) - 200)),
        operations=draw(st.lists(csv_operations, max_size=5)),
        delimiter=draw(st.sampled_from([","] * 12 + [";", "\t", "|", " "])),
        newline=draw(st.sampled_from(["\n"] * 4 + ["\r\n", "\r"])),
        bom=draw(st.integers(0, 6)) == 0,
        encoding=draw(st.sampled_from(["utf-8"] * 16 + ["utf-16", "latin-1", "gb18030", "utf-32"])),
        quote=draw(st.integers(0, 8)) == 0,
        cut=draw(st.one_of(*[st.none()] * 5, st.floats(0, 1))),
        tail=draw(st.sampled_from([b""] * 7 + [b"\xff\xfe", b"\x00", b"\n\n\n", b",,,,\n", b"\x1a"])),
        name=draw(st.sampled_from(["bars.csv", "600519.SH.csv", "AAPL.csv", "data.txt", "noext", "ü 价格.csv"])),
        flags=flags,
    )


@fuzz_settings(60)
@given(case=csv_cases(), ticker=st.sampled_from([GOOD, GOOD, None, OTHER, "sh600519", "600519"]))
def test_fuzz_csv_import_over_a_good_series(good_home, case, ticker):
    test = "csv"
    with sandbox(good_home) as box:
        path = box.root / "input" / case.name
        path.parent.mkdir()
        path.write_bytes(render_csv(case))
        context = case.describe()
        note(context)
        before, outside = box.stored(), box.outside()
        args = ["fetch", *([ticker] if ticker else []), "--source", "csv", "--file", str(path), *case.flags]
        result = cli(box.home, args)
        check(result, args, test, context)
        after = box.stored()
        changed = [name for name in after if before.get(name) != after[name]]
        if result.exit_code != 0:
            check_state(not changed, test, args, f"a failed import (exit {result.exit_code}) changed {changed}", context)
        else:
            check_state(len(changed) <= 1, test, args, f"one import changed several series: {changed}", context)
        assert_good_state(box, test, args, context,
                          tickers=[name[: -len(".parquet")] for name in after])  # every stored series shows
        for name in changed:  # what an import accepted must be usable
            predict = ["predict", name[: -len(".parquet")], "--model", "naive"]
            check(cli(box.home, predict), predict, test, f"after {args!r}; {context}")
        check_state(box.outside() == outside, test, args, "a file outside the home changed", context)


