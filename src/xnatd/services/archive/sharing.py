"""Sharing subjects and sessions into other projects, under a label of that project (XNAT's
``/projects/P/subjects/S/projects/OTHER``), and taking them back.

Who may share (``access.may_share_out``): the object must be readable, and the caller needs edit
rights in the project that owns it, or that project must be public, or let its collaborators
share; the destination needs edit rights. The rule looks at the owning project however the object
was reached, so data shared into a project cannot be shared on from there by someone the owning
project would refuse.
"""

from __future__ import annotations

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.domain import labels
from xnatd.domain.address import Address
from xnatd.domain.params import Params, param
from xnatd.errors import Conflict, Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.resolve import Target, load_project, resolve, role_of


def _shared(conn: Connection, actor: Actor, addr: Address) -> tuple[Target, str, q.Row, str]:
    """The subject or experiment a share address names (read access to it is enough to ask), and
    the project it names."""
    into = addr.share_project
    assert into is not None
    access.require_user(actor)
    t = resolve(conn, actor, addr, access.READ)
    kind = "experiment" if addr.level == "experiment" else "subject"
    row = t.experiment if kind == "experiment" else t.subject
    if row is None:
        raise InvalidInput("Only subjects and experiments can be shared into another project")
    return t, kind, row, into


def share(ctx: Context, actor: Actor, addr: Address, params: Params) -> None:
    with ctx.db.write() as conn:
        t, kind, row, into = _shared(conn, actor, addr)
        owner = q.project(conn, row["project_id"])
        assert owner is not None
        if not access.may_share_out(actor, owner, role_of(conn, actor, owner["id"])):
            raise Forbidden(
                f"Sharing {kind} {addr.experiment if kind == 'experiment' else addr.subject} is not allowed: "
                "it needs edit rights in the project it belongs to, or that project's leave for its "
                "collaborators to share"
            )
        dest, _ = load_project(conn, actor, into, access.EDIT)
        if dest["id"] == row["project_id"] or q.share_label(conn, kind, row["id"], dest["id"]) is not None:
            raise Conflict(f"Already assigned to project:{into}")
        seen = t.experiment_label if kind == "experiment" else t.subject_label  # as the caller knows it
        label = param(params, "label") or seen or row["label"]
        labels.check_label(label, kind)
        if q.label_taken(conn, kind, dest["id"], label):
            raise Conflict(f"Specified label {label} is already in use in project {into}.")
        q.add_share(conn, kind, row["id"], dest["id"], label)


def unshare(ctx: Context, actor: Actor, addr: Address) -> None:
    with ctx.db.write() as conn:
        _, kind, row, into = _shared(conn, actor, addr)
        dest, _ = load_project(conn, actor, into, access.EDIT)
        if not q.remove_share(conn, kind, row["id"], dest["id"]):
            raise NotFound(f"{kind.capitalize()} is not shared into project {into}")
