"""A full disk through the real doors (issue #9): the data folder, SQLite database included, on a
40 MB tmpfs. A write that does not fit answers 507 with a plain-text reason (C-STORE: an
out-of-resources status) and leaves nothing behind; what was stored before stays intact and readable;
once space is freed (a resource deleted over REST) writes succeed again.

Needs root (CI runs as root) to mount the tmpfs; if the mount fails the test fails and says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.dicom_scu import reactor_held
from tests.support.live_server import LiveServer, free_port, live_server

pytestmark = pytest.mark.slow
CT = [p for p in dicom_files(TESTDATA / "dcm_qa_ct_philips") if p.stat().st_size > 400_000][:5]
P = "DISKFULL"


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "40m") -> Iterator[Path]:
    where.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {where} (run as root): {done.stderr.decode().strip()}")
    try:
        yield where
    finally:  # the server's receiver child may take a moment to let go of the mount
        for _ in range(20):
            if subprocess.run(["umount", str(where)], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", str(where)], check=True)


def _put(http: httpx.Client, resource: str, name: str, body: bytes) -> httpx.Response:
    return http.put(
        f"/data/projects/{P}/resources/{resource}/files/{name}", content=body, params={"inbody": "true"}
    )


def _listed(http: httpx.Client, resource: str) -> dict[str, str]:
    r = http.get(f"/data/projects/{P}/resources/{resource}/files", params={"format": "json"})
    if r.status_code == 404:
        return {}
    assert r.status_code == 200, r.text
    return {f["Name"]: f["digest"] for f in r.json()["ResultSet"]["Result"]}


def _fill(http: httpx.Client) -> int:
    """Upload into resource FILL until even a 64 KiB file is refused; returns the files stored."""
    stored, size = 0, 4 << 20
    while size >= 64 << 10:
        r = _put(http, "FILL", f"fill{stored}.bin", os.urandom(size))
        if r.status_code == 507:
            size //= 4
            continue
        assert r.status_code in (200, 201), r.text
        stored += 1
    return stored


def _leftovers(data: Path) -> list[Path]:
    """Staged files left in DATA/tmp (each live process's own folder holds its lock and journal)."""
    return [
        p
        for p in (data / "tmp").rglob("*")
        if p.is_file() and not p.name.startswith(("owner.lock", "placed.log"))
    ]


def _zip(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.write(f, f"DICOM/{f.name}")
    return buf.getvalue()


def _cstore(port: int, files: list[Path]) -> tuple[list[int], bool]:
    """Send ``files`` in one association, then a C-ECHO on it: (statuses, the echo answered 0)."""
    ae = AE("FULLSCU")
    meta = pydicom.dcmread(files[0], stop_before_pixels=True).file_meta
    ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="XNAT")
    assert assoc.is_established
    try:
        with reactor_held(assoc):
            statuses = [int(assoc.send_c_store(p).Status) for p in files]
            echo = assoc.send_c_echo()
        return statuses, bool(echo) and int(echo.Status) == 0
    finally:
        assoc.release()


def _sessions(http: httpx.Client) -> list[str]:
    r = http.get(f"/data/projects/{P}/experiments", params={"format": "json"})
    assert r.status_code == 200, r.text
    return [e["label"] for e in r.json()["ResultSet"]["Result"]]


def test_a_full_disk_answers_507_and_keeps_what_was_stored(tmp_path: Path) -> None:
    studies = [copy_study(CT, tmp_path / "studies" / str(i), f"FULL{i}") for i in range(4)]
    port = free_port()
    with tmpfs(tmp_path / "full") as mnt:
        data = mnt / "data"
        env = {"XNATD_DICOM_PROCESSES": "1"}
        with live_server(data, "--dicom-port", str(port), env=env) as srv, srv.client() as http:
            _full_disk_through_the_doors(srv, http, port, studies)


def _full_disk_through_the_doors(
    srv: LiveServer, http: httpx.Client, port: int, studies: list[list[Path]]
) -> None:
    assert http.put(f"/data/projects/{P}").status_code in (200, 201)
    kept = {f"k{i}.bin": os.urandom(300_000 * (i + 1)) for i in range(3)}
    for name, body in kept.items():
        assert _put(http, "KEEP", name, body).status_code in (200, 201)
    assert _fill(http) > 3

    # an upload that does not fit: 507, plain text, nothing half-made
    r = _put(http, "KEEP", "big.bin", os.urandom(2 << 20))
    assert r.status_code == 507 and r.headers["content-type"].startswith("text/plain"), r.text
    assert "space" in r.text.lower()
    assert set(_listed(http, "KEEP")) == set(kept)
    assert not list(srv.data.rglob("big.bin")) and _leftovers(srv.data) == []
    for name, body in kept.items():  # earlier files intact, reads still served
        assert (
            hashlib.md5(http.get(f"/data/projects/{P}/resources/KEEP/files/{name}").content).digest()
            == hashlib.md5(body).digest()
        )

    # a zip import that does not fit: 507 and no half-made session
    dest = f"/archive/projects/{P}/subjects/S1/experiments/E_FULL"
    r = http.post("/data/services/import", params={"dest": dest}, content=_zip(studies[0]))
    assert r.status_code == 507 and r.headers["content-type"].startswith("text/plain"), r.text
    assert "E_FULL" not in _sessions(http)
    r = http.get(f"/data/prearchive/projects/{P}", params={"format": "json"})
    assert r.status_code in (200, 404) and (r.status_code == 404 or r.json()["ResultSet"]["Result"] == [])
    assert _leftovers(srv.data) == []

    # C-STORE when full: an out-of-resources status (0xA7xx), and the association goes on
    statuses, echoed = _cstore(port, studies[1])
    assert statuses and all(s & 0xFF00 == 0xA700 for s in statuses), [hex(s) for s in statuses]
    assert echoed, "the association must go on after a refused object"

    # space freed over REST: writes succeed again
    assert (
        http.delete(f"/data/projects/{P}/resources/FILL", params={"removeFiles": "true"}).status_code == 200
    )
    body = os.urandom(2 << 20)
    r = _put(http, "KEEP", "after.bin", body)
    assert r.status_code in (200, 201), r.text
    assert _listed(http, "KEEP")["after.bin"] == hashlib.md5(body).hexdigest()
    r = http.post("/data/services/import", params={"dest": dest}, content=_zip(studies[2]))
    assert r.status_code == 200, r.text
    assert "E_FULL" in _sessions(http)
    statuses, echoed = _cstore(port, studies[3])
    assert statuses == [0] * len(studies[3]) and echoed
