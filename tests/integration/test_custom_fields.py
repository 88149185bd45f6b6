"""XNAT custom variables (``fields/field[name=X]``) over HTTP, as curl sends them.

Set by query-string XPath (raw and percent-encoded), read back from the JSON items document, the XML
document and a listing column, removed with ``NULL``; kept across other updates; read from XML bodies.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import httpx
import pytest

from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow

XNAT = "{http://nrg.wustl.edu/xnat}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("custom") / "data") as srv:
        yield srv


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def put_raw(http: httpx.Client, path: str, query: str) -> httpx.Response:
    """PUT with the query string exactly as given (``[``, ``]`` and ``=`` unencoded, as curl -g sends)."""
    url = httpx.URL(http.base_url.join(path), query=query.encode("ascii"))
    return http.put(url)


def put_xpath(http: httpx.Client, path: str, xpath: str, value: str) -> httpx.Response:
    """PUT as pyxnat does: the XPath percent-encoded (``%5Bname%3DX%5D``)."""
    return put_raw(http, path, f"{quote(xpath)}={quote(value)}")


def item(http: httpx.Client, path: str) -> dict[str, Any]:
    r = http.get(path, params={"format": "json"})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 1
    return dict(items[0])


def custom(doc: dict[str, Any]) -> dict[str, str]:
    """The custom variables of a JSON item, checking their shape as XNAT's clients read it."""
    found: dict[str, str] = {}
    for child in doc["children"]:
        if child["field"] != "fields/field":
            continue
        for it in child["items"]:
            assert it["meta"]["xsi:type"].endswith("_field")
            assert set(it["data_fields"]) == {"name", "field"}
            found[it["data_fields"]["name"]] = it["data_fields"]["field"]
    assert not [k for k in doc["data_fields"] if k.startswith("fields/")], doc["data_fields"]
    return found


def xml_custom(http: httpx.Client, path: str) -> dict[str, str]:
    r = http.get(path, params={"format": "xml"})
    assert r.status_code == 200, r.text
    root = ElementTree.fromstring(r.content)
    out = {}
    for el in root.findall(f"{XNAT}fields/{XNAT}field"):
        assert el.get(XSI_TYPE) is None and not list(el)  # simple content: <xnat:field name="X">v
        out[el.get("name") or ""] = el.text or ""
    return out


def rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


@pytest.fixture
def tree(http: httpx.Client) -> dict[str, str]:
    p, s, e = uid("CF"), uid("S"), uid("E")
    assert http.put(f"/data/projects/{p}").status_code == 200
    subject = f"/data/projects/{p}/subjects/{s}"
    assert http.put(subject).status_code == 201
    session = f"{subject}/experiments/{e}"
    assert http.put(session, params={"xsiType": "xnat:mrSessionData"}).status_code == 201
    return {"project": f"/data/projects/{p}", "subject": subject, "session": session, "label": s}


def test_subject_variable_set_read_listed_and_removed(http: httpx.Client, tree: dict[str, str]) -> None:
    subject, xpath = tree["subject"], "xnat:subjectData/fields/field[name=study_group]/field"
    r = put_raw(http, subject, f"xsiType=xnat:subjectData&{xpath}=control")
    assert r.status_code == 200, r.text
    assert custom(item(http, subject)) == {"study_group": "control"}
    assert xml_custom(http, subject) == {"study_group": "control"}

    listing = f"{tree['project']}/subjects"
    got = rows(http.get(listing, params={"format": "json", "columns": f"ID,label,{xpath}"}))
    header = xpath.lower()  # XNAT answers XPath columns under their lowercased XPath
    assert [(x["label"], x[header]) for x in got] == [(tree["label"], "control")]
    filtered = rows(http.get(listing, params={"format": "json", xpath: "other"}))
    assert filtered == []
    assert len(rows(http.get(listing, params={"format": "json", xpath: "contr*"}))) == 1

    # Other updates (typed fields, another variable) leave it alone.
    assert http.put(subject, params={"gender": "female", "group": "A"}).status_code == 200
    assert (
        put_xpath(http, subject, "xnat:subjectData/fields/field[name=site]/field", "Leeds").status_code == 200
    )
    assert custom(item(http, subject)) == {"study_group": "control", "site": "Leeds"}
    assert item(http, subject)["data_fields"]["group"] == "A"

    # A new value replaces the old one; NULL removes the variable everywhere.
    assert put_xpath(http, subject, xpath, "patient").status_code == 200
    assert custom(item(http, subject))["study_group"] == "patient"
    assert put_raw(http, subject, f"{xpath}=NULL").status_code == 200
    assert custom(item(http, subject)) == {"site": "Leeds"}
    assert xml_custom(http, subject) == {"site": "Leeds"}
    got = rows(http.get(listing, params={"format": "json", "columns": f"ID,{xpath}"}))
    assert got[0][header] == ""
    # xnatpy's ``del subject.fields["site"]`` names the variable twice.
    site = "xnat:subjectData/fields/field[name=site]"
    assert put_raw(http, subject, f"{site}/field=NULL&{site}/site=NULL").status_code == 200
    assert custom(item(http, subject)) == {}
    assert xml_custom(http, subject) == {}


