"""Create, read and update projects, subjects, experiments, scans, assessors and reconstructions —
the archive's objects (their files are in ``resources``; deleting them is ``deletion``, sharing
them into other projects ``sharing``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.domain import labels, types
from xnatd.domain.address import Address
from xnatd.domain.params import Params, param
from xnatd.errors import Conflict, Forbidden, InvalidInput, MissingContent, NotFound
from xnatd.services import access
from xnatd.services.access import visibility
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import protocols, records, scan_types
from xnatd.services.archive.items import build_item
from xnatd.services.archive.resolve import Target, require_through_share, resolve, role_of

STEERING = (
    "xsiType",
    "req_format",
    "inbody",
    "format",
    "removeFiles",
    "event_reason",
    "event_type",
    "event_action",
    "allowDataDeletion",
    "primary",
    "label",
)


# XNAT's ScanResource: a scan keeps its type (only the abstract one may be given a modality), and the
# abstract type itself cannot be stored.
TYPE_CHANGED = "Specified xsiType differs from existing xsiType"
ABSTRACT_SCAN = (
    "Multiple scan modalities can be associated here.  Please retry with the specification of a "
    "particular modality (i.e. ?xsiType=xnat:mrScanData)."
)


@dataclass
class PutResult:
    created: bool
    body: str


def get_item(ctx: Context, actor: Actor, addr: Address) -> Any:
    with ctx.db.read() as conn:
        t = resolve(conn, actor, addr, access.READ)
        with_data = t.project is None or access.allowed(actor, t.project, t.role, access.READ)
        return build_item(conn, addr, t, visibility.viewer(conn, actor), with_data)


# --- PUT -------------------------------------------------------------------------------------------


BASE_TYPES = {
    "project": "xnat:projectData",
    "subject": "xnat:subjectData",
    "experiment": "xnat:subjectAssessorData",
    "assessor": "xnat:imageAssessorData",
    "scan": "xnat:imageScanData",
    "reconstruction": "xnat:reconstructedImageData",
}


def put(ctx: Context, actor: Actor, addr: Address, params: Params, xml: bytes | None) -> PutResult:
    access.require_user(actor)
    requested = param(params, "xsiType")
    if requested and not types.is_a(requested, BASE_TYPES[addr.level]):
        raise InvalidInput(f"Data type {requested} cannot be stored at a {addr.level} address")
    with ctx.db.write() as conn:
        if addr.level == "project":
            return _put_project(ctx, conn, actor, addr, params, xml)
        if addr.project is None and addr.level in ("subject", "experiment"):
            # ``/data/subjects/{ID}``, ``/data/experiments/{ID}``: update the object in its own project.
            addr = replace(addr, project=resolve(conn, actor, addr, access.EDIT).project_id)
        if addr.level == "experiment" and addr.subject and addr.project:
            t = resolve(conn, actor, addr, access.EDIT, upto="project")
            _subject_for_experiment(ctx, conn, actor, addr, t)
        else:
            t = resolve(conn, actor, addr, access.EDIT, upto=_parent_level(addr.level))
        if addr.level == "subject":
            return _put_subject(ctx, conn, actor, addr, t, params, xml)
        if addr.level in ("experiment", "assessor"):
            return _put_experiment(ctx, conn, actor, addr, t, params, xml)
        return _put_child(conn, addr, t, params, xml)


def _subject_for_experiment(ctx: Context, conn: Connection, actor: Actor, addr: Address, t: Target) -> None:
    """The subject named in an experiment's URL; XNAT creates it when it does not exist yet."""
    assert addr.subject is not None
    found = q.in_project(conn, "subject", t.project_id, addr.subject)
    if found is None:
        _put_subject(ctx, conn, actor, replace(addr, kind="subject", experiment=None), t, [], None)
        found = q.in_project(conn, "subject", t.project_id, addr.subject)
    assert found is not None
    t.subject, t.subject_label = found


def _parent_level(level: str) -> str:
    return {
        "subject": "project",
        "experiment": "subject",
        "assessor": "experiment",
        "scan": "experiment",
        "reconstruction": "experiment",
    }[level]


