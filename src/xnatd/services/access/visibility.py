"""What of other projects a reader is shown: only projects they may read.

A shared object belongs to one project and is shared into others. Its documents, listings and pages
name projects (its ``project``, its ``sharing/share`` entries, its resources' folders) and list its
children (a subject's experiments, a session's assessors), which may belong to yet other projects.
A reader sees only what they may read: a child of a project they cannot read is left out, and a
project they cannot read is never named (docs/access-control.md). An object whose own project they
cannot read shows under the project they reached it through, else under the first project they may
read that it is shared into, with its label there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.services import access
from xnatd.services.access.context import Actor


@dataclass(frozen=True)
class Viewer:
    """The projects a caller may read; ``readable`` None means all of them (site administrators)."""

    readable: frozenset[str] | None

    def reads(self, project_id: str | None) -> bool:
        return project_id is not None and (self.readable is None or project_id in self.readable)


EVERYTHING = Viewer(None)


def readable_project_ids(conn: Connection, actor: Actor) -> set[str]:
    roles = q.roles(conn, actor.username) if not actor.is_guest else {}
    return {
        str(r["id"])
        for r in q.all_projects(conn)
        if access.allowed(actor, r, roles.get(r["id"]), access.READ)
    }


def viewer(conn: Connection, actor: Actor) -> Viewer:
    return EVERYTHING if actor.is_admin else Viewer(frozenset(readable_project_ids(conn, actor)))


def shown_as(
    conn: Connection, v: Viewer, kind: str, row: Any, via: str | None = None
) -> tuple[str, str] | None:
    """(project, label) a subject or experiment shows under to ``v``; None if they may not read it.

    Its own project if readable; else ``via`` (the project the caller asked through) if it is shared
    there; else the first readable project it is shared into.
    """
    if v.reads(row["project_id"]):
        return str(row["project_id"]), str(row["label"])
    shares = {s["project_id"]: s["label"] for s in q.shares_of(conn, kind, row["id"])}
    if via is not None and via in shares and v.reads(via):
        return via, str(shares[via])
    for project_id in sorted(shares):
        if v.reads(project_id):
            return str(project_id), str(shares[project_id])
    return None
