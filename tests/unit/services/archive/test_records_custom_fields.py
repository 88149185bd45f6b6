"""Custom variables where request data becomes stored values: query parameters and XML bodies."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

import pytest

from xnatd.domain import types
from xnatd.errors import InvalidInput
from xnatd.services.archive import records

XMLNS = 'xmlns:xnat="http://nrg.wustl.edu/xnat" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def test_query_xpaths_become_stored_custom_values() -> None:
    # pyxnat percent-encodes the XPath; after decoding it is the same key.
    query = f"{quote('xnat:subjectData/fields/field[name=study_group]/field')}=control&gender=male"
    values = records.parse_params("xnat:subjectData", parse_qsl(query))
    assert values == {types.custom_key("study_group"): "control", "demographics/gender": "male"}


@pytest.mark.parametrize("raw", ["NULL", "null", "", "  "])
def test_null_or_empty_removes_a_variable(raw: str) -> None:
    values = records.parse_params(
        "xnat:mrSessionData", [("xnat:mrSessionData/fields/field[name=tp]/field", raw)]
    )
    assert values == {types.custom_key("tp"): None}


def test_custom_values_stay_text() -> None:
    values = records.parse_params("xnat:mrScanData", [("fields/field[name=n]/field", " 007 ")])
    assert values == {types.custom_key("n"): "007"}


def test_typos_in_known_types_are_still_refused() -> None:
    with pytest.raises(InvalidInput):
        records.parse_params("xnat:subjectData", [("xnat:subjectData/fields/field[name=x]/vaule", "1")])
    with pytest.raises(InvalidInput):  # another type's variables
        records.parse_params("xnat:mrSessionData", [("xnat:subjectData/fields/field[name=x]/field", "1")])


def test_stored_values_keep_custom_variables_apart() -> None:
    row = {"label": "S1", "project_id": "P1", "fields": {types.custom_key("group"): "A", "initials": "AB"}}
    values = records.field_values("subject", row)
    assert types.custom_values(values) == {"group": "A"}
    cols, rest = records.split_columns("subject", values)
    assert cols == {"label": "S1", "project_id": "P1"}
    assert rest == {types.custom_key("group"): "A", "initials": "AB"}


def test_xml_documents_bring_custom_variables() -> None:
    body = (
        f'<xnat:MRSession {XMLNS} label="E1"><xnat:fields>'
        '<xnat:field name="tp">baseline</xnat:field><xnat:field name="empty"/>'
        '<xnat:field name="blank"> </xnat:field></xnat:fields>'
        '<xnat:scans><xnat:scan ID="1" xsi:type="xnat:mrScanData"><xnat:fields>'
        '<xnat:field name="qc">pass</xnat:field></xnat:fields></xnat:scan></xnat:scans></xnat:MRSession>'
    ).encode()
    xsi_type, values = records.parse_xml(body, "xnat:subjectAssessorData")
    assert xsi_type == "xnat:mrSessionData"
    assert types.custom_values(values) == {"tp": "baseline", "blank": None}
    [(scan_type, scan_id, scan_values)] = records.parse_xml_scans(body)
    assert (scan_type, scan_id, types.custom_values(scan_values)) == ("xnat:mrScanData", "1", {"qc": "pass"})


def test_xml_custom_variable_needs_a_name() -> None:
    body = f"<xnat:Subject {XMLNS}><xnat:fields><xnat:field>x</xnat:field></xnat:fields></xnat:Subject>"
    with pytest.raises(InvalidInput):
        records.parse_xml(body.encode(), "xnat:subjectData")
