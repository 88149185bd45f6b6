"""DICOM import, the prearchive and the archive service against a real server and real DICOM."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
COLUMNS = [
    "project", "timestamp", "lastmod", "uploaded", "scan_date", "scan_time", "subject", "folderName", "name",
    "tag", "status", "url", "autoarchive", "prevent_anon", "prevent_auto_commit", "SOURCE", "VISIT",
    "PROTOCOL", "TIMEZONE",
]  # fmt: skip
TS = TESTDATA / "dcm_qa_ts"
CT = TESTDATA / "dcm_qa_ct_philips"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("import") / "data"
    with live_server(data, env={"XNATD_PREARCHIVE_IDLE_BUILD": "1"}) as srv:
        yield srv


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def project(http: httpx.Client) -> str:
    pid = f"P{uuid.uuid4().hex[:8]}"
    assert http.put(f"/data/projects/{pid}").status_code == 200
    return pid


def zip_of(folder: Path, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + str(p.relative_to(folder)))
    return buf.getvalue()


def post_import(
    http: httpx.Client, body: bytes, ctype: str = "application/zip", **params: str
) -> httpx.Response:
    return http.post("/data/services/import", params=params, content=body, headers={"Content-Type": ctype})


def rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


def test_zip_to_prearchive_listing_session_and_scans(http: httpx.Client, project: str) -> None:
    params = {"import-handler": "DICOM-zip", "dest": f"/prearchive/projects/{project}"}
    r = post_import(http, zip_of(TS), **params)  # XNAT's DICOM-zip importer refuses a zip with a README
    assert r.status_code == 400 and "unable to read DICOM object" in r.text, r.text
    assert rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"})) == []
    r = post_import(http, zip_of(TS), **params, **{"Ignore-Unparsable": "true"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/uri-list")
    uri = r.text.strip()
    assert uri.startswith(f"/data/prearchive/projects/{project}/") and r.text.endswith("\r\n")
    assert "skipped=2" in r.headers["x-xnatd-import"]  # LICENSE and README skipped, not fatal
    listing = rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}))
    assert len(listing) == 1 and list(listing[0]) == COLUMNS
    row = listing[0]
    assert row["status"] == "READY" and row["url"] == uri[len("/data") :] and row["autoarchive"] == "Manual"
    assert "totalRecords" not in http.get(f"/data/prearchive/projects/{project}").json()["ResultSet"]
    text = http.get("/data/prearchive/projects", params={"format": "csv"}).text
    assert next(csv.reader(io.StringIO(text))) == COLUMNS
    assert rows(http.get(uri, params={"format": "json"}))[0]["name"] == row["name"]
    xml = http.get(uri)
    assert xml.status_code == 200 and b"MRSession" in xml.content and b"<xnat:scan" in xml.content
    scans = rows(http.get(f"{uri}/scans", params={"format": "json"}))
    assert sorted(s["ID"] for s in scans) == [str(n) for n in range(1, 10)]  # one UID, nine numbers
    files = rows(http.get(f"{uri}/scans/3/resources/DICOM/files", params={"format": "json"}))
    assert [f["Name"] for f in files] == ["3.dcm"]
    assert http.get(files[0]["URI"]).content == (TS / "3.dcm").read_bytes()
    z = zipfile.ZipFile(io.BytesIO(http.get(uri, params={"format": "zip"}).content))
    assert len(z.namelist()) == 9


def test_archive_then_overwrite_none_append_delete(http: httpx.Client, project: str) -> None:
    dest = f"/prearchive/projects/{project}"
    first = post_import(http, zip_of(CT), dest=dest).text.strip()
    r = http.post("/data/services/archive", params={"src": first})
    assert r.status_code == 200, r.text
    exp_uri = r.text.strip()
    assert exp_uri.startswith(f"/data/archive/projects/{project}/subjects/") and exp_uri.endswith("/PLASTIC")
    exp = http.get(exp_uri.replace("/data/archive", "/data"), params={"format": "json"}).json()["items"][0]
    assert exp["meta"]["xsi:type"] == "xnat:ctSessionData"
    assert exp["data_fields"]["date"] and exp["data_fields"]["UID"]
    scans = {s["ID"]: s for s in rows(http.get(f"{exp_uri}/scans", params={"format": "json"}))}
    assert set(scans) == {"100", "201"} and scans["201"]["type"] == "STD BRAIN 5MM"
    res = rows(http.get(f"{exp_uri}/scans/201/resources", params={"format": "json"}))
    dicom = [r for r in res if r["label"] == "DICOM"]  # SNAPSHOTS comes when first fetched
    assert dicom and dicom[0]["format"] == "DICOM" and dicom[0]["content"] == "RAW"
    names = {
        f["Name"]
        for f in rows(http.get(f"{exp_uri}/scans/201/resources/DICOM/files", params={"format": "json"}))
    }
    assert "I10" in names and len(names) == 28  # extension-less names kept, DIRFILE skipped
    again = post_import(http, zip_of(CT), dest=dest).text.strip()
    r = http.post("/data/services/archive", params={"src": again})
    assert r.status_code == 409 and "already exists" in r.text
    listed = rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}))
    assert listed[0]["status"] == "CONFLICT"
    r = http.post("/data/services/archive", params={"src": again, "overwrite": "append"})
    assert r.status_code == 409 and "Duplicate DICOM" in r.text, r.text  # XNAT: append refuses them
    r = http.post(
        "/data/services/archive", params={"src": again, "overwrite": "append", "overwrite_files": "true"}
    )
    assert r.status_code == 200, r.text  # each instance sent again replaces its own file, once
    assert len(rows(http.get(f"{exp_uri}/scans/201/resources/DICOM/files", params={"format": "json"}))) == 28
    third = post_import(http, zip_of(CT), dest=dest).text.strip()
    r = http.post("/data/services/archive", params={"src": third, "overwrite": "delete"})
    assert r.status_code == 200, r.text
    assert len(rows(http.get(f"{exp_uri}/scans/201/resources/DICOM/files", params={"format": "json"}))) == 28
    assert rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"})) == []


def test_direct_archive_duplicates_and_put_after_archiving(
    http: httpx.Client, project: str, server: LiveServer
) -> None:
    dup = TESTDATA / "xnat_test_resources" / "duplicates"
    r = post_import(http, zip_of(dup), dest=f"/archive/projects/{project}/subjects/SUBJ/experiments/DUP1")
    assert r.status_code == 200, r.text
    assert r.text.strip() == f"/data/archive/projects/{project}/subjects/SUBJ/experiments/DUP1"
    assert "stored=60; duplicates=5" in r.headers["x-xnatd-import"]
    exp = f"/data/projects/{project}/subjects/SUBJ/experiments/DUP1"
    files = rows(http.get(f"{exp}/scans/5/resources/DICOM/files", params={"format": "json"}))
    assert len(files) == 60
    assert not list((server.data / "prearchive" / project).glob("*/*"))  # nothing left behind
    # seed 000: after archiving, demographics and session/scan fields can still be set and read back
    assert http.put(
        f"/data/projects/{project}/subjects/SUBJ", params={"gender": "female", "age": "25"}
    ).is_success
    assert http.put(exp, params={"xsiType": "xnat:mrSessionData", "scanner": "SIEMENS"}).is_success
    scan_field = {"xsiType": "xnat:mrScanData", "xnat:mrScanData/type": "T1w"}
    assert http.put(f"{exp}/scans/5", params=scan_field).is_success
    subj = http.get(f"/data/projects/{project}/subjects/SUBJ", params={"format": "json"}).json()["items"][0]
    demo = next(c for c in subj["children"] if c["field"] == "demographics")["items"][0]["data_fields"]
    assert demo["gender"] == "female" and int(demo["age"]) == 25
    e = http.get(exp, params={"format": "json"}).json()["items"][0]["data_fields"]
    assert e["scanner"] == "SIEMENS" and e["UID"]
    s = http.get(f"{exp}/scans/5", params={"format": "json"}).json()["items"][0]["data_fields"]
    assert s["type"] == "T1w" and s["series_description"]


def test_gradual_files_idle_build_and_auto_archive(http: httpx.Client, project: str) -> None:
    assert http.put(f"/data/projects/{project}/prearchive_code/4").status_code == 200
    for f, sent in zip(sorted(TS.glob("[12].dcm")), ({}, {"filename": "kept.dcm"}), strict=True):
        r = post_import(
            http, f.read_bytes(), "application/dicom", PROJECT_ID=project, SUBJECT_ID="S", EXPT_LABEL="G1",
            **sent,
        )  # fmt: skip
        assert r.status_code == 200 and "/prearchive/" in r.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = http.get(f"/data/projects/{project}/experiments", params={"format": "json"}).json()
        if found["ResultSet"]["Result"]:
            break
        time.sleep(0.5)
    labels = [e["label"] for e in found["ResultSet"]["Result"]]
    assert labels == ["G1"], "the idle builder archives a session of an auto-archive project"
    exp = f"/data/projects/{project}/experiments/G1"
    scans = rows(http.get(f"{exp}/scans", params={"format": "json"}))
    assert len(scans) == 2
    names = sorted(
        f["Name"]
        for scan in scans
        for f in rows(http.get(f"{exp}/scans/{scan['ID']}/resources/DICOM/files", params={"format": "json"}))
    )
    # a raw body has no name: XNAT's template names it; a filename parameter is kept
    assert names[1] == "kept.dcm" and re.fullmatch(r"[0-9.]+-\d+-\d+-[0-9a-z]+\.dcm", names[0]), names


def test_move_rebuild_delete_services(http: httpx.Client, project: str) -> None:
    other = f"Q{uuid.uuid4().hex[:8]}"
    assert http.put(f"/data/projects/{other}").status_code == 200
    uri = post_import(http, zip_of(TS), dest=f"/prearchive/projects/{project}").text.strip()
    r = http.post(uri, params={"action": "move", "newProject": other})
    assert r.status_code == 301 and r.text.strip().startswith(f"/data/prearchive/projects/{other}/")
    moved = r.text.strip()
    r = http.post("/data/services/prearchive/rebuild", params={"src": moved, "format": "csv"})
    assert r.status_code == 200 and "READY" in r.text
    r = http.post("/data/services/prearchive/delete", data={"src": moved, "async": "false"})
    assert r.status_code == 200
    assert rows(http.get(f"/data/prearchive/projects/{other}", params={"format": "json"})) == []
    assert http.get(moved).status_code == 404


def test_bad_input_is_a_clear_4xx_and_leaves_nothing(
    http: httpx.Client, project: str, server: LiveServer
) -> None:
    assert http.get("/data/services/import").status_code == 405
    cut = (TS / "1.dcm").read_bytes()[:200]
    r = post_import(http, cut, "application/dicom", PROJECT_ID=project)
    assert r.status_code == 400 and "DICOM" in r.text and r.headers["content-type"].startswith("text/plain")
    r = post_import(
        http, zip_of(TESTDATA / "dcm_qa_nih" / "20180918GE" / "mr_0004", "x/")[:1000], dest="/prearchive"
    )
    assert r.status_code == 400
    readme = io.BytesIO()
    with zipfile.ZipFile(readme, "w") as zf:
        zf.writestr("README.txt", "not dicom")
        zf.writestr("../../evil.dcm", (TS / "1.dcm").read_bytes())
    r = post_import(http, readme.getvalue(), dest=f"/prearchive/projects/{project}")
    assert r.status_code in (200, 400), r.text
    assert post_import(http, zip_of(TS), PROJECT_ID="NOPE_NOT_HERE").status_code == 404
    one = (TS / "1.dcm").read_bytes()  # a small DICOM file: the project is checked after reading it
    assert post_import(http, one, "application/dicom", PROJECT_ID="NOPE_NOT_HERE").status_code == 404
    assert post_import(http, zip_of(TS), dest="/archive").status_code == 400
    r = post_import(http, zip_of(TS), **{"import-handler": "no-such"})
    assert r.status_code == 404
    assert (
        http.post("/data/services/archive", params={"src": "/prearchive/projects/X/1/2"}).status_code == 404
    )
    assert not list((server.data / "tmp").rglob(".stage-*.part")), "no staged leftovers"
    assert not (server.data.parent / "evil.dcm").exists()


def test_unassigned_and_header_identification(http: httpx.Client, project: str) -> None:
    work = Path(f"/tmp/xnatd-ident-{uuid.uuid4().hex[:6]}")
    files = copy_study(dicom_files(TS)[:2], work, "IDENT")
    r = post_import(http, files[0].read_bytes(), "application/dicom")
    assert r.status_code == 200 and r.text.strip().startswith("/data/prearchive/projects/Unassigned/")
    unassigned = rows(http.get("/data/prearchive/projects/Unassigned", params={"format": "json"}))
    assert any(x["name"] == "IDENT" and x["subject"] == "IDENT_Copy" for x in unassigned)
    r = http.post("/data/services/archive", params={"src": r.text.strip()})
    assert r.status_code == 400 and "Unassigned" in r.text


def test_scan_snapshots_are_made_when_first_fetched(http: httpx.Client, project: str) -> None:
    """Archiving leaves pictures out (XNAT 1.8 makes them on request); the first GET makes both."""
    exp_uri = post_import(http, zip_of(CT), dest=f"/archive/projects/{project}").text.strip()
    labels = {r["label"] for r in rows(http.get(f"{exp_uri}/scans/201/resources", params={"format": "json"}))}
    assert labels == {"DICOM"}
    base = f"{exp_uri}/scans/201/resources/SNAPSHOTS/files"
    assert http.get(f"{base}/201_qc_x.png").status_code == 404  # only the two picture names are made
    assert http.get(f"{exp_uri}/scans/100/resources/SNAPSHOTS/files/201_qc_t.png").status_code == 404
    thumb = http.get(f"{base}/201_qc_t.png")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert thumb.content.startswith(b"\x89PNG")
    listed = {f["Name"]: f for f in rows(http.get(base, params={"format": "json"}))}
    assert set(listed) == {"201_qc.png", "201_qc_t.png"}
    assert int(listed["201_qc_t.png"]["Size"]) == len(thumb.content)
    full = http.get(f"{base}/201_qc.png")
    assert full.status_code == 200 and len(full.content) > len(thumb.content)
    assert http.get(f"{exp_uri}/scans/201/resources/SNAPSHOTS/files/201_qc_t.png").content == thumb.content


def test_code_11_archives_and_new_scans_take_the_projects_scan_types(
    http: httpx.Client, project: str
) -> None:
    """Prearchive code 11 (XNAT's TestProjectURIs sets it): XNAT archives an upload when it ends for
    any code of 4 or more, so an upload with no ``dest`` is archived. The archive types each new scan
    as XNAT's scan type mapping does: the type the project's scans of that series description have
    (``ax_asc_35sl`` here, typed by hand on an older session), else the description."""
    assert http.put(f"/data/projects/{project}/prearchive_code/11").status_code == 200
    old = f"/data/projects/{project}/subjects/S0/experiments/OLD"
    assert http.put(old, params={"xsiType": "xnat:mrSessionData"}).status_code == 201
    typed = {"xsiType": "xnat:mrScanData", "series_description": "AX ASC 35SL", "type": "BOLD_ASC"}
    assert http.put(f"{old}/scans/1", params=typed).status_code == 200
    r = post_import(http, zip_of(TS), PROJECT_ID=project, SUBJECT_ID="S", EXPT_LABEL="NEW")
    assert r.status_code == 200 and "/archive/" in r.text, r.text
    exp = f"/data/projects/{project}/experiments/NEW"
    assert {s.get("type") for s in rows(http.get(f"{exp}/scans", params={"format": "json"}))} == {"BOLD_ASC"}
    assert rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"})) == []
    # where the project has no such scan, the description is the type (as before)
    other = f"P{uuid.uuid4().hex[:8]}"
    assert http.put(f"/data/projects/{other}").status_code == 200
    r = post_import(http, zip_of(TS), dest=f"/archive/projects/{other}/subjects/S/experiments/NEW")
    assert r.status_code == 200, r.text
    scans = rows(http.get(f"/data/projects/{other}/experiments/NEW/scans", params={"format": "json"}))
    assert {s.get("type") for s in scans} == {"ax_asc_35sl"}
