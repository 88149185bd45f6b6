"""Zip imports unpacked by helper processes (``import_processes``), through the live server.

A zip filed by the helpers must end up exactly as one unpacked in the server process: same
sessions, scans, names and checksums, the same files skipped. A damaged member fails the upload
with nothing left behind; a helper that dies mid-import costs nothing but time; the helpers are
the server's children and end with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.crash import Site
from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
HELPER = "xnatd.services.ingest.unpack_helper"


@pytest.fixture(scope="module")
def helped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("helped") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def unhelped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"XNATD_IMPORT_PROCESSES": "0"}
    with live_server(tmp_path_factory.mktemp("unhelped") / "data", env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def mixed_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Some 200 members of every kind the importer meets, in one zip."""
    work = tmp_path_factory.mktemp("mixed")
    mr = copy_study(dicom_files(TESTDATA / "dcm_qa_nih" / "20180918GE")[:150], work / "mr", "HELPMR")
    odd = copy_study(dicom_files(TESTDATA / "dcm_qa_ts"), work / "ts", "HELPTS")  # big endian: pydicom
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in mr:
            zf.write(f, f"mr/{f.name}")
        zf.write(mr[0], "again/copy-of-first.dcm")  # the same instance twice: a duplicate
        for f in odd:
            zf.write(f, f"ts/{f.name}")
        for f in dicom_files(TESTDATA / "xnat_test_resources" / "duplicates"):  # names repeat across folders
            zf.write(
                f, f"dup/{f.parent.name}/{f.name}", compress_type=zipfile.ZIP_DEFLATED
            )  # read via zipfile
        zf.writestr("README.txt", "not DICOM\n")
        zf.writestr("inner.zip", b"PK\x05\x06" + bytes(18))
    return buf.getvalue()


def _project(server: LiveServer) -> str:
    project = f"H{uuid.uuid4().hex[:8]}"
    with server.client() as http:
        assert http.put(f"/data/projects/{project}").status_code == 200
    return project


def _import(server: LiveServer, project: str, body: bytes, dest: str = "archive") -> httpx.Response:
    with server.client() as http:
        return http.post(
            "/data/services/import",
            params={"dest": f"/{dest}/projects/{project}"},
            content=body,
            headers={"Content-Type": "application/zip"},
        )


def _tree(folder: Path) -> dict[str, str]:
    """Relative path -> MD5 of every file under ``folder`` (thumbnails left out)."""
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "SNAPSHOTS" not in p.parts
    }


def _helpers(server: LiveServer) -> list[psutil.Process]:
    return [p for p in psutil.Process(server.pid).children() if HELPER in " ".join(p.cmdline())]


def test_helpers_file_a_zip_as_the_server_itself_does(
    helped: LiveServer, unhelped: LiveServer, mixed_zip: bytes
) -> None:
    trees, uris = [], []
    for server in (helped, unhelped):
        project = _project(server)
        r = _import(server, project, mixed_zip, dest="prearchive")
        assert r.status_code == 200, r.text
        uris.append(sorted(u.split("/")[-1] for u in r.text.split()))
        tree = _tree(server.data / "prearchive" / project)
        trees.append({path.split("/", 1)[1]: md5 for path, md5 in tree.items()})  # timestamps differ
    assert uris[0] == uris[1]
    assert trees[0] == trees[1]
    sessions = [path.split("/", 1)[0] for path in trees[0]]
    assert sessions.count("HELPMR") == 150  # its copy under again/ was a duplicate
    assert sessions.count("HELPTS") == 9  # big endian among them: read by the server itself (pydicom)
    assert len(sessions) == 150 + 9 + 60  # the duplicates fixture: 65 files, 60 distinct instances
    assert len(_helpers(helped)) == 2  # started by the first big zip, kept for the next
    assert _helpers(unhelped) == []


def test_a_damaged_member_fails_the_upload_and_leaves_nothing(helped: LiveServer, tmp_path: Path) -> None:
    files = copy_study(dicom_files(TESTDATA / "dcm_qa_nih" / "20180918GE")[:300], tmp_path / "s", "BROKEN")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # stored: the bytes of a member are its file's bytes
        for f in files:
            zf.write(f, f.name)
    body = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(body))) as zf:
        info = zf.getinfo(files[280].name)  # in the second chunk, after the first was written
    data_at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    body[data_at + 2000] ^= 0xFF  # its CRC no longer matches
    project = _project(helped)
    r = _import(helped, project, bytes(body))
    assert r.status_code == 400, r.text
    assert "not a valid zip" in r.text
    assert _tree(helped.data / "prearchive" / project) == {}
    assert not (helped.data / "archive" / project).exists() or _tree(helped.data / "archive" / project) == {}
    assert not [p for p in (helped.data / "tmp").rglob(".stage-*")]
    good = bytearray(body)
    good[data_at + 2000] ^= 0xFF
    r = _import(helped, project, bytes(good))  # the server, and its helpers, go on serving
    assert r.status_code == 200, r.text
    assert len(_tree(helped.data / "archive" / project)) == 300


