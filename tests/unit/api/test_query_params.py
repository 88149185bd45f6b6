"""Query-string parsing: XNAT's split at the first ``=``, except inside an XPath predicate."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from xnatd.api.archive import query_params


def _params(query: str) -> list[tuple[str, str]]:
    return query_params(Request({"type": "http", "query_string": query.encode("latin-1"), "headers": []}))


@pytest.mark.parametrize(
    "query",
    [
        # raw, as curl -g sends it; percent-encoded, as pyxnat sends it
        "xsiType=xnat:subjectData&xnat:subjectData/fields/field[name=group]/field=patient",
        "xsiType=xnat%3AsubjectData&xnat%3AsubjectData/fields/field%5Bname%3Dgroup%5D/field=patient",
    ],
)
def test_predicates_keep_their_equals_sign(query: str) -> None:
    assert _params(query) == [
        ("xsiType", "xnat:subjectData"),
        ("xnat:subjectData/fields/field[name=group]/field", "patient"),
    ]


def test_values_keep_theirs() -> None:
    assert _params("fields/field[name=a]/field=x=y&label=b%3Dc&columns=ID,label") == [
        ("fields/field[name=a]/field", "x=y"),
        ("label", "b=c"),
        ("columns", "ID,label"),
    ]
    assert _params("demographics[@xsi:type=xnat:demographicData]/gender=male") == [
        ("demographics[@xsi:type=xnat:demographicData]/gender", "male")
    ]
    assert _params("broken[name=x") == [("broken[name", "x")]
