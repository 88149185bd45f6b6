"""Listings with XNAT's child-element and display-field columns, and listings' order (issue 18, items 1, 9).

XNAT's listings take any XPath as a column: a field of the listed object, of the object above it
(``subject_label`` is ``xnat:subjectData/label``) or of the objects below it (``xnat:imagescandata/type``),
and then answer one row per child. These are the calls pipeline and download tools make, sent as they
send them: pyxnat's ``Interface.array`` (run through pyxnat itself), dax's ``XnatUtils`` project scan and
session listings, yaxil's ``mrscans``, and the row shapes XNAT's own REST tests assert
(``TestDynamicSearch*``, ``TestCustomVariables``, ``TestAdvancedSearch``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pyxnat import Interface

from tests.compat.helpers import ADMIN, new_label
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow


@dataclass
class Tree:
    project: str
    ids: dict[str, str]  # label -> accession ID


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code < 300, f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
    return r


@pytest.fixture(scope="module")
def tree(server: LiveServer) -> Iterator[Tree]:
    """S1: MR session E1 (scans 1 T1w usable, 2 DWI, 3 secondary capture; a QC assessor; two custom
    variables) and CT session C1 (scan 1); S2: MR session E2 without scans; S3: no sessions."""
    pid = new_label("J")
    ids: dict[str, str] = {}
    with server.client() as http:
        _ok(http.put(f"/data/projects/{pid}"))
        base = f"/data/projects/{pid}/subjects"
        for label in ("S1", "S2", "S3"):
            ids[label] = _ok(http.put(f"{base}/{label}", params={"gender": "female"})).text.strip()
        sessions = [
            ("S1", "E1", "xnat:mrSessionData", {"xnat:mrSessionData/operator": "op1", "modality": "MR"}),
            ("S1", "C1", "xnat:ctSessionData", {"modality": "CT"}),
            ("S2", "E2", "xnat:mrSessionData", {"modality": "MR"}),
        ]
        for subject, label, xsi, extra in sessions:
            url = f"{base}/{subject}/experiments/{label}"
            params = {"xsiType": xsi, "date": "2024-01-02", **extra}
            ids[label] = _ok(http.put(url, params=params)).text.strip()
        e1 = f"{base}/S1/experiments/E1"
        scans = [
            (
                e1,
                "1",
                "xnat:mrScanData",
                {"type": "T1w", "quality": "usable", "xnat:mrScanData/parameters/tr": "2.3"},
            ),
            (e1, "2", "xnat:mrScanData", {"type": "DWI", "quality": "questionable"}),
            (e1, "3", "xnat:scScanData", {"type": "SC"}),
            (f"{base}/S1/experiments/C1", "1", "xnat:ctScanData", {"type": "CTA", "quality": "usable"}),
        ]
        for session, scan, xsi, params in scans:
            _ok(http.put(f"{session}/scans/{scan}", params={"xsiType": xsi, **params}))
        for resource in ("DICOM", "NIFTI"):
            _ok(http.put(f"{e1}/scans/1/resources/{resource}"))
        ids["QC1"] = _ok(
            http.put(f"{e1}/assessors/QC1", params={"xsiType": "xnat:qcAssessmentData"})
        ).text.strip()
        for name, value in (("tp", "baseline"), ("visit", "V1")):
            _ok(http.put(e1, params={f"xnat:mrSessionData/fields/field[name={name}]/field": value}))
    yield Tree(pid, ids)


def rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, f"{r.request.url} -> {r.status_code} {r.text}"
    return list(r.json()["ResultSet"]["Result"])


def get(http: httpx.Client, path: str, **params: str) -> list[dict[str, str]]:
    return rows(http.get(path, params={"format": "json", **params}))


def test_session_listing_answers_one_row_per_scan(http: httpx.Client, tree: Tree) -> None:
    """dax's ``get_project_scans``: the project's image sessions with scan columns, one row per scan; a
    session without scans keeps one row, its scan columns empty."""
    columns = (
        "ID,URI,label,subject_label,project,xnat:imagesessiondata/subject_id,xnat:imagescandata/id,"
        "xnat:imagescandata/type,xnat:imagescandata/quality,xnat:imagescandata/series_description"
    )
    r = http.get(
        f"/data/archive/projects/{tree.project}/experiments",
        params={"format": "json", "xsiType": "xnat:imageSessionData", "columns": columns},
    )
    got = rows(r)
    seen = sorted(
        (
            x["label"],
            x["xnat:imagescandata/id"],
            x["xnat:imagescandata/type"],
            x["xnat:imagescandata/quality"],
        )
        for x in got
    )
    assert seen == [
        ("C1", "1", "CTA", "usable"),
        ("E1", "1", "T1w", "usable"),
        ("E1", "2", "DWI", "questionable"),
        ("E1", "3", "SC", ""),
        ("E2", "", "", ""),
    ], got
    e1 = [x for x in got if x["label"] == "E1"]
    assert {x["ID"] for x in e1} == {tree.ids["E1"]}
    assert {x["subject_label"] for x in e1} == {"S1"}
    assert {x["xnat:imagesessiondata/subject_id"] for x in e1} == {tree.ids["S1"]}
    assert {x["URI"] for x in e1} == {f"/data/experiments/{tree.ids['E1']}"}
    assert r.json()["ResultSet"]["totalRecords"] == "5"


def test_dax_project_scans_with_their_resources(http: httpx.Client, tree: Tree) -> None:
    """dax's ``get_project_scans`` URL as it sends it: scans and their resources (XNAT's ``file``
    elements of a scan), one row per scan and resource; dax groups them back by session and scan."""
    query = (
        f"?project={tree.project}&xsiType=xnat:imageSessionData&"
        "columns=ID,URI,label,subject_label,project,xnat:imagesessiondata/subject_id,"
        "xnat:imagescandata/id,xnat:imagescandata/type,xnat:imagescandata/quality,"
        "xnat:imagescandata/note,xnat:imagescandata/frames,"
        "xnat:imagescandata/series_description,xnat:imagescandata/file/label"
    )
    got = rows(http.get("/REST/archive/experiments" + query + "&format=json"))
    resources: dict[tuple[str, str], list[str]] = {}
    for scan in got:
        key = (scan["label"], scan["xnat:imagescandata/id"])
        resources.setdefault(key, []).append(scan["xnat:imagescandata/file/label"])
    assert resources == {
        ("E1", "1"): ["DICOM", "NIFTI"],
        ("E1", "2"): [""],
        ("E1", "3"): [""],
        ("C1", "1"): [""],
        ("E2", ""): [""],
    }
    on_scans = get(
        http, f"/data/experiments/{tree.ids['E1']}/scans", columns="ID,xnat:imagescandata/file/label"
    )
    assert sorted((x["ID"], x["xnat:imagescandata/file/label"]) for x in on_scans) == [
        ("1", "DICOM"),
        ("1", "NIFTI"),
        ("2", ""),
        ("3", ""),
    ]


def test_filters_on_child_columns_pick_the_sessions_that_have_such_a_child(
    http: httpx.Client, tree: Tree
) -> None:
    """A filter on a scan field picks the sessions with such a scan (XNAT puts the criteria in its root
    query); scan columns then list every scan of the sessions picked."""
    url = f"/data/projects/{tree.project}/experiments"
    t1 = get(
        http, url, **{"xsiType": "xnat:mrSessionData", "columns": "ID,label", "xnat:mrScanData/type": "T1*"}
    )
    assert [x["label"] for x in t1] == ["E1"]
    usable = get(
        http,
        url,
        **{"columns": "label,xnat:imagescandata/id", "xnat:imagescandata/quality": "usable"},
    )
    assert sorted((x["label"], x["xnat:imagescandata/id"]) for x in usable) == [
        ("C1", "1"),
        ("E1", "1"),
        ("E1", "2"),
        ("E1", "3"),
    ]
    assert get(http, url, **{"columns": "label", "xnat:imagescandata/quality": "unusable"}) == []


def test_path_form_child_columns_narrow_the_listing_to_their_type(http: httpx.Client, tree: Tree) -> None:
    """XNAT's REST tests count scans with ``/experiments?columns=xnat:mrSessionData/scans/scan/ID``:
    the column's type (an MR session) becomes the listing's type, so the CT session is not listed."""
    got = get(http, "/data/experiments", project=tree.project, columns="ID,xnat:mrSessionData/scans/scan/ID")
    assert sorted((x["ID"], x["xnat:mrsessiondata/scans/scan/id"]) for x in got) == sorted(
        [(tree.ids["E1"], "1"), (tree.ids["E1"], "2"), (tree.ids["E1"], "3"), (tree.ids["E2"], "")]
    )
    scans = get(
        http,
        "/data/experiments",
        project=tree.project,
        columns="ID,xnat:mrsessiondata/scans/scan/id,xnat:mrsessiondata/assessors/assessor/id",
    )
    assert {x["xnat:mrsessiondata/assessors/assessor/id"] for x in scans if x["ID"] == tree.ids["E1"]} == {
        tree.ids["QC1"]
    }


def test_pyxnat_array_scans_and_experiments(server: LiveServer, tree: Tree) -> None:
    intf = Interface(server=server.url, user=ADMIN[0], password=ADMIN[1])
    try:
        scans = intf.array.scans(project_id=tree.project).data
        assert sorted((s["ID"], s["xnat:imagescandata/id"]) for s in scans) == sorted(
            [(tree.ids["E1"], n) for n in ("1", "2", "3")] + [(tree.ids["C1"], "1")]
        ), scans
        mr = intf.array.mrscans(project_id=tree.project, columns=["xnat:mrScanData/type"]).data
        assert sorted((s["xnat:mrscandata/id"], s["xnat:mrscandata/type"]) for s in mr) == [
            ("1", "T1w"),
            ("2", "DWI"),
        ], mr
        assert {s["xnat:mrsessiondata/subject_id"] for s in mr} == {tree.ids["S1"]}
        t1 = intf.array.scans(
            experiment_id=tree.ids["E1"],
            scan_type="xnat:mrScanData",
            constraints={"xnat:mrScanData/type": "T1w"},
        ).data
        assert [s["xnat:mrscandata/id"] for s in t1] == ["1"], t1
        sessions = intf.array.mrsessions(project_id=tree.project).data
        assert sorted(s["ID"] for s in sessions) == sorted([tree.ids["E1"], tree.ids["E2"]])
    finally:
        intf.disconnect()


def test_pyxnat_inspect_values_of_scans_and_assessors(server: LiveServer, tree: Tree) -> None:
    """pyxnat's ``inspect.scan_values`` and ``assessor_values`` (its ``search_test.py``) read the
    path-form columns ``xnat:mrsessiondata/scans/scan/id`` and ``.../assessors/assessor/id``."""
    intf = Interface(server=server.url, user=ADMIN[0], password=ADMIN[1])
    try:
        assert set(intf.inspect.scan_values("xnat:mrSessionData", tree.project)) == {"1", "2", "3", ""}
        assert set(intf.inspect.assessor_values("xnat:mrSessionData", tree.project)) == {tree.ids["QC1"], ""}
        values = intf.inspect.experiment_values("xnat:mrSessionData", tree.project)
        assert sorted(values) == sorted([tree.ids["E1"], tree.ids["E2"]])
    finally:
        intf.disconnect()


def test_subject_listing_joins_sessions_and_their_scans(http: httpx.Client, tree: Tree) -> None:
    """XNAT's ``TestDynamicSearchSubjects``: MR-session and MR-scan columns on a subject listing give
    one row per MR scan of each MR session; a subject without one keeps one row, columns empty."""
    url = f"/data/projects/{tree.project}/subjects"
    r = http.get(url, params={"format": "json", "columns": "xnat:mrSessionData/label,xnat:mrScanData/id"})
    got = rows(r)
    assert sorted((x["ID"], x["xnat:mrsessiondata/label"], x["xnat:mrscandata/id"]) for x in got) == sorted(
        [
            (tree.ids["S1"], "E1", "1"),
            (tree.ids["S1"], "E1", "2"),
            (tree.ids["S2"], "E2", ""),
            (tree.ids["S3"], "", ""),
        ]
    ), got
    assert set(got[0]) == {"ID", "URI", "xnat:mrsessiondata/label", "xnat:mrscandata/id"}
    assert r.json()["ResultSet"]["totalRecords"] == "4"
    sessions = get(http, url, columns="xnat:imageSessionData/label,xnat:imageSessionData/modality")
    assert sorted((x["ID"], x["xnat:imagesessiondata/label"]) for x in sessions) == sorted(
        [(tree.ids["S1"], "E1"), (tree.ids["S1"], "C1"), (tree.ids["S2"], "E2"), (tree.ids["S3"], "")]
    )


def test_scan_listing_with_session_columns_as_yaxil_asks(http: httpx.Client, tree: Tree) -> None:
    """yaxil's ``mrscans``: MR-scan columns narrow the scan listing to MR scans; the session's columns
    are joined in; ``ID`` and the MR root's key column are both there."""
    columns = (
        "ID,insert_date,insert_user,coil,xnat:mrsessiondata/operator,xnat:mrscandata/id,"
        "xnat:mrscandata/quality,xnat:mrscandata/type,xnat:mrscandata/parameters/tr"
    )
    got = get(http, f"/data/experiments/{tree.ids['E1']}/scans", columns=columns)
    assert sorted((x["xnat:mrscandata/id"], x["xnat:mrscandata/type"]) for x in got) == [
        ("1", "T1w"),
        ("2", "DWI"),
    ], got
    first = next(x for x in got if x["ID"] == "1")
    assert first["xnat:mrsessiondata/operator"] == "op1"
    assert float(first["xnat:mrscandata/parameters/tr"]) == 2.3
    assert first["insert_date"] and "xnat:mrscandata/xnat_imagescandata_id" in first
    scans = f"/data/experiments/{tree.ids['E1']}/scans"
    only_mr = get(http, scans, xsiType="xnat:mrScanData")
    assert sorted(x["ID"] for x in only_mr) == ["1", "2"]
    assert {"xnat_imagescandata_id", "xnat:mrscandata/xnat_imagescandata_id"} <= set(only_mr[0])
    assert set(get(http, scans, columns="ID")[0]) == {"ID", "xnat_imagescandata_id", "URI"}