def test_a_helper_dying_mid_import_costs_only_time(helped: LiveServer, tmp_path: Path) -> None:
    files = copy_study(dicom_files(TESTDATA / "dcm_qa_nih" / "20180918GE")[:600], tmp_path / "s", "DYING")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.write(f, f.name)
    project = _project(helped)
    assert _import(helped, _project(helped), buf.getvalue()).status_code == 200  # helpers are up
    helpers = _helpers(helped)
    assert len(helpers) == 2
    for h in helpers:
        os.kill(h.pid, signal.SIGSTOP)  # frozen: the next import waits on them
    answer: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answer.append(_import(helped, project, buf.getvalue())))
    sender.start()
    time.sleep(1.5)
    assert sender.is_alive(), "the import did not wait for its helpers"
    os.kill(helpers[0].pid, signal.SIGKILL)
    sender.join(120)
    assert answer and answer[0].status_code == 200, answer and answer[0].text
    assert "unpacking it in the server process instead" in helped.log.read_text()
    stored = _tree(helped.data / "archive" / project)
    assert len(stored) == 600
    assert {Path(p).name for p in stored} == {f.name for f in files}  # each once, none left aside
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in helpers)
    assert _import(helped, _project(helped), buf.getvalue()).status_code == 200
    assert {p.pid for p in _helpers(helped)}.isdisjoint(h.pid for h in helpers)  # new ones


def test_helpers_end_with_the_server(tmp_path: Path) -> None:
    files = copy_study(dicom_files(TESTDATA / "dcm_qa_nih" / "20180918GE")[:100], tmp_path / "s", "ENDS")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.write(f, f.name)
    with live_server(tmp_path / "data") as server:
        assert _import(server, _project(server), buf.getvalue()).status_code == 200
        helpers = _helpers(server)
        assert len(helpers) == 2
        # `xnatd serve` keeps glibc to two malloc arenas, and its children inherit that
        assert all(h.environ().get("MALLOC_ARENA_MAX") == "2" for h in helpers)
    assert not any(h.is_running() and h.status() != psutil.STATUS_ZOMBIE for h in helpers)


def test_a_server_killed_while_its_helpers_write_leaves_nothing_behind(tmp_path: Path) -> None:
    """SIGKILL of the whole tree in the middle of a helper-unpacked import: at the next start,
    recovery removes every file the helpers wrote (the server journalled their places first),
    ``xnatd verify`` finds nothing amiss, and the same zip then imports whole."""
    files = copy_study(dicom_files(TESTDATA / "dcm_qa_nih" / "20180918GE")[:600], tmp_path / "s", "KILLED")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.write(f, f.name)
    site = Site(tmp_path / "data", env={"XNATD_RECOVER_AFTER": "0"})
    site.start()
    try:
        with site.client() as http:
            assert http.put("/data/projects/KILL").status_code == 200
            assert http.put("/data/projects/WARM").status_code == 200
            warm = http.post(
                "/data/services/import", params={"dest": "/archive/projects/WARM"}, content=buf.getvalue()
            )
            assert warm.status_code == 200, warm.text  # the helpers are up
        folder = site.data / "prearchive" / "KILL"
        sender = threading.Thread(target=_send_ignoring_errors, args=(site, buf.getvalue()), daemon=True)
        sender.start()
        deadline = time.monotonic() + 60
        while not (folder.exists() and any(folder.rglob("*.dcm"))) and time.monotonic() < deadline:
            time.sleep(0.005)
        written = sum(1 for _ in folder.rglob("*.dcm"))
        assert 0 < written < 600, "killed while the helpers were writing"
        assert site.kill_tree() >= 3  # the server and its two helpers
        sender.join(30)
        site.start()
        out = site.verify()
        assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
        assert not any(folder.rglob("*.dcm")), "files of the killed import were left behind"
        with site.client() as http:
            r = http.post(
                "/data/services/import", params={"dest": "/archive/projects/KILL"}, content=buf.getvalue()
            )
            assert r.status_code == 200, r.text
        assert len(_tree(site.data / "archive" / "KILL")) == 600
    finally:
        site.stop()


def _send_ignoring_errors(site: Site, body: bytes) -> None:
    with contextlib.suppress(httpx.HTTPError), site.client() as http:
        http.post("/data/services/import", params={"dest": "/prearchive/projects/KILL"}, content=body)
