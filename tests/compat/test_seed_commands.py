"""Every curl command of the seed documents (shared/seeds/*.txt), sent by the real curl binary with the
host replaced by the live server, then read back through the API.

The DICOM import / prearchive / archive commands of seed 000 and 003 (`/data/services/import`,
`?action=build|commit`, `/data/services/archive`) belong to a later issue and are not here.
Seed 002 is an older copy of seed 001 with the URLs stripped; its commands are the ones of seed 001.
Seed 003 writes its URLs unquoted in a shell (where `&` would end the command); they are sent quoted.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest
import pyxnat
import xnat

from tests.compat.helpers import (
    ADMIN,
    CurlResult,
    curl,
    describe,
    file_names,
    item_children,
    item_fields,
    looks_like_html,
    rows,
    zip_members,
)
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

U = "admin:admin"
P, S, E = "PTV000", "Haofei01", "Haofei01_MR1"
EXP = f"data/projects/{P}/subjects/{S}/experiments/{E}"
ARC_EXP = f"data/archive/projects/{P}/subjects/{S}/experiments/{E}"
DICOM_FILES = {
    "1.3.6.1.4.1.14301.53.4.1079983.1-4-134-4qu0ab.dcm": b"fake slice 134 " + bytes(range(200)),
    "1.3.6.1.4.1.14301.53.4.1079983.1-4-34-4qtzjm.dcm": b"fake slice 34 " + bytes(range(100, 250)),
}
ZIP_PREFIX = f"{E}/scans/4-Ax_3D_T1/resources"


def ok(res: CurlResult, *codes: int) -> None:
    assert res.status in (codes or (200, 201)), str(res)
    assert not looks_like_html(res.body), str(res)


def xml_rows(body: bytes) -> list[dict[str, str]]:
    """Rows of XNAT's XML table (`<ResultSet><results><columns>...<rows><row><cell>`)."""
    root = ET.fromstring(body)
    local = {el: el.tag.rsplit("}", 1)[-1] for el in root.iter()}
    cols = [el.text or "" for el in root.iter() if local[el] == "column"]
    assert cols, f"no columns in {body[:300]!r}"
    out = []
    for row in (el for el in root.iter() if local[el] == "row"):
        cells = [c.text or "" for c in row if local[c] == "cell"]
        out.append(dict(zip(cols, cells, strict=True)))
    return out


