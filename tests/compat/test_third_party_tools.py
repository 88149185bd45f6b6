"""Third-party XNAT tools, driven as a lab drives them, against xnatd (issue 18, "How it is checked").

* yaxil 0.17.0: its library (``auth2``, ``subjects``, ``experiments``, ``scans`` — the child-column
  listings of item 1 —, ``scansearch``, ``download``) and its ``ArcGet.py`` downloader;
* xnatutils 0.10.0: ``xnat-ls``, ``xnat-put``, ``xnat-get``, ``xnat-varput``/``xnat-varget`` and
  ``xnat-rename``, as subprocesses with the credentials in XNAT_HOST/XNAT_USER/XNAT_PASS or in the
  token ``~/.netrc`` they save;
* dax 2.21.0: ``XnatUtils``' project listings, ``Xnatinfo``, and a pipeline's whole life — ``dax build``
  (a ``proc:genProcData`` run per matching scan), ``dax launch`` (the batch job fetches its input from
  xnatd), ``dax update``, ``dax upload`` — with only Slurm and Singularity played by stand-ins.

Real DICOM from shared/testdata is imported first (``third_party.make_lab``). What each tool cannot do
against any XNAT (its own bugs) is asserted as the tool's actual behaviour, with the reason.
"""

from __future__ import annotations

import json
import os
import uuid
from xml.etree import ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel
import pytest
import xnat
import xnatutils
import yaxil
from dax import XnatUtils

from tests.compat.helpers import ADMIN, curl
from tests.compat.third_party import (
    GE,
    JOB_ID,
    PROCTYPE,
    SIEMENS,
    Lab,
    dax_site,
    dicom_md5s,
    make_lab,
    md5_file,
    md5s,
    rows,
    run,
)
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

SIEMENS_SCANS = {  # scan ID -> (type, series folder)
    "3": ("EPI PE=AP", "mr_0003"),
    "4": ("EPI PE=PA", "mr_0004"),
    "5": ("EPI PE=RL", "mr_0005"),
    "6": ("EPI PE=LR", "mr_0006"),
}
GE_TYPE = "Axial EPI-FMRI (Interleaved I to S)"
XNAT, PROC = "http://nrg.wustl.edu/xnat", "http://nrg.wustl.edu/proc"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@pytest.fixture(scope="module")
def lab(server: LiveServer) -> Lab:
    return make_lab(server)


def ok(proc: Any) -> str:
    assert proc.returncode == 0, f"{proc.args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return str(proc.stdout)


# --- yaxil -----------------------------------------------------------------------------------------


def test_yaxil_lists_subjects_sessions_and_scans(lab: Lab) -> None:
    auth = yaxil.auth2(host=lab.url, username=ADMIN[0], password=ADMIN[1])
    assert auth.cookie["JSESSIONID"], "auth2 opens a server session (GET /data/JSESSION)"
    with yaxil.session(auth) as ses:
        assert [(s.label, s.id, s.project) for s in ses.subjects(project=lab.project)] == [
            (lab.subject, lab.ids[lab.subject], lab.project)
        ]
        by_project = sorted(ses.experiments(project=lab.project))
        assert [(e.label, e.id, e.subject_label, e.subject_id) for e in by_project] == [
            (label, lab.ids[label], lab.subject, lab.ids[lab.subject]) for label in (lab.mr01, lab.mr02)
        ]
        subject = next(iter(ses.subjects(label=lab.subject, project=lab.project)))
        assert sorted(ses.experiments(subject=subject)) == by_project
        assert ses.accession(lab.mr01, lab.project) == lab.ids[lab.mr01]
        scans = {s["id"]: s for s in ses.scans(lab.mr01, project=lab.project)}
    assert {k: s["type"] for k, s in scans.items()} == {k: t for k, (t, _) in SIEMENS_SCANS.items()}
    ap = scans["3"]
    assert (ap["series_description"], ap["scanner_manufacturer"], ap["scanner_model"]) == (
        "EPI PE=AP",
        "SIEMENS",
        "Skyra",
    )
    assert (ap["tr"], ap["te"], ap["flip"], ap["frames"], ap["field_strength"]) == (
        "2435.37",
        "50.0",
        "75",
        "2",
        "3",
    )
    assert (ap["session_label"], ap["subject_label"], ap["session_project"], ap["date_scanned"]) == (
        lab.mr01,
        lab.subject,
        lab.project,
        "2018-09-18",
    )


