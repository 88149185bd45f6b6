"""Queries behind the web pages: counts for a project's page and the label search box."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, RowMapping, and_, func, select

from xnatd.db.schema import experiments, shares, subjects


def count_subjects(conn: Connection, project_id: str) -> int:
    own = select(func.count()).select_from(subjects).where(subjects.c.project_id == project_id)
    shared = (
        select(func.count())
        .select_from(shares)
        .where(shares.c.kind == "subject", shares.c.project_id == project_id)
    )
    return int(conn.execute(own).scalar() or 0) + int(conn.execute(shared).scalar() or 0)


def count_sessions(conn: Connection, project_id: str) -> int:
    """Experiments of the project that are not assessors (own and shared in)."""
    own = (
        select(func.count())
        .select_from(experiments)
        .where(experiments.c.project_id == project_id, experiments.c.session_id.is_(None))
    )
    shared = (
        select(func.count())
        .select_from(shares)
        .where(shares.c.kind == "experiment", shares.c.project_id == project_id)
    )
    return int(conn.execute(own).scalar() or 0) + int(conn.execute(shared).scalar() or 0)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def find_subjects(
    conn: Connection, text: str, projects: Collection[str] | None, limit: int
) -> list[RowMapping]:
    """Subjects whose label contains ``text`` (any case), in ``projects`` (None: every project)."""
    stmt = select(subjects.c.id, subjects.c.label, subjects.c.project_id).where(
        func.lower(subjects.c.label).like(_like(text), escape="\\")
    )
    if projects is not None:
        stmt = stmt.where(subjects.c.project_id.in_(list(projects)))
    stmt = stmt.order_by(subjects.c.project_id, subjects.c.label).limit(limit)
    return list(conn.execute(stmt).mappings())


def find_sessions(
    conn: Connection, text: str, projects: Collection[str] | None, limit: int
) -> list[RowMapping]:
    """Sessions (not assessors) whose label contains ``text``, with their subject's label."""
    stmt = (
        select(
            experiments.c.id,
            experiments.c.label,
            experiments.c.project_id,
            experiments.c.xsi_type,
            experiments.c.date,
            func.coalesce(shares.c.label, subjects.c.label).label("subject_label"),
        )
        .join(subjects, subjects.c.id == experiments.c.subject_id)
        .outerjoin(  # a subject shared into the session's project: its label there
            shares,
            and_(
                shares.c.kind == "subject",
                shares.c.object_id == subjects.c.id,
                shares.c.project_id == experiments.c.project_id,
            ),
        )
        .where(
            func.lower(experiments.c.label).like(_like(text), escape="\\"),
            experiments.c.session_id.is_(None),
        )
    )
    if projects is not None:
        stmt = stmt.where(experiments.c.project_id.in_(list(projects)))
    stmt = stmt.order_by(experiments.c.project_id, experiments.c.label).limit(limit)
    return list(conn.execute(stmt).mappings())


def subject_labels(conn: Connection, ids: Collection[str], project_id: str) -> dict[str, str]:
    """Labels of some subjects by ID in a project (a page of sessions names its subjects by ID): a
    subject shared into the project has its label there, never its own project's."""
    if not ids:
        return {}
    shared = and_(
        shares.c.kind == "subject", shares.c.object_id == subjects.c.id, shares.c.project_id == project_id
    )
    stmt = (
        select(subjects.c.id, func.coalesce(shares.c.label, subjects.c.label).label("label"))
        .select_from(subjects.outerjoin(shares, shared))
        .where(subjects.c.id.in_(list(ids)))
    )
    return {str(r.id): str(r.label) for r in conn.execute(stmt)}
