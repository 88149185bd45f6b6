"""The data-type registry: lookups, inheritance, field addressing, value checking."""

from __future__ import annotations

import pytest

from xnatd.domain import types
from xnatd.errors import InvalidInput


def test_lookup_by_type_or_element_name_any_case() -> None:
    assert types.get("xnat:MRSession").xsi_type == "xnat:mrSessionData"
    assert types.get("XNAT:MRSESSIONDATA").xsi_type == "xnat:mrSessionData"
    with pytest.raises(InvalidInput):
        types.get("foo:bar")


def test_subtypes_of_a_base_type() -> None:
    sessions = types.subtypes("xnat:imageSessionData")
    assert {"xnat:mrSessionData", "xnat:ctSessionData", "xnat:petSessionData"} <= set(sessions)
    assert "xnat:imageSessionData" not in sessions  # abstract
    assert types.is_a("xnat:qcAssessmentData", "xnat:experimentData")


@pytest.mark.parametrize(
    ("xsi_type", "key", "path"),
    [
        (
            "xnat:subjectData",
            "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender",
            "demographics/gender",
        ),
        ("xnat:subjectData", "gender", "demographics/gender"),
        ("xnat:subjectData", "age", "demographics/age"),
        ("xnat:mrSessionData", "scanner", "scanner"),
        ("xnat:mrSessionData", "xnat:mrSessionData/scanner/manufacturer", "scanner/manufacturer"),
        ("xnat:mrScanData", "xnat:mrScanData/type", "type"),
        ("xnat:mrScanData", "xnat:imageScanData/series_description", "series_description"),
        ("xnat:mrScanData", "parameters/tr", "parameters/tr"),
        ("xnat:projectData", "pi_firstname", "PI/firstname"),
    ],
)
def test_fields_resolve_from_xpaths_and_shortcuts(xsi_type: str, key: str, path: str) -> None:
    fl = types.resolve_field(xsi_type, key)
    assert fl is not None and fl.path == path


def test_values_are_checked_and_typed() -> None:
    age = types.resolve_field("xnat:subjectData", "age")
    gender = types.resolve_field("xnat:subjectData", "gender")
    date = types.resolve_field("xnat:mrSessionData", "date")
    assert age is not None and gender is not None and date is not None
    assert types.coerce(age, "25") == 25
    assert types.coerce(gender, "FEMALE") == "female"
    assert types.coerce(date, "06/04/2014") == "2014-06-04"
    assert types.coerce(date, "NULL") is None
    with pytest.raises(InvalidInput):
        types.coerce(age, "old")
    with pytest.raises(InvalidInput):
        types.coerce(gender, "robot")


def test_modalities_choose_session_and_scan_types() -> None:
    assert types.session_type_for_modality("PT") == "xnat:petSessionData"
    assert types.scan_type_for_modality("CT") == "xnat:ctScanData"
    assert types.session_type_for_modality("ZZ") == "xnat:otherDicomSessionData"