def _fields_from(xsi_type: str, params: Params, xml: bytes | None, base: str) -> tuple[str, dict[str, Any]]:
    values: dict[str, Any] = {}
    if xml:
        xsi_type, values = records.parse_xml(xml, base)
    values.update(records.parse_params(xsi_type, params, ignore=STEERING))
    return xsi_type, values


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    if any(new.get(records.DEMO + k) is not None for k in ("dob", "yob", "age")):
        for k in ("dob", "yob", "age"):
            merged.pop(records.DEMO + k, None)
    for key, value in new.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def create_project(ctx: Context, actor: Actor, xml: bytes | None, params: Params) -> str:
    """``POST /data/projects`` with an XML document: the project's ID comes from the document."""
    if not xml:
        raise MissingContent("Need PUT Contents: POST an xnat:Project XML document to create a project")
    project_id = records.xml_root_attr(xml, "ID")
    if not project_id:
        raise InvalidInput("The project document has no ID attribute")
    with ctx.db.write() as conn:
        if q.project(conn, project_id) is not None:
            raise Conflict("Project already exists.")
        _put_project(ctx, conn, actor, Address("project", project=project_id), params, xml)
    return project_id


# Project columns an empty value (or NULL) clears; the name and secondary ID a project always has.
CLEARABLE_PROJECT_COLUMNS = frozenset({"description"})


def _put_project(
    ctx: Context, conn: Connection, actor: Actor, addr: Address, params: Params, xml: bytes | None
) -> PutResult:
    assert addr.project is not None
    _, values = _fields_from("xnat:projectData", params, xml, "xnat:projectData")
    defined = protocols.parse(xml) if xml else None
    if defined is not None:
        values[protocols.STORED] = defined or None
    access_level = param(params, "accessibility")
    if access_level is not None and access_level not in ("private", "protected", "public"):
        raise InvalidInput(f"Invalid accessibility {access_level!r}: private, protected or public")
    existing = q.project(conn, addr.project)
    may_create = actor.is_admin or (not actor.is_guest and ctx.settings.allow_project_creation)
    if existing is not None and not access.can_see(actor, existing, role_of(conn, actor, existing["id"])):
        # A project the caller cannot see answers as a missing one would, up to the creation it
        # asks for: who may not create projects is refused as for a new ID; who may is told the ID
        # is taken (creating it must fail, and XNAT answers so too).
        if not may_create:
            raise Forbidden("Only site administrators may create projects on this site")
        raise Conflict(f"Project ID {addr.project} is already in use")
    _check_unique(conn, existing["id"] if existing is not None else addr.project, values)
    if existing is None:
        if not may_create:
            raise Forbidden("Only site administrators may create projects on this site")
        labels.check_label(addr.project, "project")
        if q.alias_owner(conn, addr.project) is not None:
            raise Conflict(f"Requested new project conflicts with an existing project alias: {addr.project}")
        cols, rest = records.split_columns("project", values)
        cols = {k: v for k, v in cols.items() if v is not None}  # an empty value: the column's default
        cols.setdefault("name", addr.project)
        cols.setdefault("secondary_id", addr.project)
        # XNAT's initArcProject: the site's default prearchive code (defaultPrearchiveCode, 4)
        cols.setdefault("prearchive_code", ctx.settings.default_prearchive_code)
        q.insert_project(
            conn,
            id=addr.project,
            fields=rest,
            insert_user=actor.username,
            accessibility=access_level or "private",
            **{k: v for k, v in cols.items() if k != "id"},
        )
        q.set_role(conn, addr.project, actor.username, "owner")
        _set_aliases(conn, addr.project, rest)
        return PutResult(True, "")
    access.require(actor, existing, role_of(conn, actor, existing["id"]), access.EDIT)
    merged = _merge(records.field_values("project", existing), values)
    cols, rest = records.split_columns("project", merged)
    cols.pop("id", None)
    for path, column in records.COLUMN_FIELDS["project"].items():
        if column in CLEARABLE_PROJECT_COLUMNS and path in values and values[path] is None:
            cols[column] = ""  # given empty: cleared (an empty name or secondary ID keeps the old one)
    if access_level is not None:
        access.require(actor, existing, role_of(conn, actor, existing["id"]), access.OWN)
        cols["accessibility"] = access_level
    q.update_project(conn, existing["id"], fields=rest, **cols)
    _set_aliases(conn, existing["id"], rest)
    return PutResult(False, "")