def test_display_fields_and_shortcuts_are_named_as_xnat_names_them(http: httpx.Client, tree: Tree) -> None:
    """dax's assessor and scan tables: shortcut columns keep their names, an XPath that is a shortcut's
    comes back under the shortcut (``xnat:imagesessiondata/label`` is ``session_label``), any other
    XPath under itself in lower case; meta fields (``.../meta/last_modified``) are columns too."""
    columns = (
        "project,subject_label,subject_project,session_label,session_type,xnat:imagesessiondata/date,"
        "xnat:imagesessiondata/label,xnat:imagescandata/id,xnat:mrsessiondata/meta/last_modified,"
        "xnat:subjectdata/meta/last_modified"
    )
    got = get(
        http, "/data/experiments", xsiType="xnat:imagesessiondata", project=tree.project, columns=columns
    )
    e1 = [x for x in got if x["session_label"] == "E1"]
    assert len(e1) == 3, got
    row = e1[0]
    assert (row["project"], row["subject_label"], row["subject_project"]) == (
        tree.project,
        "S1",
        tree.project,
    )
    assert row["xnat:imagesessiondata/date"] == "2024-01-02"
    assert "xnat:imagesessiondata/label" not in row  # the same column as session_label
    assert row["xnat:mrsessiondata/meta/last_modified"] and row["xnat:subjectdata/meta/last_modified"]
    c1 = next(x for x in got if x["session_label"] == "C1")
    assert c1["xnat:mrsessiondata/meta/last_modified"] == ""  # a CT session has no MR fields
    assessors = get(
        http,
        f"/data/experiments/{tree.ids['E1']}/assessors",
        columns="ID,label,session_ID,session_label,session_project,subject_ID",
    )
    assert [(x["label"], x["session_ID"], x["session_label"], x["session_project"]) for x in assessors] == [
        ("QC1", tree.ids["E1"], "E1", tree.project)
    ]


