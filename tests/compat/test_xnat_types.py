"""XNAT's data types, named values, provenance, protocols and the validation around them, through REST
(issue 18 items 5-8 and 13); pyxnat's own test files cover the same through pyxnat
(test_pyxnat_suite.py)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import httpx
import pytest

from tests.compat.helpers import create_project, describe, rows
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

XNAT = "{http://nrg.wustl.edu/xnat}"
PROV = "{http://www.nbirn.net/prov}"
XS = "{http://www.w3.org/2001/XMLSchema}"


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code in (200, 201), describe(r)
    return r


def _session(http: httpx.Client, pid: str, label: str = "E1") -> str:
    _ok(
        http.put(
            f"/data/projects/{pid}/subjects/S1/experiments/{label}", params={"xsiType": "xnat:mrSessionData"}
        )
    )
    return f"/data/projects/{pid}/subjects/S1/experiments/{label}"


def _user(http: httpx.Client, new_id: Callable[[str], str]) -> tuple[str, str]:
    name, password = new_id("u").lower(), "not-the-admin-9"
    _ok(http.post("/xapi/users", json={"username": name, "password": password}))
    return name, password


# --- item 5: XPaths with predicates -------------------------------------------------------------


def test_scan_parameters_are_stored_from_addparam_xpaths(http: httpx.Client, project: str) -> None:
    """pyxnat's scan.set_param: ``xnat:mrScanData/parameters/addParam[name=X]/addField=V``."""
    scan = _session(http, project) + "/scans/1"
    _ok(http.put(scan, params={"xsiType": "xnat:mrScanData"}))
    key = "xnat:mrScanData/parameters/addParam[name=foo]/addField"
    _ok(
        http.put(
            scan, params={key: "foostring", "xnat:mrScanData/parameters/addParam[name=bar]/addField": "1"}
        )
    )
    doc = ET.fromstring(_ok(http.get(scan, params={"format": "xml"})).content)
    params = {p.get("name"): p.text for p in doc.findall(f"{XNAT}parameters/{XNAT}addParam")}
    assert params == {"foo": "foostring", "bar": "1"}
    listed = rows(http.get(scan.rsplit("/", 1)[0], params={"format": "json", "columns": f"ID,{key}"}))
    assert listed[0][key.lower()] == "foostring"
    # NULL removes one, as for custom variables
    _ok(http.put(scan, params={key: "NULL"}))
    doc = ET.fromstring(_ok(http.get(scan, params={"format": "xml"})).content)
    assert [p.get("name") for p in doc.iter(f"{XNAT}addParam")] == ["bar"]


def test_a_field_of_another_type_is_refused(http: httpx.Client, project: str) -> None:
    """``xnat:ctScanData/...`` on an MR scan names no field of it: 400, nothing stored."""
    scan = _session(http, project) + "/scans/1"
    _ok(http.put(scan, params={"xsiType": "xnat:mrScanData"}))
    r = http.put(scan, params={"xnat:ctScanData/note": "wrong type"})
    assert r.status_code == 400 and "xnat:ctScanData/note" in r.text, describe(r)
    r = http.put(scan, params={"xnat:imageScanData/note": "base type"})
    assert r.status_code == 200, describe(r)
    doc = ET.fromstring(_ok(http.get(scan, params={"format": "xml"})).content)
    assert doc.findtext(f"{XNAT}note") == "base type"


