"""Deleting archive objects: a project, a subject or session with everything under it, a scan;
a subject or session deleted through a project it is only shared into is un-shared there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.domain.address import Address
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.resolve import Target, require_on, require_through_share, resolve
from xnatd.services.archive.resources import FolderRemoval, remove_owned, removing_folders


def delete(ctx: Context, actor: Actor, addr: Address, remove_files: bool) -> None:
    access.require_user(actor)
    removing_folders(ctx, remove_files, lambda conn, folders: _delete(ctx, conn, actor, addr, folders))


def _delete(ctx: Context, conn: Connection, actor: Actor, addr: Address, folders: FolderRemoval) -> None:
    t = resolve(conn, actor, addr, access.READ)
    level = addr.level
    if level == "project":
        access.require(actor, t.project_row, t.role, access.DELETE)
        remove_owned(ctx, conn, f"project:{t.project_id}", folders)
        q.delete_project(conn, t.project_id)
        return
    if level in ("subject", "experiment", "assessor"):
        kind = "subject" if level == "subject" else "experiment"
        row = t.subject if level == "subject" else (t.child if level == "assessor" else t.experiment)
        assert row is not None
        if row["project_id"] != t.project_id and addr.project:
            access.require(actor, t.project_row, t.role, access.DELETE)
            q.remove_share(conn, kind, row["id"], t.project_id)  # via a shared project: un-share
            return
        _require_owner(conn, actor, t, row["project_id"], f"{level.capitalize()} {row['id']}")
        _delete_tree(ctx, conn, kind, row, folders)
        return
    assert t.child is not None
    _require_owner(conn, actor, t, t.owner_project_id, f"{addr.child_kind} {addr.child}")
    remove_owned(ctx, conn, f"{addr.child_kind}:{t.child['pk']}", folders)
    q.delete_child(conn, t.child["pk"])


def _require_owner(conn: Connection, actor: Actor, t: Target, project_id: str, what: str) -> None:
    """Delete rights in the project that owns what is deleted (the URL's, or the one it is shared from)."""
    if t.project is not None and t.project_id != project_id:
        require_through_share(conn, actor, t.project_id, project_id, access.DELETE, what)
    else:
        require_on(conn, actor, project_id, access.DELETE)


def _delete_tree(ctx: Context, conn: Connection, kind: str, row: Any, folders: FolderRemoval) -> None:
    if kind == "subject":
        exps, _ = q.experiments_query(conn, None, row["id"], None, None)
        for exp, _p, _l in exps:
            _delete_tree(ctx, conn, "experiment", exp, folders)
        remove_owned(ctx, conn, f"subject:{row['id']}", folders)
    else:
        assessors, _ = q.experiments_query(conn, None, None, row["id"], None)
        for a, _p, _l in assessors:
            _delete_tree(ctx, conn, "experiment", a, folders)
        for ck in ("scan", "reconstruction"):
            for c in q.children(conn, row["id"], ck):
                remove_owned(ctx, conn, f"{ck}:{c['pk']}", folders)
                q.delete_child(conn, c["pk"])
        remove_owned(ctx, conn, f"experiment:{row['id']}", folders)
    q.delete_object(conn, kind, row["id"])
