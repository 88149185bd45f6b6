"""Listings of projects, subjects, experiments, scans and shares as Tables.

Each listing knows its default columns (XNAT's) and a getter that resolves any requested column —
a plain key, a shortcut or an XPath — from a record's columns and typed fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import browse as browse_queries
from xnatd.domain import types
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.services import access, visibility
from xnatd.services.context import Actor
from xnatd.services.records import field_values
from xnatd.services.resolve import Target

PROJECT_COLUMNS = ["ID", "secondary_ID", "name", "description", "pi_firstname", "pi_lastname"]
SUBJECT_COLUMNS = ["ID", "project", "label", "insert_date", "insert_user"]
EXPERIMENT_COLUMNS = ["ID", "project", "date", "xsiType", "label", "insert_date"]
SCAN_COLUMNS = ["xnat_imagescandata_id", "ID", "type", "quality", "xsiType", "note", "series_description"]
RECON_COLUMNS = ["xnat_reconstructedimagedata_id", "ID", "type", "baseScanType", "xsiType"]


def stamp(value: Any) -> str:
    """Timestamps as XNAT's tables print them (Java's Timestamp.toString)."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def make_getter(kind: str) -> Callable[[Mapping[Any, Any], str], str | None]:
    def getter(rec: Mapping[Any, Any], col: str) -> str | None:
        base = rec["_base"]
        if col in base:
            return str(base[col])
        low = col.lower()
        for key, value in base.items():
            if key.lower() == low:
                return str(value)
        if rec["_type"] not in types.REGISTRY:
            return None
        custom = types.custom_field_key(rec["_type"], col)
        if custom is not None:
            return types.text(rec["_fields"].get(custom))
        step = types.provenance_field(rec["_type"], col)
        if step is not None:
            # The first processing step (XNAT lists one row per step; see api-compatibility.md).
            steps = rec["_fields"].get(types.PROVENANCE) or [{}]
            return types.text(steps[0].get(step))
        fl = types.resolve_field(rec["_type"], col)
        if fl is None:
            return None
        return types.text(rec["_fields"].get(fl.path))

    return getter


def make_namer(xsi_type: str, base_keys: set[str]) -> Callable[[str], str]:
    """The header XNAT gives a requested column: its alias when the field has one, else the
    lowercased XPath (``xnat:subjectAssessorData/subject_id`` comes back as ``subject_ID``)."""
    lowered = {k.lower() for k in base_keys}

    def namer(col: str) -> str:
        if col.lower() in lowered:
            return col
        head = col.split("/", 1)[0]
        owner = head if ":" in head and "/" in col and head.lower() in _KNOWN else xsi_type
        fl = types.resolve_field(owner, col)
        if fl is None:
            return col.lower() if "/" in col else col
        if fl.shortcut:
            return fl.shortcut
        if "/" not in fl.path:
            return fl.path
        if fl.path.startswith("demographics/"):
            return fl.name
        return col.lower()

    return namer


_KNOWN = {t.xsi_type.lower() for t in types.all_types()}


def _record(kind: str, row: Mapping[Any, Any], xsi_type: str, base: dict[str, Any]) -> dict[str, Any]:
    return {"_base": base, "_type": xsi_type, "_fields": field_values(kind, row)}


def projects(conn: Connection, actor: Actor, query: ListQuery) -> Table:
    roles = q.roles(conn, actor.username) if not actor.is_guest else {}
    aliases = q.all_aliases(conn)
    records = []
    for row in q.all_projects(conn):
        if not access.can_see(actor, row, roles.get(row["id"])):
            continue
        values = field_values("project", row)
        base = {
            "ID": row["id"],
            "secondary_ID": row["secondary_id"],
            "name": row["name"],
            "description": row["description"],
            "pi_firstname": types.text(values.get("PI/firstname")),
            "pi_lastname": types.text(values.get("PI/lastname")),
            "URI": f"/data/projects/{row['id']}",
            "accessibility": row["accessibility"],
            "insert_date": stamp(row["insert_date"]),
            "insert_user": row["insert_user"],
            "xsiType": "xnat:projectData",
            "alias": ",".join(aliases.get(row["id"], [])),
        }
        records.append(_record("project", row, "xnat:projectData", base))
    return shape(records, query, PROJECT_COLUMNS, make_getter("project"), title="Projects")


