"""Load the objects an Address names, checking the caller's right to them first.

Like Girder's ``loadmodel``: by the time a service body runs, every object on the path exists and
the caller may act on it, so the service bodies stay short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.domain import address as A
from xnatd.domain.address import Address
from xnatd.errors import Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor

Row = q.Row


@dataclass
class Target:
    """The objects along an address. ``*_label`` is the label as seen from the URL's project."""

    project: Row | None = None
    subject: Row | None = None
    subject_label: str | None = None
    experiment: Row | None = None
    experiment_label: str | None = None
    child: Row | None = None
    role: str | None = None

    @property
    def project_id(self) -> str:
        assert self.project is not None
        return str(self.project["id"])

    @property
    def project_row(self) -> Row:
        assert self.project is not None
        return self.project

    @property
    def owner_project_id(self) -> str:
        """The project that owns the deepest object (differs from the URL's project when shared)."""
        for row in (self.experiment, self.subject):
            if row is not None:
                return str(row["project_id"])
        return self.project_id


def role_of(conn: Connection, actor: Actor, project_id: str) -> str | None:
    return q.roles(conn, actor.username).get(project_id) if not actor.is_guest else None


def load_project(
    conn: Connection, actor: Actor, key: str, action: str, hidden: str | None = None, named: bool = True
) -> tuple[Row, str | None]:
    """The project ``key`` (ID or alias) and the caller's role, if they may do ``action`` there.

    ``named``: the caller gave ``key`` (a URL's project); else it is the project of an object they
    asked for, and a hidden one answers ``hidden``, the object's not-found text.
    """
    if action not in (access.DESCRIBE, access.READ):
        access.require_user(actor)  # before the lookup: a guest's answer is the same either way
    row = q.project(conn, key)
    if row is None:
        raise NotFound(f"Project {key} not found")
    role = role_of(conn, actor, row["id"])
    access.require(actor, row, role, action, hidden, name=key if named else None)
    return row, role


def _hidden(addr: Address) -> str | None:
    """The not-found text for something inside a project the caller may see but not read.

    Subjects and experiments (and everything below them) answer exactly as if they did not exist;
    the project's own listings answer 403 (None here), since the project itself is visible.
    """
    if addr.experiment:
        return f"Experiment {addr.experiment} not found in project {addr.project}"
    if addr.subject:
        return f"Subject {addr.subject} not found in project {addr.project}"
    return None


def require_on(conn: Connection, actor: Actor, project_id: str, action: str) -> None:
    """Check ``action`` on the project that owns an object (it may differ from the URL's project)."""
    load_project(conn, actor, project_id, action)


def resolve(conn: Connection, actor: Actor, addr: Address, action: str, upto: str | None = None) -> Target:
    """Load every object named by ``addr`` down to ``upto`` (default: the deepest one named)."""
    if action not in (access.DESCRIBE, access.READ):
        access.require_user(actor)  # before any lookup: the guest's answer tells nothing
    t = Target()
    if addr.project:
        if addr.kind == A.PROJECT and action == access.READ:
            t.project, t.role = load_project(conn, actor, addr.project, access.DESCRIBE)
        else:
            t.project, t.role = load_project(conn, actor, addr.project, action, _hidden(addr))
    deeper = bool(addr.experiment) and upto not in ("project", "subject")
    if addr.subject and upto != "project":
        # a subject on the way to its experiment is only read: a change to the experiment needs
        # rights in the experiment's project, not in the subject's
        _load_subject(conn, actor, addr, t, access.READ if deeper else action)
    if deeper:
        _load_experiment(conn, actor, addr, t, action)
    if addr.child_kind and addr.child and upto not in ("project", "subject", "experiment"):
        t.child = load_child(conn, t, addr.child_kind, addr.child)
    return t


def _authorize_owner(
    conn: Connection, actor: Actor, t: Target, project_id: str, action: str, what: str
) -> None:
    """Check ``action`` on the project that owns an object found through the URL's project.

    Reading a shared object through the project it is shared into needs nothing more; changing it
    needs the same rights in its own project (XNAT's rule: a share lends data, not the right to
    change it). The refusal names no project, since the caller may not know the owner.
    """
    if t.project is not None and t.project["id"] == project_id:
        return
    if t.project is None:
        hidden = f"{what} not found"
        t.project, t.role = load_project(conn, actor, project_id, action, hidden=hidden, named=False)
        return
    if action == access.READ:
        return  # reading a shared object through the project it is shared into
    t.project, t.role = require_through_share(conn, actor, t.project_id, project_id, action, what)


