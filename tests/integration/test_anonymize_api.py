"""XNAT's anonymization API (``/xapi/anonymize/...``) and the configuration service's ``anon``
documents it shares, over HTTP on one live server: round trips both ways, enabled flags, rights,
scripts refused when they do not parse, and the dry run on a real Siemens MR object."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import BytesIO

import httpx
import pydicom
import pytest

from tests.support.live_server import LiveServer, live_server
from tests.support.testdata import DICOM
from xnatd.dicom.dicomedit import XNAT_DEFAULT_SCRIPT

pytestmark = pytest.mark.slow

SIEMENS = DICOM / "dcm_qa_nih" / "20180918Si" / "mr_0003" / "epi_pe_ap-00001.dcm"
PASSWORD = "user-password-1"
SCRIPT = 'version "6.1"\n(0010,0010) := "Anonymous"\n- (0010,0030)\n'
BROKEN = 'version "6.1"\n(0010,0010) := "x"\n(0010,00ZZ) := "y"\n'  # line 3 is no tag
FILE_URI = "/data/projects/ANON1/subjects/SUBJ1/experiments/SESS1/scans/1/resources/DICOM/files/x.dcm"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("anonymize") / "data"
    with live_server(data, env={"XNATD_GUEST_ACCESS": "true"}) as srv, srv.client() as admin:
        for project in ("ANON1", "ANON2"):
            r = admin.put(f"/data/projects/{project}", params={"xsiType": "xnat:projectData"})
            assert r.status_code in (200, 201), r.text
        for name, group in (("member1", "Members"), ("owner1", "Owners")):
            body = {"username": name, "password": PASSWORD}
            assert admin.post("/xapi/users", json=body).status_code == 201
            assert admin.put(f"/data/projects/ANON1/users/{group}/{name}").status_code == 200
        session = "/data/projects/ANON1/subjects/SUBJ1/experiments/SESS1"
        assert admin.put("/data/projects/ANON1/subjects/SUBJ1").status_code in (200, 201)
        assert admin.put(session, params={"xsiType": "xnat:mrSessionData"}).status_code in (200, 201)
        assert admin.put(f"{session}/scans/1", params={"xsiType": "xnat:mrScanData"}).status_code in (
            200,
            201,
        )
        r = admin.put(FILE_URI, params={"inbody": "true"}, content=SIEMENS.read_bytes())
        assert r.status_code in (200, 201), r.text
        yield srv


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _as(server: LiveServer, name: str) -> httpx.Client:
    return server.client(auth=(name, PASSWORD))


def _status(admin: httpx.Client, url: str) -> str:
    rows = admin.get(url, params={"format": "json"}).json()["ResultSet"]["Result"]
    return str(rows[0]["status"])


def test_default_script_is_xnats(admin: httpx.Client) -> None:
    r = admin.get("/xapi/anonymize/default")
    assert r.status_code == 200 and r.text == XNAT_DEFAULT_SCRIPT
    assert r.headers["content-type"].startswith("text/plain")


def test_site_script_round_trips_both_path_families(admin: httpx.Client) -> None:
    # nothing stored yet: XNAT's default, not applied
    assert admin.get("/xapi/anonymize/site").text == XNAT_DEFAULT_SCRIPT
    assert admin.get("/xapi/anonymize/site/enabled").json() is False
    assert admin.put("/xapi/anonymize/site", content=SCRIPT).status_code == 200
    assert admin.get("/data/config/anon/script", params={"contents": "true"}).text == SCRIPT
    assert admin.get("/xapi/anonymize/site/enabled").json() is True
    other = SCRIPT.replace("Anonymous", "Other")
    assert admin.put("/data/config/anon/script", content=other).status_code == 200
    assert admin.get("/xapi/anonymize/site").text == other
    # disabled one way, seen the other; the script itself is still served by /xapi
    assert admin.put("/xapi/anonymize/site/enabled", params={"enable": "false"}).status_code == 200
    assert _status(admin, "/data/config/anon/script") == "disabled"
    assert admin.get("/xapi/anonymize/site").text == other
    assert admin.put("/data/config/anon/script", params={"status": "enabled"}).status_code == 200
    assert admin.get("/xapi/anonymize/site/enabled").json() is True
    assert admin.put("/data/config/anon/script", params={"status": "disabled"}).status_code == 200
    assert admin.get("/xapi/anonymize/site/enabled").json() is False
    assert admin.put("/xapi/anonymize/site", content=SCRIPT).status_code == 200  # keeps "disabled"
    assert _status(admin, "/data/config/anon/script") == "disabled"
    assert admin.put("/xapi/anonymize/site/enabled").status_code == 200  # enable defaults to true
    assert admin.get("/xapi/anonymize/site/enabled").json() is True
    assert admin.put("/xapi/anonymize/site/enabled", params={"enable": "maybe"}).status_code == 400


def test_project_script_round_trips_both_path_families(admin: httpx.Client) -> None:
    old = "/data/projects/ANON2/config/anon/projects/ANON2"
    assert admin.get("/xapi/anonymize/projects/ANON2").status_code == 204
    assert admin.get("/xapi/anonymize/projects/ANON2/enabled").json() is False
    assert admin.put("/xapi/anonymize/projects/ANON2/enabled").status_code == 404  # nothing to enable
    assert admin.put("/xapi/anonymize/projects/ANON2", content=SCRIPT).status_code == 200
    assert admin.get(old, params={"contents": "true"}).text == SCRIPT
    assert admin.get("/xapi/anonymize/projects/ANON2/enabled").json() is True
    other = SCRIPT.replace("Anonymous", "Project")
    assert admin.put(old, content=other).status_code == 200
    assert admin.get("/xapi/anonymize/projects/ANON2").text == other
    assert admin.put("/xapi/anonymize/projects/ANON2/enabled", params={"enable": "false"}).status_code == 200
    assert _status(admin, old) == "disabled"
    assert admin.delete(old).status_code == 200 and _status(admin, old) == "disabled"
    assert admin.put(old, params={"status": "enabled"}).status_code == 200
    assert admin.get("/xapi/anonymize/projects/ANON2/enabled").json() is True
    assert admin.get("/xapi/anonymize/projects/NOSUCH").status_code == 404


def test_rights_follow_xnat(server: LiveServer, admin: httpx.Client) -> None:
    assert admin.put("/xapi/anonymize/projects/ANON1", content=SCRIPT).status_code == 200
    with _as(server, "member1") as member, _as(server, "owner1") as owner:
        assert member.get("/xapi/anonymize/site").status_code == 200  # every user reads the site's
        assert member.put("/xapi/anonymize/site", content=SCRIPT).status_code == 403
        assert owner.put("/xapi/anonymize/site/enabled").status_code == 403
        assert member.get("/xapi/anonymize/projects/ANON1").text == SCRIPT  # members read
        assert member.put("/xapi/anonymize/projects/ANON1", content=SCRIPT + "\n").status_code == 403
        assert member.put("/xapi/anonymize/projects/ANON1/enabled").status_code == 403
        mine = SCRIPT.replace("Anonymous", "Owner")
        assert owner.put("/xapi/anonymize/projects/ANON1", content=mine).status_code == 200
        assert (
            owner.put("/xapi/anonymize/projects/ANON1/enabled", params={"enable": "false"}).status_code == 200
        )
        assert member.get("/xapi/anonymize/projects/ANON2").status_code == 404  # not their project
    with httpx.Client(base_url=server.url) as guest:
        assert guest.get("/xapi/anonymize/default").status_code == 401
        assert guest.get("/xapi/anonymize/site").status_code == 401
        assert guest.put("/xapi/anonymize/site", content=SCRIPT).status_code == 401
        assert guest.put("/xapi/anonymize/projects/ANON1", content=SCRIPT).status_code in (401, 404)
    assert admin.get("/xapi/anonymize/projects/ANON1").text == SCRIPT.replace("Anonymous", "Owner")


@pytest.mark.parametrize(
    "url",
    [
        "/xapi/anonymize/site",
        "/xapi/anonymize/projects/ANON1",
        "/data/config/anon/script",
        "/data/projects/ANON1/config/anon/projects/ANON1",
        "/data/archive/projects/ANON1/config/anon/projects/ANON1",
    ],
)
def test_a_script_that_does_not_parse_is_refused_and_nothing_stored(admin: httpx.Client, url: str) -> None:
    before = admin.get(url if url.startswith("/xapi") else f"{url}?contents=true&accept-not-found=true")
    r = admin.put(url, content=BROKEN)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert "line 3, column" in r.text
    after = admin.get(url if url.startswith("/xapi") else f"{url}?contents=true&accept-not-found=true")
    assert (after.status_code, after.text) == (before.status_code, before.text)
    # the same through the configuration service's JSON and multipart bodies
    if not url.startswith("/xapi"):
        assert admin.put(url, json={"contents": BROKEN, "status": "enabled"}).status_code == 400
        assert admin.put(url, files={"file": ("a.das", BROKEN.encode())}).status_code == 400


def _expected(script_changes: list[dict[str, str | None]]) -> None:
    """The changes listed are exactly the attributes that differ between before and after."""
    original = pydicom.dcmread(SIEMENS)
    after = pydicom.dcmread(SIEMENS)
    after.PatientName = "Anonymous"
    del after.PatientBirthDate
    differing = {
        f"({el.tag.group:04X},{el.tag.element:04X})"
        for el in original
        if el.tag not in after or after[el.tag].value != el.value
    }
    assert {str(c["tag"]).upper() for c in script_changes} == differing


def test_dry_run_on_a_sent_file_stores_nothing(admin: httpx.Client) -> None:
    original = pydicom.dcmread(SIEMENS)
    files = {"script": (None, SCRIPT), "file": ("x.dcm", SIEMENS.read_bytes(), "application/dicom")}
    r = admin.post("/xapi/anonymize/dryrun", files=files)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["rejected"] is None and doc["echo"] == []
    by_keyword = {c["keyword"]: c for c in doc["changes"]}
    assert set(by_keyword) == {"PatientName", "PatientBirthDate"}
    assert by_keyword["PatientName"]["before"] == str(original.PatientName)
    assert by_keyword["PatientName"]["after"] == "Anonymous"
    assert by_keyword["PatientBirthDate"]["before"] == original.PatientBirthDate
    assert by_keyword["PatientBirthDate"]["after"] is None
    _expected(doc["changes"])
    stored = admin.get(FILE_URI)
    assert pydicom.dcmread(BytesIO(stored.content)).PatientName == original.PatientName


def test_dry_run_on_a_stored_file_takes_its_sessions_names(server: LiveServer, admin: httpx.Client) -> None:
    script = XNAT_DEFAULT_SCRIPT + 'echo "p=", project\n'
    r = admin.post("/xapi/anonymize/dryrun", json={"script": script, "uri": FILE_URI})
    assert r.status_code == 200, r.text
    doc = r.json()
    after = {c["keyword"]: c["after"] for c in doc["changes"]}
    assert after == {"StudyDescription": "ANON1", "PatientName": "SUBJ1", "PatientID": "SESS1"}
    assert doc["echo"] == ["p=ANON1"]
    # query parameters name them otherwise
    r = admin.post(
        "/xapi/anonymize/dryrun", params={"subject": "S9"}, json={"script": script, "uri": FILE_URI}
    )
    assert {c["keyword"]: c["after"] for c in r.json()["changes"]}["PatientName"] == "S9"
    with _as(server, "member1") as member:
        assert (
            member.post("/xapi/anonymize/dryrun", json={"script": script, "uri": FILE_URI}).status_code == 200
        )
        other = FILE_URI.replace("ANON1", "ANON2")  # a project they cannot read
        assert member.post("/xapi/anonymize/dryrun", json={"script": script, "uri": other}).status_code == 404


def test_dry_run_reject_bad_dicom_and_bad_script(admin: httpx.Client) -> None:
    reject = 'version "6.1"\n(0008,0060) = "MR" ? reject["no MR here"]\n'
    files = {"script": (None, reject), "file": ("x.dcm", SIEMENS.read_bytes())}
    doc = admin.post("/xapi/anonymize/dryrun", files=files).json()
    assert doc["rejected"] == "no MR here"
    junk = {"script": (None, SCRIPT), "file": ("x.dcm", b"not a DICOM object at all" * 10)}
    r = admin.post("/xapi/anonymize/dryrun", files=junk)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain"), r.text
    broken = {"script": (None, BROKEN), "file": ("x.dcm", SIEMENS.read_bytes())}
    r = admin.post("/xapi/anonymize/dryrun", files=broken)
    assert r.status_code == 400 and "line 3, column" in r.text
    assert admin.post("/xapi/anonymize/dryrun", files={"script": (None, SCRIPT)}).status_code == 400
    assert admin.post("/xapi/anonymize/dryrun", content=json.dumps([1])).status_code == 400
