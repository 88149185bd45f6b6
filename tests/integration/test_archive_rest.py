"""The archive tree over HTTP against a real server: what the compat suites do not already drive."""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("archive") / "data") as srv:
        yield srv


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def make_session(http: httpx.Client, xsi_type: str = "xnat:mrSessionData") -> tuple[str, str, str, str]:
    p, s, e = uid("P"), uid("S"), uid("E")
    assert http.put(f"/data/projects/{p}").status_code == 200
    assert http.put(f"/data/projects/{p}/subjects/{s}").status_code == 201
    r = http.put(f"/data/projects/{p}/subjects/{s}/experiments/{e}", params={"xsiType": xsi_type})
    assert r.status_code == 201, r.text
    return p, s, e, f"/data/projects/{p}/subjects/{s}/experiments/{e}"


def test_post_project_xml_creates_it_and_refuses_a_second_time(http: httpx.Client) -> None:
    pid = uid("X")
    doc = (
        f'<xnat:Project ID="{pid}" secondary_ID="sec" xmlns:xnat="http://nrg.wustl.edu/xnat">'
        "<xnat:name>From XML</xnat:name><xnat:description>posted</xnat:description></xnat:Project>"
    )
    r = http.post("/data/projects", content=doc, headers={"Content-Type": "text/xml"})
    assert r.status_code == 200 and r.text.endswith(f"/data/projects/{pid}")
    assert r.headers["Location"] == r.text
    rows = http.get("/data/projects", params={"format": "json", "ID": pid}).json()["ResultSet"]["Result"]
    assert rows[0]["name"] == "From XML" and rows[0]["description"] == "posted"
    again = http.post("/data/projects", content=doc, headers={"Content-Type": "text/xml"})
    assert again.status_code == 409 and "already exists" in again.text


def test_global_experiment_listing_filters_by_base_type(http: httpx.Client) -> None:
    _, _, e_mr, _ = make_session(http)
    _, _, e_ct, _ = make_session(http, "xnat:ctSessionData")
    rows = http.get(
        "/data/experiments",
        params={"xsiType": "xnat:imageSessionData", "format": "json", "columns": "ID,label"},
    ).json()["ResultSet"]["Result"]
    labels = {r["label"] for r in rows}
    assert {e_mr, e_ct} <= labels
    only_ct = http.get("/data/experiments", params={"xsiType": "xnat:ctSessionData", "format": "json"}).json()
    assert e_mr not in {r["label"] for r in only_ct["ResultSet"]["Result"]}


def test_listing_formats_paging_sorting_and_xpath_filters(http: httpx.Client) -> None:
    p = uid("P")
    http.put(f"/data/projects/{p}")
    for i in range(5):
        r = http.put(f"/data/projects/{p}/subjects/S{i}", params={"gender": "female" if i % 2 else "male"})
        assert r.status_code == 201
    base = f"/data/projects/{p}/subjects"
    page = http.get(
        base, params={"format": "json", "sortBy": "label", "sortOrder": "DESC", "offset": 1, "limit": 2}
    )
    result = page.json()["ResultSet"]
    assert [r["label"] for r in result["Result"]] == ["S3", "S2"]
    assert "totalRecords" not in result
    females = http.get(base, params={"format": "csv", "columns": "label,gender", "gender": "female"}).text
    rows = list(csv.DictReader(io.StringIO(females)))
    assert sorted(r["label"] for r in rows) == ["S1", "S3"] and {r["gender"] for r in rows} == {"female"}
    xml = http.get(base, params={"format": "xml"}).text
    assert 'totalRecords="5"' in xml and "<column>label</column>" in xml
    assert '<table class="x_rs_t">' in http.get(base, params={"format": "html"}).text


