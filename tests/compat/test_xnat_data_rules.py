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