def test_form_bodies_set_fields_as_query_parameters_do(http: httpx.Client, project: str) -> None:
    subject = f"/data/projects/{project}/subjects/FORM1"
    body = urlencode({"xnat:subjectData/fields/field[name=cohort]/field": "A", "gender": "female"})
    r = http.put(subject, content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    _ok(r)
    doc = _ok(http.get(subject, params={"format": "xml"})).text
    assert 'name="cohort">A<' in doc and "<xnat:gender>female</xnat:gender>" in doc


def test_project_protocols_and_custom_variable_definitions(http: httpx.Client, project: str) -> None:
    """The project document names its protocols (XNAT's studyProtocol: Subjects, and one per experiment
    type it holds); definition sets PUT back in the document (pyxnat's add_custom_variables) stay."""
    _session(http, project)
    doc = ET.fromstring(_ok(http.get(f"/data/projects/{project}", params={"format": "xml"})).content)
    protocols = {p.get("name"): p for p in doc.findall(f"{XNAT}studyProtocol")}
    assert set(protocols) == {"Subjects", "MR Sessions"}
    assert protocols["Subjects"].get("ID") == f"{project}_xnat_subjectData"
    definitions = ET.SubElement(protocols["Subjects"].find(f"{XNAT}definitions"), f"{XNAT}definition")
    definitions.attrib.update({"ID": "newgroup", "data-type": "xnat:subjectData", "project-specific": "1"})
    fields = ET.SubElement(definitions, f"{XNAT}fields")
    ET.SubElement(fields, f"{XNAT}field", {"name": "foo", "datatype": "string", "type": "custom"})
    body = ET.tostring(doc)
    _ok(http.put(f"/data/projects/{project}", files={"file": ("cust.xml", body, "text/xml")}))
    again = ET.fromstring(_ok(http.get(f"/data/projects/{project}", params={"format": "xml"})).content)
    subjects = next(p for p in again.findall(f"{XNAT}studyProtocol") if p.get("name") == "Subjects")
    groups = {d.get("ID"): d for d in subjects.iter(f"{XNAT}definition")}
    assert set(groups) == {"default", "newgroup"}
    assert [f.get("name") for f in groups["newgroup"].iter(f"{XNAT}field")] == ["foo"]


# --- item 6: data types and schemas ---------------------------------------------------------------


@pytest.mark.parametrize(
    "xsi_type", ["xnat:mrAssessorData", "xnat:qcManualAssessorData", "xnat:qcAssessmentData"]
)
def test_xnat_assessor_types_are_known(http: httpx.Client, project: str, xsi_type: str) -> None:
    session = _session(http, project)
    assessor = f"{session}/assessors/A_{xsi_type.split(':')[1]}"
    _ok(http.put(assessor, params={"xsiType": xsi_type}))
    assert (
        _ok(http.get(assessor, params={"format": "json"})).json()["items"][0]["meta"]["xsi:type"] == xsi_type
    )


def test_xnat_schema_has_xnats_structure(http: httpx.Client) -> None:
    text = _ok(http.get("/xapi/schemas/xnat")).text
    root = ET.fromstring(text)
    types = {t.get("name"): t for t in root.findall(f"{XS}complexType")}
    for name in (
        "mrAssessorData",
        "qcManualAssessorData",
        "qcAssessmentData",
        "investigatorData",
        "addField",
    ):
        assert name in types, name
    project = [e.get("name") for e in types["projectData"].iter(f"{XS}element")]
    for name in ("type", "PI", "investigators", "studyProtocol", "aliases", "publications"):
        assert name in project, name
    assert "prov" in _ok(http.get("/xapi/schemas")).json()
    assert "processStep" in _ok(http.get("/xapi/schemas/prov")).text


def test_project_document_with_pi_and_qc_assessor_with_provenance(http: httpx.Client, project: str) -> None:
    """XML XNAT writes: a project with PI, an assessor with provenance (400 before)."""
    body = (
        f'<xnat:Project xmlns:xnat="http://nrg.wustl.edu/xnat" ID="{project}">'
        f"<xnat:name>{project}</xnat:name>"
        "<xnat:PI><xnat:firstname>Ada</xnat:firstname><xnat:lastname>Lovelace</xnat:lastname></xnat:PI>"
        "</xnat:Project>"
    )
    _ok(http.put(f"/data/projects/{project}", content=body, headers={"content-type": "text/xml"}))
    listed = {r["ID"]: r for r in rows(http.get("/data/projects", params={"format": "json"}))}
    assert listed[project]["pi_lastname"] == "Lovelace"
    session = _session(http, project)
    qc = (
        '<xnat:QCManualAssessment xmlns:xnat="http://nrg.wustl.edu/xnat" xmlns:prov="http://www.nbirn.net/prov">'
        '<xnat:provenance><prov:processStep><prov:program version="2">qc-tool</prov:program>'
        "<prov:timestamp>2024-01-02T03:04:05</prov:timestamp><prov:user>me</prov:user>"
        "<prov:machine>m</prov:machine><prov:platform>linux</prov:platform></prov:processStep></xnat:provenance>"
        "<xnat:imageSession_ID>x</xnat:imageSession_ID><xnat:pass>1</xnat:pass></xnat:QCManualAssessment>"
    )
    assessor = f"{session}/assessors/QC1"
    _ok(http.put(assessor, content=qc, headers={"content-type": "text/xml"}))
    doc = ET.fromstring(_ok(http.get(assessor, params={"format": "xml"})).content)
    step = doc.find(f"{XNAT}provenance/{PROV}processStep")
    assert step is not None and step.findtext(f"{PROV}program") == "qc-tool"
    assert step.find(f"{PROV}program").get("version") == "2"  # type: ignore[union-attr]
    assert doc.findtext(f"{XNAT}pass") == "1"


# --- item 7: provenance -------------------------------------------------------------------------


def test_provenance_put_as_a_file_is_stored_and_listed(http: httpx.Client, project: str) -> None:
    """pyxnat's provenance.set PUTs the assessor's document as a multipart file; provenance.get lists
    the parent's assessors with ``provenance/processStep/...`` columns."""
    session = _session(http, project)
    assessor = f"{session}/assessors/PROV1"
    _ok(http.put(assessor, params={"xsiType": "xnat:mrAssessorData"}))
    doc = ET.fromstring(_ok(http.get(assessor, params={"format": "xml"})).content)
    prov = ET.SubElement(doc, f"{XNAT}provenance")
    step = ET.SubElement(prov, f"{PROV}processStep")
    for name, value in (("program", "young"), ("timestamp", "2011-03-01T12:01:01"), ("user", "angus")):
        ET.SubElement(step, f"{PROV}{name}").text = value
    _ok(http.put(assessor, files={"file": ("prov.xml", ET.tostring(doc), "text/xml")}))
    column = "xnat:mrAssessorData/provenance/processStep/program"
    listed = rows(http.get(f"{session}/assessors", params={"format": "json", "columns": f"ID,{column}"}))
    assert [r[column.lower()] for r in listed] == ["young"]


# --- item 8 and 13: users -------------------------------------------------------------------------


def test_first_administrator_is_admin_admin(http: httpx.Client) -> None:
    admin = next(r for r in rows(http.get("/data/users", params={"format": "json"})) if r["login"] == "admin")
    assert (admin["firstname"], admin["lastname"]) == ("Admin", "Admin")


def test_user_roles_and_active_users(
    server: LiveServer, http: httpx.Client, new_id: Callable[[str], str]
) -> None:
    name, password = _user(http, new_id)
    assert _ok(http.get("/xapi/users/admin/roles")).json() == ["Administrator"]
    assert _ok(http.get(f"/xapi/users/{name}/roles")).json() == []
    with server.client(auth=(name, password)) as user:
        _ok(user.get("/data/JSESSION"))  # opens a login session
        assert user.get("/xapi/users/active").status_code == 403
        assert _ok(user.get(f"/xapi/users/{name}/roles")).json() == []
    active = _ok(http.get("/xapi/users/active")).json()
    assert active[name]["count"] >= 1


def test_group_id_form_of_project_users(
    http: httpx.Client, project: str, new_id: Callable[[str], str]
) -> None:
    name, _ = _user(http, new_id)
    _ok(http.put(f"/data/projects/{project}/users/{project}_member/{name}"))
    listed = {
        r["login"]: r for r in rows(http.get(f"/data/projects/{project}/users", params={"format": "json"}))
    }
    assert listed[name]["GROUP_ID"] == f"{project}_member"
    _ok(http.delete(f"/data/projects/{project}/users/{project}_member/{name}"))
    r = http.put(f"/data/projects/{project}/users/{project}_nonsense/{name}")
    assert r.status_code == 400, describe(r)


# --- item 13: validation --------------------------------------------------------------------------


def test_project_names_and_secondary_ids_are_unique(
    http: httpx.Client, project: str, new_id: Callable[[str], str]
) -> None:
    title = new_id("Title")
    _ok(http.put(f"/data/projects/{project}", params={"name": title, "secondary_ID": f"{title}_run"}))
    other = new_id("P")
    for params in ({"name": title}, {"secondary_ID": f"{title}_run"}, {"name": f"{title}_run"}):
        r = http.put(f"/data/projects/{other}", params=params)
        assert r.status_code == 409, describe(r)
    assert http.get(f"/data/projects/{other}").status_code == 404  # nothing half-made
    _ok(http.put(f"/data/projects/{project}", params={"name": title}))  # its own name again


def test_a_hidden_projects_id_is_taken(
    server: LiveServer, http: httpx.Client, project: str, new_id: Callable[[str], str]
) -> None:
    """A user who may create projects is told a private project's ID is in use (XNAT's 409); the
    project stays hidden otherwise and unchanged."""
    name, password = _user(http, new_id)
    with server.client(auth=(name, password)) as user:
        assert user.get(f"/data/projects/{project}").status_code == 404
        r = user.put(f"/data/projects/{project}", params={"description": "taken over"})
        assert r.status_code == 409 and "already in use" in r.text, describe(r)
    doc = _ok(http.get(f"/data/projects/{project}", params={"format": "xml"})).text
    assert "taken over" not in doc


def test_unsharing_a_subject_unshares_its_sessions(http: httpx.Client, new_id: Callable[[str], str]) -> None:
    """Both doors: DELETE .../subjects/S/projects/OTHER and DELETE /data/projects/OTHER/subjects/S."""
    for door in ("share", "delete"):
        owner, other = new_id("P"), new_id("P")
        create_project(http, owner)
        create_project(http, other)
        session = _session(http, owner)
        _ok(http.put(f"/data/projects/{owner}/subjects/S1/projects/{other}"))
        _ok(http.put(f"{session}/projects/{other}"))
        assert len(rows(http.get(f"/data/projects/{other}/experiments", params={"format": "json"}))) == 1
        if door == "share":
            _ok(http.delete(f"/data/projects/{owner}/subjects/S1/projects/{other}"))
        else:
            _ok(http.delete(f"/data/projects/{other}/subjects/S1"))
        assert rows(http.get(f"/data/projects/{other}/experiments", params={"format": "json"})) == [], door
        assert len(rows(http.get(f"/data/projects/{owner}/experiments", params={"format": "json"}))) == 1