@pytest.fixture(scope="module")
def haofei(server: LiveServer) -> Iterator[str]:
    """The data seed 001 talks about: PTV000 / Haofei01 / Haofei01_MR1 / scan 4 `Ax 3D T1` with DICOM files.

    Built through the API (the seed's data came from a DICOM upload, which is a later issue); the DICOM
    bytes are stand-ins, the archive does not parse them here.
    """
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=120) as c:
        for method, path, params in [
            ("PUT", f"/data/projects/{P}", {"xsiType": "xnat:projectData", "name": P}),
            ("PUT", f"/data/projects/{P}/subjects/{S}", {"xsiType": "xnat:subjectData"}),
            ("PUT", f"/{EXP}", {"xsiType": "xnat:mrSessionData"}),
            ("PUT", f"/{EXP}/scans/4", {"xsiType": "xnat:mrScanData", "type": "Ax 3D T1"}),
        ]:
            r = c.request(method, path, params=params)
            assert r.status_code in (200, 201), describe(r)
        for name, data in DICOM_FILES.items():
            r = c.put(
                f"/{EXP}/scans/4/resources/DICOM/files/{name}",
                params={"format": "DICOM", "content": "RAW"},
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert r.status_code in (200, 201), describe(r)
        yield server.url


# --- seed 001 / 002, section 1: basic operations -------------------------------------------------------


def test_list_projects_default_json(haofei: str) -> None:
    res = curl("-u", U, f"{haofei}/data/archive/projects")
    ok(res, 200)
    doc = res.json()
    result = doc["ResultSet"]["Result"]
    row = next(r for r in result if r["ID"] == P)
    for key in ("pi_firstname", "secondary_ID", "pi_lastname", "name", "description", "ID", "URI"):
        assert key in row, f"{key} missing from {row}"
    assert row["URI"] == f"/data/projects/{P}"
    assert row["name"] == P
    assert doc["ResultSet"]["totalRecords"] == str(len(result))


def test_list_projects_xml_trailing_slash(haofei: str, tmp_path: Path) -> None:
    res = curl("-u", U, f"{haofei}/data/archive/projects/?format=xml", "-o", "projects.xml", cwd=tmp_path)
    ok(res, 200)
    assert (tmp_path / "projects.xml").exists()
    assert "xml" in res.headers.get("content-type", ""), str(res)
    table = xml_rows(res.body)
    assert any(r.get("ID") == P for r in table), table
    # the same without the trailing slash
    res = curl("-u", U, f"{haofei}/data/archive/projects?format=xml")
    ok(res, 200)
    assert any(r.get("ID") == P for r in xml_rows(res.body)), str(res)


def test_list_scan_files_xml(haofei: str, tmp_path: Path) -> None:
    res = curl("-u", U, f"{haofei}/{EXP}/scans/4/files?format=xml", "-o", "filelist.xml", cwd=tmp_path)
    ok(res, 200)
    table = xml_rows(res.body)
    dicom = [r for r in table if r.get("collection") == "DICOM"]
    assert sorted(r["Name"] for r in dicom) == sorted(DICOM_FILES), table
    for r in dicom:
        assert r["Size"] == str(len(DICOM_FILES[r["Name"]])), r


def test_download_scan_files_zip(haofei: str, tmp_path: Path) -> None:
    res = curl("-u", U, f"{haofei}/{ARC_EXP}/scans/4/files?format=zip", "-o", "dicomfiles.zip", cwd=tmp_path)
    ok(res, 200)
    members = zip_members(res.body)
    for name, data in DICOM_FILES.items():
        assert members.get(f"{ZIP_PREFIX}/DICOM/files/{name}") == data, sorted(members)
    assert all(m.startswith(f"{ZIP_PREFIX}/") for m in members), sorted(members)


def test_download_scan_dicom_resource_zip(haofei: str, tmp_path: Path) -> None:
    res = curl(
        "-u",
        U,
        f"{haofei}/{ARC_EXP}/scans/4/resources/DICOM/files?format=zip",
        "-o",
        "dicomfiles.zip",
        cwd=tmp_path,
    )
    ok(res, 200)
    assert zip_members(res.body) == {f"{ZIP_PREFIX}/DICOM/files/{n}": d for n, d in DICOM_FILES.items()}


def test_upload_into_scan_subfolder(haofei: str, tmp_path: Path, http: httpx.Client) -> None:
    content = b"<ResultSet>a file list saved earlier</ResultSet>\n"
    (tmp_path / "filelist").write_bytes(content)
    res = curl(
        "-u", U, "-X", "PUT", f"{haofei}/{ARC_EXP}/scans/4/ABC/files", "-F", "file=@filelist", cwd=tmp_path
    )
    ok(res)
    labels = [r["label"] for r in rows(http.get(f"/{EXP}/scans/4/resources", params={"format": "json"}))]
    assert "ABC" in labels
    listing = file_names(http, f"/{EXP}/scans/4/resources/ABC/files")
    assert list(listing) == ["filelist"], listing
    r = http.get(f"/{EXP}/scans/4/resources/ABC/files/filelist")
    assert r.status_code == 200 and r.content == content, describe(r)


def test_create_folder(haofei: str, http: httpx.Client) -> None:
    res = curl("-u", U, "-X", "PUT", f"{haofei}/{ARC_EXP}/scans/4/test")
    ok(res)
    resources = rows(http.get(f"/{EXP}/scans/4/resources", params={"format": "json"}))
    row = next((r for r in resources if r["label"] == "test"), None)
    assert row is not None, resources
    assert str(row.get("file_count", "0")) in ("0", ""), row
    assert file_names(http, f"/{EXP}/scans/4/resources/test/files") == {}


def test_upload_nifti_and_json_into_new_resource(haofei: str, tmp_path: Path, http: httpx.Client) -> None:
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    nii_name = "files_Ax_3D_T1_20140604082236_4.nii"
    json_name = "files_Ax_3D_T1_20140604082236_4.json"
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / nii_name)
    (tmp_path / json_name).write_text('{"SeriesDescription": "Ax 3D T1", "EchoTime": 0.0032}\n')
    for name in (nii_name, json_name):
        res = curl(
            "-u",
            U,
            "-X",
            "PUT",
            f"{haofei}/{ARC_EXP}/scans/4/resources/unikey/files",
            "-F",
            f"file=@{name}",
            cwd=tmp_path,
        )
        ok(res)
    listing = file_names(http, f"/{EXP}/scans/4/resources/unikey/files")
    assert sorted(listing) == sorted([nii_name, json_name]), listing
    r = http.get(f"/{EXP}/scans/4/resources/unikey/files/{nii_name}")
    assert r.status_code == 200, describe(r)
    assert r.content == (tmp_path / nii_name).read_bytes()
    img = nib.Nifti1Image.from_bytes(r.content)
    assert np.array_equal(np.asarray(img.dataobj), data)
    r = http.get(f"/{EXP}/scans/4/resources/unikey/files/{json_name}")
    assert r.content == (tmp_path / json_name).read_bytes(), describe(r)


