"""Imports into sessions that exist already, and where prearchive imports land (issue 18 items 3, 11,
12), against a real server and real DICOM: XNAT's rules from its sources and its REST integration
tests (``TestImport``), and the archive never drops a file it acknowledged.

Runs on SQLite and, with ``XNATD_TEST_BACKEND=postgresql``, on a real PostgreSQL server.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
import xnat
from pydicom.uid import generate_uid

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
GE = TESTDATA / "dcm_qa_nih" / "20180918GE"
TS = TESTDATA / "dcm_qa_ts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("merges") / "data"
    with live_server(data, env={"XNATD_PREARCHIVE_IDLE_BUILD": "1"}) as srv:
        yield srv


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def project(http: httpx.Client) -> str:
    pid = f"M{uuid.uuid4().hex[:8]}"
    assert http.put(f"/data/projects/{pid}").status_code == 200
    return pid


def _series(tmp: Path, n: int = 16, tag: str = "SCAN1") -> list[Path]:
    """``n`` files of one series (number 4) of a fresh study."""
    return copy_study(dicom_files(GE / "mr_0004")[:n], tmp / tag, tag)


def _zip(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for f in files:
            zf.write(f, f"DICOM/{f.name}")
    return buf.getvalue()


def _post(http: httpx.Client, files: list[Path], **params: str) -> httpx.Response:
    body = _zip(files)
    return http.post(
        "/data/services/import", params=params, content=body, headers={"Content-Type": "application/zip"}
    )


def _rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


def _files(http: httpx.Client, project: str, label: str, scan: str) -> Counter[str]:
    url = f"/data/projects/{project}/experiments/{label}/scans/{scan}/resources/DICOM/files"
    return Counter(f["digest"] for f in _rows(http.get(url, params={"format": "json"})))


def _scans(http: httpx.Client, project: str, label: str) -> list[str]:
    url = f"/data/projects/{project}/experiments/{label}/scans"
    return sorted(s["ID"] for s in _rows(http.get(url, params={"format": "json"})))


def _md5s(files: list[Path]) -> Counter[str]:
    return Counter(hashlib.md5(f.read_bytes()).hexdigest() for f in files)


def _prearchive(http: httpx.Client, project: str) -> list[dict[str, str]]:
    return _rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}))


def _dest(project: str, label: str) -> str:
    return f"/archive/projects/{project}/subjects/S/experiments/{label}"


# --- item 11: merging into an existing session ------------------------------------------------------


def test_overwrite_delete_into_an_existing_session_replaces_only_the_incoming_instances(
    http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """XNAT's ``testDataScan2partsOverlapFilesOverwriteTDeleteT``: the first 11 files of a series,
    then the last 6 (one in common) with ``overwrite=delete``: the scan has all 16. Before, the second
    import replaced the whole scan and kept 6 of the 16 files it had acknowledged."""
    files = _series(tmp_path)
    assert _post(http, files[:11], dest=_dest(project, "DEL")).status_code == 200
    r = _post(http, files[10:], dest=_dest(project, "DEL"), overwrite="delete")
    assert r.status_code == 200, r.text
    assert _scans(http, project, "DEL") == ["4"]
    assert _files(http, project, "DEL", "4") == _md5s(files)  # 16, each once
    assert _prearchive(http, project) == []


def test_overwrite_append_merges_new_files_and_refuses_ones_archived_already(
    http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """XNAT's ``testDataScan2partsFilesOverwriteTDeleteF`` (disjoint parts with ``append``: 16 files),
    ``testDataScan2partsOverlapFilesOverwriteTDeleteF`` and ``testDataDuplicateScanFilesOverwriteTDeleteF``
    (a part with a file archived already: refused, 400 from the DICOM importers as XNAT answers,
    the files waiting in the prearchive) and ``...WithFileFlag`` (``overwrite_files=true``: accepted)."""
    files = _series(tmp_path)
    dest = _dest(project, "APP")
    assert _post(http, files[:11], dest=dest).status_code == 200
    r = _post(http, files[10:], dest=dest, overwrite="append")
    assert r.status_code == 400 and "Duplicate DICOM file" in r.text, r.text
    [waiting] = _prearchive(http, project)
    assert waiting["status"] == "CONFLICT" and waiting["url"] in r.text
    assert _files(http, project, "APP", "4") == _md5s(files[:11])  # nothing changed, nothing dropped
    assert http.delete(f"/data{waiting['url']}").status_code == 200
    assert _post(http, files[11:], dest=dest, overwrite="append").status_code == 200
    assert _files(http, project, "APP", "4") == _md5s(files)
    r = _post(http, files, dest=dest, overwrite="append", overwrite_files="true")
    assert r.status_code == 200, r.text
    assert _files(http, project, "APP", "4") == _md5s(files)  # each replaced by itself, once
    assert _prearchive(http, project) == []


def test_refusals_answer_400_from_the_dicom_importers_and_409_from_si(
    http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """XNAT's TestImport expects 400 for a refused import when its default importer is DICOM-zip
    (``conflictStatus``), and its session importer answers 409: a label taken with ``overwrite``
    unset (``testDataDuplicateScanFilesOverwriteFDeleteF``). ``/data/services/archive`` stays 409."""
    files = _series(tmp_path, 4)
    dest = _dest(project, "TAKEN")
    assert _post(http, files[:2], dest=dest).status_code == 200
    r = _post(http, files[2:3], dest=dest)
    assert r.status_code == 400 and "already exists" in r.text, r.text
    r = _post(http, files[3:], dest=dest, **{"import-handler": "SI"})
    assert r.status_code == 409 and "already exists" in r.text, r.text
    waiting = [s for s in _prearchive(http, project) if s["status"] == "CONFLICT"]
    assert len(waiting) == 2
    r = http.post("/data/services/archive", params={"src": waiting[0]["url"]})
    assert r.status_code == 409 and "already exists" in r.text


def test_a_changed_series_uid_with_the_same_number_becomes_a_new_scan(
    http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """XNAT's ``testModifiedSeriesUIDs``: five files of series 4, the second and third with another
    SeriesInstanceUID. Frame 1 makes scan 4; frame 2 (``overwrite=delete``) makes ``4-MR1``; frame 3
    joins ``4-MR1``; frames 4 and 5 join scan 4. Before, the second import replaced scan 4."""
    files = _series(tmp_path, 5)
    other = generate_uid()
    for f in files[1:3]:
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = other
        ds.save_as(f)
    dest = _dest(project, "MOD")
    params = {"dest": dest, "overwrite": "delete"}
    assert _post(http, files[:1], dest=dest).status_code == 200
    for part in (files[1:2], files[2:3], files[3:5]):
        r = _post(http, part, **params)
        assert r.status_code == 200, r.text
    assert _scans(http, project, "MOD") == ["4", "4-MR1"]
    assert _files(http, project, "MOD", "4") == _md5s([files[0], *files[3:5]])
    assert _files(http, project, "MOD", "4-MR1") == _md5s(files[1:3])


def test_auto_archive_into_an_existing_session_appends(
    http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """Auto-archive (prearchive code 4) of files of a session archived already merges them into it,
    as XNAT appends (``simpleAutoarchiveMerge``); before, the session stayed CONFLICT in the
    prearchive."""
    assert http.put(f"/data/projects/{project}/prearchive_code/4").status_code == 200
    files = _series(tmp_path, 6)
    assert _post(http, files[:3], dest=_dest(project, "AUTO")).status_code == 200
    labels = {"PROJECT_ID": project, "SUBJECT_ID": "S", "EXPT_LABEL": "AUTO"}
    for f in files[3:]:
        r = http.post(
            "/data/services/import", params=labels, content=f.read_bytes(),
            headers={"Content-Type": "application/dicom"},
        )  # fmt: skip
        assert r.status_code == 200 and "/prearchive/" in r.text, r.text
    deadline = time.monotonic() + 60
    while _files(http, project, "AUTO", "4") != _md5s(files) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _files(http, project, "AUTO", "4") == _md5s(files)
    assert _prearchive(http, project) == []


# --- item 12: prearchive destinations, and item 3: built when the request ends -----------------------


def test_prearchive_dest_timestamp_and_folder_are_honoured(
    http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """XNAT's ``testPrearcMergeNewScan`` and ``testPrearcMergeDiffUid{DicomZip,Si}``: two series of a
    study sent to ``dest=/prearchive/projects/P/20000101_100001/MR0`` land in that one session; a
    second study sent there is refused by DICOM-zip (400, still one session) and merged by SI."""
    study = copy_study(
        [*dicom_files(GE / "mr_0004")[:2], *dicom_files(GE / "mr_0005")[:2]], tmp_path / "a", "PLACE"
    )
    dest = f"/prearchive/projects/{project}/20000101_100001/MR0"
    zipper = {"dest": dest, "overwrite": "append", "import-handler": "DICOM-zip"}
    for part in (study[:2], study[2:]):
        r = _post(http, part, **zipper)
        assert r.status_code == 200, r.text
        assert r.text.strip() == f"/data{dest}"
    [row] = _prearchive(http, project)
    assert (row["timestamp"], row["folderName"], row["name"]) == ("20000101_100001", "MR0", "PLACE")
    scans = _rows(http.get(f"/data{dest}/scans", params={"format": "json"}))
    assert sorted(s["ID"] for s in scans) == ["4", "5"]
    other = copy_study(dicom_files(GE / "mr_0006")[:2], tmp_path / "b", "PLACE")
    r = _post(http, other, **zipper)
    assert r.status_code == 400 and "holds study" in r.text, r.text
    assert len(_prearchive(http, project)) == 1
    assert sorted(s["ID"] for s in _rows(http.get(f"/data{dest}/scans", params={"format": "json"}))) == [
        "4",
        "5",
    ]
    r = _post(http, other, **{**zipper, "import-handler": "SI"})
    assert r.status_code == 200 and r.text.strip() == f"/data{dest}", r.text
    assert len(_prearchive(http, project)) == 1
    scans = _rows(http.get(f"/data{dest}/scans", params={"format": "json"}))
    assert sorted(s["ID"] for s in scans) == ["4", "5", "6"]
    assert _post(http, other, dest=f"/prearchive/projects/{project}/../x").status_code == 400


def test_a_zip_without_dest_is_ready_when_answered_and_xnatpy_lists_it(
    server: LiveServer, http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """Issue 18 item 3: a zip imported with no ``dest`` into a manual project is built (READY) when
    its request ends, as XNAT's session importer leaves it; before, it stayed RECEIVING until the
    idle builder came, and xnatpy's ``prearchive.sessions()`` (which hides RECEIVING) missed it."""
    files = _series(tmp_path, 3)
    for params in ({}, {"import-handler": "DICOM-zip"}):
        r = _post(http, files, PROJECT_ID=project, SUBJECT_ID="S", EXPT_LABEL=f"E{len(params)}", **params)
        assert r.status_code == 200 and r.text.strip().startswith(f"/data/prearchive/projects/{project}/")
    assert sorted(s["status"] for s in _prearchive(http, project)) == ["READY", "READY"]
    with xnat.connect(server.url, user="admin", password="admin", loglevel="ERROR") as session:
        labels = sorted(s.label for s in session.prearchive.sessions(project))
    assert labels == ["E0", "E1"]


