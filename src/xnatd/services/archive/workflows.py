"""Workflows: XNAT's ``wrk:workflowData`` records of what happened to an object.

xnatd writes one where XNAT does for the steps it has: a session archived from the prearchive or by
an import ("Transferred"), a processing job queued (named after its command; its status follows the
job). Pipelines write and update their own over REST (``PUT /data/workflows``), naming the object by
its ID and the step by ``pipeline_name`` and ``launch_time``, as XNAT's pipeline clients do.

Reading a workflow needs read access to its object's project; creating one needs edit rights there;
changing one is for whoever created it and for site administrators (XNAT's ``WorkflowResource``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import workflows as wq
from xnatd.domain.address import Address
from xnatd.domain.items import Item, items_document
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access import visibility
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.resolve import resolve

NS = "http://nrg.wustl.edu/workflow"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE = "wrk:workflowData"
# XNAT's attribute names, in its schema's order; the first ones are columns, the rest ``fields``
COLUMN_ATTRS = {"data_type": "data_type", "ID": "object_id", "ExternalID": "external_id",
                "scan_id": "scan_id", "pipeline_name": "pipeline_name", "launch_time": "launch_time",
                "status": "status"}  # fmt: skip
FIELD_ATTRS = (
    "current_step_launch_time", "current_step_id", "create_user", "next_step_id", "step_description",
    "percentageComplete", "jobID", "category", "src", "type", "comments", "details", "justification",
    "description",
)  # fmt: skip
ATTRS = (*COLUMN_ATTRS, *FIELD_ATTRS)
_BY_LOWER = {a.lower(): a for a in ATTRS}
REQUIRED = ("ID", "launch_time", "pipeline_name", "data_type")
LIST_COLUMNS = [
    "wrk_workflowData_id", "data_type", "id", "externalid", "scan_id", "pipeline_name", "launch_time",
    "status", "current_step_id", "current_step_launch_time", "step_description", "percentagecomplete",
    "jobid", "create_user", "category", "type", "src", "comments", "details", "justification", "description",
]  # fmt: skip
JOB_STATUS = {"queued": "Queued", "running": "Running", "complete": "Complete", "failed": "Failed",
              "cancelled": "Cancelled"}  # fmt: skip
TRANSFERRED = "Transferred"
DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%Y-%m-%d",
                "%m/%d/%Y")  # fmt: skip
MAX_TEXT = 64 * 1024


# --- what a request says -----------------------------------------------------------------------------


def from_params(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Workflow attributes from query parameters, as XNAT reads them: ``wrk:workflowData/status=...``
    (any case), or the bare attribute name."""
    out: dict[str, str] = {}
    for key, value in params:
        head, sep, name = key.rpartition("/")
        if sep and head.lower() not in ("wrk:workflowdata", "wrk:workflow"):
            continue
        attr = _BY_LOWER.get(name.lower())
        if attr is not None:
            out[attr] = value
    return out


