"""Listings whose columns name other objects: loading those objects, and one row per joined child.

``domain/listing_columns`` says which objects along which ways each column, filter and sort key
needs. This module loads them for all of a listing's records at once (``db/joins``: one statement per
kind of object, whatever the number of rows; a listing with scan columns costs the same few
statements for ten sessions as for ten thousand) and gives ``domain/table.shape`` what it needs: a
cell's text, every value a filter may match (a session matches ``xnat:mrScanData/type=T1*`` when one
of its scans does, as XNAT's criteria pick the listed objects) and a record's rows (one per scan when
scan columns are shown, as XNAT's join gives).

A record is ``{"_base": row keys, "_type": xsi:type, "_fields": registry values, "_rel": {way: the
object above, or the list of objects below}}``; an expanded row adds ``"_at"``: the object each
shown way leads to in this row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from xnatd.db import joins as jq
from xnatd.domain import types
from xnatd.domain.listing_columns import (
    ASSESSORS,
    EXPERIMENTS,
    FIELDS,
    RECONSTRUCTIONS,
    RESOURCES,
    SCANS,
    SESSION_OF,
    SHARES,
    SUBJECT_OF,
    UP,
    Column,
    Plan,
    Ways,
)
from xnatd.errors import InvalidInput
from xnatd.services.archive.records import field_values

Rec = dict[str, Any]
_MISSING = object()
_FEW = 500  # up to this many rows are named by their IDs, more by the listing's own query
_CHILD_KINDS = {SCANS: "scan", RECONSTRUCTIONS: "reconstruction"}


def record(base: dict[str, Any], xsi_type: str, fields: dict[str, Any]) -> Rec:
    return {"_base": base, "_type": xsi_type, "_fields": fields, "_rel": {}}


def stamp(value: Any) -> str:
    """Timestamps as XNAT's tables print them (Java's Timestamp.toString)."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


