"""Concurrent imports: eight clients with different studies, and two clients with halves of one study.

Every file must end up exactly once, in the right session: no lost files, no duplicates, no mix-ups.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.live_server import ADMIN, LiveServer, live_server

pytestmark = pytest.mark.slow
SOURCE = TESTDATA / "dcm_qa_nih" / "20180918GE"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("concurrency") / "data") as srv:
        yield srv


def _zip(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.write(f, f.name)
    return buf.getvalue()


def _sops(files: list[Path]) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}


def _archived_sops(server: LiveServer, project: str, label: str) -> list[str]:
    folder = server.data / "archive" / project / "arc001" / label / "SCANS"
    return [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in folder.rglob("*.dcm")]


def test_eight_clients_eight_studies(server: LiveServer, tmp_path: Path) -> None:
    project = f"C{uuid.uuid4().hex[:8]}"
    with server.client() as http:
        assert http.put(f"/data/projects/{project}").status_code == 200
    studies = {
        f"STUDY{n}": copy_study(dicom_files(SOURCE)[:40], tmp_path / f"s{n}", f"STUDY{n}") for n in range(8)
    }

    def send(label: str) -> httpx.Response:
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=300) as c:
            body = _zip(studies[label])
            return c.post(
                "/data/services/import", params={"dest": f"/archive/projects/{project}"}, content=body
            )

    with ThreadPoolExecutor(8) as pool:
        answers = dict(zip(studies, pool.map(send, studies), strict=True))
    for label, r in answers.items():
        assert r.status_code == 200, r.text
        assert r.text.strip().endswith(f"/experiments/{label}")
        stored = _archived_sops(server, project, label)
        assert sorted(stored) == sorted(_sops(studies[label])), label  # each file once, in its own session


def test_two_clients_two_halves_of_one_study(server: LiveServer, tmp_path: Path) -> None:
    project = f"H{uuid.uuid4().hex[:8]}"
    with server.client() as http:
        assert http.put(f"/data/projects/{project}").status_code == 200
    files = copy_study(dicom_files(SOURCE)[:150], tmp_path / "half", "HALVES")
    halves = [files[0::2], files[1::2] + files[0:20:2]]  # the second half also resends ten of the first

    def send(part: list[Path]) -> httpx.Response:
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=300) as c:
            params = {"dest": f"/prearchive/projects/{project}"}
            return c.post("/data/services/import", params=params, content=_zip(part))

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(send, halves))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert len({r.text.strip() for r in answers}) == 1, "both halves went to the same session"
    with server.client() as http:
        r = http.post("/data/services/archive", params={"src": answers[0].text.strip()})
        assert r.status_code == 200, r.text
    stored = _archived_sops(server, project, "HALVES")
    assert len(stored) == len(set(stored)) == 150
    assert set(stored) == _sops(files)


def test_clients_sending_one_file_per_request_at_once(server: LiveServer, tmp_path: Path) -> None:
    """Four clients on one login session stream a study one file per request while others send
    junk and wrong passwords: requests filed together still get their own answers."""
    project = f"G{uuid.uuid4().hex[:8]}"
    with server.client() as http:
        assert http.put(f"/data/projects/{project}").status_code == 200
        session_id = http.post("/data/JSESSION").text.strip()
    files = copy_study(dicom_files(SOURCE)[:60], tmp_path / "gradual", "GRADUAL")
    params = {"inbody": "true", "PROJECT_ID": project}
    dicom = {"Content-Type": "application/dicom"}

    def send(job: tuple[str, list[bytes]]) -> list[httpx.Response]:
        kind, bodies = job
        auth = ("nobody", "not a password") if kind == "wrong password" else None
        with httpx.Client(base_url=server.url, auth=auth, timeout=300) as c:
            if kind != "wrong password":
                c.cookies.set("JSESSIONID", session_id)
            return [c.post("/data/services/import", params=params, content=b, headers=dicom) for b in bodies]

    jobs = [("dicom", [f.read_bytes() for f in files[i::4]]) for i in range(4)]
    jobs.append(("junk", [b"not DICOM %d" % i for i in range(10)]))
    jobs.append(("wrong password", [files[0].read_bytes()] * 10))
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = dict(zip([k + str(i) for i, (k, _b) in enumerate(jobs)], pool.map(send, jobs), strict=True))
    good = [r for k, rs in answers.items() if k.startswith("dicom") for r in rs]
    assert [r.status_code for r in good] == [200] * 60, [r.text for r in good if r.status_code != 200]
    uris = {r.text.strip() for r in good}
    assert len(uris) == 1 and uris.pop().startswith(f"/data/prearchive/projects/{project}/")
    assert [r.status_code for r in answers["junk4"]] == [400] * 10
    assert all("not a DICOM file" in r.text for r in answers["junk4"])
    assert [r.status_code for r in answers["wrong password5"]] == [401] * 10
    stored = [
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in (server.data / "prearchive" / project).rglob("*.dcm")
    ]
    assert sorted(stored) == sorted(_sops(files))  # each file once, in the one session


def test_one_file_requests_without_a_valid_caller_are_refused(server: LiveServer, tmp_path: Path) -> None:
    """A small one-file request is read before its caller is checked; a bad caller is still a 401, and
    nothing is filed for it."""
    project = f"U{uuid.uuid4().hex[:8]}"
    with server.client() as http:
        assert http.put(f"/data/projects/{project}").status_code == 200
    body = copy_study(dicom_files(SOURCE)[:1], tmp_path / "one", "NOBODY")[0].read_bytes()
    params = {"inbody": "true", "PROJECT_ID": project}
    dicom = {"Content-Type": "application/dicom"}
    basic_wrong = httpx.BasicAuth("admin", "wrong")
    callers: list[tuple[httpx.BasicAuth | None, dict[str, str], dict[str, str]]] = [
        (None, {}, {}),  # no credentials at all
        (basic_wrong, {}, {}),
        (None, {"Authorization": "Basic !!!not base64"}, {}),
        (None, {}, {"JSESSIONID": "NOSUCHSESSION"}),
    ]
    for auth, headers, cookies in callers:
        with httpx.Client(base_url=server.url, timeout=60, auth=auth, cookies=cookies) as c:
            r = c.post("/data/services/import", params=params, content=body, headers={**dicom, **headers})
        assert r.status_code == 401, (auth, headers, cookies, r.status_code, r.text)
    with httpx.Client(base_url=server.url, timeout=60) as c:
        odd = {**params, "overwrite": "sideways"}  # a 400 for a known caller
        assert c.post("/data/services/import", params=odd, content=body, headers=dicom).status_code == 401
    with server.client() as http:
        assert http.post("/data/services/import", params=odd, content=body, headers=dicom).status_code == 400
        assert http.get("/data/services/import").status_code == 405
        listing = http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}).json()
    assert listing["ResultSet"]["Result"] == []
