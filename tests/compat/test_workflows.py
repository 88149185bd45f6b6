"""Workflows (XNAT's ``wrk:workflowData``): the record an archive writes, the ones pipelines create and
update over ``/data/workflows``, XNAT's pipeline-status service, and who may do what."""

from __future__ import annotations

from collections.abc import Callable
from xml.etree import ElementTree as ET

import httpx
import pytest

from tests.compat.helpers import describe, rows, zip_of_testdata
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow
NewId = Callable[[str], str]
WRK = "{http://nrg.wustl.edu/workflow}"


def _archived_session(http: httpx.Client, project: str) -> tuple[str, str]:
    """An MR session imported straight into the archive: (its URI, its accession ID)."""
    r = http.post(
        "/data/services/import",
        params={"dest": f"/archive/projects/{project}/subjects/S1/experiments/E1", "format": "txt"},
        content=zip_of_testdata("dcm_qa_ct_philips"),
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 200, describe(r)
    uri = r.text.strip()
    return uri, http.get(uri, params={"format": "json"}).json()["items"][0]["data_fields"]["ID"]


def _user(http: httpx.Client, new_id: NewId) -> tuple[str, str]:
    name, password = new_id("u").lower(), "user-password-1"
    assert http.post("/xapi/users", json={"username": name, "password": password}).status_code == 201
    return name, password


def test_an_archive_writes_a_transferred_workflow(http: httpx.Client, project: str) -> None:
    uri, exp_id = _archived_session(http, project)
    (row,) = rows(http.get(f"{uri}/workflows", params={"format": "json"}))
    assert (row["pipeline_name"], row["status"], row["id"], row["externalid"]) == (
        "Transferred", "Complete", exp_id, project,
    )  # fmt: skip
    assert row["data_type"] == "xnat:ctSessionData" and row["create_user"] == "admin"
    assert rows(http.get(f"/data/experiments/{exp_id}/workflows", params={"format": "json"})) == [row]
    one = ET.fromstring(http.get(f"/data/workflows/{row['wrk_workflowData_id']}").content)
    assert (
        one.tag == f"{WRK}Workflow" and one.get("pipeline_name") == "Transferred" and one.get("ID") == exp_id
    )
    listed = rows(http.get("/data/workflows", params={"format": "json", "id": exp_id}))
    assert [r["wrk_workflowData_id"] for r in listed] == [row["wrk_workflowData_id"]]


def test_a_pipeline_creates_finds_and_updates_its_workflow(
    http: httpx.Client, server: LiveServer, project: str, new_id: NewId
) -> None:
    _, exp_id = _archived_session(http, project)
    launch = "2025-03-04T05:06:07"
    params = {
        "wrk:workflowData/id": exp_id, "wrk:workflowData/pipeline_name": "freesurfer/recon-all.xml",
        "wrk:workflowData/launch_time": launch, "wrk:workflowData/data_type": "xnat:ctSessionData",
        "wrk:workflowData/status": "Running", "wrk:workflowData/step_description": "autorecon1",
        "wrk:workflowData/percentageComplete": "10",
    }  # fmt: skip
    created = http.put("/data/workflows", params=params)
    assert created.status_code == 200, describe(created)
    wid = created.text.strip()
    # XNAT's unique workflow: pipeline name, object ID and launch time
    found = http.get("/data/workflows", params={k: params[k] for k in list(params)[:3]})
    assert found.status_code == 200 and ET.fromstring(found.content).get("step_description") == "autorecon1"
    # the same key again updates it; so does the ID (xnatpy: session.put(f"/data/workflows/{id}", query=...))
    again = http.put("/data/workflows", params={**params, "wrk:workflowData/percentageComplete": "50"})
    assert again.text.strip() == wid
    done = http.put(f"/data/workflows/{wid}", params={"wrk:workflowData/status": "Complete"})
    assert done.status_code == 200, describe(done)
    item = http.get(f"/data/workflows/{wid}", params={"format": "json"}).json()["items"][0]
    fields = item["data_fields"]
    assert item["meta"]["xsi:type"] == "wrk:workflowData"
    assert (fields["status"], fields["percentageComplete"], fields["ExternalID"]) == (
        "Complete",
        "50",
        project,
    )
    # a <wrk:Workflow> document, as XNAT's pipeline engine writes one
    doc = (
        f'<wrk:Workflow xmlns:wrk="http://nrg.wustl.edu/workflow" data_type="xnat:ctSessionData"'
        f' ID="{exp_id}" ExternalID="{project}" launch_time="2025-03-05T00:00:00"'
        ' pipeline_name="qc" status="Queued"/>'
    )
    posted = http.put("/data/workflows", content=doc, headers={"Content-Type": "text/xml"})
    assert posted.status_code == 200 and posted.text.strip() != wid, describe(posted)
    # XNAT's pipeline-status service, as pyxnat's Pipeline.status reads it
    status = http.get(
        "/data/services/workflows/recon-all",
        params={"project": project, "experiment": exp_id, "display": "ALL", "format": "json"},
    )
    (latest,) = rows(status)
    assert latest["wrk_workflowData_id"] == wid and latest["pipeline_name"] == "freesurfer/recon-all.xml"
    # the listing filters by plain columns or by the attributes' XPaths
    done = {"format": "json", "id": exp_id, "wrk:workflowData/status": "Complete"}
    complete = {
        r["pipeline_name"]: r["wrk_workflowData_id"] for r in rows(http.get("/data/workflows", params=done))
    }
    assert complete == {"Transferred": complete["Transferred"], "freesurfer/recon-all.xml": wid}
    newest = http.get("/data/services/workflows/qc", params={"experiment": exp_id})
    assert ET.fromstring(newest.content).get("status") == "Queued"
    # refusals: missing attributes, an unknown object, bad dates and documents
    assert http.put("/data/workflows", params={"wrk:workflowData/id": exp_id}).status_code == 400
    unknown = {**params, "wrk:workflowData/id": "XNAT_E99999999"}
    assert http.put("/data/workflows", params=unknown).status_code == 404
    bad_time = {**params, "wrk:workflowData/launch_time": "yesterday"}
    assert http.put("/data/workflows", params=bad_time).status_code == 400
    assert http.put("/data/workflows", content=b"<x", headers={"Content-Type": "text/xml"}).status_code == 400
    assert http.get("/data/workflows/99999999").status_code == 404
    assert http.delete(f"/data/workflows/{wid}").status_code == 405


def test_workflow_rights(http: httpx.Client, server: LiveServer, project: str, new_id: NewId) -> None:
    uri, exp_id = _archived_session(http, project)
    member, collaborator, stranger = (_user(http, new_id) for _ in range(3))
    assert http.put(f"/data/projects/{project}/users/Members/{member[0]}").status_code == 200
    assert http.put(f"/data/projects/{project}/users/Collaborators/{collaborator[0]}").status_code == 200
    params = {"wrk:workflowData/id": exp_id, "wrk:workflowData/pipeline_name": "mine",
              "wrk:workflowData/launch_time": "2025-01-01 00:00:00",
              "wrk:workflowData/data_type": "xnat:ctSessionData"}  # fmt: skip
    with (
        httpx.Client(base_url=server.url, auth=member) as m,
        httpx.Client(base_url=server.url, auth=collaborator) as c,
        httpx.Client(base_url=server.url, auth=stranger) as s,
    ):
        wid = m.put("/data/workflows", params=params).text.strip()
        assert wid.isdecimal()
        assert (
            c.put("/data/workflows", params={**params, "wrk:workflowData/pipeline_name": "c"}).status_code
            == 403
        )
        assert len(rows(c.get(f"{uri}/workflows", params={"format": "json"}))) == 2  # collaborators read
        assert c.put(f"/data/workflows/{wid}", params={"wrk:workflowData/status": "x"}).status_code == 403
        assert s.get(f"/data/workflows/{wid}").status_code == 404
        assert s.get(f"{uri}/workflows").status_code == 404
        assert rows(s.get("/data/workflows", params={"format": "json"})) == []
        assert (
            s.put("/data/workflows", params={**params, "wrk:workflowData/pipeline_name": "s"}).status_code
            == 404
        )
    # the one who wrote it may change it, and so may a site administrator
    assert http.put(f"/data/workflows/{wid}", params={"wrk:workflowData/status": "Failed"}).status_code == 200
    assert httpx.get(f"{server.url}/data/workflows/{wid}").status_code == 401