def from_xml(body: bytes) -> dict[str, str]:
    """Workflow attributes from a ``<wrk:Workflow .../>`` document (pyxnat's and XNAT's pipelines)."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise InvalidInput(f"Not a workflow document: {exc}") from None
    if root.tag.rpartition("}")[2] not in ("Workflow", "workflowData"):
        raise InvalidInput(f"Not a workflow document: the root element is {root.tag}")
    out: dict[str, str] = {}
    for key, value in root.attrib.items():
        attr = _BY_LOWER.get(key.rpartition("}")[2].lower())
        if attr is not None:
            out[attr] = value
    return out


def parse_time(raw: str) -> _dt.datetime:
    text = raw.strip()
    for fmt in DATE_FORMATS:
        try:
            return _dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    try:
        stamp = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"Not a date and time: {raw!r}") from None
    return stamp.astimezone(_dt.UTC).replace(tzinfo=None) if stamp.tzinfo else stamp


# --- access ------------------------------------------------------------------------------------------


def _may_read(conn: Connection, actor: Actor, row: Mapping[Any, Any]) -> bool:
    if actor.is_admin:
        return True
    if row["project_id"] is None:
        return bool(row["insert_user"] == actor.username)
    project = q.project(conn, row["project_id"])
    role = q.roles(conn, actor.username).get(row["project_id"]) if not actor.is_guest else None
    return project is not None and access.allowed(actor, project, role, access.READ)


def _readable_projects(conn: Connection, actor: Actor) -> list[str] | None:
    readable = visibility.viewer(conn, actor).readable
    return None if readable is None else sorted(readable)


def _owner_project(conn: Connection, actor: Actor, object_id: str) -> str:
    """The project of the object a new workflow is about (an experiment, subject or project ID),
    once the caller may edit there."""
    row = q.by_id(conn, "experiment", object_id) or q.by_id(conn, "subject", object_id)
    project_id = str(row["project_id"]) if row is not None else None
    if project_id is None:
        project = q.project(conn, object_id)
        project_id = str(project["id"]) if project is not None else None
    if project_id is None:
        raise NotFound(f"No experiment, subject or project with the ID {object_id}")
    project = q.project(conn, project_id)
    assert project is not None
    role = q.roles(conn, actor.username).get(project_id)
    if not access.can_see(actor, project, role):
        raise NotFound(f"No experiment, subject or project with the ID {object_id}")
    access.require(actor, project, role, access.EDIT)
    return project_id


# --- reading -----------------------------------------------------------------------------------------


def get(ctx: Context, actor: Actor, wid: int) -> dict[str, Any]:
    with ctx.db.read() as conn:
        row = wq.one(conn, wid)
        if row is None or not _may_read(conn, actor, row):
            raise NotFound("Unable to find the specified workflow.")
    return attributes(row)


def find(ctx: Context, actor: Actor, given: Mapping[str, str]) -> dict[str, Any]:
    """XNAT's unique workflow: by pipeline name, object ID and launch time (and scan)."""
    if not all(given.get(k) for k in ("pipeline_name", "ID", "launch_time")):
        raise NotFound("Unable to find the specified workflow.")
    with ctx.db.read() as conn:
        row = wq.find(conn, given["pipeline_name"], given["ID"], parse_time(given["launch_time"]),
                      given.get("scan_id"))  # fmt: skip
        if row is None or not _may_read(conn, actor, row):
            raise NotFound("Unable to find the specified workflow.")
    return attributes(row)


def listing(ctx: Context, actor: Actor, query: ListQuery, object_id: str | None = None) -> Table:
    """Every workflow the caller may read (of one object), newest launch first."""
    access.require_user(actor)
    with ctx.db.read() as conn:
        rows = wq.matching(conn, _readable_projects(conn, actor), object_id)
    return table([attributes(r) for r in rows], query)


def table(records: Sequence[Mapping[str, Any]], query: ListQuery, title: str = "Workflows") -> Table:
    rows = [_list_row(r) for r in records]
    return shape(rows, query, LIST_COLUMNS, lambda r, c: r.get(c), title=title, always=())


def list_key(attr: str) -> str:
    """The listing column of an attribute (XNAT's table names most of them in lower case)."""
    return attr if attr in ("data_type", "scan_id", "pipeline_name", "status") else attr.lower()


def _list_row(attrs: Mapping[str, Any]) -> dict[str, str]:
    row = {"wrk_workflowData_id": str(attrs["wrk_workflowData_id"])}
    for attr in ATTRS:
        key = list_key(attr)
        value = attrs.get(attr)
        row[key] = _stamp(value) if isinstance(value, _dt.datetime) else ("" if value is None else str(value))
    return row


def _stamp(value: _dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-5]