def test_dicom_zip_without_dest_into_an_auto_archive_project_stays_in_the_prearchive(
    http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """Issue 18 item 12: ``import-handler=DICOM-zip`` without ``dest`` into a project whose code is
    5 leaves the session in the prearchive, as XNAT's DicomZipImporter does (it archives with
    ``dest=/archive`` or ``AA``, never by the project's code); an upload naming no handler is
    archived by the code, as XNAT's session importer (and xnatpy's tests) expect."""
    assert http.put(f"/data/projects/{project}/prearchive_code/5").status_code == 200
    files = _series(tmp_path, 3)
    labels = {"PROJECT_ID": project, "SUBJECT_ID": "S", "EXPT_LABEL": "Z5"}
    r = _post(http, files, **labels, **{"import-handler": "DICOM-zip"})
    assert r.status_code == 200 and r.text.strip().startswith(f"/data/prearchive/projects/{project}/"), r.text
    [row] = _prearchive(http, project)
    assert row["status"] == "READY" and row["autoarchive"] == "AutoArchiveOverwrite"
    assert http.delete(r.text.strip()).status_code == 200
    r = _post(http, files, **labels)
    assert r.status_code == 200 and r.text.strip() == f"/data{_dest(project, 'Z5')}", r.text
    r = _post(http, files, **labels)  # code 5: the instances sent again replace their files
    assert r.status_code == 200, r.text
    assert _files(http, project, "Z5", "4") == _md5s(files)


def test_action_commit_answers_the_bare_uri(http: httpx.Client, project: str, tmp_path: Path) -> None:
    """XNAT's ``testPrearcGradualImport`` compares the body of ``action=commit`` with the import's
    URI: the URI alone, without the line end the import's list has."""
    r = _post(http, _series(tmp_path, 2), dest=f"/prearchive/projects/{project}")
    uri = r.text.strip()
    assert r.text == f"{uri}\r\n"
    committed = http.post(uri, params={"action": "commit"})
    assert committed.status_code == 200 and committed.text == uri
    built = http.post(uri, params={"action": "build"})
    assert built.status_code == 200 and built.text == uri


def test_archive_service_takes_subject_and_label(http: httpx.Client, project: str, tmp_path: Path) -> None:
    """``/data/services/archive`` with ``subject_ID``/``label`` (XNAT's ``PrearcSessionArchiver``)
    archives the session under those names, not the ones the headers gave."""
    files = _series(tmp_path, 4)
    src = _post(http, files[:2], dest=f"/prearchive/projects/{project}").text.strip()
    r = http.post("/data/services/archive", data={"src": src, "subject_ID": "SUBJ9", "label": "LAB9"})
    assert r.status_code == 200, r.text
    assert r.text.strip() == f"/data/archive/projects/{project}/subjects/SUBJ9/experiments/LAB9"
    src = _post(http, files[2:], dest=f"/prearchive/projects/{project}").text.strip()
    xpaths = {"xnat:subjectAssessorData/subject_ID": "SUBJ8", "xnat:mrSessionData/label": "LAB8"}
    r = http.post("/data/services/archive", params={"src": src, **xpaths})
    assert r.status_code == 200, r.text
    assert r.text.strip() == f"/data/archive/projects/{project}/subjects/SUBJ8/experiments/LAB8"


def test_ignore_unparsable_decides_for_dicom_zip(http: httpx.Client, project: str, tmp_path: Path) -> None:
    """XNAT's ``runUnparsableTest``: a zip with a text file is refused by DICOM-zip (400 naming the
    file) unless ``Ignore-Unparsable=true``; nothing of a refused upload stays. An upload naming no
    handler skips such files (xnatpy's ANONYMIZ.zip holds two GIF snapshots)."""
    files = _series(tmp_path, 3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.write(f, f.name)
        zf.writestr("non_dicom_text_file.dcm", "I'm actually a text file!")
    body = buf.getvalue()
    ctype = {"Content-Type": "application/zip"}
    base = {"import-handler": "DICOM-zip", "PROJECT_ID": project}
    for extra in ({}, {"Ignore-Unparsable": "false"}):
        r = http.post("/data/services/import", params={**base, **extra}, content=body, headers=ctype)
        assert r.status_code == 400 and "unable to read DICOM object non_dicom_text_file.dcm" in r.text, (
            r.text
        )
    assert _prearchive(http, project) == []
    r = http.post(
        "/data/services/import", params={**base, "Ignore-Unparsable": "true"}, content=body, headers=ctype
    )
    assert r.status_code == 200 and "skipped=1" in r.headers["x-xnatd-import"], r.text
    r = http.post("/data/services/import", params={"PROJECT_ID": project}, content=body, headers=ctype)
    assert r.status_code == 200 and "skipped=1" in r.headers["x-xnatd-import"], r.text


# --- item 15: XNAT's file-name template --------------------------------------------------------------


def _java_hash(values: list[str]) -> str:
    """Java's ``List.hashCode`` of ASCII strings, ``& 0xffffffffL``, in base 36 (``Long.toString(h, 36)``)."""
    h = 1
    for value in values:
        sh = 0
        for ch in value:
            sh = (sh * 31 + ord(ch)) % 2**32
        h = (h * 31 + sh) % 2**32
    digits = ""
    while True:
        h, rest = divmod(h, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
        if h == 0:
            return digits


def test_a_file_sent_without_a_name_gets_xnats_template_name(
    http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """A raw body has no name: XNAT's ``TemplatizedDicomFileNamer`` names it
    ``{StudyInstanceUID}-{SeriesNumber}-{InstanceNumber}-{hash}.dcm``, the hash a 32-bit value in
    base 36, and ``no-value-for-InstanceNumber`` for an element without a value (before: a 40-bit
    SHA-1 prefix, and ``0``)."""
    files = _series(tmp_path, 2)
    ds = pydicom.dcmread(files[1])
    del ds.InstanceNumber
    ds.save_as(files[1])
    dest = f"/prearchive/projects/{project}"
    for f in files:
        r = http.post(
            "/data/services/import", params={"dest": dest, "EXPT_LABEL": "NAMES"}, content=f.read_bytes(),
            headers={"Content-Type": "application/dicom"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
    uri = r.text.strip()
    names = {
        f["Name"] for f in _rows(http.get(f"{uri}/scans/4/resources/DICOM/files", params={"format": "json"}))
    }
    expected = set()
    for f, instance in zip(
        files, [str(pydicom.dcmread(files[0]).InstanceNumber), "no-value-for-InstanceNumber"], strict=True
    ):
        d = pydicom.dcmread(f)
        digest = _java_hash([str(d.SOPClassUID), str(d.SOPInstanceUID)])
        expected.add(f"{d.StudyInstanceUID}-4-{instance}-{digest}.dcm")
    assert names == expected
