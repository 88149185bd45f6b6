"""xnatpy's import service and prearchive API, xnatpy's own functional ``test_import.py`` and pyxnat's
prearchive manager, all unmodified, against a live xnatd with real DICOM."""

from __future__ import annotations

import io
import subprocess
import tarfile
import textwrap
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyxnat
from xnat.prearchive import PrearchiveSession

from tests.support.dicom_copies import TESTDATA
from tests.support.live_server import LiveServer, live_server, python

pytestmark = pytest.mark.slow
NewId = Callable[[str], str]


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, str(p.relative_to(folder)))
    return out


def test_xnatpy_import_to_prearchive_sessions_archive(
    xsession: Any, http: httpx.Client, new_id: NewId, tmp_path: Path
) -> None:
    project = new_id("XI")
    assert http.put(f"/data/projects/{project}").status_code == 200
    data = _zip(TESTDATA / "dcm_qa_ct_philips", tmp_path / "ct.zip")
    pas = xsession.services.import_(
        data, destination="/prearchive", project=project, subject="S1", experiment="E1"
    )
    assert isinstance(pas, PrearchiveSession)
    assert (pas.project, pas.subject, pas.label, pas.status) == (project, "S1", "E1", "READY")
    assert pas.scan_date is not None and pas.uploaded is not None
    assert sorted(s.id for s in pas.scans) == ["100", "201"]
    listed = [s for s in xsession.prearchive.sessions() if s.project == project]
    assert [s.label for s in listed] == ["E1"]
    exp = pas.archive(subject="S1", experiment="E1")
    assert isinstance(exp, xsession.classes.CtSessionData)
    assert exp.label == "E1" and exp.subject.label == "S1"
    assert sorted(exp.scans.keys()) == ["100", "201"] and exp.scans["201"].type == "STD BRAIN 5MM"
    assert [s for s in xsession.prearchive.sessions() if s.project == project] == []


def test_xnatpy_import_direct_archive_move_delete(
    xsession: Any, http: httpx.Client, new_id: NewId, tmp_path: Path
) -> None:
    project, other = new_id("XA"), new_id("XB")
    for p in (project, other):
        assert http.put(f"/data/projects/{p}").status_code == 200
    data = _zip(TESTDATA / "dcm_qa_ts", tmp_path / "ts.zip")
    dest = f"/archive/projects/{project}"
    exp = xsession.services.import_(data, destination=dest, project=project, subject="TS", experiment="TS_MR")
    assert isinstance(exp, xsession.classes.MrSessionData) and len(exp.scans) == 9
    pas = xsession.services.import_(data, destination="/prearchive", project=project, experiment="TS2")
    pas.move(other)
    moved = [s for s in xsession.prearchive.sessions(other)]
    assert [s.label for s in moved] == ["TS2"]
    moved[0].delete(asynchronous=False)
    assert xsession.prearchive.sessions(other) == []


