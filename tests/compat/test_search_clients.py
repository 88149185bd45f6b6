"""The real clients on ``POST /data/search``: pyxnat 1.6.4's ``repr()``/``print()`` of projects, subjects,
experiments and scans and its ``select(type, columns).where(...)``; xnatpy 0.8.1's ``Class.query()``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import xnat
from pyxnat import Interface

from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

NewId = Callable[[str], str]


@pytest.fixture
def intf(server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("HOME", str(tmp_path))
    interface = Interface(server=server.url, user="admin", password="admin")
    yield interface
    interface.disconnect()


@pytest.fixture
def tree(http: httpx.Client, new_id: NewId) -> dict[str, str]:
    """A project with two subjects (one with a custom variable), three sessions and two scans."""
    pid = new_id("PS")
    ok = [http.put(f"/data/projects/{pid}", params={"name": f"Search {pid}"})]
    base = f"/data/projects/{pid}/subjects"
    ok.append(http.put(f"{base}/S1", params={"gender": "female", "age": "42", "handedness": "left"}))
    ok.append(http.put(f"{base}/S2", params={"gender": "male", "age": "25"}))
    site = quote("xnat:subjectData/fields/field[name=site]/field")
    ok.append(http.put(httpx.URL(http.base_url.join(f"{base}/S1"), query=f"{site}=Leeds".encode())))
    for subject, label, xsi, date in (
        ("S1", "E1", "xnat:mrSessionData", "2020-01-02"),
        ("S2", "E2", "xnat:mrSessionData", "2021-06-30"),
        ("S2", "C2", "xnat:ctSessionData", "2021-07-01"),
    ):
        ok.append(http.put(f"{base}/{subject}/experiments/{label}", params={"xsiType": xsi, "date": date}))
    scans = f"{base}/S1/experiments/E1/scans"
    ok.append(http.put(f"{scans}/1", params={"xsiType": "xnat:mrScanData", "type": "T1", "frames": "176"}))
    ok.append(
        http.put(f"{scans}/2", params={"xsiType": "xnat:mrScanData", "type": "DWI", "quality": "usable"})
    )
    assert all(r.status_code < 300 for r in ok), [
        (r.url, r.status_code, r.text) for r in ok if r.status_code >= 300
    ]
    return {"project": pid}


def test_pyxnat_repr_and_print_of_project_subject_experiment_scan(
    intf: Any, tree: dict[str, str], server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pid = tree["project"]
    project = intf.select.project(pid)
    text = repr(project)
    assert text.startswith(f"<Project Object> {pid} `Search {pid}` (private) 2 subjects")
    assert "2 MR experiments" in text and "1 CT experiment" in text and "(owner: admin)" in text
    assert text.endswith(f"{server.url}/data/projects/{pid}?format=html")
    print(project)
    assert capsys.readouterr().out.strip() == text

    subject = project.subject("S1")
    text = repr(subject)
    assert text.startswith(f"<Subject Object> {subject.id()} `S1` (project: {pid})")
    assert "(Age: 42 - Gender: F - Handedness: L) 1 experiment " in text

    experiment = subject.experiment("E1")
    text = repr(experiment)
    assert text.startswith(f"<Experiment Object> {experiment.id()} `E1` (subject: {subject.id()} `S1`)")
    assert f"(project: {pid}) 2 scans 0 resource (created on " in text

    assert repr(experiment.scan("1")).startswith("<Scan Object> 1 (`T1` 176 frames) ")
    assert repr(experiment.scan("2")).startswith("<Scan Object> 2 (`DWI`  frames) usable ")
    assert repr(project.subject("nobody")) == "<Subject Object> nobody"


def test_pyxnat_select_where(intf: Any, tree: dict[str, str]) -> None:
    pid = tree["project"]
    columns = ["xnat:mrSessionData/AGE", "xnat:mrSessionData/LABEL", "xnat:subjectData/GENDER_TEXT"]
    where = [("xnat:mrSessionData/AGE", ">", "30"), ("xnat:mrSessionData/PROJECT", "=", pid), "AND"]
    table = intf.select("xnat:mrSessionData", columns).where(where)
    assert table.data == [{"age": "42", "label": "E1", "xnat_subjectdata_gender_text": "F"}]

    either = [
        ("xnat:subjectData/PROJECT", "=", pid),
        [("xnat:subjectData/AGE", "<", "30"), ("xnat:subjectData/GENDER", "=", "female"), "OR"],
        "AND",
    ]
    subjects = intf.select("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL"]).where(either)
    assert sorted(subjects["subject_label"]) == ["S1", "S2"]
    wildcard = [
        ("xnat:subjectData/SUBJECT_LABEL", "LIKE", "S*"),
        ("xnat:subjectData/PROJECT", "=", pid),
        "AND",
    ]
    assert len(intf.select("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL"]).where(wildcard)) == 2

    # every catalogued field at once, as select(type) without columns asks
    everything = intf.select("xnat:mrSessionData").where([("xnat:mrSessionData/PROJECT", "=", pid), "AND"])
    assert sorted(everything["label"]) == ["E1", "E2"]
    assert {"subject_id", "insert_date", "date"} <= set(everything.headers())
    assert pid in [row["id"] for row in intf.select("xnat:projectData").all().data]
    assert "xnat:subjectData/GENDER_TEXT" in intf.inspect.datatypes("xnat:subjectData")


def test_xnatpy_query(server: LiveServer, tree: dict[str, str]) -> None:
    pid = tree["project"]
    with xnat.connect(server.url, user="admin", password="admin", loglevel="ERROR") as session:
        mr = session.classes.MrSessionData
        found = mr.query().filter(mr.age > 30, mr.project == pid).all()
        assert [s.label for s in found] == ["E1"]
        rows = (
            mr.query().filter(mr.project == pid).filter(mr.date >= datetime.date(2021, 1, 1)).tabulate_dict()
        )
        assert [(r["project"], r["subject_id"]) for r in rows] == [
            (pid, session.projects[pid].subjects["S2"].id)
        ]
        one = mr.query().filter((mr.label == "E1") | (mr.label == "E2"), mr.project == pid).all()
        assert sorted(s.label for s in one) == ["E1", "E2"]
        subject = session.classes.SubjectData
        leeds = (
            subject.query().filter(subject.custom_variables["site"] == "Leeds", subject.project == pid).all()
        )
        assert [s.label for s in leeds] == ["S1"]
        projects = session.classes.ProjectData.query().filter(session.classes.ProjectData.id == pid).all()
        assert [p.id for p in projects] == [pid]
