"""Session and scan types, scan IDs and header fields (xnat-api.md §5.2)."""

from __future__ import annotations

import pydicom

from tests.support.dicom_copies import TESTDATA
from xnatd.dicom import session_builder as sb


def test_scan_types_from_sop_class_then_modality() -> None:
    assert sb.scan_type("1.2.840.10008.5.1.4.1.1.4", "MR") == "xnat:mrScanData"
    assert sb.scan_type("1.2.840.10008.5.1.4.1.1.4.1", "MR") == "xnat:mrScanData"
    assert sb.scan_type("1.2.840.10008.5.1.4.1.1.2", "CT") == "xnat:ctScanData"
    assert sb.scan_type("1.2.840.10008.5.1.4.1.1.128.1", "PT") == "xnat:petScanData"
    assert sb.scan_type("1.2.840.10008.5.1.4.1.1.7", "CT") == "xnat:scScanData"
    assert sb.scan_type("1.2.840.10008.5.1.4.1.1.1.2", "MG") == "xnat:mgScanData"
    assert sb.scan_type("1.2.840.10008.5.1.4.1.1.66.4", "SEG") == "xnat:segScanData"
    assert sb.scan_type("1.2.3.4", "US") == "xnat:usScanData"
    assert sb.scan_type("1.2.3.4", "XYZ") == "xnat:otherDicomScanData"


def test_session_type_lead_modality() -> None:
    assert sb.session_type(["MR", "PT"]) == "xnat:petSessionData"
    assert sb.session_type(["SC", "MR", "OT"]) == "xnat:mrSessionData"
    assert sb.session_type(["CT", "SC"]) == "xnat:ctSessionData"
    assert sb.session_type(["SC"]) == "xnat:otherDicomSessionData"
    assert sb.session_type([]) == "xnat:otherDicomSessionData"


def test_scan_ids_numbers_uids_and_collisions() -> None:
    series = [
        sb.SeriesInfo("1.1", "3", "MR", "xnat:mrScanData"),
        sb.SeriesInfo("1.2", "3", "MR", "xnat:mrScanData"),
        sb.SeriesInfo("1.3", "3", "OT", "xnat:otherDicomScanData"),
        sb.SeriesInfo("1.4", "4", "MR", "xnat:mrScanData"),
        sb.SeriesInfo("1.2.840.5", "", "MR", "xnat:mrScanData"),
        sb.SeriesInfo("1.6", "+7", "MR", "xnat:mrScanData"),
    ]
    ids = sb.scan_ids(series)
    assert ids[("1.1", "3")] == "3-MR1" and ids[("1.2", "3")] == "3-MR2" and ids[("1.3", "3")] == "3-OT1"
    assert ids[("1.4", "4")] == "4"
    assert ids[("1.2.840.5", "")] == "1_2_840_5"
    assert ids[("1.6", "+7")] == "_7"


def test_fields_from_a_real_mr_header_are_typed_by_the_registry() -> None:
    ds = pydicom.dcmread(TESTDATA / "dcm_qa_ts" / "1.dcm", stop_before_pixels=True)
    scan = sb.scan_values(ds, "xnat:mrScanData")
    assert scan["UID"] == ds.SeriesInstanceUID
    assert isinstance(scan["parameters/tr"], float) and scan["parameters/tr"] > 0
    assert scan["parameters/orientation"] in ("Tra", "Sag", "Cor")
    assert isinstance(scan["parameters/voxelRes/x"], float)
    session = sb.fit("xnat:mrSessionData", sb.session_values(ds))
    assert session["UID"] == ds.StudyInstanceUID
    assert session["date"].count("-") == 2
    assert "fieldStrength" in session
    assert "fieldStrength" not in sb.fit("xnat:ctSessionData", sb.session_values(ds))


def test_values_the_schema_cannot_hold_are_left_out() -> None:
    assert sb.fit("xnat:mrScanData", {"parameters/tr": "not a number", "series_description": "x"}) == {
        "series_description": "x"
    }
