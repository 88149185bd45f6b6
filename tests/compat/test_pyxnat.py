"""The real pyxnat 1.6.4 client against a live xnatd (see shared/reference/clients.md section 2)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyxnat import Interface
from pyxnat.core.errors import DatabaseError, OperationalError

from tests.compat.helpers import describe, make_zip, rows
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

NewId = Callable[[str], str]
DEMOGRAPHICS = "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]"


@pytest.fixture
def intf(server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("HOME", str(tmp_path))  # pyxnat may default downloads to ~/Downloads
    interface = Interface(server=server.url, user="admin", password="admin")
    yield interface
    interface.disconnect()


def test_entry_point_and_projects(intf: Any, new_id: NewId) -> None:
    # GET /data/JSESSION must succeed, otherwise pyxnat silently falls back to /REST
    assert intf._get_entry_point() == "/data"
    pid = new_id("PX")
    project = intf.select.project(pid)
    assert not project.exists()
    project.create()
    assert project.exists()
    assert pid in intf.select.projects().get()
    assert project.id() == pid


def test_subject_attrs(intf: Any, new_id: NewId) -> None:
    pid = new_id("PX")
    label = new_id("SUBJ")
    subject = intf.select.project(pid).subject(label)
    assert not subject.exists()
    subject.create()  # also creates the missing project
    assert subject.exists()
    assert intf.select.project(pid).exists()
    assert subject.label() == label
    assert subject.id() != label, "subject id() should be the accession ID"

    subject.attrs.set(f"{DEMOGRAPHICS}/gender", "female")
    assert subject.attrs.get(f"{DEMOGRAPHICS}/gender") == "female"
    subject.attrs.set(f"{DEMOGRAPHICS}/age", "42")
    assert subject.attrs.get(f"{DEMOGRAPHICS}/age") == "42"
    # shortcuts
    subject.attrs.set("gender", "male")
    assert subject.attrs.get("gender") == "male"
    subject.attrs.mset({"age": "43", "handedness": "left"})
    assert subject.attrs.get("age") == "43"
    assert subject.attrs.get("handedness") == "left"
    # subject reachable by its ID as well as its label
    assert intf.select.project(pid).subject(subject.id()).exists()


def test_experiment_scan_resource_files(intf: Any, new_id: NewId, tmp_path: Path, server: LiveServer) -> None:
    pid = new_id("PX")
    subject = intf.select.project(pid).subject(new_id("SUBJ"))
    subject.create()
    elabel = new_id("MR")
    exp = subject.experiment(elabel)
    exp.create(experiments="xnat:mrSessionData")
    assert exp.exists()
    assert exp.datatype() == "xnat:mrSessionData"
    assert exp.label() == elabel

    exp.attrs.set("date", "2021-05-06")
    assert exp.attrs.get("date") == "2021-05-06"
    exp.attrs.set("xnat:mrSessionData/fieldStrength", "3.0")
    assert exp.attrs.get("xnat:mrSessionData/fieldStrength") == "3.0"
    exp.attrs.mset(
        {"xnat:mrSessionData/note": "pyxnat note", "xnat:mrSessionData/acquisition_site": "Site A"}
    )
    assert exp.attrs.get("xnat:mrSessionData/note") == "pyxnat note"
    assert exp.attrs.get("xnat:mrSessionData/acquisition_site") == "Site A"

    scan = exp.scan("1")
    scan.create(scans="xnat:mrScanData")
    assert scan.exists()
    assert scan.datatype() == "xnat:mrScanData"
    scan.attrs.set("type", "T1")
    assert scan.attrs.get("type") == "T1"
    scan.attrs.set("xnat:mrScanData/series_description", "t1 mprage")
    assert scan.attrs.get("xnat:mrScanData/series_description") == "t1 mprage"
    assert exp.scans().get() == ["1"]

    res = scan.resource("NIFTI")
    res.create()
    assert res.exists()
    assert "NIFTI" in [r.label() for r in scan.resources()]

    a_bytes = b"pyxnat file A " + new_id("A").encode()
    b_bytes = b"pyxnat file B " + new_id("B").encode()
    a_path = tmp_path / "a.txt"
    a_path.write_bytes(a_bytes)
    b_path = tmp_path / "b.txt"
    b_path.write_bytes(b_bytes)

    # POST .../resources/<numeric id>/files/a.txt?...&inbody=true
    res.file("a.txt").put(str(a_path))
    assert res.file("a.txt").exists()
    assert int(res.file("a.txt").size()) == len(a_bytes)
    res.file("sub/b.txt").put(str(b_path))
    assert res.file("sub/b.txt").exists()

    got = tmp_path / "got_a"
    assert res.file("a.txt").get(str(got)) == str(got)
    assert got.read_bytes() == a_bytes
    got_b = tmp_path / "got_b"
    res.file("sub/b.txt").get(str(got_b))
    assert got_b.read_bytes() == b_bytes

    # existing file + overwrite=false must not replace it (XNAT answers 409, or 200 listing the duplicates);
    # overwrite=true replaces
    a2 = tmp_path / "a2.txt"
    a2.write_bytes(b"replaced")
    with contextlib.suppress(DatabaseError, OperationalError):
        res.file("a.txt").put(str(a2))
    res.file("a.txt").get(str(got))
    assert got.read_bytes() == a_bytes, "a refused overwrite must leave the file unchanged"
    res.file("a.txt").put(str(a2), overwrite=True)
    res.file("a.txt").get(str(got))
    assert got.read_bytes() == b"replaced"

    # put_zip with extract: the server unpacks it
    zpath = tmp_path / "bundle.zip"
    zpath.write_bytes(make_zip({"z1.txt": b"zip one", "zd/z2.txt": b"zip two"}))
    res.put_zip(str(zpath), extract=True)
    assert res.file("z1.txt").exists()
    assert res.file("zd/z2.txt").exists()
    assert not res.file("bundle.zip").exists()

    # files().get() gives the last path segment (client behaviour); the objects keep the full path
    assert sorted(res.files().get()) == ["a.txt", "b.txt", "z1.txt", "z2.txt"]
    paths = sorted(f._uri.split("/files/", 1)[1] for f in res.files())
    assert paths == ["a.txt", "sub/b.txt", "z1.txt", "zd/z2.txt"], paths

    # resource as zip, extracted (pyxnat strips everything up to the first "files/")
    dest = tmp_path / "res_get"
    dest.mkdir()
    paths = res.get(str(dest), extract=True)
    extracted = {
        Path(p).relative_to(dest / "NIFTI").as_posix(): Path(p).read_bytes()
        for p in paths
        if Path(p).is_file()
    }
    assert extracted == {
        "a.txt": b"replaced",
        "sub/b.txt": b_bytes,
        "z1.txt": b"zip one",
        "zd/z2.txt": b"zip two",
    }

    # all scans of the session as a zip (needs /data/projects/P/subjects/S/experiments/E/scans/ALL/files)
    dl = tmp_path / "scans_dl"
    dl.mkdir()
    out = exp.scans().download(str(dl), type="ALL", extract=True)
    names = sorted(Path(p).name for p in out if Path(p).is_file())
    assert names == ["a.txt", "b.txt", "z1.txt", "z2.txt"]
    assert os.path.exists(dl / f"{pid}_{subject.label()}_{elabel}_scans_ALL.zip")


def test_experiment_lookup_and_delete(intf: Any, new_id: NewId, http: httpx.Client) -> None:
    pid = new_id("PX")
    subject = intf.select.project(pid).subject(new_id("SUBJ"))
    subject.create()
    exp = subject.experiment(new_id("MR"))
    exp.create(experiments="xnat:mrSessionData")
    exp.scan("3").create(scans="xnat:mrScanData")
    res = exp.resource("NOTES")
    res.file("n.txt").put("inline content")
    assert res.file("n.txt").exists()

    # an experiment selected from the project by ID: pyxnat resolves its subject with a global query
    # (GET /data/experiments?xsiType=xnat:subjectAssessorData&ID=...&columns=ID,project,...subject_id)
    by_id = intf.select(f"/projects/{pid}/experiments/{exp.id()}")
    assert f"/subjects/{subject.id()}/experiments/{exp.id()}" in by_id._uri, by_id._uri
    assert by_id.exists()
    assert by_id.label() == exp.label()
    # and by label
    assert intf.select(f"/projects/{pid}/experiments/{exp.label()}").exists()

    res.file("n.txt").delete()
    assert not res.file("n.txt").exists()
    res.delete()
    assert not res.exists()
    exp.scan("3").delete()
    assert not exp.scan("3").exists()
    eid = exp.id()
    exp.delete()
    assert not exp.exists()
    r = http.get(f"/data/experiments/{eid}", params={"format": "json"})
    assert r.status_code == 404, describe(r)
    subject.delete()
    assert not subject.exists()
    assert rows(http.get(f"/data/projects/{pid}/subjects", params={"format": "json"})) == []


def test_disconnect_ends_session(server: LiveServer) -> None:
    interface = Interface(server=server.url, user="admin", password="admin")
    assert interface._get_entry_point() == "/data"
    interface.disconnect()  # DELETE /data/JSESSION -> must not raise
    # and the server keeps answering new clients
    again = Interface(server=server.url, user="admin", password="admin")
    assert again._get_entry_point() == "/data"
    again.disconnect()


def test_custom_fields_by_xpath(intf: Any, new_id: NewId) -> None:
    """Custom variables through `fields/field[name=...]/field` xpaths (common in lab scripts)."""
    pid = new_id("PX")
    subject = intf.select.project(pid).subject(new_id("SUBJ"))
    subject.create()
    subject.attrs.set("xnat:subjectData/fields/field[name=group]/field", "patient")
    assert subject.attrs.get("xnat:subjectData/fields/field[name=group]/field") == "patient"
    exp = subject.experiment(new_id("MR"))
    exp.create(experiments="xnat:mrSessionData")
    exp.attrs.set("xnat:mrSessionData/fields/field[name=tp]/field", "baseline")
    assert exp.attrs.get("xnat:mrSessionData/fields/field[name=tp]/field") == "baseline"


def test_alias_token_as_basic_credentials(server: LiveServer, http: httpx.Client, new_id: NewId) -> None:
    token = http.get("/data/services/tokens/issue", params={"format": "json"}).json()
    interface = Interface(server=server.url, user=token["alias"], password=token["secret"])
    try:
        assert interface._get_entry_point() == "/data"
        pid = new_id("PX")
        interface.select.project(pid).create()
        assert pid in interface.select.projects().get()
    finally:
        interface.disconnect()


def test_array_experiments_row(intf: Any, new_id: NewId) -> None:
    """`interface.array.experiments(...)` (used by Experiment lookups and repr): real XNAT adds `xsiType`
    to this base-type query (`xsiType=xnat:subjectAssessorData`, not a secure element) besides the columns."""
    pid = new_id("PX")
    subject = intf.select.project(pid).subject(new_id("SUBJ"))
    subject.create()
    exp = subject.experiment(new_id("PET"))
    exp.create(experiments="xnat:petSessionData")
    data = intf.array.experiments(experiment_id=exp.id()).data
    assert len(data) == 1, data
    row = data[0]
    assert (row.get("ID"), row.get("project"), row.get("subject_ID")) == (exp.id(), pid, subject.id()), row
    assert row.get("xsiType") == "xnat:petSessionData", row
    by_project = intf.array.experiments(project_id=pid, experiment_type="xnat:imageSessionData").data
    assert [r["ID"] for r in by_project] == [exp.id()], by_project


def test_fix_scan_types_and_prearchive_codes(intf: Any, new_id: NewId) -> None:
    """pyxnat's ``experiment.fix_scan_types()`` and ``trigger()`` (``?fixScanTypes=true``) and
    ``project.set_prearchive_code`` with a code XNAT's tests use (11)."""
    pid = new_id("PX")
    project = intf.select.project(pid)
    project.create()
    project.set_prearchive_code("11")  # pyxnat joins it into the URI
    assert project.prearchive_code() == 11
    older = project.subject("S1").experiment("OLD")
    older.create(experiments="xnat:mrSessionData")
    typed = older.scan("1")
    typed.create(scans="xnat:mrScanData")
    typed.attrs.mset({"xnat:mrScanData/series_description": "t1 mprage", "type": "T1"})
    exp = project.subject("S1").experiment("NEW")
    exp.create(experiments="xnat:mrSessionData")
    for scan_id, description in (("1", "T1_MPRAGE"), ("2", "rest bold")):
        scan = exp.scan(scan_id)
        scan.create(scans="xnat:mrScanData")
        scan.attrs.set("xnat:mrScanData/series_description", description)
    exp.fix_scan_types()
    assert [exp.scan(s).attrs.get("type") for s in ("1", "2")] == ["T1", "rest bold"]
    scan = exp.scan("3")
    scan.create(scans="xnat:mrScanData")
    scan.attrs.set("xnat:mrScanData/series_description", "t1-mprage")
    exp.trigger(pipelines=False, fix_types=True, scan_headers=False)
    assert scan.attrs.get("type") == "T1"
