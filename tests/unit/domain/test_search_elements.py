"""Search-element rows (``/data/search/elements[/{type}]``) derived from the registry."""

from __future__ import annotations

import pytest

from xnatd.domain import search_elements, types
from xnatd.errors import NotFound


def _names() -> list[str]:
    return [row["ELEMENT_NAME"] for row in search_elements.element_rows()[1]]


def test_element_rows_have_xnat_columns_and_string_values() -> None:
    columns, rows = search_elements.element_rows()
    assert columns == ["ELEMENT_NAME", "SINGULAR", "PLURAL", "SECURED", "COUNT"]
    assert rows
    for row in rows:
        assert list(row) == columns
        assert all(isinstance(v, str) for v in row.values())


def test_elements_are_the_concrete_objects_with_ids() -> None:
    names = _names()
    for expected in ("xnat:projectData", "xnat:subjectData", "xnat:mrSessionData", "xnat:mrScanData"):
        assert expected in names
    for nested in ("xnat:demographicData", "xnat:resourceCatalog", "xnat:projectParticipant"):
        assert nested not in names
    assert not any(types.get(n).abstract for n in names)
    assert len(names) == len(set(names))


def test_element_descriptions_and_security() -> None:
    rows = {row["ELEMENT_NAME"]: row for row in search_elements.element_rows()[1]}
    assert rows["xnat:mrSessionData"]["SINGULAR"] == "MR Session"
    assert rows["xnat:mrSessionData"]["PLURAL"] == "MR Sessions"
    assert rows["xnat:subjectData"]["SECURED"] == "true"
    assert rows["xnat:projectData"]["SECURED"] == "true"
    assert rows["xnat:mrScanData"]["SECURED"] == "false"


def test_counts_fill_the_count_column() -> None:
    rows = search_elements.element_rows({"xnat:subjectData": 3})[1]
    counts = {row["ELEMENT_NAME"]: row["COUNT"] for row in rows}
    assert counts["xnat:subjectData"] == "3"
    assert counts["xnat:mrSessionData"] == "0"


def test_field_rows_have_xnat_columns() -> None:
    columns, rows = search_elements.field_rows("xnat:subjectData")
    assert columns[:6] == ["FIELD_ID", "HEADER", "SUMMARY", "TYPE", "REQUIRES_VALUE", "DESC"]
    assert "ELEMENT_NAME" in columns
    for row in rows:
        assert list(row) == columns
        assert row["ELEMENT_NAME"] == "xnat:subjectData"
        assert all(isinstance(v, str) for v in row.values())


@pytest.mark.parametrize("element", _names())
def test_field_ids_are_upper_case_unique_and_resolvable(element: str) -> None:
    # xnatpy sets every FIELD_ID as a getter-less class attribute: a lower-case ID would hide the
    # property of the same name. IDs with "=" are skipped by xnatpy, so none are produced.
    ids = [fid for fid, _ in search_elements.search_fields(element)]
    assert ids
    assert len(ids) == len(set(ids))
    for fid in ids:
        assert fid == fid.upper() and any(ch.isalpha() for ch in fid) and "=" not in fid
        field = search_elements.field_for_id(element, fid.lower())
        assert field is not None
        assert types.resolve_field(element, field.path) is not None, (element, fid, field.path)


def test_subject_fields_include_demographics() -> None:
    rows = {row["FIELD_ID"]: row for row in search_elements.field_rows("xnat:subjectData")[1]}
    assert rows["GENDER"]["TYPE"] == "string"
    assert rows["AGE"]["TYPE"] == "integer"
    assert rows["GENDER"]["HEADER"] == "Gender"
    gender = search_elements.field_for_id("xnat:subjectData", "GENDER")
    assert gender is not None and gender.path == "demographics/gender"


def test_field_rows_accept_element_names_and_comma_lists() -> None:
    rows = search_elements.field_rows("xnat:MRSession, xnat:subjectData")[1]
    assert {row["ELEMENT_NAME"] for row in rows} == {"xnat:mrSessionData", "xnat:subjectData"}
    assert any(row["FIELD_ID"] == "DATE" and row["TYPE"] == "date" for row in rows)


@pytest.mark.parametrize("element", ["xnat:nope", "xnat:demographicData", "xnat:imageSessionData", " , "])
def test_unknown_or_unsearchable_elements_are_not_found(element: str) -> None:
    with pytest.raises(NotFound):
        search_elements.field_rows(element)
