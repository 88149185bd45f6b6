"""Sharing subjects and sessions into other projects, under a label of that project (XNAT's
``/projects/P/subjects/S/projects/OTHER``), and taking them back."""

from __future__ import annotations

from xnatd.db import archive as q
from xnatd.domain import labels
from xnatd.domain.address import Address
from xnatd.errors import Conflict, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.context import Actor, Context
from xnatd.services.resolve import resolve, role_of
from xnatd.services.resources import Params, param


def share(ctx: Context, actor: Actor, addr: Address, params: Params) -> None:
    assert addr.share_project is not None
    with ctx.db.write() as conn:
        t = resolve(conn, actor, addr, access.READ)
        kind = "experiment" if addr.level == "experiment" else "subject"
        row = t.experiment if kind == "experiment" else t.subject
        if row is None:
            raise InvalidInput("Only subjects and experiments can be shared into another project")
        dest = q.project(conn, addr.share_project)
        if dest is None:
            raise NotFound(f"Project {addr.share_project} not found")
        access.require(actor, dest, role_of(conn, actor, dest["id"]), access.EDIT)
        if dest["id"] == row["project_id"] or q.share_label(conn, kind, row["id"], dest["id"]) is not None:
            raise Conflict(f"Already assigned to project:{dest['id']}")
        label = param(params, "label") or row["label"]
        labels.check_label(label, kind)
        if q.label_taken(conn, kind, dest["id"], label):
            raise Conflict(f"Specified label {label} is already in use in project {dest['id']}.")
        q.add_share(conn, kind, row["id"], dest["id"], label)


def unshare(ctx: Context, actor: Actor, addr: Address) -> None:
    assert addr.share_project is not None
    with ctx.db.write() as conn:
        t = resolve(conn, actor, addr, access.READ)
        kind = "experiment" if addr.level == "experiment" else "subject"
        row = t.experiment if kind == "experiment" else t.subject
        assert row is not None
        dest = q.project(conn, addr.share_project)
        if dest is None:
            raise NotFound(f"Project {addr.share_project} not found")
        access.require(actor, dest, role_of(conn, actor, dest["id"]), access.EDIT)
        if not q.remove_share(conn, kind, row["id"], dest["id"]):
            raise NotFound(f"{kind.capitalize()} is not shared into project {dest['id']}")