def _check_unique(conn: Connection, project_id: str, values: dict[str, Any]) -> None:
    """A project's name (title) and secondary ID (running title) are each its own, as XNAT keeps them:
    one already used by another project, as either, is refused."""
    for path in ("name", "secondary_ID"):
        given = str(values.get(path) or "").strip()
        if not given:
            continue
        other = q.project_named(conn, given, project_id)
        if other is not None:
            label = "name" if path == "name" else "secondary ID"
            raise Conflict(f"Invalid project {label} {given!r}: already used by another project")


def _set_aliases(conn: Connection, project_id: str, fields: dict[str, Any]) -> None:
    raw = fields.pop("alias", None)
    if raw is None:
        return
    names = [a.strip() for a in str(raw).split(",") if a.strip()]
    for name in names:
        labels.check_label(name, "project alias")
        owner = q.alias_owner(conn, name)
        if (owner is not None and owner != project_id) or (name != project_id and q.project(conn, name)):
            raise Conflict(f"Alias {name} is already used by another project")
    q.set_aliases(conn, project_id, sorted(set(q.aliases(conn, project_id)) | set(names)))
    q.update_project(conn, project_id, fields=fields)


def new_id(ctx: Context, conn: Connection, kind: str) -> str:
    """A new site-wide accession ID for a subject or experiment (also used by the DICOM archiver)."""
    return _new_id(ctx, conn, kind)


def _new_id(ctx: Context, conn: Connection, kind: str) -> str:
    letter = {"subject": "S", "experiment": "E"}[kind]
    prefix = labels.site_prefix(ctx.settings.site_id)
    while True:
        candidate = labels.accession_id(prefix, letter, q.next_number(conn, f"{prefix}_{letter}"))
        if q.by_id(conn, kind, candidate) is None:
            return candidate


def _chosen_id(conn: Connection, kind: str, params: Params, xml: bytes | None) -> str | None:
    """The ID a client gives a new subject or experiment (``ID=``, or its document's ``ID``): XNAT
    keeps it and makes one up only when none is given. dax names each pipeline run by a UUID it
    picks and finds the run again by that ID, so it must become the object's accession ID. (On
    existing objects the ID stays read-only, as ``records.READ_ONLY`` says.)"""
    given = param(params, "ID") or (records.xml_root_attr(xml, "ID") if xml else None)
    if given is None or not given.strip():
        return None
    chosen = labels.check_label(given.strip(), kind)
    if q.by_id(conn, kind, chosen) is not None:
        raise Conflict(f"The {kind} ID {chosen} is already in use")
    return chosen


def _rename(conn: Connection, kind: str, t: Target, row: Any, label_here: str, params: Params) -> None:
    """``label=``: the object's label in the URL's project. Through a share that is the share's own
    label; the object's label in its own project changes only through that project (XNAT's rule)."""
    new = param(params, "label")
    if new is None or new == label_here:
        return
    labels.check_label(new, kind)
    if q.label_taken(conn, kind, t.project_id, new):
        raise Conflict("Specified label is already in use.")
    if row["project_id"] != t.project_id:
        q.set_share_label(conn, kind, row["id"], t.project_id, new)
    else:
        q.update_object(conn, kind, row["id"], label=new)


def _changing(conn: Connection, actor: Actor, t: Target, row: Any, changes: bool, what: str) -> bool:
    """Whether the object's own data is to change; through a share that needs edit rights in the
    project that owns it (the URL's project was checked already)."""
    if row["project_id"] == t.project_id:
        return True
    if changes:
        require_through_share(conn, actor, t.project_id, row["project_id"], access.EDIT, what)
    return changes


def _put_subject(
    ctx: Context, conn: Connection, actor: Actor, addr: Address, t: Target, params: Params, xml: bytes | None
) -> PutResult:
    assert addr.subject is not None
    _, values = _fields_from("xnat:subjectData", params, xml, "xnat:subjectData")
    values.pop("label", None)
    found = q.in_project(conn, "subject", t.project_id, addr.subject)
    if found is not None:
        row, label_here = found
        if _changing(conn, actor, t, row, bool(values), f"Subject {addr.subject}"):
            merged = _merge(dict(row["fields"] or {}), values)
            q.update_object(conn, "subject", row["id"], fields=merged)
        _rename(conn, "subject", t, row, label_here, params)
        return PutResult(False, row["id"])
    label = param(params, "label") or addr.subject
    labels.check_label(label, "subject")
    if q.label_taken(conn, "subject", t.project_id, label):
        if label == addr.subject and q.in_project(conn, "subject", t.project_id, label) is not None:
            return _put_subject(ctx, conn, actor, addr, t, params, xml)  # created concurrently just now
        raise Conflict("Specified label is already in use.")
    new_id = _chosen_id(conn, "subject", params, xml) or _new_id(ctx, conn, "subject")
    inserted = q.insert_object(
        conn,
        "subject",
        id=new_id,
        project_id=t.project_id,
        label=label,
        fields=_merge({}, values),
        insert_user=actor.username,
    )
    if not inserted:  # a concurrent PUT created it a moment ago: this one is now an update
        return _put_subject(ctx, conn, actor, addr, t, params, xml)
    return PutResult(True, new_id)


