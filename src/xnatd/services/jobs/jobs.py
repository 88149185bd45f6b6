"""Processing jobs as users see them: launch on a scan, a session or a project, read, list, read the
log, cancel, and the hook that queues a project's automatic conversions when a session is archived.

Launching needs edit rights on the target's project; reading a job needs read rights on its project
(a job in a project the caller cannot read does not exist for them). The dispatcher-facing half
(claim, finish, recovery) is in ``job_runs``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import jobs as qj
from xnatd.domain import address as A
from xnatd.domain import jobs as J
from xnatd.errors import Conflict, Forbidden, InvalidInput, NotFound, XnatdError
from xnatd.services import access
from xnatd.services.access.context import SYSTEM, Actor, Context
from xnatd.services.archive import workflows
from xnatd.services.archive.resolve import Target, load_project, resolve, role_of
from xnatd.services.jobs.job_commands import lookup
from xnatd.services.jobs.job_runs import cancel_run, read_log

log = logging.getLogger("xnatd.jobs")
_listeners: list[Callable[[], None]] = []


def on_queued(callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever this process queues jobs (a dispatcher here starts them at once)."""
    _listeners.append(callback)


@dataclass(frozen=True)
class Scan:
    row: Any
    experiment: Any
    subject_label: str

    @property
    def uri(self) -> str:
        e = self.experiment
        return (
            f"/data/projects/{e['project_id']}/subjects/{self.subject_label}/experiments/{e['label']}"
            f"/scans/{self.row['scan_id']}"
        )


