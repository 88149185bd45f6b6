"""XNAT's DICOM dump (``/data/services/dicomdump``) and catalog refresh (``/data/services/refresh/catalog``)
through xnatpy's ``services.dicom_dump`` and ``services.refresh_catalog``, and the REST calls."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.compat.helpers import describe, rows, zip_of_testdata
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow
NewId = Callable[[str], str]


def _import(http: httpx.Client, dest: str) -> str:
    r = http.post(
        "/data/services/import",
        params={"dest": dest, "format": "txt"},
        content=zip_of_testdata("dcm_qa_ct_philips"),
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 200, describe(r)
    return r.text.strip()


def test_dicom_dump_of_archive_and_prearchive_sources(
    xsession: Any, http: httpx.Client, server: LiveServer, project: str, new_id: NewId
) -> None:
    _import(http, f"/archive/projects/{project}/subjects/S1/experiments/E1")
    session_src = f"/archive/projects/{project}/experiments/E1"
    dump = xsession.services.dicom_dump(src=session_src)
    assert {"tag1", "tag2", "vr", "value", "desc"} <= set(dump[0])
    by_tag = {r["tag1"]: r for r in dump if not r["tag2"]}
    assert by_tag["(0008,0060)"]["value"] == "CT" and by_tag["(0008,0060)"]["desc"] == "Modality"
    assert by_tag["(0002,0010)"]["vr"] == "UI"  # the file meta information comes first
    assert any(r["tag2"] for r in dump)  # sequence items: (sequence tag, item tag)
    picked = xsession.services.dicom_dump(src=f"{session_src}/scans/201", fields=["Modality", "00100010"])
    assert sorted(r["tag1"] for r in picked) == ["(0008,0060)", "(0010,0010)"]
    scan_files = rows(
        http.get(f"/data{session_src}/scans/201/resources/DICOM/files", params={"format": "json"})
    )
    one = scan_files[0]["Name"]
    file_src = f"/archive/projects/{project}/subjects/S1/experiments/E1/scans/201/resources/DICOM/files/{one}"
    by_file = rows(http.get("/data/services/dicomdump", params={"src": file_src, "field": "SeriesNumber"}))
    assert [r["value"] for r in by_file] == ["201"]
    # the prearchive: a session, and one of its scans
    uri = _import(http, f"/prearchive/projects/{project}")
    pre_src = uri.removeprefix("/data")
    assert xsession.services.dicom_dump(src=pre_src, fields=["Modality"])[0]["value"] == "CT"
    assert (
        xsession.services.dicom_dump(src=f"{pre_src}/scans/100", fields=["SeriesNumber"])[0]["value"] == "100"
    )
    # refusals: no src, a src of neither kind, a bad field, what the caller may not read
    assert http.get("/data/services/dicomdump").status_code == 400
    assert http.get("/data/services/dicomdump", params={"src": "/elsewhere/x"}).status_code == 400
    bad = {"src": session_src, "field": "NoSuchKeyword"}
    assert http.get("/data/services/dicomdump", params=bad).status_code == 400
    name, password = new_id("u").lower(), "user-password-1"
    assert http.post("/xapi/users", json={"username": name, "password": password}).status_code == 201
    with httpx.Client(base_url=server.url, auth=(name, password)) as other:
        assert other.get("/data/services/dicomdump", params={"src": session_src}).status_code == 404
        assert other.get("/data/services/dicomdump", params={"src": pre_src}).status_code == 404


def test_refresh_catalog_indexes_and_drops_files_changed_on_disk(
    xsession: Any, http: httpx.Client, server: LiveServer, project: str
) -> None:
    exp = f"/data/projects/{project}/subjects/S1/experiments/E1"
    assert http.put(f"/data/projects/{project}/subjects/S1").status_code in (200, 201)
    assert http.put(exp, params={"xsiType": "xnat:mrSessionData"}).status_code in (200, 201)
    assert http.put(f"{exp}/resources/NOTES/files/kept.txt", content=b"kept").status_code == 200
    assert http.put(f"{exp}/resources/NOTES/files/gone.txt", content=b"gone").status_code == 200
    folder = server.data / "archive" / project / "arc001" / "E1" / "RESOURCES" / "NOTES"
    (folder / "sub").mkdir()
    added = folder / "sub" / "added.txt"
    added.write_bytes(b"copied in by hand")
    old = time.time() - 3600  # a file just written may be an upload's in flight: refresh leaves it
    os.utime(added, (old, old))
    (folder / "gone.txt").unlink()
    fresh = folder / "fresh.txt"
    fresh.write_bytes(b"just now")

    def names() -> list[str]:
        return sorted(
            r["Name"] for r in rows(http.get(f"{exp}/resources/NOTES/files", params={"format": "json"}))
        )

    resource = xsession.projects[project].subjects["S1"].experiments["E1"].resources["NOTES"]
    xsession.services.refresh_catalog(resource)  # no option: only checked
    assert names() == ["gone.txt", "kept.txt"]
    xsession.services.refresh_catalog(resource, append=True, delete=True)
    assert names() == ["added.txt", "kept.txt"]
    assert http.get(f"{exp}/resources/NOTES/files/sub/added.txt").content == b"copied in by hand"
    # a whole session at once, by its archive URI (XNAT's form); the refresh is in its history
    os.utime(fresh, (old, old))
    r = http.post("/data/services/refresh/catalog", params={
        "resource": f"/archive/projects/{project}/subjects/S1/experiments/E1", "options": "append",
    })  # fmt: skip
    assert r.status_code == 200, describe(r)
    assert names() == ["added.txt", "fresh.txt", "kept.txt"]
    history = [w["pipeline_name"] for w in rows(http.get(f"{exp}/workflows", params={"format": "json"}))]
    assert history.count("Catalog(s) Refreshed") == 3
    assert http.post("/data/services/refresh/catalog").status_code == 400
    assert http.post("/data/services/refresh/catalog", params={"resource": "/nowhere"}).status_code == 400
    unknown_op = {"resource": f"/archive/projects/{project}", "options": "reindex"}
    assert http.post("/data/services/refresh/catalog", params=unknown_op).status_code == 400
    assert http.get("/data/services/refresh/catalog").status_code == 405