def test_experiments_assessors_projects_and_scans_carry_variables(
    http: httpx.Client, tree: dict[str, str]
) -> None:
    session = tree["session"]
    assert (
        put_xpath(http, session, "xnat:mrSessionData/fields/field[name=tp]/field", "baseline").status_code
        == 200
    )
    # A base type's XPath names the same variables (xnat:experimentData declares them).
    assert (
        put_xpath(http, session, "xnat:experimentData/fields/field[name=visit]/field", "V1").status_code
        == 200
    )
    assert custom(item(http, session)) == {"tp": "baseline", "visit": "V1"}
    got = rows(
        http.get(
            f"{tree['subject']}/experiments",
            params={"format": "json", "columns": "ID,xnat:mrSessionData/fields/field[name=tp]/field"},
        )
    )
    assert got[0]["xnat:mrsessiondata/fields/field[name=tp]/field"] == "baseline"

    assessor = f"{session}/assessors/{uid('QC')}"
    r = put_raw(
        http,
        assessor,
        "xsiType=xnat:qcAssessmentData&xnat:qcAssessmentData/fields/field[name=rater_note]/field=ok",
    )
    assert r.status_code == 201, r.text
    assert custom(item(http, assessor)) == {"rater_note": "ok"}

    project = tree["project"]
    assert (
        put_xpath(http, project, "xnat:projectData/fields/field[name=funding]/field", "R01").status_code
        == 200
    )
    assert custom(item(http, project)) == {"funding": "R01"}
    assert xml_custom(http, project) == {"funding": "R01"}

    scan = f"{session}/scans/1"
    assert http.put(scan, params={"xsiType": "xnat:mrScanData", "type": "T1"}).status_code in (200, 201)
    assert put_xpath(http, scan, "xnat:mrScanData/fields/field[name=qc]/field", "pass").status_code == 200
    assert custom(item(http, scan)) == {"qc": "pass"}
    got = rows(
        http.get(f"{session}/scans", params={"format": "json", "columns": "ID,fields/field[name=qc]/field"})
    )
    assert got[0]["fields/field[name=qc]/field"] == "pass"
    # The scan is still listed in its session's document, now with its variable.
    scans = next(c for c in item(http, session)["children"] if c["field"] == "scans/scan")
    assert custom(scans["items"][0]) == {"qc": "pass"}


def test_xml_documents_bring_their_variables(http: httpx.Client, tree: dict[str, str]) -> None:
    p = tree["project"].rsplit("/", 1)[-1]
    label = uid("X")
    body = (
        f'<xnat:Subject project="{p}" label="{label}" xmlns:xnat="http://nrg.wustl.edu/xnat">'
        '<xnat:fields><xnat:field name="cohort">2024</xnat:field>'
        '<xnat:field name="arm">B</xnat:field></xnat:fields></xnat:Subject>'
    )
    path = f"{tree['project']}/subjects/{label}"
    r = http.put(path, content=body, headers={"Content-Type": "text/xml"})
    assert r.status_code == 201, r.text
    assert custom(item(http, path)) == {"cohort": "2024", "arm": "B"}
    # What xnatd writes, it reads: the XML document round-trips into a new subject.
    again = f"{tree['project']}/subjects/{uid('Y')}"
    doc = http.get(path, params={"format": "xml"}).content
    root = ElementTree.fromstring(doc)
    for attr in ("ID", "label"):
        root.attrib.pop(attr, None)
    r = http.put(again, content=ElementTree.tostring(root), headers={"Content-Type": "text/xml"})
    assert r.status_code == 201, r.text
    assert custom(item(http, again)) == {"cohort": "2024", "arm": "B"}

    session = f"{path}/experiments/{uid('E')}"
    body = (
        '<xnat:MRSession xmlns:xnat="http://nrg.wustl.edu/xnat" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<xnat:fields><xnat:field name="tp">followup</xnat:field></xnat:fields>'
        '<xnat:scans><xnat:scan ID="3" type="T2" xsi:type="xnat:mrScanData">'
        '<xnat:fields><xnat:field name="qc">fail</xnat:field></xnat:fields>'
        "</xnat:scan></xnat:scans></xnat:MRSession>"
    )
    r = http.put(session, content=body, headers={"Content-Type": "text/xml"})
    assert r.status_code == 201, r.text
    assert custom(item(http, session)) == {"tp": "followup"}
    assert custom(item(http, f"{session}/scans/3")) == {"qc": "fail"}


def test_bad_custom_variable_xpaths_are_refused(http: httpx.Client, tree: dict[str, str]) -> None:
    # No name; a type that is not the object's own or one of its bases.
    assert put_raw(http, tree["subject"], "xnat:subjectData/fields/field[name=]/field=x").status_code == 400
    r = put_xpath(http, tree["session"], "xnat:subjectData/fields/field[name=tp]/field", "x")
    assert r.status_code == 400
    assert custom(item(http, tree["session"])) == {}