# --- seed 001 / 002, section 4: cookies -----------------------------------------------------------------


def test_jsession_post_then_cookie(haofei: str, tmp_path: Path) -> None:
    res = curl("-u", U, "-X", "POST", f"{haofei}/data/JSESSION")
    ok(res, 200)
    sid = res.text.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", sid), f"not a bare session id: {res}"

    listing = curl("--cookie", f"JSESSIONID={sid}", f"{haofei}/data/projects")
    ok(listing, 200)
    assert any(r["ID"] == P for r in listing.json()["ResultSet"]["Result"]), str(listing)

    z = curl(
        "--cookie",
        f"JSESSIONID={sid}",
        f"{haofei}/{ARC_EXP}/scans/4/resources/DICOM/files?format=zip",
        "-o",
        "dicomfiles.zip",
        cwd=tmp_path,
    )
    ok(z, 200)
    assert set(zip_members(z.body)) == {f"{ZIP_PREFIX}/DICOM/files/{n}" for n in DICOM_FILES}

    bogus = curl("--cookie", "JSESSIONID=628EE7A19C8B9CEF7AE46E3744F6CXX", f"{haofei}/data/projects")
    assert bogus.status == 401, str(bogus)


def test_jsession_get_trailing_slash(haofei: str) -> None:
    res = curl("-u", U, f"{haofei}/data/JSESSION/")
    ok(res, 200)
    sid = res.text.strip()
    assert sid and "\n" not in sid and " " not in sid, str(res)
    listing = curl("--cookie", f"JSESSIONID={sid}", f"{haofei}/data/projects")
    ok(listing, 200)
    assert any(r["ID"] == P for r in listing.json()["ResultSet"]["Result"]), str(listing)


# --- seed 001 / 002, section 5: alias tokens ------------------------------------------------------------


def test_token_issue_and_use(haofei: str) -> None:
    res = curl("-u", U, f"{haofei}/data/services/tokens/issue")
    ok(res, 200)
    token = res.json()
    for key in ("alias", "secret", "xdatUserId", "estimatedExpirationTime", "enabled"):
        assert key in token, f"{key} missing: {token}"
    assert token["xdatUserId"] == "admin"
    listing = curl("-u", f"{token['alias']}:{token['secret']}", f"{haofei}/data/archive/projects")
    ok(listing, 200)
    assert any(r["ID"] == P for r in listing.json()["ResultSet"]["Result"]), str(listing)
    wrong = curl("-u", f"{token['alias']}:not-the-secret", f"{haofei}/data/archive/projects")
    assert wrong.status == 401, str(wrong)


