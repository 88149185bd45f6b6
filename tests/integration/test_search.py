"""``POST /data/search`` over HTTP: criteria, AND/OR groups, related objects, formats, errors, and
access control (a caller never sees a row, a count or a project name of a project they cannot read).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow

NS = 'xmlns:xdat="http://nrg.wustl.edu/security"'
Crit = tuple[str, str, str]


@dataclass
class World:
    server: LiveServer
    a: str  # private project: admin owns, alice is a member
    b: str  # private project nobody else may read; one of its subjects is shared into A
    pub: str  # public project
    ids: dict[str, str]  # label -> accession ID

    def client(self, who: str = "admin") -> httpx.Client:
        return self.server.client(auth=(who, f"{who}-password") if who != "admin" else ("admin", "admin"))


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code < 300, f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
    return r


def _build(server: LiveServer) -> World:
    admin = server.client()
    for name in ("alice", "bob"):
        _ok(
            admin.post(
                "/xapi/users",
                json={"username": name, "password": f"{name}-password", "email": f"{name}@x.org"},
            )
        )
    tag = uuid.uuid4().hex[:6]
    a, b, pub = f"A{tag}", f"Q{tag}", f"PUB{tag}"
    ids: dict[str, str] = {}
    for pid, level in ((a, "private"), (b, "private"), (pub, "public")):
        _ok(admin.put(f"/data/projects/{pid}", params={"accessibility": level}))
    _ok(admin.put(f"/data/projects/{a}/users/Members/alice"))
    subjects = [
        (a, "S1", {"gender": "female", "age": "42"}),
        (a, "S2", {"gender": "male", "age": "25", "handedness": "left"}),
        (b, "SB1", {"gender": "female", "age": "50"}),
        (b, "SB2", {"gender": "male", "age": "61"}),
        (pub, "SP1", {"gender": "female", "age": "33"}),
    ]
    for pid, label, params in subjects:
        ids[label] = _ok(admin.put(f"/data/projects/{pid}/subjects/{label}", params=params)).text.strip()
    _ok(admin.put(f"/data/projects/{b}/subjects/SB2/projects/{a}", params={"label": "SB2_in_A"}))
    sessions = [
        (a, "S1", "E1", "xnat:mrSessionData", "2020-01-02"),
        (a, "S2", "E2", "xnat:mrSessionData", "2021-06-30"),
        (a, "S2", "C2", "xnat:ctSessionData", "2021-07-01"),
        (b, "SB1", "EB1", "xnat:mrSessionData", "2019-03-04"),
        (b, "SB2", "EB2", "xnat:mrSessionData", "2019-05-06"),
        (pub, "SP1", "EP1", "xnat:mrSessionData", "2022-01-01"),
    ]
    for pid, subject, label, xsi, date in sessions:
        path = f"/data/projects/{pid}/subjects/{subject}/experiments/{label}"
        ids[label] = _ok(admin.put(path, params={"xsiType": xsi, "date": date})).text.strip()
    e1 = f"/data/projects/{a}/subjects/S1/experiments/E1"
    _ok(admin.put(f"{e1}/scans/1", params={"xsiType": "xnat:mrScanData", "type": "T1", "frames": "176"}))
    _ok(
        admin.put(
            f"{e1}/scans/2", params={"xsiType": "xnat:mrScanData", "type": "DWI", "quality": "unusable"}
        )
    )
    eb1 = f"/data/projects/{b}/subjects/SB1/experiments/EB1"
    _ok(admin.put(f"{eb1}/scans/1", params={"xsiType": "xnat:mrScanData", "type": "T1"}))
    site = quote("xnat:subjectData/fields/field[name=site]/field")
    url = httpx.URL(admin.base_url.join(f"/data/projects/{a}/subjects/S1"), query=f"{site}=Leeds".encode())
    _ok(admin.put(url))
    return World(server, a, b, pub, ids)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with live_server(tmp_path_factory.mktemp("search") / "data") as server:
        yield _build(server)


def bundle(root: str, columns: list[str] | None = None, where: list[object] | None = None) -> str:
    """A bundle as pyxnat builds it: ``where`` is pyxnat's list of (field, op, value), sub-lists, method."""
    fields = "".join(
        f"<xdat:search_field><xdat:element_name>{c.split('/', 1)[0]}</xdat:element_name>"
        f"<xdat:field_ID>{c.split('/', 1)[1]}</xdat:field_ID><xdat:sequence>{i}</xdat:sequence>"
        f"</xdat:search_field>"
        for i, c in enumerate(columns or [])
    )
    return (
        f"<xdat:bundle {NS}><xdat:root_element_name>{root}</xdat:root_element_name>{fields}"
        f"{_set('search_where', where or ['AND'])}</xdat:bundle>"
    )


