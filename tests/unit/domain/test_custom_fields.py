"""Custom variables (XNAT's ``fields/field[name=X]``): registry declarations, XPath addressing and the
JSON / XML documents that show them."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from xnatd.domain import items, types
from xnatd.domain.items import Item
from xnatd.errors import InvalidInput

XNAT = "{http://nrg.wustl.edu/xnat}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


@pytest.mark.parametrize(
    ("xsi_type", "item_type"),
    [
        ("xnat:projectData", "xnat:projectData_field"),
        ("xnat:subjectData", "xnat:subjectData_field"),
        ("xnat:mrSessionData", "xnat:experimentData_field"),
        ("xnat:petSessionData", "xnat:experimentData_field"),
        ("xnat:qcAssessmentData", "xnat:experimentData_field"),
        ("xnat:ctScanData", "xnat:imageScanData_field"),
    ],
)
def test_owners_declare_fields_with_xnats_item_type_names(xsi_type: str, item_type: str) -> None:
    ref = types.custom_fields_ref(xsi_type)
    assert ref is not None and ref.field == "fields/field" and ref.xsi_type == item_type
    item = types.get(item_type)
    assert [fl.path for fl in item.own_fields] == ["name", "field"]
    assert item.display_id == "name"
    assert [fl.text for fl in item.own_fields] == [False, True]


@pytest.mark.parametrize(
    "xsi_type", ["xnat:demographicData", "xnat:resourceCatalog", "xnat:projectParticipant", "foo:bar"]
)
def test_other_types_have_no_custom_fields(xsi_type: str) -> None:
    assert types.custom_fields_ref(xsi_type) is None
    assert types.custom_field_key(xsi_type, "fields/field[name=x]/field") is None


@pytest.mark.parametrize(
    ("xsi_type", "key", "name"),
    [
        ("xnat:subjectData", "xnat:subjectData/fields/field[name=study_group]/field", "study_group"),
        ("xnat:subjectData", "XNAT:SUBJECTDATA/Fields/Field[name=Group]/field", "Group"),
        ("xnat:subjectData", "fields/field[name=group]/field", "group"),
        ("xnat:subjectData", "fields/field[name=group]", "group"),
        ("xnat:subjectData", "fields/field[@name='two words']/field", "two words"),
        ("xnat:mrSessionData", "xnat:mrSessionData/fields/field[name=tp]/field", "tp"),
        ("xnat:mrSessionData", "xnat:experimentData/fields/field[name=tp]/field", "tp"),
        ("xnat:mrSessionData", "xnat:MRSession/fields/field[name=tp]/field", "tp"),
        ("xnat:mrScanData", "xnat:imageScanData/fields/field[name=qc]/field", "qc"),
        # xnatpy's removal also sends ``.../field[name=X]/X=NULL``
        ("xnat:subjectData", "xnat:subjectData/fields/field[name=site]/site", "site"),
    ],
)
def test_custom_xpaths_resolve_to_stored_keys(xsi_type: str, key: str, name: str) -> None:
    assert types.custom_field_key(xsi_type, key) == types.custom_key(name) == f"fields/field[name={name}]"


@pytest.mark.parametrize(
    ("xsi_type", "key"),
    [
        ("xnat:mrSessionData", "xnat:subjectData/fields/field[name=tp]/field"),  # not this type
        ("xnat:mrSessionData", "foo:bar/fields/field[name=tp]/field"),  # unknown type
        ("xnat:subjectData", "xnat:subjectData/demographics/gender"),
        ("xnat:subjectData", "fields/field"),
        ("xnat:subjectData", "fields/field[name=a]/other"),
    ],
)
def test_other_keys_are_not_custom(xsi_type: str, key: str) -> None:
    assert types.custom_field_key(xsi_type, key) is None


def test_a_custom_variable_needs_a_name() -> None:
    with pytest.raises(InvalidInput):
        types.custom_field_key("xnat:subjectData", "xnat:subjectData/fields/field[name= ]/field")


def test_stored_keys_cannot_clash_with_registry_paths() -> None:
    key = types.custom_key("gender")
    assert types.is_custom_key(key)
    assert not any(types.is_custom_key(fl.path) for t in types.all_types() for fl in t.own_fields)
    assert types.custom_values({"label": "S1", key: "x", "fields/field[name=": "y"}) == {"gender": "x"}


def _subject() -> Item:
    subject = Item(
        "xnat:subjectData",
        {
            "ID": "S1",
            "label": "SUBJ",
            types.custom_key("study_group"): "control",
            types.custom_key("gone"): None,
            types.custom_key("site"): "Leeds",
        },
    )
    subject.child("demographics", [Item("xnat:demographicData", {"gender": "male"}, element="demographics")])
    subject.child("experiments/experiment", [Item("xnat:mrSessionData", {"ID": "E1"}, element="experiment")])
    subject.child("sharing/share", [Item("xnat:projectParticipant", {"project": "P2"}, element="share")])
    return subject


def test_json_shows_custom_variables_as_a_fields_child() -> None:
    doc = items.to_json(_subject())
    assert doc["data_fields"] == {"ID": "S1", "label": "SUBJ"}
    # Placed where the registry declares ``fields`` among the subject's children: before experiments.
    assert [c["field"] for c in doc["children"]] == [
        "demographics",
        "fields/field",
        "experiments/experiment",
        "sharing/share",
    ]
    fields = doc["children"][1]["items"]
    assert [(f["meta"]["xsi:type"], f["data_fields"]) for f in fields] == [
        ("xnat:subjectData_field", {"name": "study_group", "field": "control"}),
        ("xnat:subjectData_field", {"name": "site", "field": "Leeds"}),
    ]


def test_json_without_custom_variables_is_unchanged() -> None:
    plain = Item("xnat:subjectData", {"ID": "S1", types.custom_key("x"): None})
    assert items.to_json(plain)["children"] == []
    assert items.to_json(plain)["data_fields"] == {"ID": "S1"}


def test_xml_shows_custom_variables_as_simple_content() -> None:
    root = ElementTree.fromstring(items.to_xml(_subject()))
    fields = root.findall(f"{XNAT}fields/{XNAT}field")
    assert [(f.get("name"), f.text, f.get(XSI_TYPE), list(f)) for f in fields] == [
        ("study_group", "control", None, []),
        ("site", "Leeds", None, []),
    ]
    # Nested complex objects still name their type.
    assert root.find(f"{XNAT}sharing/{XNAT}share").get(XSI_TYPE) == "xnat:projectParticipant"  # type: ignore[union-attr]


def test_scans_nested_in_a_session_document_show_their_variables() -> None:
    session = Item("xnat:mrSessionData", {"ID": "E1", types.custom_key("tp"): "baseline"})
    session.child(
        "scans/scan", [Item("xnat:mrScanData", {"ID": "1", types.custom_key("qc"): "pass"}, element="scan")]
    )
    root = ElementTree.fromstring(items.to_xml(session))
    assert root.find(f"{XNAT}fields/{XNAT}field").text == "baseline"  # type: ignore[union-attr]
    scan = root.find(f"{XNAT}scans/{XNAT}scan")
    assert scan is not None and scan.find(f"{XNAT}fields/{XNAT}field").get("name") == "qc"  # type: ignore[union-attr]
