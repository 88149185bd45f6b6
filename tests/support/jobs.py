"""Helpers for job tests and the job benchmark: sessions with real DICOM scans, waiting for jobs."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx

from tests.support.testdata import DICOM

TESTDATA = DICOM
GE = TESTDATA / "dcm_qa_nih/20180918GE"
SIEMENS = TESTDATA / "dcm_qa_nih/20180918Si"
CT = TESTDATA / "dcm_qa_ct_philips/S21570/S2010"
PET_HEADER_ONLY = TESTDATA / "xnat_test_resources/pet_enhanced_header_only"
FINAL = ("complete", "failed", "cancelled")


def uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def series_zip(folder: Path) -> bytes:
    """The files of one series folder as a stored zip (READMEs and licences left out)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.iterdir()):
            if p.is_file() and p.suffix not in (".txt", ".md") and p.name not in ("LICENSE", "DIRFILE"):
                zf.write(p, p.name)
    return buf.getvalue()


def make_session(http: httpx.Client, project: str | None = None, xsi: str = "xnat:mrSessionData") -> str:
    """A new project (unless given), subject and session; returns the session's URI."""
    p = project or uid("J")
    if project is None:
        assert http.put(f"/data/projects/{p}").status_code == 200
    s, e = uid("S"), uid("E")
    assert http.put(f"/data/projects/{p}/subjects/{s}").status_code == 201
    r = http.put(f"/data/projects/{p}/subjects/{s}/experiments/{e}", params={"xsiType": xsi})
    assert r.status_code == 201, r.text
    return f"/data/projects/{p}/subjects/{s}/experiments/{e}"


def add_scan(
    http: httpx.Client,
    exp: str,
    scan: str,
    folder: Path,
    xsi: str = "xnat:mrScanData",
    zipped: bytes | None = None,
) -> str:
    """A scan with the series' DICOM files in its DICOM resource; returns the scan's URI."""
    r = http.put(f"{exp}/scans/{scan}", params={"xsiType": xsi, "type": folder.name})
    assert r.status_code in (200, 201), r.text
    body = zipped if zipped is not None else series_zip(folder)
    r = http.put(
        f"{exp}/scans/{scan}/resources/DICOM/files/series.zip",
        content=body,
        params={"extract": "true", "inbody": "true", "format": "DICOM"},
    )
    assert r.status_code in (200, 201), r.text
    return f"{exp}/scans/{scan}"


def wait_jobs(http: httpx.Client, ids: list[int], timeout: float = 120.0) -> list[dict[str, Any]]:
    """Poll until every job is final; returns their documents."""
    deadline = time.monotonic() + timeout
    while True:
        docs = [http.get(f"/xapi/jobs/{i}").json() for i in ids]
        if all(d["status"] in FINAL for d in docs):
            return docs
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs not finished after {timeout}s: {docs}")
        time.sleep(0.1)


def wait_status(http: httpx.Client, job_id: int, status: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = http.get(f"/xapi/jobs/{job_id}").json()
        if doc["status"] == status:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not {status} after {timeout}s: {doc}")
        time.sleep(0.05)


def launch(http: httpx.Client, target: str, command: str = "dcm2niix", **extra: Any) -> list[dict[str, Any]]:
    r = http.post("/xapi/jobs", json={"command": command, "target": target, **extra})
    assert r.status_code == 201, r.text
    jobs: list[dict[str, Any]] = r.json()
    return jobs
