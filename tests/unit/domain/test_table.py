"""Listing parameters and the Table shape shared by every listing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from xnatd.domain.table import ListQuery, matches, shape
from xnatd.errors import InvalidInput


def getter(rec: Mapping[str, Any], col: str) -> str | None:
    return rec.get(col)


RECORDS = [{"ID": str(i), "label": f"L{i:02d}", "URI": f"/data/x/{i}"} for i in range(1, 13)]


def test_params_split_into_columns_filters_sort_and_paging() -> None:
    q = ListQuery.from_params(
        [
            ("columns", "ID,label"),
            ("format", "json"),
            ("label", "L1*"),
            ("sortBy", "ID"),
            ("sortOrder", "DESC"),
            ("offset", "1"),
            ("limit", "2"),
            ("xnat:mrSessionData/fieldStrength", "3.0"),
        ]
    )
    assert q.columns == ["ID", "label"]
    assert q.filters == {"label": "L1*", "xnat:mrSessionData/fieldStrength": "3.0"}
    assert (q.sort_by, q.descending, q.offset, q.limit) == (["ID"], True, 1, 2)


def test_bad_paging_values_are_refused_plainly() -> None:
    with pytest.raises(InvalidInput, match="whole number"):
        ListQuery.from_params([("limit", "ten")])
    with pytest.raises(InvalidInput, match="negative"):
        ListQuery.from_params([("offset", "-1")])


def test_filter_sort_page_and_project() -> None:
    q = ListQuery.from_params([("label", "L1*"), ("sortBy", "ID"), ("sortOrder", "DESC"), ("limit", "2")])
    table = shape(RECORDS, q, ["ID", "label"], getter)
    assert [r["ID"] for r in table.rows] == ["12", "11"]  # numeric sort, not text sort
    assert table.columns == ["ID", "label", "URI"]
    assert table.total is None  # paged listings omit totalRecords, as XNAT does


def test_unpaged_listing_counts_and_leaves_unknown_columns_out_of_rows() -> None:
    table = shape(RECORDS, ListQuery(columns=["ID", "nothing"]), ["ID"], getter)
    assert table.total == 12
    assert "nothing" in table.columns
    assert "nothing" not in table.rows[0]


def test_matches_wildcards_and_alternatives() -> None:
    assert matches("Subject_01", "subject_*")
    assert matches("MR", "CT,MR")
    assert not matches("MR1", "MR")


def test_a_filter_on_a_column_the_records_do_not_have_is_ignored() -> None:
    """XNAT ignores query parameters it does not know (``?accessible=true``, ``?file_stats=true``)."""
    q = ListQuery.from_params([("accessible", "true"), ("label", "L0*")])
    assert [r["ID"] for r in shape(RECORDS, q, ["ID"], getter).rows] == [str(i) for i in range(1, 10)]
