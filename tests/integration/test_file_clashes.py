"""A file where a folder of files is, or a folder where a file is, through every door that puts
files into a resource: refused with 409 and a plain reason, nothing written, nothing moved (issue 17
item 1); and files named like the server's own temporaries are ordinary files that ``xnatd verify
--repair`` keeps (item 3).

Doors: raw ``PUT``/``POST`` with ``inbody=true``, multipart, ``overwrite=true``, zip and tar with
``extract=true``, and the web page's two (the script's ``/app/upload`` and the plain form). The web
page in Chromium is in tests/e2e/test_web.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.live_server import XNATD, LiveServer, live_server

pytestmark = pytest.mark.slow

RES = "resources/R/files"
KEPT = {"sub/dir/ok.txt": b"acknowledged", "top.txt": b"a file at the top"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("clash") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@contextlib.contextmanager
def web(server: LiveServer) -> Iterator[tuple[httpx.Client, str]]:
    """A logged-in browser-like client and its CSRF token."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        token = re.search(r'name="token" value="([0-9a-f]+)"', client.get("/app/login").text)
        assert token is not None
        form = {"username": "admin", "password": "admin", "token": token.group(1)}
        assert client.post("/app/login", data=form).status_code == 303
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/app/projects").text)
        assert csrf is not None
        yield client, csrf.group(1)


def verify(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(XNATD), "verify", "--data", str(server.data), "--database", server.database, *args]
    env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


def listed(http: httpx.Client, project: str) -> dict[str, str]:
    r = http.get(f"/data/projects/{project}/{RES}", params={"format": "json"})
    assert r.status_code == 200, r.text
    return {row["URI"].split("/files/", 1)[1]: row["digest"] for row in r.json()["ResultSet"]["Result"]}