# --- seed 003: setting parameters via REST (/REST prefix) -----------------------------------------------


def test_ccf_subject_experiment_scan_parameters(server: LiveServer, http: httpx.Client) -> None:
    base = server.url
    r = http.put("/data/projects/CCF_TEST", params={"xsiType": "xnat:projectData", "name": "CCF_TEST"})
    assert r.status_code in (200, 201), describe(r)

    res = curl(
        "-u",
        U,
        f"{base}/REST/projects/CCF_TEST/subjects/sub1?xsiType=xnat:subjectData&gender=female",
        "-X",
        "PUT",
    )
    ok(res, 201)
    assert re.fullmatch(r"XNAT_S\d{5}", res.text.strip()), str(res)
    subject_id = res.text.strip()
    res = curl(
        "-u", U, f"{base}/REST/projects/CCF_TEST/subjects/sub1?xsiType=xnat:subjectData&age=25", "-X", "PUT"
    )
    ok(res, 200)

    subj = http.get("/data/projects/CCF_TEST/subjects/sub1", params={"format": "json"})
    assert item_fields(subj)["ID"] == subject_id
    demo = item_children(subj, "demographics")
    assert len(demo) == 1, subj.text
    assert demo[0].get("gender") == "female", demo
    assert str(demo[0].get("age")) == "25", demo
    listed = rows(
        http.get(
            "/data/projects/CCF_TEST/subjects", params={"format": "json", "columns": "ID,label,gender,age"}
        )
    )
    assert [(x["label"], x["gender"], x["age"]) for x in listed] == [("sub1", "female", "25")], listed

    res = curl(
        "-u",
        U,
        f"{base}/REST/projects/CCF_TEST/subjects/sub1/experiments/session1?xsiType=xnat:mrSessionData&scanner=SIEMENS",
        "-X",
        "PUT",
    )
    ok(res, 201)
    assert re.fullmatch(r"XNAT_E\d{5}", res.text.strip()), str(res)
    exp = item_fields(
        http.get("/data/projects/CCF_TEST/subjects/sub1/experiments/session1", params={"format": "json"})
    )
    assert exp["scanner"] == "SIEMENS", exp
    assert exp["ID"] == res.text.strip()
    assert exp["label"] == "session1"

    scan_url = f"{base}/REST/projects/CCF_TEST/subjects/sub1/experiments/session1/scans/1"
    res = curl("-u", U, f"{scan_url}?xsiType=xnat:mrScanData&xnat:mrScanData/type=T1w", "-X", "PUT")
    ok(res)
    res = curl(
        "-u",
        U,
        f"{scan_url}?xsiType=xnat:mrScanData&xnat:mrScanData/series_description=Structural",
        "-X",
        "PUT",
    )
    ok(res)
    scan = item_fields(
        http.get(
            "/data/projects/CCF_TEST/subjects/sub1/experiments/session1/scans/1", params={"format": "json"}
        )
    )
    assert scan["type"] == "T1w", scan
    assert scan["series_description"] == "Structural", scan
    listed_scans = rows(
        http.get(
            "/data/projects/CCF_TEST/subjects/sub1/experiments/session1/scans",
            params={"format": "json", "columns": "ID,type,series_description,xsiType"},
        )
    )
    assert [(x["ID"], x["type"], x["series_description"], x["xsiType"]) for x in listed_scans] == [
        ("1", "T1w", "Structural", "xnat:mrScanData")
    ], listed_scans


# --- seed 000: /xnat context path, PDF into a session -------------------------------------------------


