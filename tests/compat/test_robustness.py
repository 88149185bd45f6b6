"""Clients in parallel and large bodies: what lab scripts do (thread pools of uploads, multi-GB files)."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.compat.helpers import ADMIN, create_experiment, create_subject, curl, describe, file_names, rows
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

NewId = Callable[[str], str]


def test_parallel_uploads_into_one_new_resource(server: LiveServer, http: httpx.Client, project: str) -> None:
    """32 uploads from 16 threads; the resource does not exist yet and is created implicitly by them."""
    subject = "S1"
    create_subject(http, project, subject)
    create_experiment(http, project, subject, "E1")
    base = f"/data/projects/{project}/subjects/{subject}/experiments/E1/scans/1"
    r = http.put(base, params={"xsiType": "xnat:mrScanData", "type": "T1"})
    assert r.status_code in (200, 201), describe(r)

    def upload(i: int) -> tuple[int, str]:
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=120) as c:
            resp = c.put(
                f"{base}/resources/PAR/files/f{i:02d}.bin",
                content=f"file {i} ".encode() * 500,
                headers={"Content-Type": "application/octet-stream"},
            )
            return resp.status_code, resp.text

    with cf.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(upload, range(32)))
    assert all(status in (200, 201) for status, _ in results), results
    listing = file_names(http, f"{base}/resources/PAR/files")
    assert sorted(listing) == [f"f{i:02d}.bin" for i in range(32)]
    for i in (0, 17, 31):
        row = listing[f"f{i:02d}.bin"]
        assert row["digest"] == hashlib.md5(f"file {i} ".encode() * 500).hexdigest(), row
    resources = rows(http.get(f"{base}/resources", params={"format": "json"}))
    assert [(x["label"], x["file_count"]) for x in resources] == [("PAR", "32")], resources


def test_parallel_subject_creation_gets_unique_ids(
    server: LiveServer, http: httpx.Client, project: str
) -> None:
    def create(i: int) -> tuple[int, str]:
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=120) as c:
            resp = c.put(
                f"/data/projects/{project}/subjects/PS{i:02d}", params={"xsiType": "xnat:subjectData"}
            )
            return resp.status_code, resp.text.strip()

    with cf.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(create, range(40)))
    assert {status for status, _ in results} == {201}, results
    ids = [body for _, body in results]
    assert all(re.fullmatch(r"XNAT_S\d{5}", x) for x in ids), ids
    assert len(set(ids)) == 40, "accession IDs must be unique"
    listed = rows(http.get(f"/data/projects/{project}/subjects", params={"format": "json"}))
    assert sorted(x["label"] for x in listed) == [f"PS{i:02d}" for i in range(40)]
    assert sorted(x["ID"] for x in listed) == sorted(ids)


@pytest.fixture
def big_resource(http: httpx.Client, project: str) -> str:
    create_subject(http, project, "S1")
    create_experiment(http, project, "S1", "E1")
    return f"/data/projects/{project}/subjects/S1/experiments/E1/resources/BIG"


def test_large_streamed_upload_and_download(http: httpx.Client, big_resource: str) -> None:
    """~200 MB sent chunked (no Content-Length), read back streaming, byte-exact."""
    chunk = os.urandom(1 << 20)
    sent = hashlib.md5()

    def body() -> Iterator[bytes]:
        for i in range(200):
            piece = chunk[i:] + chunk[:i]
            sent.update(piece)
            yield piece

    r = http.put(
        f"{big_resource}/files/big.bin", content=body(), headers={"Content-Type": "application/octet-stream"}
    )
    assert r.status_code in (200, 201), describe(r)
    row = file_names(http, f"{big_resource}/files")["big.bin"]
    assert row["Size"] == str(200 << 20)
    assert row["digest"] == sent.hexdigest()
    got = hashlib.md5()
    with http.stream("GET", f"{big_resource}/files/big.bin") as resp:
        assert resp.status_code == 200
        assert resp.headers.get("content-length") == str(200 << 20)
        for b in resp.iter_bytes():
            got.update(b)
    assert got.hexdigest() == sent.hexdigest()


def test_curl_large_multipart_and_binary_uploads(
    server: LiveServer, big_resource: str, tmp_path: Path
) -> None:
    """curl sends `Expect: 100-continue` for bodies over 1 MB (the seed's 21 MB NIfTI upload, `-F`)."""
    data = os.urandom(25 * 1024 * 1024)
    (tmp_path / "vol.nii").write_bytes(data)
    res = curl(
        "-u",
        "admin:admin",
        "-X",
        "PUT",
        f"{server.url}{big_resource}/files",
        "-F",
        "file=@vol.nii",
        cwd=tmp_path,
    )
    assert res.status in (200, 201), str(res)
    res = curl(
        "-u", "admin:admin", "-X", "PUT", f"{server.url}{big_resource}/files/raw.nii?inbody=true",
        "--data-binary", "@vol.nii", cwd=tmp_path,
    )  # fmt: skip
    assert res.status in (200, 201), str(res)
    want = hashlib.md5(data).hexdigest()
    for name in ("vol.nii", "raw.nii"):
        got = curl("-u", "admin:admin", f"{server.url}{big_resource}/files/{name}")
        assert got.status == 200 and hashlib.md5(got.body).hexdigest() == want, name
    part = curl("-u", "admin:admin", "-r", "100-199", f"{server.url}{big_resource}/files/raw.nii")
    assert part.status == 206 and part.body == data[100:200], str(part)
