"""dax 2.21.0, the pipeline framework, against xnatd (issue 18, "How it is checked"): ``XnatUtils``'
project listings and cached session documents, ``Xnatinfo``, and a pipeline's whole life — ``dax build``
(a ``proc:genProcData`` run per matching scan), ``dax launch`` (the batch job fetches its input from
xnatd), ``dax update``, ``dax upload`` — with only Slurm and Singularity played by stand-ins
(``third_party.STAND_INS``); then what dax needed of xnatd, through the REST API.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from dax import XnatUtils

from tests.compat.helpers import ADMIN, curl
from tests.compat.third_party import (
    GE_TYPE,
    JOB_ID,
    PROCTYPE,
    SIEMENS,
    SIEMENS_SCANS,
    Lab,
    dax_site,
    dicom_md5s,
    make_lab,
    ok,
    rows,
    run,
)
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

XNAT, PROC = "http://nrg.wustl.edu/xnat", "http://nrg.wustl.edu/proc"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@pytest.fixture(scope="module")
def lab(server: LiveServer) -> Lab:
    return make_lab(server)


# --- dax -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dax(lab: Lab) -> Iterator[Any]:
    with XnatUtils.get_interface(host=lab.url, user=ADMIN[0], pwd=ADMIN[1]) as intf:
        yield intf


def test_dax_project_listings(lab: Lab, dax: Any) -> None:
    scans = [s for s in dax.get_project_scans(lab.project) if s["subject_label"] == lab.subject]
    assert sorted(
        (s["session_label"], s["scan_id"], s["type"], s["resources"], s["session_type"]) for s in scans
    ) == sorted(
        [(lab.mr01, k, t, ["DICOM"], "MR") for k, (t, _) in SIEMENS_SCANS.items()]
        + [(lab.mr02, "4", GE_TYPE, ["DICOM"], "MR")]
    )
    assert {s["session_id"] for s in scans} == {lab.ids[lab.mr01], lab.ids[lab.mr02]}
    sessions = [s for s in dax.get_sessions(lab.project) if s["subject_label"] == lab.subject]
    assert [(s["session_label"], s["ID"], s["type"]) for s in sessions] == [
        (lab.mr01, lab.ids[lab.mr01], "MR"),
        (lab.mr02, lab.ids[lab.mr02], "MR"),
    ]
    subjects = {s["subject_label"]: s["ID"] for s in dax.get_subjects(lab.project)}
    assert subjects[lab.subject] == lab.ids[lab.subject]
    in_mr01 = dax.get_scans(lab.project, lab.subject, lab.mr01)
    assert [(s["scan_id"], s["type"], s["frames"]) for s in in_mr01] == [
        (k, t, "2") for k, (t, _) in SIEMENS_SCANS.items()
    ]
    resources = dax.get_scan_resources(lab.project, lab.subject, lab.mr02, "4")
    assert [(r["label"], r["file_count"], r["format"]) for r in resources] == [("DICOM", "150", "DICOM")]
    frame = XnatUtils.load_scan_data(dax, [lab.project])
    mine = frame[frame["SUBJECT"] == lab.subject]
    assert sorted(zip(mine["SESSION"], mine["SCANID"], mine["SCANTYPE"], strict=True)) == sorted(
        [(lab.mr01, k, t) for k, (t, _) in SIEMENS_SCANS.items()] + [(lab.mr02, "4", GE_TYPE)]
    )


def test_dax_cached_session(lab: Lab, dax: Any) -> None:
    """What dax's processors read: the session document (``?format=xml``), cached."""
    cached = XnatUtils.CachedImageSession(dax, lab.project, lab.subject, lab.mr01)
    info = cached.info()
    assert (info["ID"], info["label"], info["subject_label"], info["modality"]) == (
        lab.ids[lab.mr01],
        lab.mr01,
        lab.subject,
        "MR",
    )
    scans = [(s.label(), s.type(), [r.label() for r in s.resources()]) for s in cached.scans()]
    assert scans == [(k, t, ["DICOM"]) for k, (t, _) in SIEMENS_SCANS.items()]
    assert cached.full_object().label() == lab.mr01