def test_yaxil_searches_and_tells_types(lab: Lab) -> None:
    auth = yaxil.auth2(host=lab.url, username=ADMIN[0], password=ADMIN[1])
    with yaxil.session(auth) as ses:
        found = ses.scansearch(lab.mr01, {"ap": "type LIKE '%PE=AP%'", "lr_rl": "type LIKE '%=%L%'"})
        assert dict(found) == {"ap": ["3"], "lr_rl": ["5", "6"]}
        assert ses.exists(lab.ids[lab.mr01]) and not ses.exists("XNAT_E99999")
        assert ses.has("xnat:mrSessionData", project=lab.project)
        assert not ses.has("xnat:ctSessionData", project=lab.project)


def test_yaxil_download_and_arcget(lab: Lab, tmp_path: Path) -> None:
    auth = yaxil.auth2(host=lab.url, username=ADMIN[0], password=ADMIN[1])
    yaxil.download(auth, lab.mr01, ["3"], project=lab.project, out_dir=str(tmp_path / "lib"))
    assert sorted(md5s(tmp_path / "lib").values()) == dicom_md5s(SIEMENS / "mr_0003")

    # ArcGet.py with the credentials in the environment, as in a batch job.
    env = lab.env(tmp_path / "home")
    out = tmp_path / "arcget"
    argv = ["ArcGet.py", "-l", lab.mr02, "-p", lab.project, "--scans", "4", "-f", "flat", "-o", str(out)]
    ok(run(argv, env))
    assert sorted(md5s(out).values()) == dicom_md5s(GE)
    readme = [line for line in ok(run(["ArcGet.py", "-l", lab.mr01, "-p", lab.project, "--readme"], env)).splitlines() if line]
    assert readme[0] == "scan,type,series,quality,note"
    assert [line.split(",")[:3] for line in readme[1:]] == [[k, t, t] for k, (t, _) in SIEMENS_SCANS.items()]


# --- xnatutils -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xnatpy(lab: Lab) -> Iterator[Any]:
    """One xnatpy session for the xnatutils functions called in-process (``connection=``): each
    console script run connects anew, which costs seconds, so each command runs as a script once
    or twice and its other cases go through the same function on this connection."""
    session = xnat.connect(lab.url, user=ADMIN[0], password=ADMIN[1], loglevel="ERROR")
    try:
        yield session
    finally:
        session.disconnect()


def test_xnat_ls_lists_each_level(lab: Lab, xnatpy: Any, tmp_path: Path) -> None:
    env = lab.env(tmp_path)
    listed = ok(run(["xnat-ls", "-d", "session", "-p", lab.project, "-j", lab.subject], env))
    assert listed.splitlines() == [lab.mr01, lab.mr02]
    xnatpy.clearcache()
    assert lab.project in xnatutils.ls(datatype="project", connection=xnatpy)
    assert lab.subject in xnatutils.ls(datatype="subject", project_id=lab.project, connection=xnatpy)
    scans = xnatutils.ls([lab.mr01], datatype="scan", connection=xnatpy)
    assert scans == sorted(t for t, _ in SIEMENS_SCANS.values())
    assert xnatutils.ls([lab.mr02], datatype="scan", connection=xnatpy) == [GE_TYPE]
    # Guessing the level from the underscores (no ``-d``) fails inside the tool on any server:
    # ``ls()`` treats argparse's list of IDs as one ID (``xnat_id.split``, ``projects[list]``).
    guessed = run(["xnat-ls", lab.mr01], env)
    assert guessed.returncode == 1 and "AttributeError: 'list' object has no attribute 'split'" in guessed.stderr


