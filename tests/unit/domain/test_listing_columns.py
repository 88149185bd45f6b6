"""How a listing column names an object and a field: XNAT's listing shortcuts, headers and joins."""

from __future__ import annotations

import pytest

from xnatd.domain import listing_columns as lc
from xnatd.domain import types
from xnatd.domain.display_fields import LISTING_SHORTCUTS

EXPERIMENTS, SUBJECTS, SCANS = "xnat:experimentData", "xnat:subjectData", "xnat:imageScanData"


def test_every_shortcut_names_a_field_the_registry_knows() -> None:
    for default, table in LISTING_SHORTCUTS.items():
        for name, xpath in table.items():
            if (default, name) == ("xnat:projectData", "alias"):  # the project row's own key
                continue
            assert lc.resolve(default, default, xpath) is not None, (default, name, xpath)
            assert lc.header(default, xpath) == name or table[lc.header(default, xpath)] == xpath


@pytest.mark.parametrize(
    ("default", "text", "header"),
    [
        (EXPERIMENTS, "xnat:subjectData/label", "subject_label"),
        (EXPERIMENTS, "xnat:imagesessiondata/label", "session_label"),
        (EXPERIMENTS, "xnat:subjectassessordata/subject_id", "subject_ID"),
        (EXPERIMENTS, "xnat:mrSessionData/subject_id", "xnat:mrsessiondata/subject_id"),
        (EXPERIMENTS, "xnat:imagesessiondata/date", "xnat:imagesessiondata/date"),
        (EXPERIMENTS, "xnat:imageScanData/ID", "xnat:imagescandata/id"),
        (EXPERIMENTS, "subject_label", "subject_label"),
        (SCANS, "xnat:imageScanData/ID", "ID"),
        (SCANS, "xnat:mrScanData/xnat_imagescandata_id", "xnat:mrscandata/xnat_imagescandata_id"),
        (SUBJECTS, "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender", "gender"),
    ],
)
def test_headers_are_the_shortcut_else_the_lowercased_xpath(default: str, text: str, header: str) -> None:
    assert lc.header(default, text) == header


def test_columns_and_filters_make_the_listed_type_more_specific() -> None:
    assert lc.root_type(EXPERIMENTS, None, ["ID", "label"]) == EXPERIMENTS
    assert lc.root_type(EXPERIMENTS, None, ["modality"]) == "xnat:imageSessionData"
    assert (
        lc.root_type(EXPERIMENTS, None, ["modality", "xnat:mrSessionData/scans/scan/ID"])
        == "xnat:mrSessionData"
    )
    assert lc.root_type(EXPERIMENTS, None, ["xnat:imageScanData/type"]) == EXPERIMENTS  # not an experiment
    assert lc.root_type(EXPERIMENTS, "xnat:petSessionData", ["coil"]) == "xnat:petSessionData"
    assert lc.root_type(SCANS, None, ["xnat:mrscandata/id"]) == "xnat:mrScanData"


@pytest.mark.parametrize(
    ("default", "root", "text", "ways", "element", "key"),
    [
        (EXPERIMENTS, "xnat:mrSessionData", "subject_label", ("subject",), None, "label"),
        (EXPERIMENTS, "xnat:imageSessionData", "xnat:mrScanData/type", ("scans",), "xnat:mrScanData", "type"),
        (EXPERIMENTS, "xnat:imageSessionData", "xnat:mrSessionData/coil", (), "xnat:mrSessionData", "coil"),
        (EXPERIMENTS, "xnat:mrSessionData", "xnat:mrSessionData/scans/scan/ID", ("scans",), None, "ID"),
        (
            EXPERIMENTS,
            "xnat:mrSessionData",
            "xnat:mrSessionData/fields/field/name",
            ("fields",),
            None,
            "name",
        ),
        (
            EXPERIMENTS,
            "xnat:mrSessionData",
            "xnat:mrSessionData/meta/last_modified",
            (),
            None,
            "last_modified",
        ),
        (
            EXPERIMENTS,
            "xnat:imageSessionData",
            "xnat:imageAssessorData/label",
            ("assessors",),
            lc.IMAGE_ASSESSOR,
            "label",
        ),
        (
            "xnat:imageAssessorData",
            "xnat:qcAssessmentData",
            "session_label",
            ("session",),
            lc.IMAGE_SESSION,
            "label",
        ),
        (SUBJECTS, SUBJECTS, "xnat:mrScanData/ID", ("experiments", "scans"), "xnat:mrScanData", "ID"),
        (
            SCANS,
            "xnat:mrScanData",
            "xnat:mrsessiondata/operator",
            ("session",),
            "xnat:mrSessionData",
            "operator",
        ),
        (
            EXPERIMENTS,
            lc.IMAGE_SESSION,
            "xnat:imagescandata/file/label",
            ("scans", "resources"),
            None,
            "label",
        ),
        (
            EXPERIMENTS,
            "xnat:mrSessionData",
            "xnat:mrSessionData/resources/resource/label",
            ("resources",),
            None,
            "label",
        ),
        (
            EXPERIMENTS,
            lc.IMAGE_SESSION,
            "xnat:imagesessiondata/sharing/share/project",
            ("sharing",),
            None,
            "project",
        ),
    ],
)
def test_columns_name_an_object_along_a_way(
    default: str, root: str, text: str, ways: tuple[str, ...], element: str | None, key: str
) -> None:
    column = lc.resolve(default, root, text)
    assert column is not None
    assert (column.ways, column.element, column.key) == (ways, element, key)


def test_unknown_types_and_fields_resolve_to_nothing() -> None:
    assert lc.resolve(EXPERIMENTS, EXPERIMENTS, "fs:fsData/procstatus") is None  # a plugin xnatd lacks
    assert lc.resolve(EXPERIMENTS, EXPERIMENTS, "xnat:mrSessionData/no/such/field") is None
    plain = lc.resolve(EXPERIMENTS, EXPERIMENTS, "whatever")
    assert plain is not None and plain.raw  # a name looked up on each row, as before


def test_every_row_has_the_listed_types_key_and_base_types_their_type_and_project() -> None:
    assert lc.always(EXPERIMENTS, EXPERIMENTS) == (
        "xnat:experimentData/ID",
        "xnat:experimentData/extension_item/element_name",
        "xnat:experimentData/project",
        "URI",
    )
    assert lc.always(EXPERIMENTS, "xnat:mrSessionData") == ("xnat:mrSessionData/ID", "URI")
    assert lc.always(SCANS, SCANS) == ("xnat:imageScanData/xnat_imagescandata_id", "URI")
    assert types.get("xnat:imageSessionData").abstract


def test_the_children_joined_are_those_of_the_most_specific_type_named() -> None:
    plan = lc.Plan(SUBJECTS, SUBJECTS)
    texts = ["xnat:imageSessionData/label", "xnat:mrSessionData/label", "xnat:mrScanData/ID"]
    assert plan.only(("experiments",), texts) == "xnat:mrSessionData"
    assert plan.only(("experiments", "scans"), texts) == "xnat:mrScanData"
    assert plan.ways(texts) == {("experiments",), ("experiments", "scans")}