@pytest.fixture(scope="module")
def pipeline(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of a dax pipeline on the lab's project: build, launch (the job runs), update, upload.
    Returns the results folder's leftovers and the site's environment for the tests to inspect."""
    settings, env = dax_site(lab, tmp_path_factory.mktemp("dax-site"))
    done = {step: run(["dax", step, str(settings)], env) for step in ("build", "launch", "update", "upload")}
    return {"env": env, "settings": settings, "steps": done}


def _assessor(lab: Lab) -> dict[str, str]:
    with lab.server.client() as http:
        found = rows(
            http,
            f"/data/projects/{lab.project}/experiments",
            xsiType="proc:genProcData",
            columns="ID,label,session_label,proc:genprocdata/proctype,proc:genprocdata/procstatus,"
            "proc:genprocdata/validation/status,proc:genprocdata/jobid,proc:genprocdata/procversion,"
            "proc:genprocdata/inputs,proc:genprocdata/memused,proc:genprocdata/dax_version",
        )
    assert len(found) == 1, found
    return found[0]


def test_dax_pipeline_run_is_stored(lab: Lab, pipeline: dict[str, Any]) -> None:
    for step, proc in pipeline["steps"].items():
        assert proc.returncode == 0, f"dax {step}: {proc.stdout}\n{proc.stderr}"
        assert "CRITICAL" not in proc.stderr + proc.stdout, f"dax {step}: {proc.stderr}"
    run_ = _assessor(lab)
    guid = run_["ID"]
    # dax picks the run's ID (a UUID) and labels it PROJECT-x-SUBJECT-x-SESSION-x-PROCTYPE-x-UUID[:8].
    assert run_["label"] == f"{lab.project}-x-{lab.subject}-x-{lab.mr01}-x-{PROCTYPE}-x-{guid[:8]}"
    assert len(guid) == 36 and run_["session_label"] == lab.mr01
    assert (
        run_["proc:genprocdata/proctype"],
        run_["proc:genprocdata/procstatus"],
        run_["proc:genprocdata/validation/status"],
        run_["proc:genprocdata/jobid"],
        run_["proc:genprocdata/procversion"],
        run_["proc:genprocdata/memused"],
    ) == (PROCTYPE, "COMPLETE", "Needs QA", JOB_ID, "1.0.0", "51200")
    inputs = json.loads(run_["proc:genprocdata/inputs"])
    assert inputs == {
        "scan_epi": f"/projects/{lab.project}/subjects/{lab.subject}/experiments/{lab.mr01}/scans/3"
    }
    assert run_["proc:genprocdata/dax_version"] == "2.21.0"


def test_dax_pipeline_outputs_are_uploaded(lab: Lab, pipeline: dict[str, Any]) -> None:
    """The job fetched scan 3's DICOM from xnatd, the stand-in container listed their MD5s and
    sizes, and ``dax upload`` stored the report (one file: a file upload), the statistics (a folder:
    a zip it has xnatd extract) and the batch script as the run's ``out`` resources."""
    guid = _assessor(lab)["ID"]
    base = f"/data/experiments/{lab.ids[lab.mr01]}/assessors/{guid}/out/resources"
    sources = sorted((SIEMENS / "mr_0003").glob("*.dcm"))
    with lab.server.client() as http:
        assert sorted(r["label"] for r in rows(http, base)) == ["PBS", "REPORT", "STATS"]
        report = http.get(f"{base}/REPORT/files/report.txt")
        assert report.status_code == 200
        listed = sorted(line.split()[0] for line in report.text.splitlines())
        assert listed == dicom_md5s(SIEMENS / "mr_0003")
        stats = {r["Name"]: r for r in rows(http, f"{base}/STATS/files")}
        assert sorted(stats) == [f"{p.name}.size" for p in sources]
        for p in sources:
            got = http.get(f"{base}/STATS/files/{p.name}.size")
            assert got.text.strip() == str(p.stat().st_size)
        batch = rows(http, f"{base}/PBS/files")
        assert [r["Name"] for r in batch] == [f"{_assessor(lab)['label']}.slurm"]


def test_dax_lists_the_pipeline_run(lab: Lab, dax: Any, pipeline: dict[str, Any]) -> None:
    assert XnatUtils.has_dax_datatypes(dax)  # proc:genProcData is in /data/search/elements
    label = _assessor(lab)["label"]
    listed = dax.list_project_assessors(lab.project)
    assert [
        (a["label"], a["proctype"], a["procstatus"], a["qcstatus"], a["session_label"]) for a in listed
    ] == [(label, PROCTYPE, "COMPLETE", "Needs QA", lab.mr01)]
    assert sorted(listed[0]["resources"]) == ["PBS", "REPORT", "STATS"]
    assert dax.list_project_assessor_types(lab.project) == [PROCTYPE]
    assert [a["label"] for a in dax.get_assessors(lab.project, lab.subject, lab.mr01)] == [label]
    frame = XnatUtils.load_assr_data(dax, [lab.project])
    runs = frame[frame["ASSR"] == label]
    assert list(runs["PROCSTATUS"]) == ["COMPLETE"]
    (inputs,) = list(runs["INPUTS"])
    assert inputs["scan_epi"].endswith("/scans/3")


def test_dax_reads_the_run_from_the_session_document(lab: Lab, dax: Any, pipeline: dict[str, Any]) -> None:
    """A processor whose input is another's output finds it here: the run's fields and its ``out``
    resources in the session's XML (``proc:procstatus``, ``xnat:out/xnat:file``)."""
    cached = XnatUtils.CachedImageSession(dax, lab.project, lab.subject, lab.mr01)
    (assessor,) = [a for a in cached.assessors() if a.info()["xsiType"] == "proc:genprocdata"]
    info = assessor.info()
    assert (info["proctype"], info["procstatus"], info["jobid"], info["version"]) == (
        PROCTYPE,
        "COMPLETE",
        JOB_ID,
        "1.0.0",
    )
    assert assessor.get_inputs() == json.loads(_assessor(lab)["proc:genprocdata/inputs"])
    assert sorted(r.label() for r in assessor.out_resources()) == ["PBS", "REPORT", "STATS"]


def test_xnatinfo_reports_the_project(lab: Lab, pipeline: dict[str, Any]) -> None:
    report = ok(run(["Xnatinfo", lab.project], pipeline["env"]))
    assert "Assessors/Processes : 1" in report
    line = next(line for line in report.splitlines() if line.strip().startswith(PROCTYPE))
    counts = [c.strip() for c in line.split("|")]
    assert counts[:3] == [PROCTYPE, "1", "1"]  # one run, COMPLETE
    for scan_type, _ in SIEMENS_SCANS.values():
        assert any(row.strip().startswith(scan_type) for row in report.splitlines())


# --- what the tools needed of xnatd, through its REST API ------------------------------------------


def test_a_new_object_keeps_the_id_its_client_gives(lab: Lab) -> None:
    """XNAT keeps the ``ID`` a client gives a new subject or experiment (dax names each run by a
    UUID it picks and finds it again by that ID); the label comes from ``label=``."""
    guid, subject_id = str(uuid.uuid4()), f"{lab.project}_S_chosen"
    base = f"/data/projects/{lab.project}/subjects"
    with lab.server.client() as http:
        made = http.put(f"{base}/{lab.project}_005", params={"ID": subject_id})
        assert (made.status_code, made.text) == (201, subject_id)
        url = f"/data/experiments/{lab.ids[lab.mr01]}/assessors/{guid}"
        created = http.put(url, params={"xsiType": "proc:genprocdata", "ID": guid, "label": "run-1"})
        assert (created.status_code, created.text) == (201, guid)
        doc = http.get(f"/data/experiments/{guid}", params={"format": "json"}).json()["items"][0]
        assert (doc["data_fields"]["ID"], doc["data_fields"]["label"]) == (guid, "run-1")
        updated = http.put(url, params={"proc:genprocdata/procstatus": "NEED_TO_RUN"})  # found by its ID
        assert (updated.status_code, updated.text) == (200, guid)
        taken = http.put(
            f"{base}/{lab.subject}/experiments/other", params={"xsiType": "xnat:mrSessionData", "ID": guid}
        )
        assert taken.status_code == 409 and guid in taken.text
        bad = http.put(
            f"{base}/{lab.subject}/experiments/other2",
            params={"xsiType": "xnat:mrSessionData", "ID": "a/b c"},
        )
        assert bad.status_code == 417
        assert rows(http, f"/data/projects/{lab.project}/experiments", label="other,other2") == []


def test_documents_qualify_plugin_fields_and_file_assessor_outputs(lab: Lab, tmp_path: Path) -> None:
    """A ``proc:genProcData`` run in its session's XML: its own fields in the ``proc`` namespace, the
    inherited ones in ``xnat``, its resources as outputs (``xnat:out/xnat:file``), as XNAT writes it;
    and a document written so is read back whole when a user PUTs it with curl (``-d @doc.xml``,
    which sends it as a form)."""
    guid = str(uuid.uuid4())
    assessor = f"/data/experiments/{lab.ids[lab.mr02]}/assessors/{guid}"
    with lab.server.client() as http:
        params = {"xsiType": "proc:genProcData", "ID": guid, "label": f"qa-{guid[:8]}", "date": "2024-05-06"}
        params |= {"proc:genProcData/procstatus": "COMPLETE", "proc:genProcData/proctype": "qa_v1"}
        assert http.put(assessor, params=params).status_code == 201
        assert http.put(f"{assessor}/resources/STATS").status_code == 200
        assert http.put(f"{assessor}/out/resources/PDF").status_code == 200
        session = ET.fromstring(
            http.get(f"/data/experiments/{lab.ids[lab.mr02]}", params={"format": "xml"}).content
        )
        node = next(a for a in session.iter(f"{{{XNAT}}}assessor") if a.get("ID") == guid)
        assert node.get(f"{{{XSI}}}type") == "proc:genProcData"
        assert [(c.tag, c.text) for c in node if c.tag.startswith(f"{{{PROC}}}")] == [
            (f"{{{PROC}}}procstatus", "COMPLETE"),
            (f"{{{PROC}}}proctype", "qa_v1"),
        ]
        assert node.findtext(f"{{{XNAT}}}date") == "2024-05-06"
        outputs = node.findall(f"{{{XNAT}}}out/{{{XNAT}}}file")
        assert sorted(f.get("label") for f in outputs) == ["PDF", "STATS"]
        assert node.find(f"{{{XNAT}}}resources") is None

        own = http.get(assessor, params={"format": "xml"}).content
        assert (
            own.startswith(b"<?xml") and b"<proc:Processing " in own and b"<proc:procstatus>COMPLETE<" in own
        )
        copy = f"/data/experiments/{lab.ids[lab.mr02]}/assessors/copy-{guid[:8]}"
        doc = tmp_path / "copy.xml"
        doc.write_bytes(own.replace(guid.encode(), f"copy-{guid[:8]}".encode()).replace(b"qa-", b"copy-qa-"))
        put = curl(
            "-u", ":".join(ADMIN), "-X", "PUT", "--data-binary", f"@{doc}", f"{lab.url}{copy}?inbody=true"
        )
        assert put.status == 201, str(put)
        back = http.get(copy, params={"format": "json"}).json()["items"][0]["data_fields"]
        assert (back["procstatus"], back["proctype"], back["label"]) == (
            "COMPLETE",
            "qa_v1",
            f"copy-qa-{guid[:8]}",
        )