def test_custom_variables_as_rows(http: httpx.Client, tree: Tree) -> None:
    """XNAT's ``TestCustomVariables`` reads a session's variables as rows of ``fields/field``."""
    got = get(
        http,
        f"/data/projects/{tree.project}/subjects/S1/experiments",
        **{
            "xnat:mrSessionData/label": "E1",
            "columns": "xnat:mrSessionData/fields/field/field,xnat:mrSessionData/fields/field/name",
        },
    )
    assert sorted(
        (x["xnat:mrsessiondata/fields/field/name"], x["xnat:mrsessiondata/fields/field/field"]) for x in got
    ) == [("tp", "baseline"), ("visit", "V1")], got


def test_row_keys_follow_the_listings_type(http: httpx.Client, tree: Tree) -> None:
    """XNAT's ``TestDynamicSearchSubjectAssessors``: the key column is named after the listing's type
    (``ID`` for experiments, ``session_ID`` once session columns make it image sessions, the lowercased
    XPath for a concrete type), and ``xsiType`` and ``project`` are added only for a base type."""
    url = "/data/experiments"
    keys = [set(x) for x in get(http, url, project=tree.project, columns="ID")]
    assert keys and all(k == {"ID", "project", "xsiType", "URI"} for k in keys), keys
    mr = get(
        http,
        url,
        project=tree.project,
        xsiType="xnat:mrSessionData",
        columns="xnat:experimentData/date,xnat:imageSessionData/modality,xnat:imageSessionData/UID",
    )
    assert sorted(x["xnat:mrsessiondata/id"] for x in mr) == sorted([tree.ids["E1"], tree.ids["E2"]])
    assert all(set(x) == {"xnat:mrsessiondata/id", "date", "modality", "UID", "URI"} for x in mr), mr
    for columns in ("xnat:experimentData/date,xnat:imageSessionData/modality,xnat:imageSessionData/UID",
                    "date,modality,UID"):  # fmt: skip
        images = get(http, url, project=tree.project, columns=columns)
        assert sorted(x["session_ID"] for x in images) == sorted(tree.ids[k] for k in ("E1", "C1", "E2"))
        assert all(
            set(x) == {"session_ID", "date", "modality", "UID", "xsiType", "project", "URI"} for x in images
        )
    joined = get(
        http,
        url,
        project=tree.project,
        xsiType="xnat:imageSessionData",
        columns="xnat:imageAssessorData/id,xnat:imageAssessorData/label",
    )
    by_session: dict[str, Any] = {x["session_ID"]: x for x in joined}
    assert by_session[tree.ids["E1"]]["xnat:imageassessordata/label"] == "QC1"
    assert by_session[tree.ids["E2"]]["xnat:imageassessordata/id"] == ""