def archive(kind: str, entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in entries:
                zf.writestr(name, data)
    else:
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for name, data in entries:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


Door = Callable[[LiveServer, httpx.Client, str, str], httpx.Response]


def _put_raw(server: LiveServer, http: httpx.Client, project: str, name: str) -> httpx.Response:
    return http.put(f"/data/projects/{project}/{RES}/{name}", content=b"new", params={"inbody": "true"})


def _post_raw(server: LiveServer, http: httpx.Client, project: str, name: str) -> httpx.Response:
    return http.post(f"/data/projects/{project}/{RES}/{name}", content=b"new", params={"inbody": "true"})


def _overwrite(server: LiveServer, http: httpx.Client, project: str, name: str) -> httpx.Response:
    params = {"inbody": "true", "overwrite": "true"}
    return http.put(f"/data/projects/{project}/{RES}/{name}", content=b"new", params=params)


def _multipart(server: LiveServer, http: httpx.Client, project: str, name: str) -> httpx.Response:
    return http.put(f"/data/projects/{project}/{RES}/{name}", files={"file": ("f.bin", b"new")})


def _zip(server: LiveServer, http: httpx.Client, project: str, name: str) -> httpx.Response:
    body = archive("zip", [("fine.txt", b"fine"), (name, b"new")])
    params = {"extract": "true", "overwrite": "true"}
    return http.put(f"/data/projects/{project}/{RES}/up.zip", content=body, params=params)


def _tar(server: LiveServer, http: httpx.Client, project: str, name: str) -> httpx.Response:
    body = archive("tar", [("fine.txt", b"fine"), (name, b"new")])
    return http.post(f"/data/projects/{project}/{RES}/up.tar", content=body, params={"extract": "true"})


def _web_script(server: LiveServer, http: httpx.Client, project: str, name: str) -> httpx.Response:
    with web(server) as (client, token):
        url = f"/app/upload/projects/{project}/{RES}/{name}"
        return client.post(url, content=b"new", headers={"X-CSRF-Token": token})


def _web_form(server: LiveServer, http: httpx.Client, project: str, name: str) -> httpx.Response:
    folder, _, base = name.rpartition("/")
    with web(server) as (client, token):
        form = {"csrf": token, "action": "upload", "holder": f"projects/{project}", "folder": "R"}
        form["subfolder"] = folder
        r = client.post(f"/app/files/projects/{project}", data=form, files={"files": (base, b"new")})
    # the form answers with a redirect back and the outcome as a flash message
    assert r.status_code == 303, r.text
    kind, _, text = unquote(r.cookies["xnatd_flash"].strip('"')).partition(":")
    return httpx.Response(409 if kind == "error" else 200, text=text)


DOORS: dict[str, Door] = {
    "put": _put_raw,
    "post": _post_raw,
    "overwrite": _overwrite,
    "multipart": _multipart,
    "zip": _zip,
    "tar": _tar,
    "web-script": _web_script,
    "web-form": _web_form,
}


def _project(http: httpx.Client, name: str) -> str:
    project = re.sub(r"[^A-Za-z0-9]", "", f"C{name}")
    assert http.put(f"/data/projects/{project}").status_code in (200, 201)
    for path, body in KEPT.items():
        r = http.put(f"/data/projects/{project}/{RES}/{path}", content=body, params={"inbody": "true"})
        assert r.status_code == 200, r.text
    return project


@pytest.mark.parametrize("door", list(DOORS))
def test_a_file_over_a_folder_or_a_folder_over_a_file_is_refused(
    server: LiveServer, http: httpx.Client, door: str
) -> None:
    project = _project(http, door)
    before = listed(http, project)
    for name, reason in (("sub", "'sub' is a folder"), ("top.txt/x.txt", "'top.txt' is a file")):
        r = DOORS[door](server, http, project, name)
        assert r.status_code == 409, (name, r.status_code, r.text)
        assert reason in r.text, r.text
        assert listed(http, project) == before, "nothing written"
        for path, body in KEPT.items():
            got = http.get(f"/data/projects/{project}/{RES}/{path}")
            assert got.status_code == 200 and got.content == body, (path, got.status_code)
    tree = server.data / "archive" / project / "resources" / "R"
    assert (tree / "sub" / "dir" / "ok.txt").read_bytes() == KEPT["sub/dir/ok.txt"], "nothing moved"
    assert not list((server.data / "tmp").rglob("backup-*")), "nothing set aside"
    out = verify(server, "--project", project)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_an_archive_naming_one_path_as_a_folder_and_a_file_stores_nothing(
    server: LiveServer, http: httpx.Client, kind: str
) -> None:
    project = _project(http, f"one{kind}")
    before = listed(http, project)
    for entries in ([("x/y.txt", b"y"), ("x", b"x")], [("x", b"x"), ("x/y.txt", b"y")]):
        body = archive(kind, [("first.txt", b"1"), *entries])
        r = http.put(f"/data/projects/{project}/{RES}/up.{kind}", content=body, params={"extract": "true"})
        assert r.status_code == 409 and "'x' is both a file and a folder" in r.text, r.text
        assert listed(http, project) == before
    assert not (server.data / "archive" / project / "resources" / "R" / "x").exists()
    out = verify(server, "--project", project)
    assert out.returncode == 0, out.stdout + out.stderr


TEMPORARY_LOOKING = [
    ".deleting-0123456789abcdef",
    "backup-0123456789abcdef0123456789abcdef",
    ".stage-0123456789abcdef01234567.part",
    ".stage-proc-0123456789abcdef",
    "aside-0123456789abcdef0123456789abcdef",
    ".aside-0123456789abcdef/inside.txt",
    "deeper/.deleting-fedcba9876543210/f.txt",
    "owner.lock",
    "placed.log",
]


def test_files_named_like_temporaries_are_kept_by_verify_repair(
    server: LiveServer, http: httpx.Client
) -> None:
    project = _project(http, "temps")
    sent = {}
    for name in TEMPORARY_LOOKING:
        body = hashlib.sha1(name.encode()).digest() * 100
        r = http.put(f"/data/projects/{project}/{RES}/{name}", content=body, params={"inbody": "true"})
        assert r.status_code == 200, (name, r.text)
        sent[name] = hashlib.md5(body).hexdigest()
    # --stale-after 0: every temporary counts as left behind long ago; a user's file is none
    out = verify(server, "--project", project, "--repair", "--stale-after", "0")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "temporary" not in out.stdout and "orphan" not in out.stdout, out.stdout
    got = listed(http, project)
    for name, digest in sent.items():
        assert got.get(name) == digest, name
        body = http.get(f"/data/projects/{project}/{RES}/{name}").content
        assert hashlib.md5(body).hexdigest() == digest, name
    assert verify(server, "--project", project).returncode == 0


def test_dicom_files_named_like_temporaries_are_kept_by_verify_repair(
    server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    """A DICOM file keeps the name it was sent with when that name is safe: ``backup-`` and 32 hex
    digits is one, in the prearchive and then in the archive."""
    project = "CTEMPDCM"
    assert http.put(f"/data/projects/{project}").status_code in (200, 201)
    files = copy_study(dicom_files(TESTDATA / "dcm_qa_ct_philips")[:2], tmp_path / "s", "TMPNAME")
    names = ["backup-" + "ab" * 16, "deleting-0123456789abcdef"]
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as zf:
        for name, path in zip(names, files, strict=True):
            zf.write(path, name)
    r = http.post(
        "/data/services/import", params={"dest": f"/prearchive/projects/{project}"}, content=body.getvalue()
    )
    assert r.status_code == 200, r.text
    session = r.text.strip().splitlines()[0]

    def stored() -> dict[str, str]:
        """Name -> MD5 of what each file reads back as."""
        found = {}
        for scan in http.get(f"{session}/scans", params={"format": "json"}).json()["ResultSet"]["Result"]:
            url = f"{session}/scans/{scan['ID']}/resources/DICOM/files"
            for row in http.get(url, params={"format": "json"}).json()["ResultSet"]["Result"]:
                found[row["Name"]] = hashlib.md5(http.get(f"{url}/{row['Name']}").content).hexdigest()
        return found

    before = stored()
    assert sorted(before) == sorted(names), before
    out = verify(server, "--project", project, "--repair", "--stale-after", "0")
    assert out.returncode == 0 and "temporary" not in out.stdout, out.stdout + out.stderr
    assert stored() == before


def test_archiving_over_a_folder_of_the_same_name_keeps_the_folder(
    server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    """``overwrite_files=true`` replaces a DICOM file of the same name; a user's folder of that name
    is not that file (setting it aside dropped every file in it): the new file takes a numbered name."""
    project = "CARCDIR"
    assert http.put(f"/data/projects/{project}").status_code in (200, 201)
    one, two = copy_study(
        dicom_files(TESTDATA / "dcm_qa_ct_philips" / "S21570" / "S2010")[:2], tmp_path, "AD"
    )
    exp = f"/data/projects/{project}/subjects/S1/experiments/E1"

    def send(path: Path, name: str) -> httpx.Response:
        body = io.BytesIO()
        with zipfile.ZipFile(body, "w") as zf:
            zf.write(path, name)
        params = {
            "dest": f"/archive{exp.removeprefix('/data')}",
            "overwrite": "append",
            "overwrite_files": "true",
        }
        return http.post("/data/services/import", params=params, content=body.getvalue())

    assert send(one, "one.dcm").status_code == 200
    (scan,) = http.get(f"{exp}/scans", params={"format": "json"}).json()["ResultSet"]["Result"]
    files = f"{exp}/scans/{scan['ID']}/resources/DICOM/files"
    r = http.put(f"{files}/two.dcm/note.txt", content=b"a note", params={"inbody": "true"})
    assert r.status_code == 200, r.text
    r = send(two, "two.dcm")
    assert r.status_code == 200, r.text
    assert http.get(f"{files}/two.dcm/note.txt").content == b"a note"
    rows = http.get(files, params={"format": "json"}).json()["ResultSet"]["Result"]
    names = sorted(row["URI"].split("/files/", 1)[1] for row in rows)
    assert names == ["one.dcm", "two-2.dcm", "two.dcm/note.txt"], names
    assert http.get(f"{files}/two-2.dcm").content == two.read_bytes()
    out = verify(server, "--project", project)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_file_on_disk_that_no_row_names_is_not_replaced_by_a_new_upload(
    server: LiveServer, http: httpx.Client
) -> None:
    """A file without a committed row is another request's, placed a moment before its commit (on
    PostgreSQL the upload's check cannot see it), or one a crash left: a new upload of that name
    (no overwrite asked: the listing has no such file) must not set it aside and drop it."""
    project = _project(http, "inflight")
    stray = server.data / "archive" / project / "resources" / "R" / "inflight.bin"
    stray.write_bytes(b"another request's file")
    r = http.put(f"/data/projects/{project}/{RES}/inflight.bin", content=b"new", params={"inbody": "true"})
    assert r.status_code == 409 and "already exists" in r.text, r.text
    assert stray.read_bytes() == b"another request's file"
    assert "inflight.bin" not in listed(http, project)
    stray.unlink()


def test_a_resource_made_again_after_a_delete_that_kept_the_files_has_a_folder_of_its_own(
    server: LiveServer, http: httpx.Client
) -> None:
    """``removeFiles=false`` keeps a deleted resource's files on disk; a new resource of that label
    neither takes them over nor meets them: the same names upload without a conflict."""
    project = _project(http, "keptfiles")
    r = http.delete(f"/data/projects/{project}/resources/R", params={"removeFiles": "false"})
    assert r.status_code == 200, r.text
    kept = server.data / "archive" / project / "resources" / "R" / "top.txt"
    assert kept.read_bytes() == KEPT["top.txt"]
    r = http.put(f"/data/projects/{project}/{RES}/top.txt", content=b"again", params={"inbody": "true"})
    assert r.status_code == 200, r.text
    assert http.get(f"/data/projects/{project}/{RES}/top.txt").content == b"again"
    assert kept.read_bytes() == KEPT["top.txt"], "the kept file is left alone"