def launch(ctx: Context, actor: Actor, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Queue ``doc["command"]`` on every scan ``doc["target"]`` names; answers the jobs (new or already
    queued for the same scan and command)."""
    access.require_user(actor)
    name, target = doc.get("command"), doc.get("target")
    if not isinstance(name, str) or not isinstance(target, str):
        raise InvalidInput('The body must be {"command": "dcm2niix", "target": "/data/projects/..."}')
    overwrite = doc.get("overwrite") in (True, "true", "1")
    addr = _target_address(target)
    with ctx.db.write() as conn:
        command = lookup(conn, name)
        t = resolve(conn, actor, addr, access.EDIT, upto="experiment" if addr.child else None)
        scans = _scans(conn, addr, t)
        ids = _queue(ctx, conn, actor, command, scans, overwrite, single=addr.level == "scan")
        rows = qj.jobs_by_id(conn, ids)
    _notify()
    return [job_json(r) for r in rows]


def _target_address(target: str) -> A.Address:
    segs = A.split_path(target)
    if segs and segs[0] in ("data", "REST"):
        segs = segs[1:]
    addr = A.parse(segs)
    if addr.kind not in (A.PROJECT, A.SUBJECT, A.EXPERIMENT, A.CHILD, A.CHILDREN) or addr.extra:
        raise InvalidInput(f"A job target is a project, subject, session or scan URI, not {target!r}")
    if addr.child_kind not in (None, "scan"):
        raise InvalidInput("Jobs run on scans: target a scan, a session, a subject or a project")
    if addr.kind == A.CHILDREN:
        addr = A.Address(A.CHILD, addr.project, addr.subject, addr.experiment, "scan", "ALL")
    return addr


def _scans(conn: Connection, addr: A.Address, t: Target) -> list[Scan]:
    if t.experiment is not None:
        exps = [t.experiment]
    elif t.subject is not None:
        found = q.experiments_query(conn, None, t.subject["id"], None, None)[0]
        exps = [r for r, _, _ in found if r["project_id"] == t.subject["project_id"]]  # the one we may edit
    else:
        exps = [r for r, _, _ in q.experiments_query(conn, t.project_id, None, None, None)[0]]
        exps = [e for e in exps if e["project_id"] == t.project_id]  # shared-in sessions are not ours
    out = []
    for exp in exps:
        label = q.subject_label_in(conn, exp["subject_id"], exp["project_id"])  # shared in: its label there
        rows = q.children(conn, exp["id"], "scan")
        if addr.child and addr.child.upper() != "ALL":
            wanted = {s.strip() for s in addr.child.split(",")}
            rows = [r for r in rows if r["scan_id"] in wanted]
            if not rows:
                raise NotFound(f"Scan {addr.child} not found in experiment {exp['label']}")
        out += [Scan(r, exp, label) for r in rows]
    return out


def _queue(
    ctx: Context,
    conn: Connection,
    actor: Actor,
    command: J.Command,
    scans: list[Scan],
    overwrite: bool,
    single: bool,
) -> list[int]:
    ids = []
    for scan in scans:
        active = qj.active_for_scan(conn, scan.row["pk"], command.name)
        if active is not None:
            ids.append(int(active["id"]))
            continue
        # Read after active_for_scan, which may have waited: on PostgreSQL each statement sees what was
        # committed before it, and a job of this scan that finished meanwhile has stored its outputs.
        labels = {r["label"] for r in q.resources_of(conn, [f"scan:{scan.row['pk']}"])}
        problem = _cannot_queue(command, labels, overwrite, scan)
        if problem is not None:
            if single:
                raise problem
            continue
        ids.append(_insert(ctx, conn, actor, command, scan, overwrite))
    if not ids:
        raise InvalidInput(
            f"Nothing to run {command.name} on: no scan there has a {command.input_resource} resource "
            f"without a {command.output_resource} one (pass overwrite=true to redo them)"
        )
    return ids


def _cannot_queue(command: J.Command, labels: set[str], overwrite: bool, scan: Scan) -> XnatdError | None:
    sid = scan.row["scan_id"]
    if command.input_resource not in labels:
        return InvalidInput(f"Scan {sid} has no {command.input_resource} resource to run {command.name} on")
    if command.output_resource in labels and not overwrite:
        return Conflict(f"Scan {sid} already has a {command.output_resource} resource (overwrite=true)")
    return None


def _insert(
    ctx: Context, conn: Connection, actor: Actor, command: J.Command, scan: Scan, overwrite: bool
) -> int:
    spec = {**command.to_json(), "overwrite": overwrite}
    job_id = qj.insert_job(
        conn,
        command=command.name,
        status=J.QUEUED,
        project_id=scan.experiment["project_id"],
        experiment_id=scan.experiment["id"],
        scan_pk=scan.row["pk"],
        target=scan.uri,
        spec=spec,
        username=actor.username,
        attempts=0,
        max_attempts=max(1, ctx.settings.job_max_attempts),
        message="",
        log="",
        worker="",
        run_dir="",
    )
    # XNAT's record of a pipeline run; its status is read from the job's (services/archive/workflows.py)
    workflows.record(conn, actor, scan.experiment, command.name, "Queued", job_id, str(scan.row["scan_id"]))
    return job_id


def _notify() -> None:
    for callback in list(_listeners):
        callback()


# --- reading ----------------------------------------------------------------------------------------


def get(ctx: Context, actor: Actor, job_id: int) -> dict[str, Any]:
    with ctx.db.read() as conn:
        row = _readable(conn, actor, job_id)
        doc = job_json(row)
        if row["output_resource_pk"] is not None:
            n, size = q.resource_stats(conn, [row["output_resource_pk"]]).get(
                row["output_resource_pk"], (0, 0)
            )
            doc["output"].update({"files": n, "size": size})
        return doc


def list_jobs(
    ctx: Context, actor: Actor, project: str | None, statuses: Sequence[str] | None, limit: int = 1000
) -> list[dict[str, Any]]:
    for status in statuses or ():
        if status not in J.STATES:
            raise InvalidInput(f"Unknown job status {status!r}: one of {', '.join(J.STATES)}")
    projects: list[str] | None
    with ctx.db.read() as conn:
        if project is not None:
            # the same check as every other read: a project the caller may not read is "not found",
            # exactly like one that does not exist
            row, _role = load_project(conn, actor, project, access.READ)
            projects = [row["id"]]
        else:
            projects = None if actor.is_admin else _readable_projects(conn, actor)
        rows = qj.list_jobs(conn, projects, statuses, limit)
        allowed = {p for p in {r["project_id"] for r in rows} if _can_read(conn, actor, p)}
        return [job_json(r) for r in rows if r["project_id"] in allowed]


def _readable_projects(conn: Connection, actor: Actor) -> list[str]:
    roles = q.roles(conn, actor.username) if not actor.is_guest else {}
    return [
        p["id"] for p in q.all_projects(conn) if access.allowed(actor, p, roles.get(p["id"]), access.READ)
    ]


def _can_read(conn: Connection, actor: Actor, project_id: str) -> bool:
    row = q.project(conn, project_id)
    return row is not None and access.allowed(actor, row, role_of(conn, actor, project_id), access.READ)


def _readable(conn: Connection, actor: Actor, job_id: int) -> Any:
    row = qj.job(conn, job_id)
    if row is None or not _can_read(conn, actor, row["project_id"]):
        raise NotFound(f"Job {job_id} not found")
    return row


def job_log(ctx: Context, actor: Actor, job_id: int) -> str:
    with ctx.db.read() as conn:
        row = _readable(conn, actor, job_id)
    return read_log(ctx, row)


def cancel(ctx: Context, actor: Actor, job_id: int) -> dict[str, Any]:
    """Cancel a queued or running job; a running command is stopped and its outputs dropped."""
    access.require_user(actor)
    with ctx.db.write() as conn:
        row = _readable(conn, actor, job_id)
        project = q.project(conn, row["project_id"])
        assert project is not None
        if not access.allowed(actor, project, role_of(conn, actor, row["project_id"]), access.EDIT):
            raise Forbidden(f"User {actor.username} may not cancel jobs in project {row['project_id']}")
        J.check_move(row["status"], J.CANCELLED)
        message = f"cancelled by {actor.username}"
        if not qj.move(
            conn, job_id, J.sources_of(J.CANCELLED), J.CANCELLED, finished=q.now(), message=message
        ):
            raise Conflict(f"Job {job_id} finished meanwhile")
        updated = qj.job(conn, job_id)
    cancel_run(ctx, row)
    return job_json(updated)


def job_json(row: Any) -> dict[str, Any]:
    spec = row["spec"] or {}
    output = spec.get("output", {})
    started, finished = row["started"], row["finished"]
    resource = output.get("resource", "")
    return {
        "id": row["id"],
        "command": row["command"],
        "status": row["status"],
        "project": row["project_id"],
        "experiment": row["experiment_id"],
        "target": row["target"],
        "user": row["username"],
        "attempts": row["attempts"],
        "maxAttempts": row["max_attempts"],
        "exitCode": row["exit_code"],
        "message": row["message"],
        "worker": row["worker"],
        "created": _iso(row["created"]),
        "started": _iso(started),
        "finished": _iso(finished),
        "seconds": round((finished - started).total_seconds(), 3) if started and finished else None,
        "output": {
            "resource": resource,
            "format": output.get("format", ""),
            "uri": f"{row['target']}/resources/{resource}" if row["status"] == J.COMPLETE else None,
        },
        "log": f"/xapi/jobs/{row['id']}/log",
    }


def _iso(stamp: Any) -> str | None:
    return stamp.isoformat(timespec="milliseconds") + "Z" if stamp is not None else None


# --- automation ---------------------------------------------------------------------------------------


def on_session_archived(ctx: Context, experiment_id: str) -> list[int]:
    """Queue the project's automatic commands on every scan of a session just archived.

    The archive service calls this after its commit; a problem here is logged, never raised, so an
    archive never fails because of a conversion. Returns the IDs of the jobs queued.
    """
    try:
        with ctx.db.write() as conn:
            exp = q.by_id(conn, "experiment", experiment_id)
            if exp is None:
                return []
            names = qj.automations(conn, exp["project_id"])
            label = q.subject_label_in(conn, exp["subject_id"], exp["project_id"])
            scans = [Scan(r, exp, label) for r in q.children(conn, exp["id"], "scan")]
            ids: list[int] = []
            for name in names:
                try:
                    ids += _queue(ctx, conn, SYSTEM, lookup(conn, name), scans, False, single=False)
                except (InvalidInput, NotFound):
                    continue  # nothing to convert in this session, or the command was deleted
    except XnatdError as exc:
        log.warning("automatic jobs for %s not queued: %s", experiment_id, exc)
        return []
    if ids:
        log.info("queued %d automatic job(s) for %s", len(ids), experiment_id)
        _notify()
    return ids