def test_listings_come_in_creation_order(http: httpx.Client) -> None:
    """XNAT's listing queries have no ORDER BY: PostgreSQL answers in the order the rows were stored,
    which is the order they were created in (xnatpy's own tests index into the project listing)."""
    tag = new_label("")
    created = [f"zz{tag}", f"AA{tag}", f"mm{tag}"]
    for pid in created:
        _ok(http.put(f"/data/projects/{pid}"))
    listed = [x["ID"] for x in get(http, "/data/projects") if x["ID"].endswith(tag)]
    assert listed == created
    project = created[0]
    for label in ("s_b", "S_A", "s_c"):
        _ok(http.put(f"/data/projects/{project}/subjects/{label}"))
    subjects = [x["label"] for x in get(http, f"/data/projects/{project}/subjects")]
    assert subjects == ["s_b", "S_A", "s_c"]


def test_shared_experiments_are_listed_in_creation_order_among_the_projects_own(http: httpx.Client) -> None:
    """XNAT lists a project's experiments and those shared into it in one query, in the order they
    were stored, not the project's own first."""
    home, there = new_label("H"), new_label("T")
    for pid in (home, there):
        _ok(http.put(f"/data/projects/{pid}"))
    for pid, subject in ((home, "SH"), (there, "ST")):
        _ok(http.put(f"/data/projects/{pid}/subjects/{subject}"))
    made = [(there, "ST", "X1"), (home, "SH", "A1"), (there, "ST", "X2"), (home, "SH", "A2")]
    for pid, subject, label in made:
        url = f"/data/projects/{pid}/subjects/{subject}/experiments/{label}"
        _ok(http.put(url, params={"xsiType": "xnat:mrSessionData"}))
    for label in ("X1", "X2"):
        _ok(http.put(f"/data/projects/{there}/subjects/ST/experiments/{label}/projects/{home}"))
    listed = [x["label"] for x in get(http, f"/data/projects/{home}/experiments")]
    assert listed == ["X1", "A1", "X2", "A2"]