class Stamp:
    """A timestamp a row may show: printed (``str``) only if a column asks for it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return stamp(self.value)


def experiment_base(row: Mapping[Any, Any], project: str, label: str) -> dict[str, Any]:
    return {
        "ID": row["id"],
        "project": project,
        "date": row["date"] or "",
        "xsiType": row["xsi_type"],
        "label": label,
        "insert_date": stamp(row["insert_date"]),
        "insert_user": row["insert_user"],
        "last_modified": Stamp(row["last_modified"] or row["insert_date"]),
        "URI": f"/data/experiments/{row['id']}",
        "subject_ID": row["subject_id"] or "",
        "session_ID": row["session_id"] or "",
        "time": row["time"] or "",
    }


def subject_base(row: Mapping[Any, Any], project: str, label: str) -> dict[str, Any]:
    return {
        "ID": row["id"],
        "project": project,
        "label": label,
        "insert_date": stamp(row["insert_date"]),
        "insert_user": row["insert_user"],
        "URI": f"/data/subjects/{row['id']}",
        "xsiType": "xnat:subjectData",
        "last_modified": Stamp(row["last_modified"] or row["insert_date"]),
    }


def child_record(row: Mapping[Any, Any], experiment_id: str) -> Rec:
    """A scan or reconstruction."""
    values = field_values("scan", row)
    kind = "scans" if row["kind"] == "scan" else "reconstructions"
    base = {
        "ID": row["scan_id"],
        "type": row["type"] or "",
        "xsiType": row["xsi_type"],
        "quality": types.text(values.get("quality")),
        "note": types.text(values.get("note")),
        "series_description": types.text(values.get("series_description")),
        "insert_date": Stamp(row["insert_date"]),
        "insert_user": "",
        "last_modified": Stamp(row["insert_date"]),
        "URI": f"/data/experiments/{experiment_id}/{kind}/{row['scan_id']}",
    }
    if row["kind"] == "scan":
        base["xnat_imagescandata_id"] = row["pk"]
    else:
        base["xnat_reconstructedimagedata_id"] = row["pk"]
        base["baseScanType"] = types.text(values.get("baseScanType"))
    return record(base, row["xsi_type"], values)


def _natural(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


# --- loading --------------------------------------------------------------------------------------


def ids_of(records: Sequence[Rec], whole: jq.Ids) -> jq.Ids:
    """How to name the records' objects to the database: by ID for a few, else by the listing's query."""
    return [str(r["_base"]["ID"]) for r in records] if len(records) <= _FEW else whole


def _none(ids: jq.Ids) -> bool:
    """Whether ``ids`` names no object at all (an empty page; a sub-select may name any number)."""
    return isinstance(ids, list | tuple | set | frozenset) and not ids


def _below(needed: set[Ways], way: str) -> set[Ways]:
    return {w[1:] for w in needed if len(w) > 1 and w[0] == way}


def load_experiments(
    conn: Connection, records: Sequence[Rec], needed: set[Ways], ids: jq.Ids, readable: set[str] | None
) -> None:
    """Link experiment records to what their columns need: subject, session, scans, assessors..."""
    if not needed or not records:
        return
    if (SUBJECT_OF,) in needed:
        _link_subjects(conn, records, ids, readable)
    if (SESSION_OF,) in needed:
        sessions = {r["id"]: r for r in jq.sessions_of_assessors(conn, ids)}
        for rec in records:
            row = sessions.get(rec["_base"]["session_ID"])
            if row is not None and _reads(readable, row["project_id"], ()):
                base = experiment_base(row, row["project_id"], row["label"])
                rec["_rel"][SESSION_OF] = record(base, row["xsi_type"], field_values("experiment", row))
    for way, kind in _CHILD_KINDS.items():
        if (way,) in needed:
            _link_children(conn, records, ids, way, kind)
            if (way, RESOURCES) in needed:
                children = [c for rec in records for c in rec["_rel"][way]]
                _link_resources(
                    children, [] if _none(ids) else jq.resources_of_children(conn, ids, kind), kind
                )
    if (ASSESSORS,) in needed:
        _link_assessors(conn, records, ids, readable)
    _link_own(conn, "experiment", records, needed, ids, readable)


def load_subjects(
    conn: Connection, records: Sequence[Rec], needed: set[Ways], ids: jq.Ids, readable: set[str] | None
) -> None:
    """Link subject records to their experiments (and those to their scans) and custom variables."""
    if not needed or not records:
        return
    if (EXPERIMENTS,) in needed:
        shares = _shares_by_object(jq.experiment_shares_of_subjects(conn, ids))
        by_subject: dict[str, list[Rec]] = {}
        experiments: list[Rec] = []
        for row in jq.experiments_of_subjects(conn, ids):
            place = _place(row, shares.get(row["id"], []), readable)
            if place is None:
                continue
            rec = record(experiment_base(row, *place), row["xsi_type"], field_values("experiment", row))
            by_subject.setdefault(row["subject_id"], []).append(rec)
            experiments.append(rec)
        for rec in records:
            rec["_rel"][EXPERIMENTS] = by_subject.get(rec["_base"]["ID"], [])
        below = _below(needed, EXPERIMENTS)
        load_experiments(conn, experiments, below, jq.experiment_ids_of_subjects(ids), readable)
    _link_own(conn, "subject", records, needed, ids, readable)


def load_resources(
    conn: Connection, kind: str, records: Sequence[Rec], needed: set[Ways], ids: jq.Ids
) -> None:
    """Link records (projects, a session's scans) to their resources, for ``.../resources/resource/...``
    and ``file/...`` columns."""
    if (RESOURCES,) in needed and records and not _none(ids):
        _link_resources(records, jq.resources_of_objects(conn, kind, ids), kind)


def load_own(records: Sequence[Rec], needed: set[Ways]) -> None:
    """Custom-variable rows, for listings of objects that are joined to nothing else."""
    if (FIELDS,) in needed:
        for rec in records:
            rec["_rel"][FIELDS] = _custom_rows(rec)


def _link_own(
    conn: Connection,
    kind: str,
    records: Sequence[Rec],
    needed: set[Ways],
    ids: jq.Ids,
    readable: set[str] | None,
) -> None:
    load_own(records, needed)
    load_resources(conn, kind, records, needed, ids)
    if (SHARES,) in needed:
        shares = _shares_by_object([] if _none(ids) else jq.shares_of_many(conn, kind, ids))
        for rec in records:
            rows = shares.get(rec["_base"]["ID"], [])
            rec["_rel"][SHARES] = [
                record({"project": p, "label": label}, "", {}) for p, label in rows if _reads(readable, p, ())
            ]


def _link_subjects(conn: Connection, records: Sequence[Rec], ids: jq.Ids, readable: set[str] | None) -> None:
    """Each experiment's subject, labelled as in the project the experiment shows under (a subject
    shared into that project has its label there); a subject whose own project the caller may not
    read shows under the experiment's project, so that project's name is never shown."""
    subjects = {r["id"]: r for r in jq.subjects_of_experiments(conn, ids)}
    labels = {
        (r["object_id"], r["project_id"]): r["label"] for r in jq.subject_shares_of_experiments(conn, ids)
    }
    for rec in records:
        row = subjects.get(rec["_base"]["subject_ID"])
        if row is None:
            continue
        shown = rec["_base"]["project"]
        label = labels.get((row["id"], shown), row["label"])
        base = subject_base(
            row, row["project_id"] if _reads(readable, row["project_id"], ()) else shown, label
        )
        rec["_rel"][SUBJECT_OF] = record(base, "xnat:subjectData", field_values("subject", row))


def _link_resources(records: Sequence[Rec], rows: Iterable[Mapping[Any, Any]], kind: str) -> None:
    """Attach resource rows to the records that own them (``{kind}:{ID}``, a scan's ``scan:{pk}``)."""
    by_owner: dict[str, list[Rec]] = {}
    for row in rows:
        base = {
            "xnat_abstractresource_id": row["pk"],
            "label": row["label"],
            "format": row["format"],
            "content": row["content"],
            "description": row["description"],
            "tags": row["tags"],
            "element_name": "xnat:resourceCatalog",
        }
        by_owner.setdefault(row["owner"], []).append(record(base, "xnat:resourceCatalog", {}))
    for rec in records:
        key = rec["_base"].get("xnat_imagescandata_id", rec["_base"].get("xnat_reconstructedimagedata_id"))
        owner = (
            f"{kind}:{key if key is not None and kind in ('scan', 'reconstruction') else rec['_base']['ID']}"
        )
        rec["_rel"][RESOURCES] = by_owner.get(owner, [])


def _link_children(conn: Connection, records: Sequence[Rec], ids: jq.Ids, way: str, kind: str) -> None:
    _attach_children(records, [] if _none(ids) else jq.children_of(conn, ids, kind), way)


def _attach_children(records: Sequence[Rec], rows: Iterable[Mapping[Any, Any]], way: str) -> None:
    by_experiment: dict[str, list[Mapping[Any, Any]]] = {}
    for row in rows:
        by_experiment.setdefault(row["experiment_id"], []).append(row)
    for rec in records:
        found = sorted(by_experiment.get(rec["_base"]["ID"], []), key=lambda r: _natural(r["scan_id"]))
        rec["_rel"][way] = [child_record(row, rec["_base"]["ID"]) for row in found]


def _link_assessors(conn: Connection, records: Sequence[Rec], ids: jq.Ids, readable: set[str] | None) -> None:
    by_session: dict[str, list[Rec]] = {}
    for row in [] if _none(ids) else jq.assessors_of_sessions(conn, ids):
        if _reads(readable, row["project_id"], ()):
            rec = record(
                experiment_base(row, row["project_id"], row["label"]),
                row["xsi_type"],
                field_values("experiment", row),
            )
            by_session.setdefault(row["session_id"], []).append(rec)
    for rec in records:
        rec["_rel"][ASSESSORS] = by_session.get(rec["_base"]["ID"], [])


def _custom_rows(rec: Rec) -> list[Rec]:
    """A record's custom variables as rows of XNAT's ``fields/field`` (``name``, ``field``)."""
    return [
        record({"name": name, "field": types.text(value)}, "", {})
        for name, value in types.custom_values(rec["_fields"]).items()
    ]


def _shares_by_object(rows: Iterable[Mapping[Any, Any]]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        out.setdefault(row["object_id"], []).append((row["project_id"], row["label"]))
    return out


def _reads(readable: set[str] | None, project: str, shared: Iterable[tuple[str, str]]) -> bool:
    return readable is None or project in readable or any(p in readable for p, _ in shared)


def _place(
    row: Mapping[Any, Any], shared: list[tuple[str, str]], readable: set[str] | None
) -> tuple[str, str] | None:
    """(project, label) an experiment joined to a subject shows under: its own if readable, else the
    first readable project it is shared into; None if the caller may read neither."""
    if readable is None or row["project_id"] in readable:
        return row["project_id"], row["label"]
    return next(((p, label) for p, label in shared if p in readable), None)


# --- rows -----------------------------------------------------------------------------------------


class Rows:
    """Cells, filter values and expanded rows of one listing, from its plan and shown columns."""

    def __init__(self, plan: Plan, shown: Sequence[str]) -> None:
        self.plan = plan
        self.shown = list(shown)
        self.expanding = {w for w in plan.ways(self.shown) if any(x not in UP for x in w)}
        self._resolved: dict[str, Column] = {}

    def getter(self, row: Mapping[str, Any], text: str) -> str | None:
        column = self._resolved.get(text)
        if column is None:
            column = self.plan.column(text)
            if column is None:
                return None
            self._resolved[text] = column
        target: Mapping[str, Any] | None = row
        if column.ways:
            target = self._target(row, column.ways)
            if target is None:
                return ""
        assert target is not None
        if column.element is not None and not _is_a(target["_type"], column.element):
            return ""
        return _value(target, column)

    def values(self, rec: Mapping[str, Any], text: str) -> list[str] | None:
        """Every value a column takes for a record (one per joined child for a child's column), or
        None when the record has no such column (a name that is no key or field of it)."""
        column = self.plan.column(text)
        if column is None or (column.raw and not column.ways and _value(rec, column) is None):
            return None
        out = []
        for target in _all(rec, column.ways):
            if _fits(target, column) and (value := _value(target, column)) is not None:
                out.append(value)
        return out

    def expand(self, rec: Rec) -> list[Rec]:
        """A record's rows: one per combination of the children its shown columns join."""
        if not self.expanding:
            return [rec]
        return [{**rec, "_at": at} for at in self._bind(rec, ())]

    def _bind(self, obj: Rec | None, prefix: Ways) -> list[dict[Ways, Rec | None]]:
        out: list[dict[Ways, Rec | None]] = [{prefix: obj}]
        depth = len(prefix)
        for nxt in sorted({w[: depth + 1] for w in self.expanding if len(w) > depth and w[:depth] == prefix}):
            found = obj["_rel"].get(nxt[-1]) if obj is not None else None
            if nxt[-1] in UP:
                kids: list[Rec | None] = [found]
            else:
                only = self.plan.only(nxt, self.shown)
                kids = [k for k in found or [] if only is None or _is_a(k["_type"], only)] or [None]
            sub = [b for kid in kids for b in self._bind(kid, nxt)]
            out = [{**a, **b} for a in out for b in sub]
        return out

    @staticmethod
    def _target(row: Mapping[str, Any], ways: Ways) -> Mapping[str, Any] | None:
        at: Mapping[Ways, Rec | None] = row.get("_at") or {}
        obj: Mapping[str, Any] | None = row
        rest = ways
        for depth in range(len(ways), 0, -1):
            if ways[:depth] in at:
                obj, rest = at[ways[:depth]], ways[depth:]
                break
        for way in rest:
            if obj is None:
                return None
            found = obj["_rel"].get(way)
            obj = found if way in UP else (found[0] if found else None)
        return obj


def _all(rec: Mapping[str, Any] | None, ways: Ways) -> list[Mapping[str, Any]]:
    if rec is None:
        return []
    if not ways:
        return [rec]
    found = rec["_rel"].get(ways[0])
    kids = [found] if ways[0] in UP else list(found or [])
    return [t for kid in kids for t in _all(kid, ways[1:])]


def _is_a(xsi_type: str, element: str) -> bool:
    try:
        return types.is_a(xsi_type, element)
    except InvalidInput:
        return False


def _fits(target: Mapping[str, Any], column: Column) -> bool:
    return column.element is None or _is_a(target["_type"], column.element)


def _value(target: Mapping[str, Any], column: Column) -> str | None:
    fields = target["_fields"]
    if column.custom is not None:
        return types.text(fields.get(column.custom))
    if column.provenance is not None:  # the first processing step (XNAT: a row per step)
        steps = fields.get(types.PROVENANCE) or [{}]
        return types.text(steps[0].get(column.provenance))
    base = target["_base"]
    found = base.get(column.key, _MISSING)
    if found is not _MISSING:
        return str(found)
    low = column.key.lower()
    for key, value in base.items():
        if key.lower() == low:
            return str(value)
    if not column.raw:
        return types.text(fields.get(column.key))
    xsi_type = target["_type"]
    if xsi_type not in types.REGISTRY:
        return None
    custom = types.custom_field_key(xsi_type, column.key)
    if custom is not None:
        return types.text(fields.get(custom))
    found = types.resolve_field(xsi_type, column.key)
    return None if found is None else types.text(fields.get(found.path))
