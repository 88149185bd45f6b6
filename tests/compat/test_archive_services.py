"""More of XNAT's services that answered 404 or 400 (issue 18 items 4 and 14): ``/data/prearchive``,
the prearchive's ``reset-status`` and ``set-status``, scanners and scan types (xnatpy's
``scanners``/``scan_types``), ``/xapi/schemas/datatypes``, ``/data/status/{id}``, the user cache and
an import from it."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.compat.helpers import describe, rows, zip_of_testdata
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow
NewId = Callable[[str], str]


def _user(http: httpx.Client, new_id: NewId) -> tuple[str, str]:
    name, password = new_id("u").lower(), "user-password-1"
    assert http.post("/xapi/users", json={"username": name, "password": password}).status_code == 201
    return name, password


def _to_prearchive(http: httpx.Client, project: str) -> str:
    r = http.post(
        "/data/services/import",
        params={"dest": f"/prearchive/projects/{project}", "format": "txt"},
        content=zip_of_testdata("dcm_qa_ct_philips"),
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 200, describe(r)
    return r.text.strip()


def test_prearchive_root_and_status_actions(
    http: httpx.Client, server: LiveServer, project: str, new_id: NewId
) -> None:
    uri = _to_prearchive(http, project)
    root = rows(http.get("/data/prearchive", params={"format": "json"}))
    assert root == rows(http.get("/data/prearchive/projects", params={"format": "json"}))
    assert any(r["url"] == uri.removeprefix("/data") for r in root)

    def status() -> str:
        return str(rows(http.get(uri, params={"format": "json"}))[0]["status"])

    assert status() == "READY"
    assert http.post(uri, params={"action": "set-status", "status": "ERROR"}).status_code == 200
    assert status() == "ERROR"
    reset = http.post(uri, params={"action": "reset-status"})
    assert reset.status_code == 200 and reset.text.strip() == uri, describe(reset)
    assert status() == "READY"
    assert http.post(uri, params={"action": "set-status", "status": "ARCHIVING"}).status_code == 400
    assert http.post(uri, params={"action": "reset-status", "tag": "1.2.3"}).status_code == 400
    owner = _user(http, new_id)
    assert http.put(f"/data/projects/{project}/users/Owners/{owner[0]}").status_code == 200
    with httpx.Client(base_url=server.url, auth=owner) as o:
        assert o.post(uri, params={"action": "reset-status"}).status_code == 200
        assert o.post(uri, params={"action": "set-status", "status": "ERROR"}).status_code == 403
    assert http.post(uri, params={"action": "nonsense"}).status_code == 400


def test_scanners_and_scan_types(xsession: Any, http: httpx.Client, project: str) -> None:
    r = http.post(
        "/data/services/import",
        params={"dest": f"/archive/projects/{project}/subjects/S1/experiments/E1"},
        content=zip_of_testdata("dcm_qa_ct_philips"),
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 200, describe(r)
    scan = rows(http.get(f"/data/projects/{project}/experiments/E1/scans", params={"format": "json"}))[0]
    ct_types = rows(http.get(f"/data/projects/{project}/scan_types", params={"table": "xnat_ctScanData"}))
    assert scan["type"] in {t["type"] for t in ct_types}
    assert all(t["series_descriptions"].endswith(",") for t in ct_types)
    assert rows(http.get(f"/data/projects/{project}/scan_types")) == []  # MR by default: none here
    everywhere = rows(http.get("/data/archive/scan_types", params={"table": "xnat_ctScanData"}))
    assert {t["type"] for t in ct_types} <= {t["type"] for t in everywhere}
    assert isinstance(xsession.scan_types, list) and isinstance(xsession.scanners, list)
    scanners = rows(http.get("/data/archive/scanners", params={"table": "xnat_ctSessionData"}))
    session = http.get(f"/data/projects/{project}/experiments/E1", params={"format": "json"}).json()
    scanner = session["items"][0]["data_fields"].get("scanner")
    assert scanner is None or {"scanner": scanner} in scanners
    assert http.get("/data/archive/scanners", params={"table": "xnat_nope; drop"}).status_code == 400


def test_data_types_and_schemas(http: httpx.Client) -> None:
    types = http.get("/xapi/schemas/datatypes").json()
    assert "xnat:mrSessionData" in types and "xnat:subjectData" in types and types == sorted(types)
    names = http.get("/xapi/schemas/datatypes/names/xnat:MRSession").json()
    assert list(names) == ["xnat:mrSessionData"] and "xnat_mrSessionData" in names["xnat:mrSessionData"]
    assert "xnat:mrSessionData" in http.get("/xapi/schemas/datatypes/names/all").json()
    assert "xnat:mrSessionData" in http.get("/xapi/schemas/datatypes/searchable").json()
    assert http.get("/xapi/schemas/datatypes/names/xnat:nothing").status_code == 404
    for name in http.get("/xapi/schemas").json():  # every schema listed is served, both ways
        assert http.get(f"/xapi/schemas/{name}").status_code == 200, name
        assert http.get(f"/xapi/schemas/{name}/{name}").status_code == 200, name


def test_status_queue(http: httpx.Client, server: LiveServer, new_id: NewId) -> None:
    tid = new_id("t")
    assert http.get(f"/data/status/{tid}", params={"format": "json"}).json() == {"msgs": [[]]}
    for status, message in (("PROCESSING", "unpacking"), ("COMPLETED", "done")):
        assert (
            http.post(f"/data/status/{tid}", data={"status": status, "message": message}).status_code == 200
        )
    assert http.get(f"/data/status/{tid}", params={"format": "json"}).json() == {
        "msgs": [[{"status": "PROCESSING", "msg": "unpacking"}, {"status": "COMPLETED", "msg": "done"}]]
    }
    assert "COMPLETED: done" in http.get(f"/data/status/{tid}").text
    assert http.post(f"/data/status/{tid}", data={"status": "MAYBE"}).status_code == 400
    other = _user(http, new_id)
    with httpx.Client(base_url=server.url, auth=other) as o:  # each user's own queues
        assert o.get(f"/data/status/{tid}", params={"format": "json"}).json() == {"msgs": [[]]}
    assert http.delete(f"/data/status/{tid}").status_code == 200
    assert http.get(f"/data/status/{tid}", params={"format": "json"}).json() == {"msgs": [[]]}


def test_user_cache_and_an_import_from_it(
    http: httpx.Client, server: LiveServer, project: str, new_id: NewId
) -> None:
    name = new_id("up")
    base = f"/data/user/cache/resources/{name}"
    assert http.put(base).status_code == 200
    assert http.put(base).status_code == 409  # exists (XNAT: 412)
    assert (
        http.put(f"{base}/files/notes/a.txt", params={"inbody": "true"}, content=b"alpha").status_code == 200
    )
    assert http.post(base, files={"file": ("b.txt", b"beta")}).status_code == 201
    listed = rows(http.get(base, params={"format": "json"}))
    assert sorted((r["Name"], r["Size"]) for r in listed) == [("b.txt", "4"), ("notes/a.txt", "5")]
    assert {"Resource": name, "URI": base} in rows(http.get("/data/user/cache/resources"))
    assert http.get(f"{base}/files/notes/a.txt").content == b"alpha"
    with zipfile.ZipFile(io.BytesIO(http.get(base, params={"format": "zip"}).content)) as zf:
        assert sorted(zf.namelist()) == [f"{name}/b.txt", f"{name}/notes/a.txt"]
    assert http.delete(f"{base}/files/b.txt,notes/a.txt").status_code == 200
    assert rows(http.get(base)) == []
    assert http.get(f"{base}/files/../../etc/passwd").status_code in (400, 404)
    other = _user(http, new_id)
    with httpx.Client(base_url=server.url, auth=other) as o:  # nobody sees another's cache
        assert o.get(base).status_code == 404
        assert name not in [r["Resource"] for r in rows(o.get("/data/user/cache/resources"))]
    # an uploader's two steps: the zip into the cache, then the import names it (src=)
    zipped = zip_of_testdata("dcm_qa_ct_philips")
    assert http.put(f"{base}/files/ct.zip", params={"inbody": "true"}, content=zipped).status_code == 200
    imported = http.post("/data/services/import", params={
        "src": f"/user/cache/resources/{name}/files/ct.zip",
        "dest": f"/archive/projects/{project}/subjects/S9/experiments/E9", "format": "txt",
    })  # fmt: skip
    assert imported.status_code == 200, describe(imported)
    scans = rows(http.get(f"{imported.text.strip()}/scans", params={"format": "json"}))
    assert sorted(s["ID"] for s in scans) == ["100", "201"]
    assert http.delete(base).status_code == 200
    assert http.get(base).status_code == 404


def test_direct_archive_sessions(http: httpx.Client, server: LiveServer, project: str, new_id: NewId) -> None:
    def stage(label: str) -> str:
        r = http.post(
            "/data/services/import",
            params={"Direct-Archive": "true", "PROJECT_ID": project, "SUBJECT_ID": "S1", "EXPT_LABEL": label},
            content=zip_of_testdata("dcm_qa_ct_philips"),
            headers={"Content-Type": "application/zip"},
        )
        assert r.status_code == 200, describe(r)
        return r.text.strip()

    stage("DA1")
    listed = http.post("/xapi/direct-archive", json={"page": 1, "size": 50})
    assert listed.status_code == 200, describe(listed)
    (mine,) = [s for s in listed.json() if s["project"] == project and s["name"] == "DA1"]
    assert mine["status"] == "RECEIVING" and mine["subject"] == "S1" and mine["tag"]
    assert isinstance(mine["uploadDate"], int) and mine["url"].startswith(f"/prearchive/projects/{project}/")
    one = f"/xapi/direct-archive/{project}/{mine['tag']}/DA1"
    assert http.get(one).json()["id"] == mine["id"]
    stranger = _user(http, new_id)
    with httpx.Client(base_url=server.url, auth=stranger) as s:
        assert all(x["project"] != project for x in s.post("/xapi/direct-archive", json={}).json())
        assert s.get(one).status_code == 404 and s.post(one).status_code == 404
    # archived now, without waiting for the sender to go quiet
    assert http.post(one).status_code == 200
    assert http.get(f"/data/projects/{project}/experiments/DA1").status_code == 200
    assert http.get(one).status_code == 404
    # another one, dropped with its files
    stage("DA2")
    (other,) = [s for s in http.post("/xapi/direct-archive", json={}).json() if s["name"] == "DA2"]
    assert http.delete(f"/xapi/direct-archive/{other['id']}").status_code == 200
    assert all(s["name"] != "DA2" for s in http.post("/xapi/direct-archive", json={}).json())
    assert http.delete(f"/xapi/direct-archive/{other['id']}").status_code == 404
    assert http.post("/xapi/direct-archive", json={"page": 0}).status_code == 400


SUBJECT_XML = (
    '<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" label="{label}" project="{project}">'
    '<xnat:demographics xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:type="xnat:demographicData"><xnat:gender>female</xnat:gender></xnat:demographics></xnat:Subject>'
)
SESSION_XML = (
    '<xnat:MRSession xmlns:xnat="http://nrg.wustl.edu/xnat" label="{label}" project="{project}">'
    "<xnat:subject_ID>{subject}</xnat:subject_ID></xnat:MRSession>"
)


def test_xml_posted_to_collections_and_uploaded(http: httpx.Client, project: str) -> None:
    subjects = f"/data/projects/{project}/subjects"
    xml = {"Content-Type": "text/xml"}
    created = http.post(subjects, content=SUBJECT_XML.format(label="SX1", project=project), headers=xml)
    assert created.status_code == 201, describe(created)
    fields = http.get(f"{subjects}/SX1", params={"format": "json"}).json()["items"][0]
    assert fields["data_fields"]["label"] == "SX1" and created.text.strip() == fields["data_fields"]["ID"]
    again = http.post(subjects, content=SUBJECT_XML.format(label="SX1", project=project), headers=xml)
    assert again.status_code == 200 and again.text.strip() == created.text.strip()
    session = SESSION_XML.format(label="EX1", project=project, subject="SX1")
    made = http.post(f"/data/projects/{project}/experiments", content=session, headers=xml)
    assert made.status_code == 201, describe(made)
    assert http.get(f"{subjects}/SX1/experiments/EX1").status_code == 200
    under = SESSION_XML.format(label="EX2", project=project, subject="ignored")
    assert http.post(f"{subjects}/SX1/experiments", content=under, headers=xml).status_code == 201
    # XNAT's XML upload: the document says where it goes
    upload = http.post(
        "/xapi/archive/upload/xml", files={"xml": ("s.xml", SUBJECT_XML.format(label="SX2", project=project))}
    )
    assert upload.status_code == 200 and upload.text.startswith(f"/data/projects/{project}/subjects/"), (
        describe(upload)
    )
    assert http.get(upload.text).status_code == 200
    up_session = SESSION_XML.format(label="EX3", project=project, subject="SX2")
    assert http.post("/xapi/archive/upload/xml", content=up_session, headers=xml).status_code == 200
    assert http.get(f"{subjects}/SX2/experiments/EX3").status_code == 200
    # refusals: no label, another project, a subject posted among experiments, no body
    no_label = SUBJECT_XML.format(label="", project=project)
    assert http.post(subjects, content=no_label, headers=xml).status_code == 400
    elsewhere = SUBJECT_XML.format(label="SX9", project="OTHER")
    assert http.post(subjects, content=elsewhere, headers=xml).status_code == 400
    wrong = SUBJECT_XML.format(label="SX9", project=project)
    assert http.post(f"/data/projects/{project}/experiments", content=wrong, headers=xml).status_code == 400
    assert http.post(subjects).status_code == 400
    assert http.post("/xapi/archive/upload/xml", content=b"<nope", headers=xml).status_code == 400


def test_xnatpy_plugins_and_uptime(xsession: Any) -> None:
    assert xsession.plugins.data == {}  # GET /xapi/plugins/: none installed
    assert set(xsession.xnat_uptime) == {"days", "hours", "minutes", "seconds"}