def _set(tag: str, items: list[object]) -> str:
    method = next((i for i in items if isinstance(i, str)), "AND")
    body = ""
    for item in items:
        if isinstance(item, tuple):
            field, op, value = item
            body += (
                f"<xdat:criteria><xdat:schema_field>{field}</xdat:schema_field><xdat:comparison_type>"
                f"{op.replace('<', '&lt;').replace('>', '&gt;')}</xdat:comparison_type>"
                f"<xdat:value>{value}</xdat:value></xdat:criteria>"
            )
        elif isinstance(item, list):
            body += _set("child_set", item)
    return f'<xdat:{tag} method="{method}">{body}</xdat:{tag}>'


def search(c: httpx.Client, body: str, **params: str) -> list[dict[str, str]]:
    r = c.post("/data/search", params={"format": "csv", **params}, content=body.encode())
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.text)))


def labels(rows: list[dict[str, str]], key: str = "subject_label") -> list[str]:
    return sorted(r[key] for r in rows)


def test_columns_are_headed_by_lower_case_field_ids(world: World) -> None:
    cols = ["xnat:subjectData/SUBJECT_LABEL", "xnat:subjectData/GENDER_TEXT", "xnat:subjectData/AGE"]
    cols += ["xnat:subjectData/PROJECT", "xnat:subjectData/SUBJECT_ID", "xnat:subjectData/HANDEDNESS_TEXT"]
    rows = search(
        world.client(), bundle("xnat:subjectData", cols, [("xnat:subjectData/PROJECT", "=", world.a), "AND"])
    )
    assert list(rows[0]) == [
        "subject_label",
        "gender_text",
        "age",
        "project",
        "subject_id",
        "handedness_text",
        "quarantine_status",
    ]
    by_label = {r["subject_label"]: r for r in rows}
    assert by_label["S1"] == {
        **by_label["S1"],
        "gender_text": "F",
        "age": "42",
        "subject_id": world.ids["S1"],
    }
    assert by_label["S2"]["handedness_text"] == "L"
    assert sorted(by_label) == ["S1", "S2"]  # PROJECT is the owning project: B's shared subject is not A's


def test_numeric_criteria_and_or_groups(world: World) -> None:
    c = world.client()
    cols = ["xnat:subjectData/SUBJECT_LABEL"]
    older = search(c, bundle("xnat:subjectData", cols, [("xnat:subjectData/AGE", ">", "40"), "AND"]))
    assert labels(older) == ["S1", "SB1", "SB2"]  # 42, 50, 61: numbers (as text, "5" > "40")
    women_over_40 = [("xnat:subjectData/AGE", ">", "40"), ("xnat:subjectData/GENDER", "=", "female"), "AND"]
    assert labels(search(c, bundle("xnat:subjectData", cols, women_over_40))) == ["S1", "SB1"]
    either = [("xnat:subjectData/AGE", "<", "30"), ("xnat:subjectData/AGE", ">=", "61"), "OR"]
    assert labels(search(c, bundle("xnat:subjectData", cols, either))) == ["S2", "SB2"]
    nested = [
        ("xnat:subjectData/GENDER", "=", "female"),
        [
            ("xnat:subjectData/AGE", "BETWEEN", "30 AND 45"),
            ("xnat:subjectData/SUBJECT_LABEL", "LIKE", "%B1"),
            "OR",
        ],
        "AND",
    ]
    assert labels(search(c, bundle("xnat:subjectData", cols, nested))) == ["S1", "SB1", "SP1"]
    assert labels(
        search(c, bundle("xnat:subjectData", cols, [("xnat:subjectData/HANDEDNESS", "IS NULL", ""), "AND"]))
    )
    not_null = [("xnat:subjectData/HANDEDNESS", "IS NOT NULL", ""), "AND"]
    assert labels(search(c, bundle("xnat:subjectData", cols, not_null))) == ["S2"]


