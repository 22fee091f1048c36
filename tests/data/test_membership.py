"""``data.membership``: listings and index membership as date spans, built from a few hand-made snapshots.

A member's span runs from the first snapshot that has it to the day before the first snapshot without it (open
when it is still there at the last); membership is asked of a date, never before the first snapshot; every
value survives its dict round trip.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from forecast.data.membership import IndexMembership, Listing, Member, Span, Universe, UniverseInfo, UniverseMember
from forecast.errors import UnknownUniverseError

D = dt.date
SNAPSHOTS = ["20230131", "20230228", "20230331", "20230428"]


def snapshots(present: dict[str, list[int]]) -> pd.DataFrame:
    """One row per (ticker, snapshot it is in), the snapshots named by their position in SNAPSHOTS."""
    rows = [(ticker, SNAPSHOTS[i]) for ticker, where in present.items() for i in where]
    return pd.DataFrame(rows, columns=["con_code", "trade_date"])


def listing(list_date=D(2001, 8, 27), delist_date=None, status="L") -> Listing:
    return Listing("600519.SH", "贵州茅台", "白酒", "主板", status, list_date, delist_date)


# ---------------------------------------------------------------- listings


def test_a_company_is_listed_from_its_list_date_until_the_day_before_it_is_delisted():
    company = listing(D(2020, 1, 10), D(2022, 6, 1), status="D")
    assert not company.listed_on(D(2020, 1, 9))
    assert company.listed_on(D(2020, 1, 10))
    assert company.listed_on(D(2022, 5, 31))
    assert not company.listed_on(D(2022, 6, 1))


def test_a_company_without_a_list_date_is_never_listed():
    assert not listing(list_date=None).listed_on(D(2024, 1, 1))


def test_a_still_listed_company_is_listed_on_any_later_day():
    assert listing().listed_on(D(2099, 1, 1))


@pytest.mark.parametrize("delist", [None, D(2023, 3, 1)])
def test_a_listing_survives_its_dict_round_trip_with_dates_as_iso_text(delist):
    company = listing(delist_date=delist)
    data = company.to_dict()
    assert data["list_date"] == "2001-08-27"
    assert data["delist_date"] == (None if delist is None else "2023-03-01")
    assert Listing.from_dict(data) == company


# ---------------------------------------------------------------- spans and members


def test_a_span_contains_both_its_ends():
    span = Span(D(2023, 1, 31), D(2023, 2, 27))
    assert span.contains(D(2023, 1, 31)) and span.contains(D(2023, 2, 27))
    assert not span.contains(D(2023, 1, 30)) and not span.contains(D(2023, 2, 28))


def test_an_open_span_contains_every_later_day():
    assert Span(D(2023, 1, 31), None).contains(D(2030, 1, 1))


def test_a_member_belongs_on_a_day_any_of_its_spans_contains():
    member = Member("A", (Span(D(2023, 1, 1), D(2023, 1, 31)), Span(D(2023, 3, 1), None)))
    assert member.member_on(D(2023, 1, 15)) and member.member_on(D(2023, 4, 1))
    assert not member.member_on(D(2023, 2, 15))
    assert Member.from_dict(member.to_dict()) == member


# ---------------------------------------------------------------- from snapshots


def test_spans_end_the_day_before_the_first_snapshot_without_the_member():
    index = IndexMembership.from_snapshots("000300.SH", snapshots({"A": [0, 1, 2, 3], "B": [0, 1], "C": [2, 3]}))
    spans = {m.ticker: m.spans for m in index.members}
    assert spans["A"] == (Span(D(2023, 1, 31), None),)  # there at the last snapshot: still a member
    assert spans["B"] == (Span(D(2023, 1, 31), D(2023, 3, 30)),)  # gone at 2023-03-31
    assert spans["C"] == (Span(D(2023, 3, 31), None),)
    assert (index.first_snapshot, index.last_snapshot) == (D(2023, 1, 31), D(2023, 4, 28))


def test_a_member_that_leaves_and_returns_has_two_spans():
    index = IndexMembership.from_snapshots("000300.SH", snapshots({"A": [0, 2], "B": [0, 1, 2, 3]}))
    member = next(m for m in index.members if m.ticker == "A")
    assert member.spans == (Span(D(2023, 1, 31), D(2023, 2, 27)), Span(D(2023, 3, 31), D(2023, 4, 27)))


def test_members_are_sorted_by_ticker():
    index = IndexMembership.from_snapshots("000300.SH", snapshots({"C": [0], "A": [0], "B": [0]}))
    assert [m.ticker for m in index.members] == ["A", "B", "C"]


def test_the_members_on_a_day_are_those_whose_spans_hold_it():
    index = IndexMembership.from_snapshots("000300.SH", snapshots({"A": [0, 1, 2, 3], "B": [0, 1], "C": [2, 3]}))
    assert index.on(D(2023, 2, 15)) == ["A", "B"]
    assert index.on(D(2023, 3, 30)) == ["A", "B"]  # B's last day
    assert index.on(D(2023, 3, 31)) == ["A", "C"]
    assert index.on() == ["A", "C"]  # default: at the latest snapshot


def test_asking_before_the_first_snapshot_is_refused():
    index = IndexMembership.from_snapshots("000300.SH", snapshots({"A": [0]}))
    with pytest.raises(UnknownUniverseError, match="known from 2023-01-31"):
        index.on(D(2023, 1, 30))


def test_no_snapshots_is_no_index():
    with pytest.raises(UnknownUniverseError, match=r"no constituents of 123456\.SH"):
        IndexMembership.from_snapshots("123456.SH", pd.DataFrame({"con_code": [], "trade_date": []}))


def test_an_index_membership_survives_its_dict_round_trip():
    index = IndexMembership.from_snapshots("000300.SH", snapshots({"A": [0, 2], "B": [1, 2, 3]}))
    again = IndexMembership.from_dict(index.to_dict())
    assert again == index
    assert again.on(D(2023, 2, 28)) == ["B"]


# ---------------------------------------------------------------- universes


def test_a_universe_lists_its_tickers_in_order_and_counts_them():
    members = (UniverseMember("600519.SH", "贵州茅台"), UniverseMember("000001.SZ", ""))
    universe = Universe("csi300", "index", D(2023, 4, 28), members, "000300.SH", "from snapshots")
    assert universe.tickers == ["600519.SH", "000001.SZ"]
    data = universe.to_dict()
    assert data["count"] == 2
    assert data["as_of"] == "2023-04-28"
    assert Universe.from_dict(data) == universe


def test_a_universe_without_a_date_or_names_reads_back_with_defaults():
    data = {"name": "watchlist", "kind": "watchlist", "members": [{"ticker": "600519.SH"}]}
    universe = Universe.from_dict(data)
    assert universe.as_of is None and universe.index_code is None and universe.note == ""
    assert universe.members == (UniverseMember("600519.SH", ""),)


def test_universe_info_is_its_fields():
    info = UniverseInfo("csi300", "index", "CSI 300", True, "2024-01-01T00:00:00")
    assert info.to_dict() == {"name": "csi300", "kind": "index", "description": "CSI 300", "cached": True,
                              "fetched_at": "2024-01-01T00:00:00"}
