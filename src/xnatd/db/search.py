"""Queries behind ``POST /data/search``: the rows of each kind a search needs, in a few statements.

A search loads the objects of the kinds it names at once (one statement per kind, plus one for
their shares) rather than one object at a time; the service then evaluates the criteria, which
mostly test JSON fields. What SQL can narrow cheaply it narrows here: the data type, the readable
projects, and an ``ID`` criterion on the root element (pyxnat's experiment ``repr()`` searches one
session by its ID).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, func, select

from xnatd.db.schema import experiments, project_users, projects, scans, shares, subjects

IdFilter = tuple[str, str]  # ("=" | "LIKE", value) on the root element's ID


def all_projects(conn: Connection, ids: Collection[str] | None) -> Sequence[RowMapping]:
    stmt = select(projects).order_by(projects.c.id)
    if ids is not None:
        stmt = stmt.where(projects.c.id.in_(list(ids)))
    return conn.execute(stmt).mappings().all()


def members(conn: Connection) -> dict[str, list[tuple[str, str]]]:
    """Project ID → (role, username) of every member, by role then name."""
    stmt = select(project_users).order_by(project_users.c.role, project_users.c.username)
    out: dict[str, list[tuple[str, str]]] = {}
    for row in conn.execute(stmt).mappings():
        out.setdefault(row["project_id"], []).append((row["role"], row["username"]))
    return out


def subject_rows(
    conn: Connection, id_filter: IdFilter | None, ids: Collection[str] | None = None
) -> Sequence[RowMapping]:
    stmt = select(subjects).order_by(subjects.c.id)
    if id_filter is not None:
        stmt = stmt.where(_id_condition(subjects.c.id, id_filter))
    if ids is not None:
        stmt = stmt.where(subjects.c.id.in_(sorted(ids)))
    return conn.execute(stmt).mappings().all()


def experiment_rows(
    conn: Connection,
    xsi_types: Collection[str] | None,
    id_filter: IdFilter | None,
    ids: Collection[str] | None = None,
) -> Sequence[RowMapping]:
    stmt = select(experiments).order_by(experiments.c.id)
    if xsi_types is not None:
        stmt = stmt.where(experiments.c.xsi_type.in_(list(xsi_types)))
    if id_filter is not None:
        stmt = stmt.where(_id_condition(experiments.c.id, id_filter))
    if ids is not None:
        stmt = stmt.where(experiments.c.id.in_(sorted(ids)))
    return conn.execute(stmt).mappings().all()


def child_rows(conn: Connection, kind: str, xsi_types: Collection[str] | None) -> Sequence[RowMapping]:
    """Scans (or reconstructions) with their session's project, label, subject and date."""
    stmt = (
        select(
            scans,
            experiments.c.project_id.label("session_project"),
            experiments.c.label.label("session_label"),
            experiments.c.subject_id.label("session_subject"),
        )
        .join(experiments, experiments.c.id == scans.c.experiment_id)
        .where(scans.c.kind == kind)
        .order_by(scans.c.experiment_id, scans.c.pk)
    )
    if xsi_types is not None:
        stmt = stmt.where(scans.c.xsi_type.in_(list(xsi_types)))
    return conn.execute(stmt).mappings().all()


def share_rows(conn: Connection, kind: str) -> dict[str, list[tuple[str, str]]]:
    """Object ID → (project, label) of every project it is shared into, by project."""
    stmt = select(shares).where(shares.c.kind == kind).order_by(shares.c.project_id)
    out: dict[str, list[tuple[str, str]]] = {}
    for row in conn.execute(stmt).mappings():
        out.setdefault(row["object_id"], []).append((row["project_id"], row["label"]))
    return out


def counts_by_project(conn: Connection) -> dict[tuple[str, str], int]:
    """(project, xsi:type) → experiments of that type in the project, own and shared in (XNAT's
    ``PROJ_EXPT_COUNTS``)."""
    own = select(experiments.c.project_id, experiments.c.xsi_type, func.count()).group_by(
        experiments.c.project_id, experiments.c.xsi_type
    )
    shared = (
        select(shares.c.project_id, experiments.c.xsi_type, func.count())
        .join(experiments, experiments.c.id == shares.c.object_id)
        .where(shares.c.kind == "experiment")
        .group_by(shares.c.project_id, experiments.c.xsi_type)
    )
    out: dict[tuple[str, str], int] = {}
    for stmt in (own, shared):
        for project, xsi_type, n in conn.execute(stmt):
            out[(project, xsi_type)] = out.get((project, xsi_type), 0) + int(n)
    return out


def subject_experiments(conn: Connection) -> Sequence[RowMapping]:
    """Every experiment's ID, subject, project and type, for counting a subject's experiments."""
    stmt = select(
        experiments.c.id, experiments.c.subject_id, experiments.c.project_id, experiments.c.xsi_type
    ).where(experiments.c.subject_id.is_not(None))
    return conn.execute(stmt).mappings().all()


def _id_condition(column: Any, id_filter: IdFilter) -> Any:
    op, value = id_filter
    if op == "=":
        return column == value
    # The search's LIKE ignores case (as SQLite's does; PostgreSQL's does not, so lower both sides).
    # The caller passes no backslash: PostgreSQL would read it as an escape, the search does not.
    return func.lower(column).like(value.replace("*", "%").lower())