def test_sessions_with_subject_fields_dates_and_custom_variables(world: World) -> None:
    c = world.client()
    cols = ["xnat:mrSessionData/LABEL", "xnat:mrSessionData/AGE", "xnat:subjectData/GENDER_TEXT"]
    cols.append("xnat:mrSessionData/SUBJECT_LABEL")
    where = [
        ("xnat:subjectData/GENDER", "=", "female"),
        ("xnat:mrSessionData/DATE", ">=", "01/01/2020"),
        "AND",
    ]
    rows = search(c, bundle("xnat:mrSessionData", cols, where))
    assert [(r["label"], r["age"], r["xnat_subjectdata_gender_text"], r["subject_label"]) for r in rows] == [
        ("E1", "42", "F", "S1"),
        ("EP1", "33", "F", "SP1"),
    ]
    leeds = [("xnat:subjectData/XNAT_SUBJECTDATA_FIELD_MAP=site", "=", "Leeds"), "AND"]
    assert labels(search(c, bundle("xnat:mrSessionData", cols, leeds)), "label") == ["E1"]
    # a criterion on objects below the root: subjects that have a CT session
    has_ct = [("xnat:ctSessionData/ID", "LIKE", "%"), "AND"]
    assert labels(search(c, bundle("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL"], has_ct))) == ["S2"]


def test_scans_and_projects(world: World) -> None:
    c = world.client()
    cols = [
        "xnat:mrScanData/ID",
        "xnat:mrScanData/TYPE",
        "xnat:mrScanData/SESSION_LABEL",
        "xnat:mrScanData/FRAMES",
    ]
    t1 = search(c, bundle("xnat:mrScanData", cols, [("xnat:mrScanData/TYPE", "=", "T1"), "AND"]))
    assert sorted((r["session_label"], r["id"], r["frames"]) for r in t1) == [
        ("E1", "1", "176"),
        ("EB1", "1", ""),
    ]
    projects = search(c, bundle("xnat:projectData", where=[("xnat:projectData/ID", "=", world.a), "AND"]))
    assert [(p["id"], p["proj_mr_count"], p["proj_ct_count"], p["project_access"]) for p in projects] == [
        (world.a, "2", "1", "private")  # E1 and E2; C2
    ]
    full = ["xnat:projectData/ID", "xnat:projectData/PROJECT_OWNERS", "xnat:projectData/PROJECT_MEMBERS"]
    owners = search(c, bundle("xnat:projectData", full, [("xnat:projectData/ID", "=", world.a), "AND"]))
    assert owners[0]["project_owners"] == "admin" and owners[0]["project_members"] == "alice"


def test_fields_below_the_root_show_the_object_xnat_joins(world: World) -> None:
    """XNAT's ``TestSearchJoins``: a subject search showing MR-session and MR-scan fields gives one row
    per subject, with its latest MR session (by date) and that session's last MR scan; columns of a
    subject without one are empty."""
    cols = ["xnat:subjectData/SUBJECT_LABEL", "xnat:mrSessionData/LABEL", "xnat:mrScanData/ID"]
    cols.append("xnat:mrScanData/TYPE")
    where = [("xnat:subjectData/PROJECT", "=", world.a), "AND"]
    rows = search(world.client(), bundle("xnat:subjectData", cols, where))
    got = sorted(
        (
            r["subject_label"],
            r["xnat_mrsessiondata_label"],
            r["xnat_mrscandata_id"],
            r["xnat_mrscandata_type"],
        )
        for r in rows
    )
    assert got == [("S1", "E1", "2", "DWI"), ("S2", "E2", "", "")]
    ct_cols = ["xnat:subjectData/SUBJECT_LABEL", "xnat:ctSessionData/LABEL"]
    ct = search(world.client(), bundle("xnat:subjectData", ct_cols, where))
    assert sorted((r["subject_label"], r["xnat_ctsessiondata_label"]) for r in ct) == [
        ("S1", ""),
        ("S2", "C2"),
    ]
    scans = search(
        world.client(), bundle("xnat:mrSessionData", ["xnat:mrSessionData/LABEL", "xnat:mrScanData/TYPE"])
    )
    assert {r["label"]: r["xnat_mrscandata_type"] for r in scans}["E1"] == "DWI"