def attributes(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row as XNAT's attributes (with ``wrk_workflowData_id``); a job's workflow takes the job's
    status, progress and times."""
    out: dict[str, Any] = {"wrk_workflowData_id": int(row["id"])}
    for attr, column in COLUMN_ATTRS.items():
        out[attr] = row[column]
    fields = dict(row["fields"] or {})
    out.update({a: fields[a] for a in FIELD_ATTRS if a in fields})
    out["create_user"] = fields.get("create_user") or row["insert_user"]
    if row.get("job_status"):
        out["status"] = JOB_STATUS.get(row["job_status"], row["job_status"])
        out["percentageComplete"] = "100.0" if row["job_status"] == "complete" else "0.0"
        out["step_description"] = row["job_message"] or out.get("step_description", "")
        if row["job_started"] is not None:
            out["current_step_launch_time"] = row["job_started"]
    return out


# --- renderings --------------------------------------------------------------------------------------


def to_xml(attrs: Mapping[str, Any]) -> bytes:
    ET.register_namespace("wrk", NS)
    ET.register_namespace("xsi", XSI)
    root = ET.Element(f"{{{NS}}}Workflow")
    for attr in ATTRS:
        value = attrs.get(attr)
        if value is None or value == "":
            continue
        root.set(attr, value.isoformat(timespec="seconds") if isinstance(value, _dt.datetime) else str(value))
    body: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return body


def to_json(attrs: Mapping[str, Any]) -> dict[str, Any]:
    fields = {
        k: (v.isoformat(timespec="seconds") if isinstance(v, _dt.datetime) else v)
        for k, v in attrs.items()
        if v is not None and v != ""
    }
    return items_document(Item(XSI_TYPE, fields))


# --- writing -----------------------------------------------------------------------------------------


def _values(given: Mapping[str, str], base: Mapping[Any, Any] | None = None) -> dict[str, Any]:
    """Row values from XNAT attributes (over ``base``, the stored row's, for an update)."""
    for key, value in given.items():
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"The workflow's {key} is longer than {MAX_TEXT} characters")
    values: dict[str, Any] = {}
    for attr, column in COLUMN_ATTRS.items():
        if attr in given and attr not in ("ID", "ExternalID"):
            values[column] = parse_time(given[attr]) if attr == "launch_time" else given[attr]
    fields = dict((base or {}).get("fields") or {})
    fields.update({a: given[a] for a in FIELD_ATTRS if a in given})
    values["fields"] = fields
    if "scan_id" in values and not values["scan_id"]:
        values["scan_id"] = None
    return values


def put(ctx: Context, actor: Actor, given: Mapping[str, str], wid: int | None = None) -> int:
    """``PUT /data/workflows[/{id}]``: change the workflow ``wid`` (or the one the attributes name),
    else create it; the workflow's ID."""
    access.require_user(actor)
    with ctx.db.write() as conn:
        if wid is not None:
            row = wq.one(conn, wid)
            if row is None or not _may_read(conn, actor, row):
                raise NotFound("Unable to find the specified workflow.")
        elif all(given.get(k) for k in ("pipeline_name", "ID", "launch_time")):
            row = wq.find(conn, given["pipeline_name"], given["ID"], parse_time(given["launch_time"]),
                          given.get("scan_id"))  # fmt: skip
        else:
            row = None
        if row is not None:
            if row["insert_user"] != actor.username and not actor.is_admin:
                raise Forbidden("You are not allowed to make changes to this workflow.")
            wq.change(conn, int(row["id"]), _values(given, row))
            return int(row["id"])
        missing = [k for k in REQUIRED if not given.get(k)]
        if missing:
            raise InvalidInput(
                "Id, launch_time, data_type and pipeline_name are all required (scan_id may be "
                f"specified when appropriate but is not required); missing: {', '.join(missing)}"
            )
        project_id = _owner_project(conn, actor, given["ID"])
        values = _values(given)
        values.setdefault("status", "")
        return wq.add(conn, {**values, "object_id": given["ID"], "project_id": project_id,
                             "external_id": given.get("ExternalID") or project_id,
                             "insert_user": actor.username})  # fmt: skip


def record(
    conn: Connection,
    actor: Actor,
    experiment: Mapping[Any, Any],
    pipeline_name: str,
    status: str,
    job_id: int | None = None,
    scan_id: str | None = None,
) -> int:
    """A workflow xnatd writes itself, in the caller's transaction (an archive, a queued job)."""
    fields = {"category": "SIDE_ADMIN" if job_id is None else "PIPELINE",
              "type": "PROCESS", "create_user": actor.username,
              "percentageComplete": "100.0" if status == "Complete" else "0.0",
              "jobID": str(job_id) if job_id is not None else ""}  # fmt: skip
    return wq.add(conn, {
        "data_type": experiment["xsi_type"], "object_id": experiment["id"],
        "external_id": experiment["project_id"], "project_id": experiment["project_id"],
        "job_id": job_id, "scan_id": scan_id, "pipeline_name": pipeline_name, "launch_time": q.now(),
        "status": status, "fields": fields, "insert_user": actor.username,
    })  # fmt: skip


# --- XNAT's pipeline-status service (/data/services/workflows) ---------------------------------------


def _experiment_id(conn: Connection, actor: Actor, experiment: str, project: str | None) -> str:
    """An experiment named by accession ID (or by label in ``project``) that the caller may read."""
    row = q.by_id(conn, "experiment", experiment)
    if row is None and project:
        found = q.in_project(conn, "experiment", project, experiment)
        row = found[0] if found is not None else None
    if row is None or not _may_read(conn, actor, {"project_id": row["project_id"], "insert_user": ""}):
        raise NotFound(f"Experiment {experiment} not found")
    return str(row["id"])


def pipeline_status(
    ctx: Context, actor: Actor, pipelines: Sequence[str], opts: Mapping[str, str]
) -> dict[str, Any] | Table:
    """``/data/services/workflows[/{names}]`` (``project``, ``experiment``, ``status``, ``display``):
    an experiment's newest matching workflow (``display=ALL``: all of them, as a table), or, without
    an experiment, the newest matching workflow of each object."""
    access.require_user(actor)
    wanted = [p.lower() for p in pipelines if p]
    latest = (opts.get("display") or "LATEST").upper() == "LATEST"
    with ctx.db.read() as conn:
        experiment = opts.get("experiment")
        object_id = _experiment_id(conn, actor, experiment, opts.get("project")) if experiment else None
        rows = [
            attributes(r)
            for r in wq.matching(conn, _readable_projects(conn, actor), object_id)
            if (not wanted or any(w in str(r["pipeline_name"]).lower() for w in wanted))
            and (not opts.get("status") or r["status"] == opts["status"])
            and (object_id or not opts.get("project") or r["external_id"] == opts["project"])
        ]
    if object_id is not None and latest:
        if not rows:
            names = ",".join(pipelines)
            raise NotFound(f"Unable to find workflow entry for pipeline {names} and experiment {object_id}")
        return rows[0]
    if object_id is None and latest:
        newest: dict[str, dict[str, Any]] = {}
        for r in rows:  # newest first: the first of each object is its newest
            newest.setdefault(str(r["ID"]), r)
        rows = list(newest.values())
    return table(rows, ListQuery(), title=f"All {opts.get('status') or ''} workflows".replace("  ", " "))


def of_experiment(ctx: Context, actor: Actor, addr: Address, query: ListQuery) -> Table:
    """``.../experiments/{E}/workflows``: the experiment's workflows, newest first."""
    with ctx.db.read() as conn:
        target = resolve(conn, actor, addr, access.READ)
        assert target.experiment is not None
        rows = wq.matching(conn, _readable_projects(conn, actor), str(target.experiment["id"]))
    return table([attributes(r) for r in rows], query)
