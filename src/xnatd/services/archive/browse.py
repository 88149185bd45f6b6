"""What the web pages need beyond the REST API's listings: a caller's rights in a project, counts for
paging, the label search box, and the tree of resources and files that "Manage Files" shows.

Everything here reads through the same authorization as the REST API (``load_project``, ``resolve``,
and the listing and file services themselves), so a page can never show more than ``/data`` would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from xnatd.db import archive as q
from xnatd.db import browse as qb
from xnatd.domain import address as A
from xnatd.domain.table import ListQuery
from xnatd.errors import Conflict, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import files, listing_service, listings, objects, resources, snapshots
from xnatd.services.archive.resolve import load_project, resolve, role_of

MAX_FILES = 1000  # files listed per folder on a page; the REST URL lists them all


@dataclass(frozen=True)
class Rights:
    """A project as the caller sees it, and what they may do in it."""

    project: dict[str, Any]
    role: str | None
    read: bool
    edit: bool
    delete: bool
    own: bool


def rights(ctx: Context, actor: Actor, project_id: str, addr: A.Address | None = None) -> Rights:
    """The caller's rights in a project; with ``addr`` (a subject, session or scan page), changing
    an object shared into the project from another one also needs the rights in that one, as the
    services require, so a page offers no form that would be refused."""
    with ctx.db.read() as conn:
        row, role = load_project(conn, actor, project_id, access.DESCRIBE)
        owner, owner_role = row, role
        if addr is not None and addr.level != "project":
            t = resolve(conn, actor, addr, access.READ, upto="experiment" if addr.experiment else "subject")
            own = t.experiment if t.experiment is not None else t.subject
            if own is not None and own["project_id"] != row["id"]:
                owner = q.project(conn, own["project_id"]) or row
                owner_role = role_of(conn, actor, owner["id"])

    def may(action: str, also: bool = False) -> bool:
        here = access.allowed(actor, row, role, action)
        return here and (not also or access.allowed(actor, owner, owner_role, action))

    return Rights(
        dict(row), role, may(access.READ), may(access.EDIT, True), may(access.DELETE, True), may(access.OWN)
    )


def counts(ctx: Context, actor: Actor, project_id: str) -> tuple[int, int]:
    """How many subjects and sessions a project has (for its pages' paging)."""
    with ctx.db.read() as conn:
        row, _ = load_project(conn, actor, project_id, access.READ)
        return qb.count_subjects(conn, row["id"]), qb.count_sessions(conn, row["id"])


def subject_labels(ctx: Context, actor: Actor, project_id: str, ids: list[str]) -> dict[str, str]:
    """Subject labels for a page of a project's sessions (the listing names subjects by ID)."""
    with ctx.db.read() as conn:
        row, _ = load_project(conn, actor, project_id, access.READ)
        return qb.subject_labels(conn, ids, row["id"])


def search(ctx: Context, actor: Actor, text: str, limit: int = 50) -> tuple[list[Any], list[Any]]:
    """Subjects and sessions whose label contains ``text``, in the projects the caller may read."""
    text = text.strip()
    if not text:
        return [], []
    with ctx.db.read() as conn:
        readable = None if actor.is_admin else listings.readable_project_ids(conn, actor)
        found_subjects = qb.find_subjects(conn, text, readable, limit)
        found_sessions = qb.find_sessions(conn, text, readable, limit)
    return [dict(r) for r in found_subjects], [dict(r) for r in found_sessions]


def create_project(ctx: Context, actor: Actor, project_id: str, name: str, description: str) -> None:
    """A new project (never an update of an existing one, unlike a PUT to its URL)."""
    with ctx.db.read() as conn:
        if q.project(conn, project_id) is not None or q.alias_owner(conn, project_id) is not None:
            raise Conflict(f"Project {project_id} already exists.")
    params = [("name", name or project_id), ("description", description)]
    objects.put(ctx, actor, A.Address(A.PROJECT, project=project_id), params, None)


# --- Manage Files ----------------------------------------------------------------------------------


@dataclass
class FileEntry:
    path: str
    size: int
    uri: str


@dataclass
class Folder:
    """A resource: XNAT's folder of files."""

    label: str
    format: str
    content: str
    count: int
    size: int
    uri: str
    files: list[FileEntry] = field(default_factory=list)


@dataclass
class Holder:
    """An object that holds folders: the project, a subject, a session or one of its scans."""

    title: str
    rest: str  # archive path below /data, e.g. ``projects/P/subjects/S/experiments/E/scans/4``
    folders: list[Folder] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(f.count for f in self.folders)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.folders)