def test_a_member_sees_only_what_she_may_read(world: World) -> None:
    alice = world.client("alice")
    cols = ["xnat:subjectData/SUBJECT_LABEL", "xnat:subjectData/PROJECT", "xnat:subjectData/PROJECTS"]
    cols.append("xnat:subjectData/ADD_IDS")
    rows = search(alice, bundle("xnat:subjectData", cols))
    assert labels(rows) == ["S1", "S2", "SB2_in_A", "SP1"]
    shared = next(r for r in rows if r["subject_label"] == "SB2_in_A")
    assert (shared["project"], shared["projects"], shared["add_ids"]) == (
        world.a,
        f",<{world.a}>",
        "SB2_in_A",
    )
    assert world.b not in "".join(str(r) for r in rows) and "SB1" not in str(rows)
    # criteria on B's data find nothing, whatever they name
    for where in (
        [("xnat:subjectData/PROJECT", "=", world.b), "AND"],
        [("xnat:subjectData/SUBJECT_LABEL", "=", "SB1"), "AND"],
        [("xnat:mrSessionData/LABEL", "=", "EB2"), "AND"],
    ):
        assert search(alice, bundle("xnat:subjectData", cols, where)) == []
    sessions = search(alice, bundle("xnat:mrSessionData", ["xnat:mrSessionData/LABEL"]))
    assert labels(sessions, "label") == ["E1", "E2", "EP1"]
    scans = search(alice, bundle("xnat:mrScanData", ["xnat:mrScanData/SESSION_LABEL"]))
    assert labels(scans, "session_label") == ["E1", "E1"]
    projects = search(alice, bundle("xnat:projectData", ["xnat:projectData/ID"]))
    assert sorted(p["id"] for p in projects) == sorted([world.a, world.pub])
    # the shared subject's session in B is not counted for her
    count = search(
        alice, bundle("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL", "xnat:subjectData/MR_COUNT"])
    )
    assert {r["subject_label"]: r["mr_count"] for r in count}["SB2_in_A"] == ""


def test_a_stranger_sees_the_public_project_only(world: World) -> None:
    bob = world.client("bob")
    rows = search(
        bob, bundle("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL", "xnat:subjectData/PROJECT"])
    )
    assert [(r["subject_label"], r["project"]) for r in rows] == [("SP1", world.pub)]
    assert (
        search(
            bob, bundle("xnat:mrSessionData", where=[("xnat:mrSessionData/ID", "=", world.ids["E1"]), "AND"])
        )
        == []
    )
    anonymous = httpx.post(world.server.url + "/data/search", content=bundle("xnat:subjectData").encode())
    assert anonymous.status_code == 401


def test_formats_and_sorting(world: World) -> None:
    c = world.client()
    body = bundle("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL", "xnat:subjectData/AGE"])
    r = c.post("/data/search", params={"format": "json", "sortBy": "AGE", "sortOrder": "DESC"}, content=body)
    result = r.json()["ResultSet"]
    assert [row["subject_label"] for row in result["Result"]] == ["SB2", "SB1", "S1", "SP1", "S2"]
    assert result["totalRecords"] == "5"
    assert [col["key"] for col in result["Columns"]] == ["subject_label", "age", "quarantine_status"]
    xml = c.post("/data/search", params={"format": "xml"}, content=body).text
    assert "<column>subject_label</column>" in xml and "<cell>S1</cell>" in xml
    ids = search(c, bundle("xnat:subjectData", ["xnat:subjectData/SUBJECT_ID"]))
    assert [r["subject_id"] for r in ids] == sorted(world.ids[s] for s in ("S1", "S2", "SB1", "SB2", "SP1"))


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ("<xdat:bundle", 400, "well-formed"),
        ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', 400, "DTD"),
        (bundle("xnat:nope"), 400, "Unknown search element"),
        (bundle("xnat:subjectData", ["xnat:subjectData/NOPE"]), 400, "Unknown search field"),
        (bundle("xnat:subjectData", where=[("xnat:subjectData/AGE", ">", "old"), "AND"]), 400, "not a valid"),
        (bundle("xnat:projectData", ["xnat:subjectData/SUBJECT_LABEL"]), 400, "cannot show fields"),
        (bundle("xnat:demographicData"), 400, "not a searchable element"),
        ("", 400, "bundle"),
    ],
)
def test_bad_bundles_are_plain_400s(world: World, body: str, status: int, reason: str) -> None:
    r = world.client().post("/data/search", params={"format": "csv"}, content=body.encode())
    assert r.status_code == status, r.text
    assert reason in r.text and r.headers["content-type"].startswith("text/plain")


def test_other_methods_and_huge_bodies(world: World) -> None:
    c = world.client()
    assert c.get("/data/search").status_code == 405
    assert c.post("/data/search", content=b" " * (1024 * 1024 + 1)).status_code == 413
