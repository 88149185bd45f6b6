"""Resources (XNAT's folders of files) at every level: project, subject, experiment, scan,
assessor and reconstruction. Listing, creating and deleting them; their files are in ``files``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.domain.address import Address
from xnatd.domain.items import Item
from xnatd.domain.listing_columns import make_getter
from xnatd.domain.params import Params, param
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import Conflict, InvalidInput, NotFound, StorageFull
from xnatd.services import access
from xnatd.services.access import visibility
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.items import resource_item
from xnatd.services.archive.resolve import Target, resolve
from xnatd.storage.moves import Moves
from xnatd.storage.paths import contained, safe_label

RESOURCE_COLUMNS = [
    "xnat_abstractresource_id",
    "label",
    "element_name",
    "category",
    "cat_id",
    "cat_desc",
    "file_count",
    "file_size",
    "tags",
    "content",
    "format",
]
DEFAULT_RESOURCE = "DEFAULT"


@dataclass
class Owner:
    """One object that holds resources, with what is needed to name its files in URLs and zips."""

    key: str  # "project:P", "subject:S", "experiment:E", "scan:pk", "reconstruction:pk"
    level: str
    directory: str  # where new resources of this owner go, relative to the archive root
    uri: str  # URL prefix of this owner, for file URIs
    zip_prefix: str  # entry-path prefix in zip downloads
    category: str
    cat_id: str


def owners(conn: Connection, addr: Address, t: Target) -> list[Owner]:
    """The resource owners an address names; ``scans/ALL`` and comma lists name several."""
    if addr.child_kind and addr.child:
        return _child_owners(conn, addr, t)
    level = addr.level
    proj = t.owner_project_id
    if level == "project":
        return [
            Owner(
                f"project:{proj}",
                "project",
                f"{proj}/resources",
                f"/data/projects/{proj}",
                proj,
                "resources",
                proj,
            )
        ]
    if level == "subject":
        assert t.subject is not None
        s = t.subject
        base = f"/data/projects/{t.project_id}/subjects/{s['id']}"
        return [
            Owner(
                f"subject:{s['id']}",
                "subject",
                f"{s['project_id']}/subjects/{s['label']}",
                base,
                t.subject_label or s["label"],
                "resources",
                s["id"],
            )
        ]
    assert t.experiment is not None
    e = t.experiment
    return [
        Owner(
            f"experiment:{e['id']}",
            "experiment",
            f"{_session_dir(conn, e)}/RESOURCES",
            _experiment_uri(addr, t),
            t.experiment_label or e["label"],
            "resources",
            e["id"],
        )
    ]


def session_dir(conn: Connection, exp: Any) -> str:
    """An image session's folder, relative to the archive root: ``{project}/{current_arc}/{label}``."""
    return _session_dir(conn, exp)


def _session_dir(conn: Connection, exp: Any) -> str:
    proj = q.project(conn, exp["project_id"])
    arc = proj["current_arc"] if proj is not None else "arc001"
    return f"{exp['project_id']}/{arc}/{exp['label']}"


def _experiment_uri(addr: Address, t: Target) -> str:
    assert t.experiment is not None
    if addr.project and t.subject is not None:
        return f"/data/projects/{t.project_id}/subjects/{t.subject['id']}/experiments/{t.experiment['id']}"
    return f"/data/experiments/{t.experiment['id']}"


def _child_owners(conn: Connection, addr: Address, t: Target) -> list[Owner]:
    assert t.experiment is not None and addr.child and addr.child_kind
    exp = t.experiment
    exp_uri = _experiment_uri(addr, t)
    label = t.experiment_label or exp["label"]
    if addr.child_kind == "assessor":
        found = q.in_project(conn, "experiment", t.project_id, addr.child)
        if found is None or found[0]["session_id"] != exp["id"]:
            raise NotFound(f"Assessor {addr.child} not found")
        a = found[0]
        return [
            Owner(
                f"experiment:{a['id']}",
                "assessor",
                f"{_session_dir(conn, exp)}/ASSESSORS/{a['label']}",
                f"{exp_uri}/assessors/{a['id']}/out",
                f"{label}/assessors/{found[1]}/out",
                "assessors",
                a["id"],
            )
        ]
    kind = addr.child_kind
    rows = _select_children(conn, exp["id"], kind, addr.child)
    out = []
    for row in rows:
        sid = row["scan_id"]
        folder = "SCANS" if kind == "scan" else "PROCESSED"
        seg = "scans" if kind == "scan" else "reconstructions"
        zip_name = f"{sid}-{_word(row['type'])}" if kind == "scan" and row["type"] else sid
        prefix = f"{label}/{seg}/{zip_name}" + ("/out" if kind != "scan" else "")
        uri = f"{exp_uri}/{seg}/{sid}" + ("/out" if kind != "scan" else "")
        out.append(
            Owner(
                f"{kind}:{row['pk']}",
                kind,
                f"{_session_dir(conn, exp)}/{folder}/{sid}",
                uri,
                prefix,
                seg,
                sid,
            )
        )
    return out