def test_xnat_prefix_pdf_upload(server: LiveServer, tmp_path: Path, http: httpx.Client) -> None:
    base = f"{server.url}/xnat"
    project, subject, session = "ADCSFlor", "P0001", "P0001_01"
    with httpx.Client(base_url=base, auth=ADMIN, timeout=120) as c:
        for path, xsi in [
            (f"/data/archive/projects/{project}", "xnat:projectData"),
            (f"/data/archive/projects/{project}/subjects/{subject}", "xnat:subjectData"),
            (
                f"/data/archive/projects/{project}/subjects/{subject}/experiments/{session}",
                "xnat:mrSessionData",
            ),
        ]:
            r = c.put(path, params={"xsiType": xsi})
            assert r.status_code in (200, 201), describe(r)

    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" + bytes(
        range(256)
    )
    u = "report.pdf"
    (tmp_path / u).write_bytes(pdf)
    # args="-X PUT -u $USER:$PASSWORD"; curl $args "$url" --data-binary @$u
    exp_path = f"data/archive/projects/{project}/subjects/{subject}/experiments/{session}"
    url = f"{base}/{exp_path}/files/{u}?inbody=true&format=PDF"
    res = curl("-X", "PUT", "-u", U, url, "--data-binary", f"@{u}", cwd=tmp_path)
    ok(res)

    for prefix in (base, server.url):
        r = http.get(
            f"{prefix}/data/archive/projects/{project}/subjects/{subject}/experiments/{session}/files/{u}"
        )
        assert r.status_code == 200, describe(r)
        assert r.content == pdf, (
            "the body sent with --data-binary (form content type) must be stored verbatim"
        )
    listing = rows(
        http.get(
            f"/data/projects/{project}/subjects/{subject}/experiments/{session}/files",
            params={"format": "json"},
        )
    )
    row = next((x for x in listing if x["Name"] == u), None)
    assert row is not None, listing
    assert row["file_format"] == "PDF", row
    assert row["Size"] == str(len(pdf)), row

    projects = curl("-u", U, f"{base}/data/archive/projects")
    ok(projects, 200)
    assert any(x["ID"] == project for x in projects.json()["ResultSet"]["Result"]), str(projects)


def test_clients_under_xnat_context_path(server: LiveServer, http: httpx.Client, tmp_path: Path) -> None:
    """Seed 000 addresses the server as `http://HOST:PORT/xnat`; both clients work from that base too."""
    pid = "CTXPATH"
    for path, xsi in [
        (f"/xnat/data/projects/{pid}", "xnat:projectData"),
        (f"/xnat/data/projects/{pid}/subjects/S1", "xnat:subjectData"),
        (f"/xnat/data/projects/{pid}/subjects/S1/experiments/E1", "xnat:mrSessionData"),
    ]:
        r = http.put(path, params={"xsiType": xsi})
        assert r.status_code in (200, 201), describe(r)
    r = http.put(
        f"/xnat/data/projects/{pid}/subjects/S1/experiments/E1/resources/R/files/f.txt",
        content=b"via /xnat",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code in (200, 201), describe(r)

    session = xnat.connect(f"{server.url}/xnat", user="admin", password="admin", loglevel="ERROR")
    try:
        res = session.projects[pid].subjects["S1"].experiments["E1"].resources["R"]
        out = tmp_path / "x.txt"
        res.files["f.txt"].download(out, verbose=False)
        assert out.read_bytes() == b"via /xnat"
    finally:
        session.disconnect()

    interface = pyxnat.Interface(server=f"{server.url}/xnat", user="admin", password="admin")
    try:
        assert interface._get_entry_point() == "/data"
        f = interface.select(f"/projects/{pid}/subjects/S1/experiments/E1/resources/R").file("f.txt")
        got = tmp_path / "y.txt"
        f.get(str(got))
        assert got.read_bytes() == b"via /xnat"
    finally:
        interface.disconnect()
