"""The real xnatpy 0.8.1 client against a live xnatd (see shared/reference/clients.md section 1)."""

from __future__ import annotations

import datetime
import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import xnat

from tests.compat.helpers import ADMIN, describe, make_zip, md5, rows
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

NewId = Callable[[str], str]


def _make_project(xsession: Any, new_id: NewId) -> Any:
    """Create a project as xnatpy does (`PUT /data/archive/projects/{id}?xsiType=...&req_format=qs`)."""
    pid = new_id("XP")
    xsession.classes.ProjectData(parent=xsession, id_=pid, name=pid)
    xsession.clearcache()
    assert pid in xsession.projects, f"{pid} not listed in {list(xsession.projects.keys())}"
    return xsession.projects[pid]


def _make_tree(xsession: Any, new_id: NewId) -> tuple[Any, Any, Any, Any]:
    """project -> subject -> MR session -> scan 1 (type T1), all through the client's constructors."""
    project = _make_project(xsession, new_id)
    subject = xsession.classes.SubjectData(parent=project, label=new_id("SUBJ"))
    experiment = xsession.classes.MrSessionData(parent=subject, label=new_id("MR"))
    scan = xsession.classes.MrScanData(parent=experiment, id="1", type="T1")
    return project, subject, experiment, scan


def _zip_names(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def test_connect_login_and_disconnect(server: LiveServer) -> None:
    session = xnat.connect(server.url, user="admin", password="admin", loglevel="ERROR")
    try:
        assert session.logged_in_user == "admin"
        jsession = session.interface.cookies.get("JSESSIONID")
        assert jsession, "xnatpy has no JSESSIONID cookie after login"
        # the cookie alone authenticates (xnatpy sends nothing else after login)
        with httpx.Client(base_url=server.url, cookies={"JSESSIONID": jsession}, timeout=60) as c:
            r = c.get("/data/projects", params={"format": "json"})
            assert r.status_code == 200, describe(r)
        # the client's own model was built from the server's schemas
        assert session.classes.MrSessionData.__xsi_type__ == "xnat:mrSessionData"
    finally:
        session.disconnect()
    # DELETE /data/JSESSION invalidated the HTTP session
    with httpx.Client(base_url=server.url, cookies={"JSESSIONID": jsession}, timeout=60) as c:
        r = c.get("/data/projects", params={"format": "json"})
        assert r.status_code == 401, f"session still valid after disconnect: {describe(r)}"


def test_project_subject_with_demographics(xsession: Any, new_id: NewId, http: httpx.Client) -> None:
    project = _make_project(xsession, new_id)
    assert project.id == project.name
    label = new_id("SUBJ")
    subject = xsession.classes.SubjectData(parent=project, label=label)
    assert subject.label == label
    assert subject.id and subject.id != label, f"subject ID should be an accession ID, got {subject.id!r}"

    project.clearcache()
    assert label in project.subjects
    assert project.subjects[label].id == subject.id

    subject.demographics.gender = "male"
    subject.demographics.age = 33
    subject.clearcache()
    assert subject.demographics.gender == "male"
    assert subject.demographics.age == 33

    # xnatpy caches the demographics sub-object under the subject's own URI, so a later listing would hand
    # it back instead of the subject (client quirk, same with real XNAT): start from a clean cache.
    xsession.clearcache()
    assert xsession.subjects[subject.id].label == label
    r = http.get(f"/data/subjects/{subject.id}", params={"format": "json"})
    assert r.status_code == 200, describe(r)


def test_experiment_and_scan_fields(xsession: Any, new_id: NewId) -> None:
    project, subject, experiment, scan = _make_tree(xsession, new_id)
    assert experiment.id and experiment.id != experiment.label
    assert experiment.project == project.id

    experiment.date = datetime.date(2020, 2, 3)
    experiment.note = "compat note"
    experiment.acquisition_site = "Compat Hospital"
    experiment.scanner.manufacturer = "SIEMENS"
    experiment.scanner.model = "Prisma"
    experiment.field_strength = "3.0"
    experiment.clearcache()
    assert experiment.date == datetime.date(2020, 2, 3)
    assert experiment.note == "compat note"
    assert experiment.acquisition_site == "Compat Hospital"
    assert experiment.scanner.manufacturer == "SIEMENS"
    assert experiment.scanner.model == "Prisma"
    assert str(experiment.field_strength) == "3.0"

    assert scan.id == "1"
    assert scan.type == "T1"
    scan.series_description = "MPRAGE sag"
    scan.quality = "usable"
    scan.clearcache()
    assert scan.series_description == "MPRAGE sag"
    assert scan.quality == "usable"
    assert scan.type == "T1"

    # listings: subject -> experiments, experiment -> scans, global experiment by ID
    # (clean cache: xnatpy keys its sub-objects such as `scanner` by the experiment's URI)
    xsession.clearcache()
    subject.clearcache()
    assert experiment.label in subject.experiments
    listed = subject.experiments[experiment.label]
    assert listed.__xsi_type__ == "xnat:mrSessionData"
    assert listed.id == experiment.id
    experiment.clearcache()
    assert list(experiment.scans.keys()) == ["1"]
    assert experiment.scans["1"].type == "T1"
    xsession.clearcache()
    assert xsession.experiments[experiment.id].label == experiment.label
    project.clearcache()
    assert experiment.label in project.experiments


def test_resources_uploads_and_downloads(xsession: Any, new_id: NewId, tmp_path: Path) -> None:
    project, subject, experiment, scan = _make_tree(xsession, new_id)

    res = scan.create_resource("DICOM")
    assert res.label == "DICOM"

    a_bytes = b"first file " + new_id("A").encode() + bytes(range(256))
    b_bytes = b"second file " + new_id("B").encode()
    a_path = tmp_path / "a_local.bin"
    a_path.write_bytes(a_bytes)
    res.upload(a_path, "a.txt")
    res.upload_data(b_bytes, "sub/b.txt")

    res.clearcache()
    files = res.files
    assert sorted(files.keys()) == ["a.txt", "sub/b.txt"]
    fa = files["a.txt"]
    assert fa.digest == md5(a_bytes), "the listing's digest is the MD5 of the uploaded bytes"
    assert int(fa.size) == len(a_bytes)
    downloaded = tmp_path / "a_downloaded"
    fa.download(downloaded, verbose=False)  # xnatpy also checks the digest
    assert downloaded.read_bytes() == a_bytes
    fb = files["sub/b.txt"]
    out_b = tmp_path / "b_downloaded"
    fb.download(out_b, verbose=False)
    assert out_b.read_bytes() == b_bytes

    scan.clearcache()
    listed = scan.resources["DICOM"]
    assert listed.file_count == 2
    assert listed.file_size == len(a_bytes) + len(b_bytes)

    # upload_dir: one gzip tar, extracted by the server
    tree = tmp_path / "tree"
    (tree / "x" / "y").mkdir(parents=True)
    (tree / "top.txt").write_bytes(b"top level")
    (tree / "x" / "mid.txt").write_bytes(b"middle")
    (tree / "x" / "y" / "deep.txt").write_bytes(b"deep down")
    nifti = scan.create_resource("NIFTI")
    nifti.upload_dir(tree)
    nifti.clearcache()
    assert sorted(nifti.files.keys()) == ["top.txt", "x/mid.txt", "x/y/deep.txt"], "tar.gz not extracted"
    out_deep = tmp_path / "deep"
    nifti.files["x/y/deep.txt"].download(out_deep, verbose=False)
    assert out_deep.read_bytes() == b"deep down"

    # a zip with extract=true, at experiment level
    notes = experiment.create_resource("NOTES")
    zpath = tmp_path / "bundle.zip"
    zpath.write_bytes(make_zip({"n1.txt": b"note one", "d/n2.txt": b"note two"}))
    notes.upload(zpath, "bundle.zip", extract=True)
    notes.clearcache()
    assert sorted(notes.files.keys()) == ["d/n2.txt", "n1.txt"], "zip not extracted"

    # a plain tar (not gzipped) with extract=true, at subject level
    subj_res = subject.create_resource("SUBJRES")
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tf:
        info = tarfile.TarInfo("t/inside.txt")
        data = b"from a tar"
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    subj_res.upload_data(tar_buf.getvalue(), "up.tar", extract=True)
    subj_res.clearcache()
    assert list(subj_res.files.keys()) == ["t/inside.txt"], "tar not extracted"

    # project-level resource
    proj_res = project.create_resource("PROJRES")
    proj_res.upload_data(b"project level", "p.txt")
    proj_res.clearcache()
    out_p = tmp_path / "p"
    proj_res.files["p.txt"].download(out_p, verbose=False)
    assert out_p.read_bytes() == b"project level"

    # resources listings at each level
    for obj, label in ((scan, "DICOM"), (experiment, "NOTES"), (subject, "SUBJRES"), (project, "PROJRES")):
        obj.clearcache()
        assert label in obj.resources, f"{label} not listed at {obj.uri}: {list(obj.resources.keys())}"

    # zips: resource, scan, experiment (all scans)
    scan_dir = f"{experiment.label}/scans/1-T1/resources"
    res_zip = tmp_path / "res.zip"
    res.download(res_zip, verbose=False)
    assert _zip_names(res_zip) == {
        f"{scan_dir}/DICOM/files/a.txt": a_bytes,
        f"{scan_dir}/DICOM/files/sub/b.txt": b_bytes,
    }
    scan_zip = tmp_path / "scan.zip"
    scan.download(scan_zip, verbose=False)
    assert set(_zip_names(scan_zip)) == {
        f"{scan_dir}/DICOM/files/a.txt",
        f"{scan_dir}/DICOM/files/sub/b.txt",
        f"{scan_dir}/NIFTI/files/top.txt",
        f"{scan_dir}/NIFTI/files/x/mid.txt",
        f"{scan_dir}/NIFTI/files/x/y/deep.txt",
    }
    second = xsession.classes.MrScanData(parent=experiment, id="2", type="T2")
    second.create_resource("DICOM").upload_data(b"scan two", "s2.dcm")
    exp_zip = tmp_path / "exp.zip"
    experiment.download(exp_zip, verbose=False)
    exp_members = _zip_names(exp_zip)
    assert set(exp_members) == set(_zip_names(scan_zip)) | {
        f"{experiment.label}/scans/2-T2/resources/DICOM/files/s2.dcm"
    }, "scans/ALL/files zip should hold every scan's files and nothing else"

    # download_dir helpers unpack those zips
    res.download_dir(tmp_path / "res_dir", verbose=False)
    assert [p.read_bytes() for p in (tmp_path / "res_dir").rglob("a.txt")] == [a_bytes]
    experiment.download_dir(tmp_path / "exp_dir", verbose=False)
    assert [p.read_bytes() for p in (tmp_path / "exp_dir").rglob("s2.dcm")] == [b"scan two"]


def test_rename_subject(xsession: Any, new_id: NewId, http: httpx.Client) -> None:
    project = _make_project(xsession, new_id)
    old = new_id("OLD")
    new = new_id("NEW")
    subject = xsession.classes.SubjectData(parent=project, label=old)
    sid = subject.id
    subject.label = new
    project.clearcache()
    assert new in project.subjects
    assert old not in project.subjects
    assert project.subjects[new].id == sid
    r = http.get(f"/data/projects/{project.id}/subjects/{new}", params={"format": "json"})
    assert r.status_code == 200, describe(r)
    r = http.get(f"/data/projects/{project.id}/subjects/{old}", params={"format": "json"})
    assert r.status_code == 404, describe(r)

    # a label already in use is refused (409) and changes nothing
    other = xsession.classes.SubjectData(parent=project, label=new_id("OTHER"))
    with pytest.raises(xnat.exceptions.XNATResponseError):
        other.label = new
    project.clearcache()
    assert project.subjects[new].id == sid

    # experiments are renamed the same way
    subject = project.subjects[new]
    exp = xsession.classes.MrSessionData(parent=subject, label=new_id("MR"))
    eid = exp.id
    renamed = new_id("MRNEW")
    exp.label = renamed
    subject.clearcache()
    assert subject.experiments[renamed].id == eid
    r = http.get(f"/data/projects/{project.id}/experiments/{renamed}", params={"format": "json"})
    assert r.status_code == 200, describe(r)


def test_delete_objects(xsession: Any, new_id: NewId, http: httpx.Client) -> None:
    project, subject, experiment, scan = _make_tree(xsession, new_id)
    res = scan.create_resource("DICOM")
    res.upload_data(b"keep", "keep.txt")
    res.upload_data(b"drop", "drop.txt")
    xsession.classes.MrScanData(parent=experiment, id="7", type="T2")

    # a file
    res.clearcache()
    res.files["drop.txt"].delete()
    res.clearcache()
    assert list(res.files.keys()) == ["keep.txt"]

    # a resource
    scan.clearcache()
    scan.resources["DICOM"].delete()
    scan.clearcache()
    assert "DICOM" not in scan.resources

    # a scan (deleted from a listing: see clients.md about the constructor-made scan)
    experiment.clearcache()
    experiment.scans["7"].delete()
    experiment.clearcache()
    assert list(experiment.scans.keys()) == ["1"]

    # an experiment, then the subject
    eid = experiment.id
    subject.clearcache()
    subject.experiments[experiment.label].delete()
    subject.clearcache()
    assert len(subject.experiments) == 0
    r = http.get(f"/data/experiments/{eid}", params={"format": "json"})
    assert r.status_code == 404, describe(r)

    sid = subject.id
    label = subject.label
    project.clearcache()
    project.subjects[label].delete()
    project.clearcache()
    assert label not in project.subjects
    r = http.get(f"/data/subjects/{sid}", params={"format": "json"})
    assert r.status_code == 404, describe(r)


@pytest.mark.parametrize(
    ("session_cls", "scan_cls", "xsi_type", "scan_xsi_type"),
    [
        ("CtSessionData", "CtScanData", "xnat:ctSessionData", "xnat:ctScanData"),
        ("PetSessionData", "PetScanData", "xnat:petSessionData", "xnat:petScanData"),
    ],
)
def test_ct_and_pet_sessions(
    xsession: Any,
    new_id: NewId,
    http: httpx.Client,
    session_cls: str,
    scan_cls: str,
    xsi_type: str,
    scan_xsi_type: str,
) -> None:
    project = _make_project(xsession, new_id)
    subject = xsession.classes.SubjectData(parent=project, label=new_id("SUBJ"))
    label = new_id("SES")
    exp = getattr(xsession.classes, session_cls)(parent=subject, label=label)
    scan = getattr(xsession.classes, scan_cls)(parent=exp, id="2", type="HEAD")
    exp.date = datetime.date(2019, 12, 31)

    subject.clearcache()
    listed = subject.experiments[label]
    assert listed.__xsi_type__ == xsi_type
    exp.clearcache()
    assert exp.date == datetime.date(2019, 12, 31)
    assert exp.scans["2"].__xsi_type__ == scan_xsi_type
    assert scan.type == "HEAD"

    listing = rows(
        http.get(
            f"/data/projects/{project.id}/experiments",
            params={"format": "json", "columns": "ID,label,xsiType"},
        )
    )
    assert [(r["label"], r["xsiType"]) for r in listing] == [(label, xsi_type)]
    scans = rows(
        http.get(f"/data/experiments/{exp.id}/scans", params={"format": "json", "columns": "ID,type,xsiType"})
    )
    assert [(r["ID"], r["xsiType"]) for r in scans] == [("2", scan_xsi_type)]


def test_admin_basic_auth_listing_matches_client(xsession: Any, new_id: NewId, server: LiveServer) -> None:
    """What xnatpy lists is what the same server shows to plain Basic auth."""
    project = _make_project(xsession, new_id)
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as c:
        ids = {r["ID"] for r in rows(c.get("/data/archive/projects", params={"format": "json"}))}
    xsession.clearcache()
    assert project.id in ids
    assert set(xsession.projects.keys()) == ids


def test_fresh_connection_navigates_by_listings(
    xsession: Any, new_id: NewId, server: LiveServer, tmp_path: Path
) -> None:
    """Objects built only from the server's listings (IDs, URIs, xsiTypes) lead to the right bytes."""
    project, subject, experiment, scan = _make_tree(xsession, new_id)
    payload = b"listed " + new_id("F").encode()
    scan.create_resource("DICOM").upload_data(payload, "deep/x.dcm")
    experiment.create_resource("SESSRES").upload_data(b"session level", "s.txt")

    fresh = xnat.connect(server.url, user="admin", password="admin", loglevel="ERROR")
    try:
        exp = fresh.projects[project.id].subjects[subject.label].experiments[experiment.label]
        assert exp.id == experiment.id
        res = exp.scans["1"].resources["DICOM"]
        f = res.files["deep/x.dcm"]
        assert f.digest == md5(payload)
        out = tmp_path / "x.dcm"
        f.download(out, verbose=False)
        assert out.read_bytes() == payload
        assert list(exp.resources["SESSRES"].files.keys()) == ["s.txt"]
        # global lookup by accession ID, and the subject resolved from the experiment
        assert fresh.experiments[experiment.id].subject.label == subject.label
    finally:
        fresh.disconnect()


@pytest.mark.parametrize("name", ["with space.txt", "ünïcødé.txt", "a+b=c.txt", "dir with space/f (1).txt"])
def test_unusual_file_names_round_trip(xsession: Any, new_id: NewId, tmp_path: Path, name: str) -> None:
    project = _make_project(xsession, new_id)
    res = project.create_resource("ODD")
    data = f"content of {name}".encode()
    res.upload_data(data, name)
    res.clearcache()
    assert list(res.files.keys()) == [name]
    out = tmp_path / "out"
    res.files[name].download(out, verbose=False)
    assert out.read_bytes() == data


def test_custom_variables(xsession: Any, new_id: NewId) -> None:
    """`obj.fields[name] = value` (xpath `.../fields/field[name=...]/field`), as real XNAT's schema allows."""
    _, subject, experiment, _ = _make_tree(xsession, new_id)
    subject.fields["study_group"] = "control"
    experiment.fields["visit_code"] = "V1"
    subject.clearcache()
    experiment.clearcache()
    assert subject.fields["study_group"] == "control"
    assert experiment.fields["visit_code"] == "V1"


def test_connect_with_alias_token(server: LiveServer, http: httpx.Client) -> None:
    """xnatpy logs in with an alias token (UUID user): `GET /` with Basic must set JSESSIONID."""
    r = http.get("/data/services/tokens/issue", params={"format": "json"})
    assert r.status_code == 200, describe(r)
    token = r.json()
    session = xnat.connect(server.url, user=token["alias"], password=token["secret"], loglevel="ERROR")
    try:
        assert session.logged_in_user == "admin"
        ids = {x["ID"] for x in rows(http.get("/data/projects", params={"format": "json"}))}
        assert set(session.projects.keys()) == ids
    finally:
        session.disconnect()
