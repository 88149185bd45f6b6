"""Sharing subjects and sessions into other projects, under a label of that project (XNAT's
``/projects/P/subjects/S/projects/OTHER``), and taking them back.

Who may share (``access.may_share_out``): the object must be readable, and the caller needs edit
rights in the project that owns it, or that project must be public, or let its collaborators
share; the destination needs edit rights. The rule looks at the owning project however the object
was reached, so data shared into a project cannot be shared on from there by someone the owning
project would refuse.
"""

from __future__ import annotations

from xnatd.db import archive as q
from xnatd.domain import labels
from xnatd.domain.address import Address
from xnatd.errors import Conflict, Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.context import Actor, Context
from xnatd.services.resolve import load_project, resolve, role_of
from xnatd.services.resources import Params, param


def share(ctx: Context, actor: Actor, addr: Address, params: Params) -> None:
    assert addr.share_project is not None
    access.require_user(actor)
    with ctx.db.write() as conn:
        t = resolve(conn, actor, addr, access.READ)
        kind = "experiment" if addr.level == "experiment" else "subject"
        row = t.experiment if kind == "experiment" else t.subject
        if row is None:
            raise InvalidInput("Only subjects and experiments can be shared into another project")
        owner = q.project(conn, row["project_id"])
        assert owner is not None
        if not access.may_share_out(actor, owner, role_of(conn, actor, owner["id"])):
            raise Forbidden(
                f"Sharing {kind} {addr.experiment if kind == 'experiment' else addr.subject} is not allowed: "
                "it needs edit rights in the project it belongs to, or that project's leave for its "
                "collaborators to share"
            )
        dest, _ = load_project(conn, actor, addr.share_project, access.EDIT)
        if dest["id"] == row["project_id"] or q.share_label(conn, kind, row["id"], dest["id"]) is not None:
            raise Conflict(f"Already assigned to project:{addr.share_project}")
        seen = t.experiment_label if kind == "experiment" else t.subject_label  # as the caller knows it
        label = param(params, "label") or seen or row["label"]
        labels.check_label(label, kind)
        if q.label_taken(conn, kind, dest["id"], label):
            raise Conflict(f"Specified label {label} is already in use in project {addr.share_project}.")
        q.add_share(conn, kind, row["id"], dest["id"], label)


def unshare(ctx: Context, actor: Actor, addr: Address) -> None:
    assert addr.share_project is not None
    access.require_user(actor)
    with ctx.db.write() as conn:
        t = resolve(conn, actor, addr, access.READ)
        kind = "experiment" if addr.level == "experiment" else "subject"
        row = t.experiment if kind == "experiment" else t.subject
        assert row is not None
        dest, _ = load_project(conn, actor, addr.share_project, access.EDIT)
        if not q.remove_share(conn, kind, row["id"], dest["id"]):
            raise NotFound(f"{kind.capitalize()} is not shared into project {addr.share_project}")