def readable_project_ids(conn: Connection, actor: Actor) -> set[str]:
    return visibility.readable_project_ids(conn, actor)


def subjects(conn: Connection, actor: Actor, t: Target, query: ListQuery) -> Table:
    project_id = t.project_id if t.project is not None else None
    readable = None if project_id or actor.is_admin else readable_project_ids(conn, actor)
    records = []
    for row, proj, label in q.subjects_of(conn, project_id):
        if readable is not None and proj not in readable:
            continue
        base = {
            "ID": row["id"],
            "project": proj,
            "label": label,
            "insert_date": stamp(row["insert_date"]),
            "insert_user": row["insert_user"],
            "URI": f"/data/subjects/{row['id']}",
            "xsiType": "xnat:subjectData",
            "last_modified": stamp(row["last_modified"]),
        }
        records.append(_record("subject", row, "xnat:subjectData", base))
    namer = make_namer("xnat:subjectData", set(SUBJECT_COLUMNS) | {"URI", "xsiType"})
    return shape(records, query, SUBJECT_COLUMNS, make_getter("subject"), title="Subjects", namer=namer)


EXPERIMENT_BASE_KEYS = [
    *EXPERIMENT_COLUMNS,
    "insert_user",
    "xnat:subjectassessordata/id",
    "URI",
    "subject_ID",
    "session_ID",
    "time",
    "subject_label",
]


def experiment_base(
    row: Mapping[Any, Any], project: str, label: str, subject_label: str = ""
) -> dict[str, Any]:
    base = {
        "ID": row["id"],
        "project": project,
        "date": row["date"] or "",
        "xsiType": row["xsi_type"],
        "label": label,
        "insert_date": stamp(row["insert_date"]),
        "insert_user": row["insert_user"],
        "xnat:subjectassessordata/id": row["id"],
        "URI": f"/data/experiments/{row['id']}",
        "subject_ID": row["subject_id"] or "",
        "session_ID": row["session_id"] or "",
        "time": row["time"] or "",
    }
    if subject_label:
        base["subject_label"] = subject_label
    return base


def experiments(
    conn: Connection,
    actor: Actor,
    t: Target,
    query: ListQuery,
    xsi_type: str | None,
    assessors_of: str | None,
) -> Table:
    kinds = types.subtypes(xsi_type) if xsi_type else None
    if kinds is None and assessors_of is None:
        kinds = types.subtypes("xnat:subjectAssessorData") + types.subtypes("xnat:imageAssessorData")
    project_id = t.project_id if t.project is not None else None
    subject_id = t.subject["id"] if t.subject is not None else None
    defaults = list(EXPERIMENT_COLUMNS)
    if project_id is not None:
        defaults.append("xnat:subjectassessordata/id")
    getter = make_getter("experiment")
    fast = _sql_pageable(query, project_id, assessors_of) and not q.has_shared_experiments(
        conn, project_id or ""
    )
    page = ((query.offset or 0), query.limit) if fast and query.paged else None
    rows, total = q.experiments_query(conn, project_id, subject_id, assessors_of, kinds, page)
    readable = None if project_id or actor.is_admin else readable_project_ids(conn, actor)
    subject_labels = _subject_labels(conn, query, rows)
    records = []
    for row, proj, label in rows:
        if readable is not None and proj not in readable:
            continue
        base = experiment_base(row, proj, label, subject_labels.get((row["subject_id"] or "", proj), ""))
        records.append(_record("experiment", row, row["xsi_type"], base))
    namer = make_namer(xsi_type or "xnat:imageSessionData", set(EXPERIMENT_BASE_KEYS))
    return shape(
        records,
        query,
        defaults,
        getter,
        title="Matching experiments",
        total_known=total if page is not None else None,
        namer=namer,
        always=("ID", "xsiType", "URI"),  # XNAT adds the type to every experiment query
    )


