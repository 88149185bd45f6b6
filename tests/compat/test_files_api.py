"""Files and resources details from shared/reference/xnat-api.md section 2 that curl users rely on."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import httpx
import pytest

from tests.compat.helpers import create_experiment, create_subject, describe, file_names, rows

pytestmark = pytest.mark.slow

NewId = Callable[[str], str]
FILES = ["sub/a.txt", "sub/b.txt", "sub/deeper/c.txt", "top.txt"]


@pytest.fixture
def res(http: httpx.Client, project: str) -> str:
    create_subject(http, project, "S1")
    create_experiment(http, project, "S1", "E1")
    base = f"/data/projects/{project}/subjects/S1/experiments/E1/resources/R"
    for f in FILES:
        r = http.put(
            f"{base}/files/{f}", content=f.encode(), headers={"Content-Type": "application/octet-stream"}
        )
        assert r.status_code in (200, 201), describe(r)
    return base


def test_file_headers(http: httpx.Client, res: str) -> None:
    r = http.head(f"{res}/files/sub/a.txt")
    assert r.status_code == 200, describe(r)
    assert r.headers.get("content-length") == str(len(b"sub/a.txt"))
    assert r.headers.get("last-modified"), "pyxnat's last_modified() needs Last-Modified"
    assert r.headers.get("content-type", "").startswith("text/plain"), "type from the extension"


def test_folder_listing(http: httpx.Client, res: str) -> None:
    """`.../files/sub/` lists that folder."""
    r = http.get(f"{res}/files/sub/", params={"format": "json"})
    assert r.status_code == 200, describe(r)
    names = sorted(str(x["URI"]).split("/files/", 1)[1] for x in rows(r))
    assert names == ["sub/a.txt", "sub/b.txt", "sub/deeper/c.txt"], names


def test_accept_not_found(http: httpx.Client, res: str) -> None:
    r = http.get(f"{res}/files/missing.txt", params={"accept-not-found": "true"})
    assert r.status_code == 204, describe(r)


def test_delete_folder_prefix_and_resource_by_id(http: httpx.Client, res: str) -> None:
    r = http.delete(f"{res}/files/sub")
    assert r.status_code == 200, describe(r)
    assert list(file_names(http, f"{res}/files")) == ["top.txt"]
    parent = res.rsplit("/resources/", 1)[0]
    listing = rows(http.get(f"{parent}/resources", params={"format": "json"}))
    rid = next(x["xnat_abstractresource_id"] for x in listing if x["label"] == "R")
    r = http.get(f"{parent}/resources/{rid}/files/top.txt")
    assert r.status_code == 200 and r.content == b"top.txt", describe(r)
    r = http.delete(f"{parent}/resources/{rid}")
    assert r.status_code == 200, describe(r)
    assert rows(http.get(f"{parent}/resources", params={"format": "json"})) == []
    assert http.get(f"{res}/files/top.txt").status_code == 404


def test_file_attributes_from_upload(http: httpx.Client, res: str) -> None:
    r = http.put(
        f"{res}/files/tagged.nii",
        params={"format": "NIFTI", "content": "T1_RAW", "tags": "a,b"},
        content=b"nifti-ish",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code in (200, 201), describe(r)
    row = file_names(http, f"{res}/files")["tagged.nii"]
    assert (row["file_format"], row["file_content"]) == ("NIFTI", "T1_RAW"), row
    assert set(str(row["file_tags"]).split(",")) >= {"a", "b"}, row
    filtered = rows(http.get(f"{res}/files", params={"format": "json", "file_format": "NIFTI"}))
    assert [x["Name"] for x in filtered] == ["tagged.nii"], filtered


def test_recursive_false_lists_a_folders_own_files(http: httpx.Client, res: str) -> None:
    """``recursive=false`` leaves out the files of sub-folders (XNAT's REST test: ``sub/`` lists 2
    files, 1 with ``recursive=false``); at the resource's top it lists the top folder's files."""

    def listed(path: str, **params: str) -> list[str]:
        r = http.get(f"{res}/{path}", params={"format": "json", **params})
        return sorted(str(x["URI"]).split("/files/", 1)[1] for x in rows(r))

    assert listed("files/sub/") == ["sub/a.txt", "sub/b.txt", "sub/deeper/c.txt"]
    assert listed("files/sub/", recursive="false") == ["sub/a.txt", "sub/b.txt"]
    assert listed("files/sub/deeper/", recursive="false") == ["sub/deeper/c.txt"]
    assert listed("files", recursive="false") == ["top.txt"]
    assert listed("files", recursive="true") == sorted(FILES)
    r = http.get(f"{res}/files/sub/", params={"format": "zip", "recursive": "false"})
    assert r.status_code == 200, describe(r)
    names = sorted(n.split("/files/", 1)[1] for n in zipfile.ZipFile(io.BytesIO(r.content)).namelist())
    assert names == ["sub/a.txt", "sub/b.txt"], "the zip holds what the listing lists"


def test_file_stats_gives_each_resources_count_and_size(http: httpx.Client, res: str) -> None:
    """``file_stats=true`` (XNAT's CatalogResourceList): the same rows, each with ``file_count`` and
    ``file_size``; ``totalRecords`` counts the resources, with or without it."""
    http.put(f"{res.rsplit('/', 1)[0]}/EMPTY").raise_for_status()
    parent = res.rsplit("/resources/", 1)[0] + "/resources"
    for flag in ("true", "false", None):
        params = {"format": "json"} | ({"file_stats": flag} if flag else {})
        r = http.get(parent, params=params)
        listing = {x["label"]: x for x in rows(r)}
        assert r.json()["ResultSet"]["totalRecords"] == "2", describe(r)
        size = sum(len(f.encode()) for f in FILES)
        assert (str(listing["R"]["file_count"]), str(listing["R"]["file_size"])) == ("4", str(size))
        assert (str(listing["EMPTY"]["file_count"]), str(listing["EMPTY"]["file_size"])) == ("0", "0")