def _session(lab: Lab, subject: str, label: str) -> None:
    with lab.server.client() as http:
        r = http.put(
            f"/data/projects/{lab.project}/subjects/{subject}/experiments/{label}",
            params={"xsiType": "xnat:mrSessionData"},
        )
        assert r.status_code in (200, 201), r.text


def _files(lab: Lab, session: str, scan: str, resource: str) -> dict[str, str]:
    """Path -> digest of a scan resource's files, as xnatd lists them."""
    with lab.server.client() as http:
        listed = rows(http, f"/data/projects/{lab.project}/experiments/{session}/scans/{scan}/resources/{resource}/files")
    return {r["URI"].split("/files/", 1)[1]: r["digest"] for r in listed}


def test_xnat_put_a_folder_and_get_it_back(lab: Lab, tmp_path: Path) -> None:
    session = f"{lab.project}_002_MR01"
    _session(lab, f"{lab.project}_002", session)
    folder = tmp_path / "derived"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(os.urandom(65536))
    (folder / "b.txt").write_text("hello\n")
    (folder / "sub" / "c.txt").write_text("nested\n")
    env = lab.env(tmp_path / "home")
    put = ok(run(["xnat-put", session, "fmap", str(folder), "-r", "TEXT"], env))
    assert f"Successfully checked digest for {session}:fmap" in put
    assert _files(lab, session, "fmap", "TEXT") == md5s(folder)

    ok(run(["xnat-get", session, "--scans", "fmap", "-t", str(tmp_path / "got")], env))
    assert md5s(tmp_path / "got" / session / "fmap-fmap") == md5s(folder)


def test_xnat_put_files(lab: Lab, tmp_path: Path) -> None:
    session = f"{lab.project}_002_MR02"
    _session(lab, f"{lab.project}_002", session)
    files = [tmp_path / "x.txt", tmp_path / "y.dat"]
    files[0].write_text("x\n")
    files[1].write_bytes(os.urandom(4096))
    env = lab.env(tmp_path / "home")
    argv = ["xnat-put", session, "notes", *map(str, files), "-r", "TEXT", "--method", "per_file"]
    assert "Successfully checked digest" in ok(run(argv, env))
    assert _files(lab, session, "notes", "TEXT") == {p.name: md5_file(p) for p in files}

    # Without ``--method`` the tool links the files into a folder and sends a tar of the links
    # (``tarfile.add`` keeps links): xnatd refuses links in archives with a 400 that the tool shows;
    # XNAT writes each link as an empty file, and the tool's digest check then fails. Either way
    # nothing of the files arrives: the tool's own bug.
    linked = run(["xnat-put", session, "linked", *map(str, files), "-r", "TEXT"], env)
    assert linked.returncode == 1
    assert "Status code 400" in linked.stderr and "is a link; links are not accepted" in linked.stderr
    assert _files(lab, session, "linked", "TEXT") == {}


def test_xnat_put_creates_the_session_and_xnat_rename(lab: Lab, tmp_path: Path) -> None:
    session, renamed = f"{lab.project}_003_MR01", f"{lab.project}_003_MR02"
    data = tmp_path / "t1.txt"
    data.write_text("t1\n")
    env = lab.env(tmp_path / "home")
    argv = ["xnat-put", session, "t1", str(data), "-r", "TEXT", "--create_session", "--method", "per_file"]
    assert f"{session} session successfully created." in ok(run(argv, env))
    with lab.server.client() as http:
        made = rows(http, f"/data/projects/{lab.project}/experiments", label=session, columns="ID,label,xsiType,subject_label")
    # The tool names the subject by the middle part of ``PROJECT_SUBJECT_VISIT``.
    assert [(r["xsiType"], r["subject_label"]) for r in made] == [("xnat:mrSessionData", "003")]
    assert _files(lab, session, "t1", "TEXT") == {"t1.txt": md5_file(data)}

    assert f"Successfully renamed '{session}' to '{renamed}'" in ok(run(["xnat-rename", session, renamed], env))
    with lab.server.client() as http:
        after = rows(http, f"/data/projects/{lab.project}/experiments", ID=made[0]["ID"], columns="ID,label")
    assert [r["label"] for r in after] == [renamed]