def test_sharing_shows_the_subject_under_its_shared_label_and_unsharing_hides_it(http: httpx.Client) -> None:
    p, s, _, _ = make_session(http)
    p2 = uid("Q")
    http.put(f"/data/projects/{p2}")
    r = http.put(f"/data/projects/{p}/subjects/{s}/projects/{p2}", params={"label": "shared_as"})
    assert r.status_code == 200, r.text
    rows = http.get(f"/data/projects/{p2}/subjects", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert [(r["label"], r["project"]) for r in rows] == [("shared_as", p2)]
    assert http.get(f"/data/projects/{p2}/subjects/shared_as", params={"format": "json"}).status_code == 200
    again = http.put(f"/data/projects/{p}/subjects/{s}/projects/{p2}")
    assert again.status_code == 409 and "Already assigned" in again.text
    assert http.delete(f"/data/projects/{p}/subjects/{s}/projects/{p2}").status_code == 200
    assert (
        http.get(f"/data/projects/{p2}/subjects", params={"format": "json"}).json()["ResultSet"]["Result"]
        == []
    )


def test_rename_to_a_used_label_is_a_conflict(http: httpx.Client) -> None:
    p, s, _, _ = make_session(http)
    http.put(f"/data/projects/{p}/subjects/other")
    r = http.put(f"/data/projects/{p}/subjects/{s}", params={"label": "other"})
    assert r.status_code == 409 and r.text == "Specified label is already in use."
    assert http.put(f"/data/projects/{p}/subjects/{s}", params={"label": "renamed"}).status_code == 200
    assert http.get(f"/data/projects/{p}/subjects/renamed", params={"format": "json"}).status_code == 200


def test_typed_objects_need_a_type_and_keep_it(http: httpx.Client) -> None:
    p, s, _, exp = make_session(http)
    r = http.put(f"/data/projects/{p}/subjects/{s}/experiments/untyped")
    assert r.status_code == 417 and "Need PUT Contents" in r.text
    assert http.put(f"{exp}/scans/1", params={"xsiType": "xnat:mrScanData"}).status_code == 200
    clash = http.put(f"{exp}/scans/1", params={"xsiType": "xnat:ctScanData"})
    assert clash.status_code == 409
    abstract = http.put(f"{exp}/scans/2", params={"xsiType": "xnat:imageScanData"})
    assert abstract.status_code == 400


def test_resource_create_twice_is_a_conflict(http: httpx.Client) -> None:
    _, _, _, exp = make_session(http)
    assert http.put(f"{exp}/resources/NOTES", params={"format": "TXT", "content": "notes"}).status_code == 200
    again = http.put(f"{exp}/resources/NOTES")
    assert again.status_code == 409 and again.text == "Specified resource already exists."
    rows = http.get(f"{exp}/resources", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert [(r["label"], r["format"], r["content"]) for r in rows] == [("NOTES", "TXT", "notes")]


def test_overwrite_rules_and_digests(http: httpx.Client) -> None:
    _, _, _, exp = make_session(http)
    url = f"{exp}/resources/R/files/a.txt"
    assert http.put(url, content=b"one", params={"inbody": "true"}).status_code == 200
    dup = http.put(url, content=b"two", params={"inbody": "true"})
    assert dup.status_code == 409 and "overwrite=true" in dup.text
    assert http.get(url).content == b"one"
    assert http.put(url, content=b"two", params={"inbody": "true", "overwrite": "true"}).status_code == 200
    assert http.get(url).content == b"two"
    rows = http.get(f"{exp}/resources/R/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert rows[0]["digest"] == hashlib.md5(b"two").hexdigest()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_extract_tar_gz_then_delete_a_folder(http: httpx.Client, server: LiveServer) -> None:
    p, _, e, exp = make_session(http)
    body = _tar_gz({"d1/a.dcm": b"a", "d1/b.dcm": b"b", "top.txt": b"t"})
    r = http.put(
        f"{exp}/resources/IN/files/up.tar.gz", content=body, params={"extract": "true", "inbody": "true"}
    )
    assert r.status_code == 200, r.text
    names = {
        row["Name"]
        for row in http.get(f"{exp}/resources/IN/files", params={"format": "json"}).json()["ResultSet"][
            "Result"
        ]
    }
    assert names == {"a.dcm", "b.dcm", "top.txt"}
    assert http.delete(f"{exp}/resources/IN/files/d1").status_code == 200
    left = http.get(f"{exp}/resources/IN/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert [row["Name"] for row in left] == ["top.txt"]
    folder = server.data / "archive" / p / "arc001" / e / "RESOURCES" / "IN"
    assert (folder / "top.txt").read_bytes() == b"t" and not (folder / "d1").exists()
    assert http.delete(f"{exp}/resources/IN/files/d1").status_code == 404


def test_session_zip_with_all_and_tar_gz_download(http: httpx.Client) -> None:
    _, _, e, exp = make_session(http)
    http.put(f"{exp}/scans/4", params={"xsiType": "xnat:mrScanData", "type": "Ax 3D T1"})
    http.put(f"{exp}/scans/4/resources/DICOM/files/1.dcm", content=b"d", params={"inbody": "true"})
    http.put(f"{exp}/resources/TEST/files/1.txt", content=b"t", params={"inbody": "true"})
    session_only = zipfile.ZipFile(io.BytesIO(http.get(f"{exp}/files", params={"format": "zip"}).content))
    assert session_only.namelist() == [f"{e}/resources/TEST/files/1.txt"]
    everything = http.get(f"{exp}/files", params={"format": "zip", "all": "true"})
    assert everything.headers["content-disposition"] == f'attachment; filename="{e}.zip"'
    names = sorted(zipfile.ZipFile(io.BytesIO(everything.content)).namelist())
    assert names == [f"{e}/resources/TEST/files/1.txt", f"{e}/scans/4-Ax_3D_T1/resources/DICOM/files/1.dcm"]
    tgz = http.get(f"{exp}/scans/ALL/files", params={"format": "tar.gz"})
    with tarfile.open(fileobj=io.BytesIO(tgz.content), mode="r:gz") as tf:
        assert tf.getnames() == [f"{e}/scans/4-Ax_3D_T1/resources/DICOM/files/1.dcm"]


def test_head_gives_length_type_and_last_modified(http: httpx.Client) -> None:
    _, _, _, exp = make_session(http)
    http.put(f"{exp}/resources/R/files/notes.txt", content=b"hello", params={"inbody": "true"})
    head = http.head(f"{exp}/resources/R/files/notes.txt")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "5"
    assert head.headers["content-type"].startswith("text/plain")
    assert "last-modified" in head.headers


def test_delete_experiment_with_remove_files_clears_the_folder(
    http: httpx.Client, server: LiveServer
) -> None:
    p, _, e, exp = make_session(http)
    http.put(f"{exp}/resources/R/files/x.bin", content=b"x", params={"inbody": "true"})
    folder = server.data / "archive" / p / "arc001" / e
    assert folder.exists()
    assert http.delete(exp, params={"removeFiles": "true"}).status_code == 200
    assert not (folder / "RESOURCES" / "R").exists()
    assert http.get(exp, params={"format": "json"}).status_code == 404


def test_nothing_half_written_after_a_refused_extract(http: httpx.Client, server: LiveServer) -> None:
    _, _, _, exp = make_session(http)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.txt", b"fine")
        zf.writestr("../evil.txt", b"bad")
    r = http.put(
        f"{exp}/resources/Z/files/u.zip", content=buf.getvalue(), params={"extract": "true", "inbody": "true"}
    )
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain")
    assert http.get(f"{exp}/resources/Z/files", params={"format": "json"}).status_code in (200, 404)
    left = (server.data / "tmp").rglob("*")
    own = ("owner.lock", "placed.log")  # the live processes' own temporary folders: lock and journal
    assert [p for p in left if p.is_file() and not p.name.startswith(own)] == []
    assert not list(Path(server.data / "archive").rglob("good.txt"))


def test_listed_uris_of_odd_file_names_can_be_fetched(http: httpx.Client) -> None:
    _, _, _, exp = make_session(http)
    for name, quoted in (("hash#1.txt", "hash%231.txt"), ("q?.txt", "q%3F.txt"), ("50%.txt", "50%25.txt")):
        assert (
            http.put(
                f"{exp}/resources/R/files/{quoted}", content=name.encode(), params={"inbody": "true"}
            ).status_code
            == 200
        )
    rows = http.get(f"{exp}/resources/R/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert {r["Name"] for r in rows} == {"hash#1.txt", "q?.txt", "50%.txt"}
    for row in rows:
        got = http.get(row["URI"])
        assert got.status_code == 200 and got.content == row["Name"].encode()


def test_missing_accession_id_says_so_plainly(http: httpx.Client) -> None:
    r = http.get("/data/experiments/XNAT_E99999", params={"format": "json"})
    assert r.status_code == 404 and r.text == "Experiment XNAT_E99999 not found"
    label = http.get("/data/experiments/some_label", params={"format": "json"})
    assert label.status_code == 404 and "accession number" in label.text