def _put_experiment(
    ctx: Context, conn: Connection, actor: Actor, addr: Address, t: Target, params: Params, xml: bytes | None
) -> PutResult:
    key = addr.child if addr.level == "assessor" else addr.experiment
    assert key is not None
    found = q.in_project(conn, "experiment", t.project_id, key)
    requested = param(params, "xsiType")
    if found is not None:
        # XNAT sets the request's values on the stored experiment (its ``template``): the type it
        # has stays, another ``xsiType`` is ignored.
        row, label_here = found
        xsi_type = row["xsi_type"]
        _, values = _fields_from(xsi_type, params, xml, xsi_type)
        values.pop("label", None)
        fix = scan_types.asked(params)
        if _changing(conn, actor, t, row, bool(values) or bool(xml) or fix, f"Experiment {key}"):
            cols, rest = records.split_columns(
                "experiment", _merge(records.field_values("experiment", row), values)
            )
            for k in ("id", "label", "project_id", "subject_id", "session_id"):
                cols.pop(k, None)
            q.update_object(conn, "experiment", row["id"], fields=rest, **cols)
            _put_xml_scans(conn, row["id"], xml)
            if fix:
                scan_types.fill(conn, row["project_id"], row)
        _rename(conn, "experiment", t, row, label_here, params)
        return PutResult(False, row["id"])
    return _create_experiment(ctx, conn, actor, addr, t, params, xml, key, requested)


def _create_experiment(
    ctx: Context,
    conn: Connection,
    actor: Actor,
    addr: Address,
    t: Target,
    params: Params,
    xml: bytes | None,
    key: str,
    requested: str | None,
) -> PutResult:
    base = "xnat:imageAssessorData" if addr.level == "assessor" else "xnat:subjectAssessorData"
    if not requested and not xml:
        raise MissingContent("Need PUT Contents: give an xsiType to create experiment " + key)
    xsi_type = types.get(requested).xsi_type if requested else base
    if not types.is_a(xsi_type, base) or (types.get(xsi_type).abstract and not xml):
        raise InvalidInput(f"Data type {requested} cannot be created here (expected a {base})")
    xsi_type, values = _fields_from(xsi_type, params, xml, base)
    label = str(values.pop("label", None) or param(params, "label") or key)
    labels.check_label(label, "experiment")
    if q.label_taken(conn, "experiment", t.project_id, label):
        if label == key and q.in_project(conn, "experiment", t.project_id, label) is not None:
            return _put_experiment(ctx, conn, actor, addr, t, params, xml)  # created concurrently just now
        raise Conflict("Specified label is already in use.")
    subject_id, session_id = _experiment_parents(conn, addr, t, params)
    chosen = _chosen_id(conn, "experiment", params, xml)
    cols, rest = records.split_columns("experiment", values)
    for k in ("id", "label", "project_id", "subject_id", "session_id"):
        cols.pop(k, None)
    new_id = chosen or _new_id(ctx, conn, "experiment")
    inserted = q.insert_object(
        conn,
        "experiment",
        id=new_id,
        project_id=t.project_id,
        subject_id=subject_id,
        session_id=session_id,
        label=label,
        xsi_type=xsi_type,
        fields=rest,
        insert_user=actor.username,
        **cols,
    )
    if not inserted:  # a concurrent PUT created it a moment ago: this one is now an update
        return _put_experiment(ctx, conn, actor, addr, t, params, xml)
    _put_xml_scans(conn, new_id, xml)
    if scan_types.asked(params):
        scan_types.fill(conn, t.project_id, {"id": new_id, "xsi_type": xsi_type})
    return PutResult(True, new_id)