def test_xnat_get_dicom_and_convert_to_nifti(lab: Lab, xnatpy: Any, tmp_path: Path) -> None:
    env = lab.env(tmp_path / "home")
    out = tmp_path / "got"
    ok(run(["xnat-get", lab.mr01, "--scans", "EPI PE=PA", "-t", str(out), "--convert_to", "nifti_gz"], env))
    image: Any = nibabel.load(out / lab.mr01 / "4-EPI_PE_PA.nii.gz")
    assert image.shape == (72, 72, 5, 2)  # two 3x3 mosaics of 72x72 slices, converted by dcm2niix
    xnatpy.clearcache()
    xnatutils.get(lab.mr01, str(out), scans="EPI PE=AP", connection=xnatpy)
    assert sorted(md5s(out / lab.mr01 / "3-EPI_PE_AP").values()) == dicom_md5s(SIEMENS / "mr_0003")


def test_xnat_varput_and_varget(lab: Lab, xnatpy: Any, tmp_path: Path) -> None:
    session, subject = f"{lab.project}_004_MR01", f"{lab.project}_004"
    _session(lab, subject, session)
    env = lab.env(tmp_path / "home")
    ok(run(["xnat-varput", session, "visit", "V1"], env))
    assert ok(run(["xnat-varget", session, "visit"], env)) == "V1"
    xnatpy.clearcache()
    xnatutils.varput(subject, "group", "control", connection=xnatpy)
    assert xnatutils.varget(subject, "group", connection=xnatpy) == "control"
    assert xnatutils.varget(session, "missing", default="none", connection=xnatpy) == "none"
    with lab.server.client() as http:
        doc = http.get(f"/data/projects/{lab.project}/experiments/{session}", params={"format": "json"})
        custom = [c for c in doc.json()["items"][0]["children"] if c["field"] == "fields/field"]
        assert [(i["data_fields"]["name"], i["data_fields"]["field"]) for i in custom[0]["items"]] == [
            ("visit", "V1")
        ]
        group = "xnat:subjectData/fields/field[name=group]/field"
        groups = rows(http, f"/data/projects/{lab.project}/subjects", label=subject, columns=f"label,{group}")
    assert [r[group.lower()] for r in groups] == ["control"]  # XNAT's listings key columns in lower case


def test_xnatutils_saves_a_token_in_netrc_and_logs_in_with_it(lab: Lab, tmp_path: Path) -> None:
    """No credentials in the environment: the user types the password once, xnatutils issues an
    alias token (``/data/services/tokens/issue``) and saves it in ``~/.netrc``; later calls use it."""
    home = tmp_path / "home"
    home.mkdir()
    env = lab.env(home, credentials=False)
    first = run(["xnat-ls", "-s", lab.url, "-u", ADMIN[0], "-d", "project"], env, stdin=ADMIN[1] + "\n")
    assert lab.project in ok(first).splitlines()
    saved = (home / ".netrc").read_text().split()
    assert saved[:2] == ["machine", f"127.0.0.1:{lab.server.port}"] and saved[2] == "user"
    alias, secret = saved[3], saved[5]
    assert alias != ADMIN[0]
    with lab.server.client(auth=(alias, secret)) as token_login:
        assert token_login.get("/data/JSESSION").status_code == 200
    later = run(["xnat-ls", "-d", "session", "-p", lab.project, "-j", lab.subject], env)
    assert ok(later).splitlines() == [lab.mr01, lab.mr02]


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
    assert inputs == {"scan_epi": f"/projects/{lab.project}/subjects/{lab.subject}/experiments/{lab.mr01}/scans/3"}
    assert run_["proc:genprocdata/dax_version"] == "2.21.0"


