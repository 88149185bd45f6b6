"""Bad input gets a clear 4xx with a plain-text reason, writes nothing, and the server keeps serving."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.compat.helpers import (
    AUTH_REQUIRED_TEXT,
    assert_plain_error,
    create_experiment,
    create_subject,
    curl,
    describe,
    file_names,
    looks_like_html,
    make_zip,
    new_label,
    rows,
)
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

NewId = Callable[[str], str]


@pytest.fixture(autouse=True)
def still_serving(server: LiveServer) -> Iterator[None]:
    """After every bad request, the server still answers normal ones."""
    yield
    with httpx.Client(base_url=server.url, auth=("admin", "admin"), timeout=60) as c:
        r = c.get("/data/projects", params={"format": "json"})
        assert r.status_code == 200, f"server not serving after bad input: {describe(r)}"
        r = c.get("/xapi/siteConfig/buildInfo")
        assert r.status_code == 200, describe(r)


@pytest.fixture
def session_res(http: httpx.Client, project: str, new_id: NewId) -> str:
    """URL path of an experiment resource `IN` holding one file `kept.txt`."""
    subject = new_id("S")
    create_subject(http, project, subject)
    label = new_id("E")
    create_experiment(http, project, subject, label)
    base = f"/data/projects/{project}/subjects/{subject}/experiments/{label}/resources/IN"
    r = http.put(
        f"{base}/files/kept.txt", content=b"kept", headers={"Content-Type": "application/octet-stream"}
    )
    assert r.status_code in (200, 201), describe(r)
    return base


def _nothing_named(server: LiveServer, marker: str) -> None:
    """No file whose name contains `marker` exists anywhere under the test tree or in /tmp, /etc."""
    roots = [server.data.parent.parent]
    found = [p for root in roots for p in root.rglob(f"*{marker}*")]
    found += [p for d in (Path("/tmp"), Path("/etc")) for p in d.glob(f"*{marker}*")]
    assert not found, f"escaped write: {found}"


# --- labels ---------------------------------------------------------------------------------------------

BAD_LABELS = ["bad label!", "dot.ted", "semi;colon", "x<y>"]


@pytest.mark.parametrize("bad", BAD_LABELS)
def test_invalid_labels_rejected_with_417(http: httpx.Client, project: str, new_id: NewId, bad: str) -> None:
    subject = new_id("S")
    create_subject(http, project, subject)
    before = rows(http.get(f"/data/projects/{project}/subjects", params={"format": "json"}))

    r = http.put(f"/data/projects/{bad}", params={"xsiType": "xnat:projectData"})
    assert_plain_error(r, 417)
    r = http.put(f"/data/projects/{project}/subjects/{bad}", params={"xsiType": "xnat:subjectData"})
    assert_plain_error(r, 417)
    r = http.put(
        f"/data/projects/{project}/subjects/{subject}/experiments/{bad}",
        params={"xsiType": "xnat:mrSessionData"},
    )
    assert_plain_error(r, 417)
    # rename to an invalid label
    r = http.put(f"/data/projects/{project}/subjects/{subject}", params={"label": bad})
    assert_plain_error(r, 417)

    after = rows(http.get(f"/data/projects/{project}/subjects", params={"format": "json"}))
    assert [x["label"] for x in after] == [x["label"] for x in before] == [subject]
    ids = [x["ID"] for x in rows(http.get("/data/projects", params={"format": "json"}))]
    assert bad not in ids
    exps = rows(http.get(f"/data/projects/{project}/experiments", params={"format": "json"}))
    assert exps == []


# --- path traversal in file names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name_template",
    [
        "..%2F..%2F{m}.txt",
        "..%2F..%2F..%2F..%2F..%2F..%2Ftmp%2F{m}.txt",
        "%2E%2E%2F%2E%2E%2F{m}.txt",
        "sub%2F..%2F..%2F..%2F{m}.txt",
        "%2Ftmp%2F{m}.txt",
    ],
)
def test_traversal_in_url_file_name(
    http: httpx.Client, server: LiveServer, session_res: str, name_template: str
) -> None:
    marker = new_label("evil_")
    name = name_template.format(m=marker)
    before = file_names(http, f"{session_res}/files")
    res = curl(
        "-u",
        "admin:admin",
        "-X",
        "PUT",
        "--path-as-is",
        f"{server.url}{session_res}/files/{name}",
        "--data-binary",
        "evil",
        "-H",
        "Content-Type: application/octet-stream",
    )
    assert 400 <= res.status < 500, str(res)
    assert res.headers.get("content-type", "").startswith("text/plain"), str(res)
    assert res.body.strip() and not looks_like_html(res.body), str(res)
    assert file_names(http, f"{session_res}/files") == before
    _nothing_named(server, marker)


def test_raw_dot_dot_segments_in_path(http: httpx.Client, server: LiveServer, session_res: str) -> None:
    marker = new_label("evil_")
    before = file_names(http, f"{session_res}/files")
    res = curl(
        "-u",
        "admin:admin",
        "-X",
        "PUT",
        "--path-as-is",
        f"{server.url}{session_res}/files/../../../../../../../../tmp/{marker}.txt",
        "--data-binary",
        "evil",
        "-H",
        "Content-Type: application/octet-stream",
    )
    assert 400 <= res.status < 500, str(res)
    assert not looks_like_html(res.body), str(res)
    assert file_names(http, f"{session_res}/files") == before
    _nothing_named(server, marker)


@pytest.mark.parametrize("template", ["../../{m}.txt", "/tmp/{m}.txt", "a/../../../{m}.txt"])
def test_traversal_in_multipart_file_name(
    http: httpx.Client, server: LiveServer, session_res: str, template: str
) -> None:
    marker = new_label("evil_")
    before = file_names(http, f"{session_res}/files")
    r = http.put(f"{session_res}/files", files={"file": (template.format(m=marker), b"evil", "text/plain")})
    assert_plain_error(r)
    assert file_names(http, f"{session_res}/files") == before
    _nothing_named(server, marker)


def _tar(entries: list[tarfile.TarInfo], payload: bytes, gz: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for info in entries:
            if info.isfile():
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _evil_archives(marker: str) -> list[tuple[str, bytes]]:
    good = tarfile.TarInfo(f"good_{marker}.txt")
    dotdot = tarfile.TarInfo(f"../../{marker}.txt")
    absolute = tarfile.TarInfo(f"/tmp/{marker}.txt")
    link = tarfile.TarInfo(f"link_{marker}")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    hardlink = tarfile.TarInfo(f"hard_{marker}")
    hardlink.type = tarfile.LNKTYPE
    hardlink.linkname = "../../../../etc/passwd"
    return [
        ("dotdot.zip", make_zip({f"good_{marker}.txt": b"good", f"../{marker}.txt": b"evil"})),
        ("nested.zip", make_zip({f"good_{marker}.txt": b"good", f"a/../../../{marker}.txt": b"evil"})),
        ("absolute.zip", make_zip({f"good_{marker}.txt": b"good", f"/tmp/{marker}.txt": b"evil"})),
        ("dotdot.tar.gz", _tar([good, dotdot], b"evil", gz=True)),
        ("absolute.tar", _tar([good, absolute], b"evil", gz=False)),
        ("symlink.tar.gz", _tar([good, link], b"evil", gz=True)),
        ("hardlink.tar", _tar([good, hardlink], b"evil", gz=False)),
    ]


@pytest.mark.parametrize(
    "index",
    range(7),
    ids=lambda i: [
        "dotdot.zip",
        "nested.zip",
        "absolute.zip",
        "dotdot.tar.gz",
        "absolute.tar",
        "symlink.tar.gz",
        "hardlink.tar",
    ][i],
)
def test_evil_archive_entries_with_extract(
    http: httpx.Client, server: LiveServer, session_res: str, index: int
) -> None:
    marker = new_label("evil_")
    name, data = _evil_archives(marker)[index]
    before = file_names(http, f"{session_res}/files")
    r = http.put(
        f"{session_res}/files/{name}",
        params={"extract": "true"},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_plain_error(r)
    assert file_names(http, f"{session_res}/files") == before, "a rejected archive must write nothing"
    _nothing_named(server, marker)
    # same through pyxnat's route: POST ...?inbody=true&extract=true
    r = http.post(f"{session_res}/files/{name}", params={"inbody": "true", "extract": "true"}, content=data)
    assert_plain_error(r)
    assert file_names(http, f"{session_res}/files") == before
    _nothing_named(server, marker)


# --- types and bodies ------------------------------------------------------------------------------------


def test_unknown_xsi_type(http: httpx.Client, project: str, new_id: NewId) -> None:
    subject = new_id("S")
    create_subject(http, project, subject)
    exp = f"/data/projects/{project}/subjects/{subject}/experiments"
    r = http.put(f"{exp}/E1", params={"xsiType": "xnat:noSuchSessionData"})
    assert_plain_error(r)
    assert http.get(f"{exp}/E1", params={"format": "json"}).status_code == 404
    r = http.put(f"/data/projects/{project}/subjects/S_unknown", params={"xsiType": "foo:bar"})
    assert_plain_error(r)
    assert (
        http.get(f"/data/projects/{project}/subjects/S_unknown", params={"format": "json"}).status_code == 404
    )

    label = new_id("E")
    create_experiment(http, project, subject, label)
    r = http.put(f"{exp}/{label}/scans/9", params={"xsiType": "xnat:noSuchScanData", "type": "T1"})
    assert_plain_error(r)
    assert rows(http.get(f"{exp}/{label}/scans", params={"format": "json"})) == []


@pytest.mark.parametrize(
    "body",
    [
        b'<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" label="X"><xnat:demographics>',
        b"<<<not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    ],
    ids=["truncated", "garbage", "external-entity"],
)
def test_malformed_xml_body(http: httpx.Client, project: str, body: bytes) -> None:
    label = new_label("S")
    r = http.put(
        f"/data/projects/{project}/subjects/{label}", content=body, headers={"Content-Type": "text/xml"}
    )
    assert_plain_error(r)
    assert "root:" not in r.text, "external entity expanded"
    assert (
        http.get(f"/data/projects/{project}/subjects/{label}", params={"format": "json"}).status_code == 404
    )
    r = http.post("/data/projects", content=body, headers={"Content-Type": "application/xml"})
    assert_plain_error(r)
    assert "root:" not in r.text


# --- odd query strings ------------------------------------------------------------------------------------


def test_odd_query_strings(server: LiveServer, http: httpx.Client, project: str) -> None:
    for suffix in (
        "?=&&=x&%zz",
        "?&&&",
        "?format=&columns=",
        "?%00=%00",
        "?columns=ID,,,&format=json&format=csv",
    ):
        res = curl("-u", "admin:admin", f"{server.url}/data/projects{suffix}")
        assert res.status == 200 or 400 <= res.status < 500, str(res)
        assert not looks_like_html(res.body), str(res)
        if res.status >= 400:
            assert res.headers.get("content-type", "").startswith("text/plain"), str(res)
    label = new_label("S")
    url = f"{server.url}/data/projects/{project}/subjects/{label}?xsiType=xnat:subjectData&=&&=x&%zz"
    res = curl("-u", "admin:admin", "-X", "PUT", url)
    assert res.status in (200, 201) or 400 <= res.status < 500, str(res)
    assert not looks_like_html(res.body), str(res)
    got = http.get(f"/data/projects/{project}/subjects/{label}", params={"format": "json"})
    assert got.status_code == (200 if res.status < 300 else 404), describe(got)


# --- objects that do not exist -----------------------------------------------------------------------


def test_uploads_to_missing_objects_are_404(http: httpx.Client, project: str, new_id: NewId) -> None:
    subject = new_id("S")
    create_subject(http, project, subject)
    label = new_id("E")
    create_experiment(http, project, subject, label)
    missing = new_id("NOPE")
    targets = [
        f"/data/projects/{missing}/resources/R/files/a.txt",
        f"/data/projects/{missing}/subjects/{subject}/resources/R/files/a.txt",
        f"/data/projects/{project}/subjects/{missing}/resources/R/files/a.txt",
        f"/data/projects/{project}/subjects/{subject}/experiments/{missing}/resources/R/files/a.txt",
        f"/data/projects/{project}/subjects/{subject}/experiments/{label}/scans/99/resources/R/files/a.txt",
        "/data/experiments/XNAT_E99999/resources/R/files/a.txt",
        "/data/subjects/XNAT_S99999/resources/R/files/a.txt",
    ]
    for path in targets:
        r = http.put(path, content=b"x", headers={"Content-Type": "application/octet-stream"})
        assert_plain_error(r, 404)
        r = http.post(path, params={"inbody": "true"}, content=b"x")
        assert_plain_error(r, 404)
        r = http.put(path.rsplit("/files/", 1)[0])  # create the resource itself
        assert_plain_error(r, 404)
    # nothing was created on the way
    assert http.get(f"/data/projects/{missing}", params={"format": "json"}).status_code == 404
    assert [
        x["label"] for x in rows(http.get(f"/data/projects/{project}/subjects", params={"format": "json"}))
    ] == [subject]
    scans = rows(
        http.get(
            f"/data/projects/{project}/subjects/{subject}/experiments/{label}/scans",
            params={"format": "json"},
        )
    )
    assert scans == []
    # a subject in a project that does not exist
    r = http.put(f"/data/projects/{missing}/subjects/{subject}", params={"xsiType": "xnat:subjectData"})
    assert_plain_error(r, 404)


def test_missing_files_and_objects_read_404(http: httpx.Client, session_res: str, project: str) -> None:
    for path in (
        f"{session_res}/files/not_there.txt",
        f"/data/projects/{project}/subjects/NOPE",
        f"/data/projects/{project}/subjects/NOPE/experiments",
        "/data/experiments/XNAT_E99999",
        "/data/projects/NOPE_NOPE",
    ):
        r = http.get(path, params={"format": "json"} if "/files/" not in path else None)
        assert_plain_error(r, 404)
    r = http.delete(f"{session_res}/files/not_there.txt")
    assert_plain_error(r, 404)


# --- authentication --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth", [None, ("admin", "wrong"), ("nobody", "admin")], ids=["none", "bad-pw", "no-user"]
)
def test_unauthenticated_is_401_with_exact_text(server: LiveServer, auth: tuple[str, str] | None) -> None:
    with httpx.Client(base_url=server.url, auth=auth, timeout=60) as c:
        for path in ("/data/projects", "/data/archive/projects", "/REST/projects", "/data/JSESSION"):
            r = c.get(path)
            assert r.status_code == 401, describe(r)
            assert r.text.strip() == AUTH_REQUIRED_TEXT, describe(r)
            assert not looks_like_html(r.content)