def _xnatpy_sdist(tmp: Path) -> Path:
    subprocess.run(
        [
            python(),
            "-m",
            "pip",
            "download",
            "--no-binary",
            ":all:",
            "--no-deps",
            "xnat==0.8.1",
            "-d",
            str(tmp),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    with tarfile.open(next(tmp.glob("xnat-0.8.1.tar.gz"))) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "xnat-0.8.1" / "xnat" / "tests"


CONFTEST = """
    import os
    from pathlib import Path

    import pytest
    import xnat


    @pytest.fixture(scope="session")
    def xnat4tests_connection():
        with xnat.connect(os.environ["XNATD_URL"], user="admin", password="admin", loglevel="ERROR") as s:
            yield s


    @pytest.fixture
    def test_resource_dir():
        return Path(os.environ["XNATPY_RESOURCES"])
"""


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own in its default settings: ``test_existing_data.py`` counts every project
    on the site, and xnatpy's tests expect what a site with XNAT's defaults does."""
    with live_server(tmp_path_factory.mktemp("xnatpy-functional") / "data", defaults=True) as srv:
        yield srv


def _xnat4tests_data(http: httpx.Client, tmp_path: Path) -> None:
    """What xnatpy's test-server helper (xnat4tests) puts on its XNAT before these tests run: the
    projects ``dummydicomproject`` (one subject ``dummydicomsubject`` with one MR session
    ``dummydicomsession``, imported with ``dest`` as the helper does) and ``TRAINING``."""
    for project in ("dummydicomproject", "TRAINING"):
        assert http.put(f"/data/projects/{project}").status_code == 200
    dest = "/archive/projects/dummydicomproject/subjects/dummydicomsubject/experiments/dummydicomsession"
    r = http.post(
        "/data/services/import", params={"dest": dest, "overwrite": "append"},
        content=_zip(TESTDATA / "dcm_qa_ts", tmp_path / "dummy.zip").read_bytes(),
        headers={"Content-Type": "application/zip"},
    )  # fmt: skip
    assert r.status_code == 200, r.text


def test_xnatpy_functional_tests_on_a_default_site(fresh_server: LiveServer, tmp_path: Path) -> None:
    """xnatpy's ``functional_tests/test_existing_data.py`` and ``test_import.py`` (ANONYMIZ.zip gives
    scans 3, 5, 6; Case001 ten scans), unmodified, on a server in its default settings.

    ``test_import.py`` imports without ``dest`` and expects the archive: XNAT gives a new project the
    site's default prearchive code, 4 (``XnatProjectdata.initArcProject``), as xnatd now does.
    """
    tests = _xnatpy_sdist(tmp_path)
    with fresh_server.client() as http:
        _xnat4tests_data(http, tmp_path)
        assert http.get("/data/projects/dummydicomproject/prearchive_code").text.strip() == "4"
    (tests / "functional_tests" / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    env = {
        "XNATD_URL": fresh_server.url,
        "XNATPY_RESOURCES": str(tests / "resources"),
        "PATH": "/usr/bin:/bin",
    }
    run = subprocess.run(
        [
            python(),
            "-m",
            "pytest",
            "-q",
            "-c",
            "/dev/null",
            "-p",
            "no:cacheprovider",
            "--confcutdir",
            ".",
            "test_existing_data.py",  # first: it counts the experiments test_import.py adds
            "test_import.py",
        ],
        cwd=tests / "functional_tests",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "5 passed" in run.stdout, run.stdout[-2000:]


def test_pyxnat_prearchive_listing_move_delete(server: LiveServer, http: httpx.Client, new_id: NewId) -> None:
    project, other = new_id("PX"), new_id("PY")
    for p in (project, other):
        assert http.put(f"/data/projects/{p}").status_code == 200
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted((TESTDATA / "dcm_qa_ts").glob("[123].dcm")):
            zf.write(f, f.name)
    i = pyxnat.Interface(server=server.url, user="admin", password="admin")
    r = i.post(f"/data/services/import?dest=/prearchive/projects/{project}", data=buf.getvalue())
    assert r.status_code == 200, r.text
    pa = i.manage.prearchive
    triples = [t for t in pa.get() if t[0] == project]
    assert len(triples) == 1
    triple = triples[0]
    assert pa.status(triple) == "READY"
    assert sorted(pa.get_scans(triple)) == ["1", "2", "3"]
    assert pa.get_resources(triple, "2") == "DICOM"
    assert pa.get_files(triple, "2", "DICOM") == "2.dcm"
    uri = pa.get_uri(triple)
    assert uri == f"/prearchive/projects/{project}/{triple[1]}/{triple[2]}"
    pa.reset(triple)
    assert pa.status(triple) == "READY"
    # pyxnat 1.6.4's move() calls urllib.urlencode (Python 2 only); send the request it means to send
    body = f"src={uri}&newProject={other}&async=false"
    ct = {"content-type": "application/x-www-form-urlencoded"}
    moved = i._exec("/data/services/prearchive/move?format=csv", "POST", body, ct)
    assert other.encode() in moved
    new_triple = next(t for t in pa.get() if t[0] == other)
    pa.delete(pa.get_uri(new_triple))
    assert [t for t in pa.get() if t[0] in (project, other)] == []