def rest_path(addr: A.Address) -> str:
    """The archive path of an object, by project and labels (as the seed documents write them)."""
    parts = ["projects", addr.project or ""]
    if addr.subject:
        parts += ["subjects", addr.subject]
    if addr.experiment:
        parts += ["experiments", addr.experiment]
    if addr.child_kind and addr.child:
        parts += [f"{addr.child_kind}s", addr.child]
    return "/".join(parts)


def file_tree(ctx: Context, actor: Actor, addr: A.Address) -> list[Holder]:
    """The object's folders and, for a session, each scan's, with file counts, sizes and files."""
    holders = [_holder(ctx, actor, addr, _title(addr))]
    if addr.level == "experiment":
        scans = listing_service.listing(
            ctx, actor, replace(addr, kind=A.CHILDREN, child_kind="scan"), ListQuery(), []
        )
        for row in scans.rows:
            scan = replace(addr, kind=A.CHILD, child_kind="scan", child=row["ID"])
            kind = f" ({row['type']})" if row.get("type") else ""
            holders.append(_holder(ctx, actor, scan, f"Scan {row['ID']}{kind}"))
    return holders


def _title(addr: A.Address) -> str:
    level = addr.level
    name = {
        "project": addr.project,
        "subject": addr.subject,
        "experiment": addr.experiment,
    }.get(level, addr.child)
    return f"{'Session' if level == 'experiment' else level.capitalize()} {name}"


def _holder(ctx: Context, actor: Actor, addr: A.Address, title: str) -> Holder:
    rest = rest_path(addr)
    table = resources.resource_rows(ctx, actor, replace(addr, kind=A.RESOURCES), ListQuery())
    listed = files.list_files(ctx, actor, replace(addr, kind=A.FILES), ListQuery(columns=["path"]), False)
    by_pk: dict[str, list[FileEntry]] = {}
    for f in listed.rows:
        entries = by_pk.setdefault(f["cat_ID"], [])
        uri = f"/data/{rest}/resources/{f['collection']}/files/{f['path']}"
        entries.append(FileEntry(f["path"], int(f["Size"] or 0), uri))
    holder = Holder(title, rest)
    for r in table.rows:
        listed_files = sorted(by_pk.get(r["xnat_abstractresource_id"], []), key=lambda e: e.path)
        holder.folders.append(
            Folder(
                r["label"],
                r.get("format", ""),
                r.get("content", ""),
                int(r.get("file_count") or 0),
                int(r.get("file_size") or 0),
                f"/data/{rest}/resources/{r['label']}",
                listed_files[:MAX_FILES],
            )
        )
    return holder


_SCAN_IN_URI = re.compile(r"/scans/([^/]+)/resources/")


def snapshot_files(ctx: Context, actor: Actor, session: A.Address) -> dict[str, tuple[str, str]]:
    """Each scan's snapshot pictures as (thumbnail, full-size) file paths, by scan ID; a scan with
    DICOM files and no pictures yet gets the names its pictures are made under when first fetched."""
    addr = replace(session, kind=A.FILES, child_kind="scan", child="ALL", resource="SNAPSHOTS")
    try:
        rows = files.list_files(ctx, actor, addr, ListQuery(columns=["path"]), False).rows
    except NotFound:  # no scan has a SNAPSHOTS resource yet
        rows = []
    found: dict[str, list[str]] = {}
    for row in rows:
        scan = _SCAN_IN_URI.search(row["URI"])
        if scan and row["path"].lower().endswith((".png", ".gif", ".jpg", ".jpeg")):
            found.setdefault(scan.group(1), []).append(row["path"])
    out = {}
    for scan_id, paths in found.items():
        thumbs = [p for p in paths if p.rsplit(".", 1)[0].endswith("_t")] or paths
        fulls = [p for p in paths if p not in thumbs] or thumbs
        out[scan_id] = (sorted(thumbs)[0], sorted(fulls)[0])
    with ctx.db.read() as conn:
        experiment = resolve(conn, actor, session, access.READ).experiment
    for scan_id in snapshots.pending(ctx, str(experiment["id"])) if experiment is not None else []:
        full, thumb = snapshots.names(scan_id)
        out.setdefault(scan_id, (thumb, full))
    return out
