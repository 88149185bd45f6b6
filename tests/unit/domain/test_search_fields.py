"""Search fields (XNAT's display-field IDs, XPaths, custom variables), headers, and how criteria match."""

from __future__ import annotations

import pytest

from xnatd.domain import display_fields, search_elements, search_fields, search_match
from xnatd.domain import search as S
from xnatd.errors import InvalidInput


@pytest.mark.parametrize(
    ("element", "field", "path", "fact"),
    [
        ("xnat:subjectData", "SUBJECT_ID", "ID", None),
        ("xnat:subjectData", "subjectid", "ID", None),
        ("xnat:subjectData", "GENDER", "demographics/gender", None),
        ("xnat:subjectData", "INSERT_DATE", None, "insert_date"),
        ("xnat:projectData", "PROJECT_OWNERS", None, "owners"),
        ("xnat:projectData", "PROJ_MR_COUNT", None, "count:xnat:mrSessionData"),
        ("xnat:mrSessionData", "SUBJECT_ID", "subject_ID", None),
        ("xnat:mrSessionData", "AGE", None, "age"),  # XNAT's computed age wins over the stored one
        ("xnat:mrScanData", "PARAMETERS_TR", "parameters/tr", None),
        ("xnat:mrScanData", "SESSION_LABEL", None, "session_label"),
    ],
)
def test_field_ids(element: str, field: str, path: str | None, fact: str | None) -> None:
    d = search_fields.resolve(element, field)
    assert (d.path, d.fact) == (path, fact)


def test_xpaths_take_the_display_field_over_that_path() -> None:
    # xnatpy's query objects name their columns by XPath; XNAT answers SESSION_ID for the ID
    assert search_fields.resolve("xnat:mrSessionData", "xnat:mrSessionData/ID").id == "SESSION_ID"
    assert search_fields.resolve("xnat:mrSessionData", "xnat:mrSessionData/subject_ID").id == "SUBJECT_ID"
    assert search_fields.resolve("xnat:subjectData", "xnat:subjectData/ID").id == "SUBJECT_ID"
    gender = search_fields.resolve(
        "xnat:subjectData", "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender"
    )
    assert gender.path == "demographics/gender" and gender.derive is None
    assert search_fields.resolve("xnat:mrSessionData", "xnat:experimentData/label").path == "label"


def test_custom_variables_by_field_map_and_by_xpath() -> None:
    by_id = search_fields.resolve("xnat:subjectData", "XNAT_SUBJECTDATA_FIELD_MAP", "site")
    by_path = search_fields.resolve("xnat:subjectData", "fields/field[name=site]/field")
    assert by_id.custom == by_path.custom == "site"
    assert by_id.path == by_path.path
    assert (
        search_fields.header("xnat:subjectData", "xnat:subjectData", by_id)
        == "xnat_subjectdata_field_map_site"
    )
    with pytest.raises(InvalidInput):
        search_fields.resolve("xnat:subjectData", "XNAT_SUBJECTDATA_FIELD_MAP")


@pytest.mark.parametrize(
    ("element", "field"),
    [
        ("xnat:subjectData", "NOPE"),
        ("xnat:subjectData", "xnat:subjectData/nope"),
        ("xnat:subjectData", "xnat:mrSessionData/date"),  # an XPath of another type
        ("xnat:projectData", "SESSION_ID"),
    ],
)
def test_unknown_fields_are_refused(element: str, field: str) -> None:
    with pytest.raises(InvalidInput):
        search_fields.resolve(element, field)


def test_headers_are_lower_case_ids_prefixed_outside_the_root() -> None:
    gender = search_fields.resolve("xnat:subjectData", "GENDER_TEXT")
    assert search_fields.header("xnat:subjectData", "xnat:subjectData", gender) == "gender_text"
    assert (
        search_fields.header("xnat:MRSession", "xnat:subjectData", gender) == "xnat_subjectdata_gender_text"
    )
    assert search_fields.header("xnat:mrSessionData", "xnat:MRSession", gender) == "gender_text"


def test_the_catalogue_lists_the_computed_fields_pyxnat_reads() -> None:
    ids = {row["FIELD_ID"] for row in search_elements.field_rows("xnat:projectData")[1]}
    for wanted in ("ID", "NAME", "INSERT_DATE", "PROJECT_ACCESS", "PROJECT_OWNERS", "PROJ_UT_COUNT"):
        assert wanted in ids
    rows = search_elements.field_rows("xnat:mrSessionData")[1]
    session_ids = [row["FIELD_ID"] for row in rows]
    assert len(session_ids) == len(set(session_ids))
    assert {"SUBJECT_ID", "PROJECT", "INSERT_DATE", "SESSION_ID", "SUBJECT_LABEL"} <= set(session_ids)
    assert not any(d.only and d.id == "AGE" for d in display_fields.extra_fields("xnat:qcAssessmentData"))


def test_every_default_column_resolves() -> None:
    for element in ("xnat:projectData", "xnat:subjectData", "xnat:mrSessionData", "xnat:ctScanData"):
        assert search_fields.default_columns(element)
    subject = [d.id for d in search_fields.default_columns("xnat:subjectData")]
    assert {"PROJECT", "SUBJECTID"} <= set(subject)  # what xnatpy's SubjectData URIs are made of


def _test(op: str, value: str, kind: str = "string") -> search_match.Test:
    return search_match.compile_test(S.Criterion(S.FieldRef("xnat:subjectData", "X"), op, value), kind)


@pytest.mark.parametrize(
    ("op", "value", "kind", "stored", "expected"),
    [
        (S.GT, "30", "integer", 42, True),
        (S.GT, "30", "integer", "4", False),  # numbers, not text order
        (S.LE, "30", "float", 30.0, True),
        (S.EQ, "30", "float", "30.0", True),
        (S.EQ, "Alice", "string", "Alice", True),
        (S.EQ, "alice", "string", "Alice", False),
        (S.NE, "Alice", "string", None, False),  # NULL is neither equal nor unequal
        (S.LIKE, "%li%", "string", "ALICE", True),
        (S.LIKE, "a*e", "string", "alice", True),
        (S.LIKE, "a_ice", "string", "alice", True),
        (S.LIKE, "a.ice", "string", "alice", False),
        (S.NOT_LIKE, "%li%", "string", "bob", True),
        (S.NOT_LIKE, "%li%", "string", None, False),
        (S.IS_NULL, "", "string", None, True),
        (S.IS_NULL, "", "string", "", True),
        (S.IS_NOT_NULL, "", "string", "x", True),
        (S.BETWEEN, "20 AND 40", "integer", 40, True),
        (S.BETWEEN, "20 AND 40", "integer", 41, False),
        (S.GE, "01/02/2020", "date", "2020-01-02", True),  # xnatpy's MM/DD/YYYY
        (S.LT, "2020-01-02", "date", "2020-01-02 23:59:59.000", False),  # timestamps compare by day
        (S.GT, "9", "string", "10", True),  # text holding numbers (custom variables) compares as numbers
        (S.GT, "b", "string", "c", True),
    ],
)
def test_comparisons(op: str, value: str, kind: str, stored: object, expected: bool) -> None:
    assert _test(op, value, kind)(stored) is expected


@pytest.mark.parametrize(("op", "value", "kind"), [(S.GT, "abc", "integer"), (S.EQ, "13/13/2020", "date")])
def test_values_that_cannot_be_compared_are_refused(op: str, value: str, kind: str) -> None:
    with pytest.raises(InvalidInput):
        _test(op, value, kind)