def _put_xml_scans(conn: Connection, experiment_id: str, xml: bytes | None) -> None:
    """Scans nested in a session document are created or updated with it: nothing is dropped."""
    if not xml:
        return
    for xsi_type, scan_id, values in records.parse_xml_scans(xml):
        _check_scan_id(scan_id)
        row = q.child(conn, experiment_id, "scan", scan_id)
        if row is not None:
            xsi_type = _kept_scan_type(row["xsi_type"], xsi_type)
        old = records.field_values("scan", row) if row is not None else {}
        cols, rest = records.split_columns("scan", _merge(old, values))
        if row is None:
            q.insert_child(
                conn,
                experiment_id=experiment_id,
                kind="scan",
                scan_id=scan_id,
                xsi_type=xsi_type,
                type=cols.get("type"),
                fields=rest,
            )
        else:
            q.update_child(conn, row["pk"], xsi_type=xsi_type, type=cols.get("type"), fields=rest)


def _kept_scan_type(stored: str, wanted: str | None) -> str:
    """The type a PUT leaves an existing scan: its own; a scan stored as the abstract
    ``xnat:imageScanData`` may be given a concrete one (XNAT allows that fix, and no other change)."""
    if not wanted or types.get(wanted).xsi_type == stored:
        return stored
    if stored == "xnat:imageScanData":
        return types.get(wanted).xsi_type
    raise Conflict(TYPE_CHANGED)


def _experiment_parents(
    conn: Connection, addr: Address, t: Target, params: Params
) -> tuple[str | None, str | None]:
    if addr.level == "assessor":
        assert t.experiment is not None
        return t.experiment["subject_id"], t.experiment["id"]
    if t.subject is not None:
        return t.subject["id"], None
    wanted = param(params, "subject_ID") or param(params, "xnat:subjectAssessorData/subject_ID")
    if not wanted:
        raise InvalidInput(
            "A new experiment needs a subject: use .../subjects/{S}/experiments/{E} or subject_ID="
        )
    found = q.in_project(conn, "subject", t.project_id, wanted)
    if found is None:
        raise NotFound(f"Subject {wanted} not found in project {t.project_id}")
    return found[0]["id"], None


def _put_child(conn: Connection, addr: Address, t: Target, params: Params, xml: bytes | None) -> PutResult:
    assert t.experiment is not None and addr.child_kind and addr.child
    kind = addr.child_kind
    labels.check_label(addr.child, kind) if kind == "reconstruction" else _check_scan_id(addr.child)
    row = q.child(conn, t.experiment["id"], kind, addr.child)
    requested = param(params, "xsiType")
    base = "xnat:imageScanData" if kind == "scan" else "xnat:reconstructedImageData"
    if requested and types.get(requested).abstract:
        raise InvalidInput(ABSTRACT_SCAN)
    if row is not None:
        xsi_type = _kept_scan_type(row["xsi_type"], requested)
        sent_type, values = _fields_from(xsi_type, params, xml, base)
        xsi_type = _kept_scan_type(xsi_type, sent_type if xml else None)
        merged = _merge(records.field_values("scan", row), values)
        cols, rest = records.split_columns("scan", merged)
        q.update_child(conn, row["pk"], xsi_type=xsi_type, type=cols.get("type"), fields=rest)
        return PutResult(False, addr.child)
    if not requested and not xml:
        if kind == "scan":
            raise MissingContent(f"Need PUT Contents: give an xsiType to create scan {addr.child}")
        requested = base
    xsi_type = types.get(requested).xsi_type if requested else base
    if not types.is_a(xsi_type, base):
        raise InvalidInput(f"Data type {requested} is not a kind of {base}")
    xsi_type, values = _fields_from(xsi_type, params, xml, base)
    if types.get(xsi_type).abstract:
        raise InvalidInput(ABSTRACT_SCAN)
    cols, rest = records.split_columns("scan", values)
    q.insert_child(
        conn,
        experiment_id=t.experiment["id"],
        kind=kind,
        scan_id=addr.child,
        xsi_type=xsi_type,
        type=cols.get("type"),
        fields=rest,
    )
    return PutResult(True, addr.child)


def _check_scan_id(value: str) -> None:
    if not value or "/" in value or value in (".", "..") or len(value) > 255 or "," in value:
        raise InvalidInput(f"Invalid scan ID: {value!r}")
    if value.upper() == "ALL" or "*" in value:
        raise InvalidInput(f"{value!r} is reserved and cannot be a scan ID")
