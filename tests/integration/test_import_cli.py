"""`xnatd import PATH --project P [--subject S] [--session E] [--archive]`: a local folder or a zip
through the same service as the REST import, beside a running server on the same site."""

from __future__ import annotations

import os
import subprocess
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.dicom_copies import TESTDATA
from tests.support.live_server import XNATD, live_server

pytestmark = pytest.mark.slow
CT = TESTDATA / "dcm_qa_ct_philips"


def xnatd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin"}
    return subprocess.run([str(XNATD), *args], capture_output=True, text=True, timeout=300, env=env)


def _rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


def test_import_a_folder_to_the_archive_and_a_zip_to_the_prearchive(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with live_server(data) as srv, srv.client() as http:
        project = f"C{uuid.uuid4().hex[:8]}"
        assert http.put(f"/data/projects/{project}").status_code == 200
        site = ("--data", str(data), "--database", srv.database)

        done = xnatd(
            "import", str(CT), "--project", project, "--subject", "S1", "--session", "E1", "--archive", *site
        )
        assert done.returncode == 0, done.stderr
        uri = f"/data/archive/projects/{project}/subjects/S1/experiments/E1"
        assert done.stdout.split() == [uri]
        assert "stored=" in done.stderr and "skipped=" in done.stderr  # DIRFILE is not DICOM: skipped
        scans = {s["ID"] for s in _rows(http.get(f"{uri}/scans", params={"format": "json"}))}
        assert scans == {"100", "201"}
        names = _rows(http.get(f"{uri}/scans/201/resources/DICOM/files", params={"format": "json"}))
        assert len(names) == 28 and all(int(f["Size"]) > 0 for f in names)

        archive = tmp_path / "ct.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for p in sorted(CT.rglob("*")):
                if p.is_file():
                    zf.write(p, str(p.relative_to(CT)))
        waiting = xnatd("import", str(archive), "--project", project, "--session", "E2", *site)
        assert waiting.returncode == 0, waiting.stderr
        [pre] = waiting.stdout.split()
        assert pre.startswith(f"/data/prearchive/projects/{project}/") and pre.endswith("/E2")
        listed = _rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}))
        assert [(r["name"], r["status"]) for r in listed] == [("E2", "READY")]

        unknown = xnatd("import", str(archive), "--project", "NOPE", *site)
        assert unknown.returncode != 0 and "NOPE" in unknown.stderr