def _subject_labels(
    conn: Connection, query: ListQuery, rows: list[tuple[Any, str, str]]
) -> dict[tuple[str, str], str]:
    """Labels of the rows' subjects in the project each row shows under (a subject shared into it
    has its label there), by (subject ID, project); looked up only when a column, filter or sort
    names ``subject_label`` (pyxnat's ``repr()`` asks ``/data/experiments?columns=subject_label``)."""
    asked = [*(query.columns or []), *query.filters, *query.sort_by]
    if not any(c.lower() == "subject_label" for c in asked):
        return {}
    by_project: dict[str, set[str]] = {}
    for row, proj, _ in rows:
        if row["subject_id"]:
            by_project.setdefault(proj, set()).add(row["subject_id"])
    out: dict[tuple[str, str], str] = {}
    for proj, found in by_project.items():
        ids = sorted(found)
        for start in range(0, len(ids), 500):  # bounded IN lists
            labels = browse_queries.subject_labels(conn, ids[start : start + 500], proj)
            out.update({(sid, proj): label for sid, label in labels.items()})
    return out


def _sql_pageable(query: ListQuery, project_id: str | None, assessors_of: str | None) -> bool:
    """Whether paging can happen in SQL: no filters or sorts that need the typed fields."""
    return project_id is not None and not query.filters and not query.sort_by and assessors_of is None


def children(conn: Connection, t: Target, kind: str, query: ListQuery) -> Table:
    assert t.experiment is not None
    exp_id = t.experiment["id"]
    records = []
    for row in q.children(conn, exp_id, kind):
        values = field_values("scan", row)
        base = {
            "ID": row["scan_id"],
            "type": row["type"] or "",
            "xsiType": row["xsi_type"],
            "quality": types.text(values.get("quality")),
            "note": types.text(values.get("note")),
            "series_description": types.text(values.get("series_description")),
            "URI": f"/data/experiments/{exp_id}/{kind}s/{row['scan_id']}",
        }
        if kind == "scan":
            base["xnat_imagescandata_id"] = row["pk"]
        else:
            base["xnat_reconstructedimagedata_id"] = row["pk"]
            base["baseScanType"] = types.text(values.get("baseScanType"))
        records.append({"_base": base, "_type": row["xsi_type"], "_fields": values})
    defaults = SCAN_COLUMNS if kind == "scan" else RECON_COLUMNS
    title = "Scans" if kind == "scan" else "Reconstructions"
    namer = make_namer("xnat:mrScanData", set(defaults) | {"URI"})
    return shape(records, query, defaults, make_getter("scan"), title=title, namer=namer)


def shares(conn: Connection, actor: Actor, t: Target, kind: str, query: ListQuery) -> Table:
    """``.../projects``: the object's own project, then those it is shared into, each with its
    label there; only projects the caller may read are rows."""
    row = t.experiment if kind == "experiment" else t.subject
    assert row is not None
    v = visibility.viewer(conn, actor)
    owner = q.project(conn, row["project_id"])
    entries = [(owner, row["label"])] + [
        (q.project(conn, s["project_id"]), s["label"]) for s in q.shares_of(conn, kind, row["id"])
    ]
    records = []
    for proj, label in entries:
        if proj is None or not v.reads(proj["id"]):
            continue
        base = {
            "label": label,
            "ID": proj["id"],
            "Secondary_ID": proj["secondary_id"],
            "Name": proj["name"],
            "URI": f"/data/projects/{proj['id']}",
        }
        records.append({"_base": base, "_type": "xnat:projectData", "_fields": {}})
    return shape(
        records,
        query,
        ["label", "ID", "Secondary_ID", "Name"],
        make_getter("project"),
        title="Projects",
        always=("ID",),
    )