def test_unknown_query_parameters_do_not_empty_a_listing(http: httpx.Client, tree: Tree) -> None:
    """XNAT ignores query parameters that name no column it knows (its project listing's
    ``accessible=true``, the resource listing's ``file_stats=true``, a script's own markers); they
    used to filter every row out."""
    projects = [x["ID"] for x in get(http, "/data/projects", accessible="true")]
    assert tree.project in projects
    subjects = get(http, f"/data/projects/{tree.project}/subjects", cachebuster="1", columns="label")
    assert sorted(x["label"] for x in subjects) == ["S1", "S2", "S3"]
    _ok(http.put(f"/data/projects/{tree.project}/resources/NOTES"))
    resources = get(http, f"/data/projects/{tree.project}/resources", file_stats="true")
    assert [x["label"] for x in resources] == ["NOTES"]
    assert (
        get(http, f"/data/projects/{tree.project}/subjects", label="S9") == []
    )  # a known column still filters


def test_joined_columns_never_name_a_project_the_caller_may_not_read(
    server: LiveServer, http: httpx.Client
) -> None:
    """A session of project A whose subject belongs to private project B (shared into A): a member of
    A sees the subject under its label and project in A, and none of B's other sessions."""
    a, b, user = new_label("A"), new_label("B"), new_label("u")
    for pid in (a, b):
        _ok(http.put(f"/data/projects/{pid}", params={"accessibility": "private"}))
    _ok(
        http.post("/xapi/users", json={"username": user, "password": "pass-word-1", "email": f"{user}@x.org"})
    )
    _ok(http.put(f"/data/projects/{a}/users/Members/{user}"))
    _ok(http.put(f"/data/projects/{b}/subjects/SB"))
    _ok(http.put(f"/data/projects/{b}/subjects/SB/experiments/EB", params={"xsiType": "xnat:mrSessionData"}))
    _ok(http.put(f"/data/projects/{b}/subjects/SB/projects/{a}", params={"label": "SB_in_A"}))
    _ok(
        http.put(
            f"/data/projects/{a}/subjects/SB_in_A/experiments/EA", params={"xsiType": "xnat:mrSessionData"}
        )
    )
    with server.client(auth=(user, "pass-word-1")) as member:
        got = get(member, f"/data/projects/{a}/experiments", columns="label,subject_label,subject_project")
        assert [(x["label"], x["subject_label"], x["subject_project"]) for x in got] == [("EA", "SB_in_A", a)]
        subjects = get(member, f"/data/projects/{a}/subjects", columns="label,xnat:mrSessionData/label")
        assert [(x["label"], x["xnat:mrsessiondata/label"]) for x in subjects] == [("SB_in_A", "EA")]
        text = member.get(
            f"/data/projects/{a}/subjects",
            params={"format": "csv", "columns": "xnat:mrSessionData/label,xnat:mrSessionData/project"},
        ).text
        assert b not in text and "EB" not in text