def _word(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in text)


def _select_children(conn: Connection, exp_id: str, kind: str, selector: str) -> list[Any]:
    rows = list(q.children(conn, exp_id, kind))
    if selector.upper() == "ALL" or selector == "*":
        return rows
    wanted = [s.strip() for s in selector.split(",") if s.strip()]
    chosen = [r for r in rows if r["scan_id"] in wanted or (r["type"] and r["type"] in wanted)]
    if not chosen:
        raise NotFound(f"No {kind} matches {selector}")
    return chosen


def select_resources(
    conn: Connection, owner_list: list[Owner], selector: str | None
) -> list[tuple[Owner, Any]]:
    by_key = {o.key: o for o in owner_list}
    rows = q.resources_of(conn, list(by_key))
    pairs = [(by_key[r["owner"]], r) for r in rows]
    if selector is None:
        return pairs
    wanted = [s.strip() for s in selector.split(",") if s.strip()]
    chosen = [(o, r) for o, r in pairs if r["label"] in wanted or str(r["pk"]) in wanted]
    if not chosen:
        raise NotFound(f"Resource {selector} not found")
    return chosen


def resource_rows(ctx: Context, actor: Actor, addr: Address, query: ListQuery) -> Table:
    with ctx.db.read() as conn:
        t = resolve(conn, actor, addr, access.READ, upto=_upto(addr))
        pairs = select_resources(conn, owners(conn, addr, t), None)
        stats = q.resource_stats(conn, [r["pk"] for _, r in pairs])
    records = []
    for owner, r in pairs:
        n, size = stats.get(r["pk"], (0, 0))
        base = {
            "xnat_abstractresource_id": r["pk"],
            "label": r["label"],
            "element_name": "xnat:resourceCatalog",
            "category": owner.category,
            "cat_id": owner.cat_id,
            "cat_desc": "",
            "file_count": n,
            "file_size": size,
            "tags": r["tags"],
            "content": r["content"],
            "format": r["format"],
            "description": r["description"],
        }
        records.append({"_base": base, "_type": "xnat:resourceCatalog", "_fields": {}})
    # xnatpy and XNAT ignore ``columns`` here: the resource table always has its own columns.
    query = ListQuery(
        filters=query.filters,
        sort_by=query.sort_by,
        descending=query.descending,
        offset=query.offset,
        limit=query.limit,
    )
    return shape(records, query, RESOURCE_COLUMNS, make_getter("resource"), title="Resources", always=())


def _upto(addr: Address) -> str | None:
    return "experiment" if addr.child_kind and addr.child else None


def resource_item_of(ctx: Context, actor: Actor, addr: Address) -> Item:
    with ctx.db.read() as conn:
        t = resolve(conn, actor, addr, access.READ, upto=_upto(addr))
        pairs = select_resources(conn, owners(conn, addr, t), addr.resource)
        _, row = pairs[0]
        stats = q.resource_stats(conn, [row["pk"]])
        return resource_item(row, stats.get(row["pk"], (0, 0)), visibility.viewer(conn, actor))


def create_resource(ctx: Context, actor: Actor, addr: Address, params: Params) -> None:
    assert addr.resource is not None
    with ctx.db.write() as conn:
        t = resolve(conn, actor, addr, access.EDIT, upto=_upto(addr))
        owner = _single_owner(conn, addr, t)
        if any(r["label"] == addr.resource for r in q.resources_of(conn, [owner.key])):
            raise Conflict("Specified resource already exists.")
        ensure_resource(ctx, conn, owner, t.owner_project_id, addr.resource, params)


def _single_owner(conn: Connection, addr: Address, t: Target) -> Owner:
    found = owners(conn, addr, t)
    if len(found) != 1:
        raise InvalidInput("A single scan is needed here, not a list")
    return found[0]


def ensure_resource(
    ctx: Context, conn: Connection, owner: Owner, project_id: str, label: str, params: Params
) -> Any:
    """The owner's resource with this label, created (with its folder) if missing."""
    for row in q.resources_of(conn, [owner.key]):
        if row["label"] == label or str(row["pk"]) == label:
            return row
    return new_resource(ctx, conn, owner, project_id, label, params)