def test_dax_pipeline_outputs_are_uploaded(lab: Lab, pipeline: dict[str, Any]) -> None:
    """The job fetched scan 3's DICOM from xnatd, the stand-in container listed their MD5s, and
    ``dax upload`` stored the report and the batch script as the run's ``out`` resources."""
    guid = _assessor(lab)["ID"]
    base = f"/data/experiments/{lab.ids[lab.mr01]}/assessors/{guid}/out/resources"
    with lab.server.client() as http:
        assert sorted(r["label"] for r in rows(http, base)) == ["PBS", "REPORT"]
        report = http.get(f"{base}/REPORT/files/report.txt")
        assert report.status_code == 200
        listed = sorted(line.split()[0] for line in report.text.splitlines())
        assert listed == dicom_md5s(SIEMENS / "mr_0003")
        batch = rows(http, f"{base}/PBS/files")
        assert [r["Name"] for r in batch] == [f"{_assessor(lab)['label']}.slurm"]


def test_dax_lists_the_pipeline_run(lab: Lab, dax: Any, pipeline: dict[str, Any]) -> None:
    assert XnatUtils.has_dax_datatypes(dax)  # proc:genProcData is in /data/search/elements
    label = _assessor(lab)["label"]
    listed = dax.list_project_assessors(lab.project)
    assert [(a["label"], a["proctype"], a["procstatus"], a["qcstatus"], a["session_label"]) for a in listed] == [
        (label, PROCTYPE, "COMPLETE", "Needs QA", lab.mr01)
    ]
    assert sorted(listed[0]["resources"]) == ["PBS", "REPORT"]
    assert dax.list_project_assessor_types(lab.project) == [PROCTYPE]
    assert [a["label"] for a in dax.get_assessors(lab.project, lab.subject, lab.mr01)] == [label]
    frame = XnatUtils.load_assr_data(dax, [lab.project])
    runs = frame[frame["ASSR"] == label]
    assert list(runs["PROCSTATUS"]) == ["COMPLETE"] and list(runs["INPUTS"])[0]["scan_epi"].endswith("/scans/3")


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
    assert sorted(r.label() for r in assessor.out_resources()) == ["PBS", "REPORT"]


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
        taken = http.put(f"{base}/{lab.subject}/experiments/other", params={"xsiType": "xnat:mrSessionData", "ID": guid})
        assert taken.status_code == 409 and guid in taken.text
        bad = http.put(f"{base}/{lab.subject}/experiments/other2", params={"xsiType": "xnat:mrSessionData", "ID": "a/b c"})
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
        session = ET.fromstring(http.get(f"/data/experiments/{lab.ids[lab.mr02]}", params={"format": "xml"}).content)
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
        assert own.startswith(b"<?xml") and b"<proc:Processing " in own and b"<proc:procstatus>COMPLETE<" in own
        copy = f"/data/experiments/{lab.ids[lab.mr02]}/assessors/copy-{guid[:8]}"
        doc = tmp_path / "copy.xml"
        doc.write_bytes(own.replace(guid.encode(), f"copy-{guid[:8]}".encode()).replace(b"qa-", b"copy-qa-"))
        put = curl("-u", ":".join(ADMIN), "-X", "PUT", "--data-binary", f"@{doc}", f"{lab.url}{copy}?inbody=true")
        assert put.status == 201, str(put)
        back = http.get(copy, params={"format": "json"}).json()["items"][0]["data_fields"]
        assert (back["procstatus"], back["proctype"], back["label"]) == ("COMPLETE", "qa_v1", f"copy-qa-{guid[:8]}")