def require_through_share(
    conn: Connection, actor: Actor, via: str, project_id: str, action: str, what: str
) -> tuple[Row, str | None]:
    """The owning project of an object the caller reached through project ``via`` (where it is
    shared), and their role there, if they may do ``action`` to it; else Forbidden, naming no
    project but ``via``."""
    access.require_user(actor)
    owner = q.project(conn, project_id)
    assert owner is not None
    role = role_of(conn, actor, project_id)
    if not access.allowed(actor, owner, role, action):
        raise Forbidden(
            f"{what} is shared into project {via} from another project: changing it needs "
            f"{action} rights in the project it belongs to"
        )
    return owner, role


_ACCESSION = re.compile(r"^\w+_[SE]\d{5,}$")


def _find(conn: Connection, t: Target, kind: str, key: str, named: str | None) -> tuple[Row, str]:
    """A subject or experiment by label or ID in the URL's project, or by accession ID site-wide."""
    name = kind.capitalize()
    if t.project is None:
        row = q.by_id(conn, kind, key)
        if row is None:
            hint = (
                ""
                if _ACCESSION.match(key)
                else (
                    f": at /data/{kind}s/... you must specify the accession number and not the {kind} label"
                )
            )
            raise NotFound(f"{name} {key} not found{hint}")
        return row, row["label"]
    found = q.in_project(conn, kind, t.project_id, key)
    if found is None:
        raise NotFound(f"{name} {key} not found in project {named or t.project_id}")
    return found


def _lent(conn: Connection, actor: Actor, t: Target, kind: str, row: Row, action: str) -> str | None:
    """Read by accession ID (no project in the URL): an object whose own project the caller may not
    read is reached through the first project it is shared into that they may read (as its
    listings' URIs lead there); its label there, or None."""
    if t.project is not None or action != access.READ:
        return None
    owner = q.project(conn, row["project_id"])
    if owner is None or access.allowed(actor, owner, role_of(conn, actor, owner["id"]), access.READ):
        return None
    for share in q.shares_of(conn, kind, row["id"]):
        project = q.project(conn, share["project_id"])
        role = role_of(conn, actor, share["project_id"])
        if project is not None and access.allowed(actor, project, role, access.READ):
            t.project, t.role = project, role
            return str(share["label"])
    return None


def _load_subject(conn: Connection, actor: Actor, addr: Address, t: Target, action: str) -> None:
    assert addr.subject is not None
    t.subject, t.subject_label = _find(conn, t, "subject", addr.subject, addr.project)
    lent = _lent(conn, actor, t, "subject", t.subject, action)
    if lent is not None:
        t.subject_label = lent
        return
    _authorize_owner(conn, actor, t, t.subject["project_id"], action, f"Subject {addr.subject}")


def _load_experiment(conn: Connection, actor: Actor, addr: Address, t: Target, action: str) -> None:
    assert addr.experiment is not None
    exp, t.experiment_label = _find(conn, t, "experiment", addr.experiment, addr.project)
    t.experiment = exp
    if t.subject is not None and exp["subject_id"] not in (t.subject["id"], None):
        raise NotFound(f"Experiment {addr.experiment} not found for subject {addr.subject}")
    lent = _lent(conn, actor, t, "experiment", exp, action)
    if lent is not None:
        t.experiment_label = lent
    else:
        _authorize_owner(conn, actor, t, exp["project_id"], action, f"Experiment {addr.experiment}")
    if t.subject is None and exp["subject_id"]:
        t.subject = q.by_id(conn, "subject", exp["subject_id"])
        if t.subject is not None:
            label = q.share_label(conn, "subject", t.subject["id"], t.project_id)
            t.subject_label = label or t.subject["label"]


def load_child(conn: Connection, t: Target, kind: str, child_id: str) -> Row:
    assert t.experiment is not None
    if kind == "assessor":
        found = q.in_project(conn, "experiment", t.project_id, child_id)
        if found is None or found[0]["session_id"] != t.experiment["id"]:
            raise NotFound(f"Assessor {child_id} not found in experiment {t.experiment_label}")
        return found[0]
    row = q.child(conn, t.experiment["id"], kind, child_id)
    if row is None:
        raise NotFound(f"{kind.capitalize()} {child_id} not found in experiment {t.experiment_label}")
    return row


def check_single(value: str, what: str) -> str:
    if "," in value:
        raise InvalidInput(f"A single {what} is needed here, not a list: {value}")
    return value
