"""XNAT's rules for what a PUT may change and what it fills in, and the project's prearchive code,
through REST (issue 18 item 13): a changed xsiType (XNAT's ScanResource and ExperimentResource),
``fixScanTypes`` (XNAT's scan type mapping), ``prearchive_code/11`` (XNAT's ProjectResource). The
expectations are those of XNAT's own REST tests (``TestArchive``, ``TestProjectURIs``) where they
have one."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import httpx
import pytest

from tests.compat.helpers import describe, rows

pytestmark = pytest.mark.slow

XNAT = "{http://nrg.wustl.edu/xnat}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
NS = 'xmlns:xnat="http://nrg.wustl.edu/xnat" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
TYPE_CHANGED = "Specified xsiType differs from existing xsiType"


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code in (200, 201), describe(r)
    return r


def _session(http: httpx.Client, pid: str, label: str = "E1") -> str:
    url = f"/data/projects/{pid}/subjects/S1/experiments/{label}"
    _ok(http.put(url, params={"xsiType": "xnat:mrSessionData"}))
    return url


def _doc(http: httpx.Client, url: str) -> ET.Element:
    return ET.fromstring(_ok(http.get(url, params={"format": "xml"})).content)


# --- a changed xsiType ----------------------------------------------------------------------------


def test_a_scans_changed_xsitype_answers_xnats_409(http: httpx.Client, project: str) -> None:
    """XNAT's TestArchive.testSetScanProperties: the scan's own type (or none) updates it; another
    type, by parameter or in a document (alone or nested in its session's), is 409 with XNAT's text
    and changes nothing."""
    exp = _session(http, project)
    scan = f"{exp}/scans/1"
    _ok(http.put(scan, params={"xsiType": "xnat:mrScanData", "note": "one"}))
    _ok(http.put(scan, params={"xsiType": "xnat:mrScanData", "note": "two"}))
    _ok(http.put(scan, params={"note": "three"}))
    bad = [
        {"params": {"xsiType": "xnat:petScanData", "note": "bad"}},
        {"content": f'<xnat:PETScan {NS} ID="1"><xnat:note>bad</xnat:note></xnat:PETScan>'},
        {
            "url": exp,
            "content": f'<xnat:MRSession {NS}><xnat:scans><xnat:scan xsi:type="xnat:petScanData" ID="1">'
            "<xnat:note>bad</xnat:note></xnat:scan></xnat:scans></xnat:MRSession>",
        },
    ]
    for case in bad:
        url = str(case.get("url", scan))
        headers = {"Content-Type": "text/xml"} if "content" in case else {}
        r = http.put(url, params=case.get("params"), content=case.get("content"), headers=headers)
        assert r.status_code == 409 and TYPE_CHANGED in r.text, describe(r)
    doc = _doc(http, scan)
    assert doc.get(f"{XSI}type", doc.tag) in ("xnat:mrScanData", f"{XNAT}MRScan"), doc.tag
    assert doc.findtext(f"{XNAT}note") == "three"
    r = http.put(scan, params={"xsiType": "xnat:imageScanData"})
    assert r.status_code == 400 and "Multiple scan modalities" in r.text, describe(r)
    # a document alone names the type of the scan it creates
    ct = f'<xnat:CTScan {NS} ID="2"><xnat:note>ct</xnat:note></xnat:CTScan>'
    _ok(http.put(f"{exp}/scans/2", content=ct, headers={"Content-Type": "text/xml"}))
    listed = {s["ID"]: s["xsiType"] for s in rows(http.get(f"{exp}/scans", params={"format": "json"}))}
    assert listed == {"1": "xnat:mrScanData", "2": "xnat:ctScanData"}


def test_a_generic_scan_may_be_given_its_modality(http: httpx.Client, project: str) -> None:
    """XNAT lets a scan stored as the abstract ``xnat:imageScanData`` take a concrete type (the one
    change of type it allows: a fix)."""
    exp = _session(http, project)
    generic = (
        f'<xnat:MRSession {NS}><xnat:scans><xnat:scan xsi:type="xnat:imageScanData" ID="7"/>'
        "</xnat:scans></xnat:MRSession>"
    )
    _ok(http.put(exp, content=generic, headers={"Content-Type": "text/xml"}))
    _ok(http.put(f"{exp}/scans/7", params={"xsiType": "xnat:ctScanData", "note": "fixed"}))
    listed = {r["ID"]: r for r in rows(http.get(f"{exp}/scans", params={"format": "json"}))}
    assert listed["7"]["xsiType"] == "xnat:ctScanData"
    assert http.put(f"{exp}/scans/7", params={"xsiType": "xnat:mrScanData"}).status_code == 409


def test_an_experiments_changed_xsitype_is_ignored_as_xnat_does(http: httpx.Client, project: str) -> None:
    """XNAT's ExperimentResource (and ExptAssessmentResource) sets the request's values on the
    stored experiment: its type stays, the xsiType asked is ignored and the PUT succeeds."""
    exp = _session(http, project)
    r = http.put(exp, params={"xsiType": "xnat:petSessionData", "note": "kept"})
    assert r.status_code == 200, describe(r)
    listed = rows(http.get(f"/data/projects/{project}/experiments", params={"format": "json"}))
    assert [e["xsiType"] for e in listed] == ["xnat:mrSessionData"]
    assert _doc(http, exp).findtext(f"{XNAT}note") == "kept"
    qc = f"{exp}/assessors/QC1"
    _ok(http.put(qc, params={"xsiType": "xnat:qcManualAssessorData"}))
    _ok(http.put(qc, params={"xsiType": "xnat:qcAssessmentData", "note": "still manual"}))
    listed = rows(http.get(f"{exp}/assessors", params={"format": "json"}))
    assert [a["xsiType"] for a in listed] == ["xnat:qcManualAssessorData"]


# --- fixScanTypes ---------------------------------------------------------------------------------


def _scan(http: httpx.Client, exp: str, scan_id: str, description: str | None, **fields: str) -> None:
    params = {"xsiType": "xnat:mrScanData"} | {f"xnat:mrScanData/{k}": v for k, v in fields.items()}
    if description is not None:
        params["xnat:mrScanData/series_description"] = description
    _ok(http.put(f"{exp}/scans/{scan_id}", params=params))


def _types(http: httpx.Client, exp: str) -> dict[str, str]:
    return {s["ID"]: s.get("type", "") for s in rows(http.get(f"{exp}/scans", params={"format": "json"}))}


def test_fix_scan_types_fills_empty_types_as_xnat_does(http: httpx.Client, project: str) -> None:
    """XNAT's TestArchive.testFixScanTypes: scans with no type take the type the project's other scans
    of that series description have (compared without case, spaces, ``_``, ``-``, ``*``), else the
    description, else ``unknown``; a type already set stays; only when asked."""
    mr2 = _session(http, project, "MR2")
    _scan(http, mr2, "1", "localizer", type="MAPPED")
    mr1 = _session(http, project, "MR1")
    for scan_id, description in (
        ("1", "localizer"),
        ("2", "localizer"),
        ("3", "Local_Izer"),
        ("4", "t1 mprage"),
    ):
        _scan(http, mr1, scan_id, description)
    _scan(http, mr1, "5", None)
    _ok(http.put(mr1, params={"note": "plain"}))
    assert set(_types(http, mr1).values()) == {""}, "a plain PUT leaves scan types alone"
    r = http.put(mr1, params={"fixScanTypes": "true"})
    assert r.status_code == 200, describe(r)
    assert _types(http, mr1) == {
        "1": "MAPPED",
        "2": "MAPPED",
        "3": "MAPPED",
        "4": "t1 mprage",
        "5": "unknown",
    }
    _ok(http.put(f"{mr1}/scans/1", params={"type": "MINE"}))
    _scan(http, mr1, "6", "LOCALIZER")
    _ok(http.put(mr1, params={"action": "fixScanTypes"}))
    types = _types(http, mr1)
    assert types["1"] == "MINE" and types["6"] == "MAPPED", "the first type given to the description"


def test_fix_scan_types_tells_types_apart_by_image_type_and_frames(http: httpx.Client, project: str) -> None:
    """With several types for one description, XNAT's MR mapping picks the one of the same image
    type, then of the same number of frames."""
    old = _session(http, project, "OLD")
    _scan(http, old, "1", "dwi", type="DTI", **{"parameters/imageType": "ORIGINAL\\PRIMARY\\DIFFUSION"})
    _scan(http, old, "2", "dwi", type="ADC", **{"parameters/imageType": "DERIVED\\PRIMARY\\ADC"})
    _scan(http, old, "3", "bold", type="BOLD_SHORT", frames="10")
    _scan(http, old, "4", "bold", type="BOLD_LONG", frames="300")
    new = _session(http, project, "NEW")
    _scan(http, new, "1", "DWI", **{"parameters/imageType": "derived\\primary\\adc"})
    _scan(http, new, "2", "BOLD", frames="300")
    _ok(http.put(new, params={"fixScanTypes": "true"}))
    assert _types(http, new) == {"1": "ADC", "2": "BOLD_LONG"}


def test_scan_type_mapping_can_be_switched_off_per_project(http: httpx.Client, project: str) -> None:
    """XNAT's ``PUT /data/projects/P/scan_type_mapping/false`` (its configuration document
    ``project/scanTypeMapping``): the description alone names the type."""
    mr2 = _session(http, project, "MR2")
    _scan(http, mr2, "1", "localizer", type="MAPPED")
    assert http.get(f"/data/projects/{project}/scan_type_mapping").text == "true"
    _ok(http.put(f"/data/projects/{project}/scan_type_mapping/false"))
    assert http.get(f"/data/projects/{project}/scan_type_mapping").text == "false"
    doc = http.get(f"/data/projects/{project}/config/project/scanTypeMapping", params={"contents": "true"})
    assert doc.text == "false", describe(doc)
    mr1 = _session(http, project, "MR1")
    _scan(http, mr1, "1", "localizer")
    _ok(http.put(mr1, params={"fixScanTypes": "true"}))
    assert _types(http, mr1) == {"1": "localizer"}
    _ok(http.put(f"/data/projects/{project}/scan_type_mapping/true"))
    _scan(http, mr1, "2", "localizer")
    # the site's scanTypeMapping (XNAT's site preference) switches it off everywhere
    _ok(http.post("/xapi/siteConfig", json={"scanTypeMapping": False}))
    try:
        _ok(http.put(mr1, params={"fixScanTypes": "true"}))
    finally:
        _ok(http.post("/xapi/siteConfig", json={"scanTypeMapping": True}))
    assert _types(http, mr1) == {"1": "localizer", "2": "localizer"}
    _scan(http, mr1, "3", "localizer")
    _ok(http.put(mr1, params={"fixScanTypes": "true"}))
    assert _types(http, mr1)["3"] == "MAPPED"


# --- prearchive codes -----------------------------------------------------------------------------


def test_prearchive_code_takes_any_integer_as_xnat_does(http: httpx.Client, project: str) -> None:
    """XNAT's TestProjectURIs.testPrearchiveConfig puts 4, 0 and 11 and expects 200 each: XNAT stores
    any integer (and true/false as 1/0); anything else is 400 with XNAT's text."""
    code = f"/data/projects/{project}/prearchive_code"
    for value, stored in (("4", "4"), ("0", "0"), ("11", "11"), ("true", "1"), ("false", "0")):
        r = http.put(f"{code}/{value}")
        assert r.status_code == 200, describe(r)
        assert http.get(code).text.strip() == stored
    for bad in ("abc", "4.5", "99999999999"):
        r = http.put(f"{code}/{bad}")
        assert r.status_code == 400, describe(r)
        assert r.text == f"The submitted code {bad} is invalid: must be an integer.", describe(r)
    assert http.get(code).text.strip() == "0"
