"""XNAT's scan type mapping (domain/scan_types.py)."""

from __future__ import annotations

from xnatd.domain.scan_types import history_of, standardize, type_for


def test_descriptions_are_compared_without_case_spaces_and_marks() -> None:
    assert standardize("t1_MP-RAGE *sag ") == "T1MPRAGESAG"
    assert standardize(None) == ""


def test_the_type_comes_from_the_history_else_the_description_else_unknown() -> None:
    known = history_of([("Local izer", "LOC", None, None), ("t2", "", None, None)])
    assert type_for("LOCAL_IZER", None, None, known) == "LOC"
    assert type_for("t2", None, None, known) == "t2", "an untyped scan teaches nothing"
    assert type_for("INVALID: localizer", None, None, known) == "LOC"
    assert type_for("", None, None, known) == "unknown"
    assert type_for("INVALID: ", None, None, known) == "unknown"


def test_several_types_are_told_apart_as_xnat_does() -> None:
    known = history_of(
        [
            ("dwi", "DTI", "60", "ORIGINAL\\PRIMARY"),
            ("dwi", "ADC", "1", "DERIVED\\PRIMARY\\ADC"),
            ("dwi", "TRACE", None, None),
        ]
    )
    assert type_for("dwi", None, "derived\\primary\\adc", known) == "ADC"  # image type first
    assert type_for("dwi", "60", "OTHER", known) == "DTI"  # then frames
    assert type_for("dwi", 7, None, known) == "TRACE"  # then the one without an image type
    assert type_for("dwi", 7, "OTHER", known) == "DTI"  # else the first