def new_resource(
    ctx: Context, conn: Connection, owner: Owner, project_id: str, label: str, params: Params
) -> Any:
    """A new resource of ``owner`` (one created in this transaction has none yet: no need to
    look); the one a concurrent request created a moment ago, if so."""
    safe_label(label, "resource label")
    directory = f"{owner.directory}/{label}"
    path = contained(ctx.settings.archive_dir, PurePosixPath(directory))
    n = 1
    # a folder still on disk (its resource deleted with removeFiles=false) is not taken over: its
    # files are no one's now, and the new resource's uploads must neither meet nor replace them
    while q.directory_taken(conn, directory) or _occupied(path):
        n += 1
        directory = f"{owner.directory}/{label}_{n}"
        path = contained(ctx.settings.archive_dir, PurePosixPath(directory))
    tags = param(params, "tags") or ""
    pk = q.insert_resource(
        conn,
        owner=owner.key,
        project_id=project_id,
        label=label,
        format=param(params, "format") or "",
        content=param(params, "content") or "",
        description=param(params, "description") or "",
        tags=tags,
        directory=directory,
    )
    if pk is None:  # created by a concurrent request a moment ago: use that one
        return ensure_resource(ctx, conn, owner, project_id, label, params)
    path.mkdir(parents=True, exist_ok=True)
    return {
        "pk": pk,
        "label": label,
        "directory": directory,
        "owner": owner.key,
        "format": "",
        "content": "",
        "tags": tags,
    }


def _occupied(path: Path) -> bool:
    """Something other than an empty folder is at ``path``."""
    if not os.path.lexists(path):
        return False
    if path.is_symlink() or not path.is_dir():
        return True
    with os.scandir(path) as entries:
        return next(entries, None) is not None


def delete_resource(ctx: Context, actor: Actor, addr: Address, remove_files: bool) -> None:
    def work(conn: Connection, folders: FolderRemoval) -> None:
        t = resolve(conn, actor, addr, access.EDIT, upto=_upto(addr))
        access.require(actor, t.project_row, t.role, access.DELETE)
        for _owner, row in select_resources(conn, owners(conn, addr, t), addr.resource):
            _drop_resource(ctx, conn, row, folders)

    removing_folders(ctx, remove_files, work)


def removing_folders(
    ctx: Context, remove_files: bool, work: Callable[[Connection, FolderRemoval], None]
) -> None:
    """Run ``work`` (a delete) in one write transaction; the resource folders it drops go once
    it committed (``FolderRemoval``). A disk too full for the database to record the delete
    (SQLite needs room for its log) is what a delete is for: ``work`` runs again, this time freeing
    the space before the commit, as asked; should that commit fail all the same, the rows name
    files that are gone (``xnatd verify`` reports them), never the reverse."""
    try:
        with FolderRemoval(ctx, remove_files) as folders, ctx.db.write() as conn:
            work(conn, folders)
        return
    except StorageFull:
        if not remove_files:
            raise
    with FolderRemoval(ctx, remove_files, at_once=True) as folders, ctx.db.write() as conn:
        work(conn, folders)


class FolderRemoval:
    """The folders of resources deleted in one transaction: set aside (journalled, into this
    process's folder in DATA/tmp) while it runs, deleted once it committed, put back if it failed.
    Deleting them inside the transaction lost the files of a delete whose commit then failed (or
    whose process died), while their rows stayed; a recovery puts back a folder whose resource row
    still exists (``verify._put_folder_back``). ``remove_files=False`` keeps every folder.

    On a full disk, where the journal line cannot be written, a folder stays where it is and is
    deleted after the commit (a process dying right after such a commit leaves the folder as
    orphans for ``xnatd verify``); ``at_once`` deletes each folder as it is dropped, before the
    commit (``removing_folders``, when the commit itself needs the space)."""

    def __init__(self, ctx: Context, remove_files: bool, at_once: bool = False) -> None:
        self.moves = Moves(ctx.settings.tmp_dir) if remove_files else None
        self.at_once = at_once
        self.after: list[Path] = []

    def drop(self, path: Path) -> None:
        if self.moves is None:
            return
        if self.at_once:
            shutil.rmtree(path, ignore_errors=True)
            return
        try:
            self.moves.put_aside(path)
        except StorageFull:
            self.after.append(path)

    def __enter__(self) -> FolderRemoval:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self.moves is None:
            return
        if kind is not None:
            self.moves.rollback()
            return
        self.moves.commit()
        for path in self.after:
            shutil.rmtree(path, ignore_errors=True)


def _drop_resource(ctx: Context, conn: Connection, row: Any, folders: FolderRemoval) -> None:
    q.delete_resource(conn, row["pk"])
    folders.drop(contained(ctx.settings.archive_dir, PurePosixPath(row["directory"])))


def remove_owned(ctx: Context, conn: Connection, owner: str, folders: FolderRemoval) -> None:
    """Drop every resource of an owner (``project:P`` means every resource anywhere in P)."""
    kind, _, key = owner.partition(":")
    rows = q.resources_of_project(conn, key) if kind == "project" else q.resources_of(conn, [owner])
    for row in rows:
        _drop_resource(ctx, conn, row, folders)


def archive_path(ctx: Context, directory: str, rel: str = "") -> Path:
    rel_path = PurePosixPath(directory) / rel if rel else PurePosixPath(directory)
    return contained(ctx.settings.archive_dir, rel_path)
