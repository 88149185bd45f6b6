"""The objects joined into an archive listing: each kind in one statement for the whole listing.

A listing with columns of other objects (a session's subject or scans, a subject's sessions) loads
those objects for all its rows at once, never one row at a time. The rows are named either by a list
of IDs (a page of a listing) or by a sub-select of the listing's own query (a whole listing, whatever
its size: no parameter limit, no second round of IDs).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, String, cast, literal, or_, select, union

from xnatd.db.schema import experiments, resources, scans, shares, subjects

Ids = Collection[str] | Select[Any]


def experiment_ids(
    project_id: str | None, subject_id: str | None, session_id: str | None, xsi_types: Sequence[str] | None
) -> Select[Any]:
    """The IDs of the experiments a listing lists (``archive.experiments_query``'s conditions): those of
    the project and those shared into it."""
    conds: list[Any] = []
    if subject_id is not None:
        conds.append(experiments.c.subject_id == subject_id)
    if session_id is not None:
        conds.append(experiments.c.session_id == session_id)
    if xsi_types is not None:
        conds.append(experiments.c.xsi_type.in_(list(xsi_types)))
    if project_id is None:
        return select(experiments.c.id).where(*conds)
    shared = select(shares.c.object_id).where(
        shares.c.kind == "experiment", shares.c.project_id == project_id
    )
    return select(experiments.c.id).where(
        *conds, or_(experiments.c.project_id == project_id, experiments.c.id.in_(shared))
    )


def subject_ids(project_id: str | None) -> Select[Any]:
    """The IDs of the subjects a listing lists: the project's own and those shared into it."""
    if project_id is None:
        return select(subjects.c.id)
    own = select(subjects.c.id).where(subjects.c.project_id == project_id)
    shared = select(shares.c.object_id.label("id")).where(
        shares.c.kind == "subject", shares.c.project_id == project_id
    )
    return select(union(own, shared).subquery().c.id)


def subjects_of_experiments(conn: Connection, ids: Ids) -> Sequence[RowMapping]:
    """The subjects of some experiments."""
    of = select(experiments.c.subject_id).where(experiments.c.id.in_(ids))
    return conn.execute(select(subjects).where(subjects.c.id.in_(of))).mappings().all()


def subject_by_id(conn: Connection, subject_id: str) -> RowMapping | None:
    return conn.execute(select(subjects).where(subjects.c.id == subject_id)).mappings().first()


def experiment_ids_of_subjects(ids: Ids) -> Select[Any]:
    """The IDs of the experiments of some subjects."""
    return select(experiments.c.id).where(experiments.c.subject_id.in_(ids))


def experiments_of_subjects(conn: Connection, ids: Ids) -> Sequence[RowMapping]:
    """The experiments of some subjects, in the order they were created."""
    stmt = select(experiments).where(experiments.c.subject_id.in_(ids))
    return conn.execute(stmt.order_by(experiments.c.insert_date, experiments.c.id)).mappings().all()


def assessors_of_sessions(conn: Connection, ids: Ids) -> Sequence[RowMapping]:
    """The assessors of some image sessions, in the order they were created."""
    stmt = select(experiments).where(experiments.c.session_id.in_(ids))
    return conn.execute(stmt.order_by(experiments.c.insert_date, experiments.c.id)).mappings().all()


def sessions_of_assessors(conn: Connection, ids: Ids) -> Sequence[RowMapping]:
    """The image sessions some assessors assess."""
    of = select(experiments.c.session_id).where(experiments.c.id.in_(ids))
    return conn.execute(select(experiments).where(experiments.c.id.in_(of))).mappings().all()


def children_of(conn: Connection, ids: Ids, kind: str) -> Sequence[RowMapping]:
    """The scans (or reconstructions) of some experiments."""
    stmt = select(scans).where(scans.c.experiment_id.in_(ids), scans.c.kind == kind)
    return conn.execute(stmt.order_by(scans.c.experiment_id, scans.c.pk)).mappings().all()


def resources_of_objects(conn: Connection, kind: str, ids: Ids) -> Sequence[RowMapping]:
    """The resources of some projects, subjects or experiments (their owner is ``{kind}:{ID}``)."""
    owners = [f"{kind}:{i}" for i in ids] if not isinstance(ids, Select) else _owner_keys(kind, ids)
    return _resources(conn, owners)


def resources_of_children(conn: Connection, experiment_ids: Ids, kind: str) -> Sequence[RowMapping]:
    """The resources of the scans (or reconstructions) of some experiments (owner ``scan:{pk}``)."""
    pks = cast(scans.c.pk, String)
    owners = select(literal(f"{kind}:", String) + pks).where(
        scans.c.experiment_id.in_(experiment_ids), scans.c.kind == kind
    )
    return _resources(conn, owners)


def _owner_keys(kind: str, ids: Select[Any]) -> Select[Any]:
    column = ids.selected_columns[0]
    return select(literal(f"{kind}:", String) + column).select_from(ids.subquery())


def _resources(conn: Connection, owners: Ids) -> Sequence[RowMapping]:
    stmt = select(resources).where(resources.c.owner.in_(owners)).order_by(resources.c.owner, resources.c.pk)
    return conn.execute(stmt).mappings().all()


def shares_of_many(conn: Connection, kind: str, ids: Ids) -> Sequence[RowMapping]:
    """The projects some subjects or experiments are shared into, with their labels there."""
    stmt = select(shares).where(shares.c.kind == kind, shares.c.object_id.in_(ids))
    return conn.execute(stmt.order_by(shares.c.object_id, shares.c.project_id)).mappings().all()


def experiment_shares_of_subjects(conn: Connection, ids: Ids) -> Sequence[RowMapping]:
    """Where the experiments of some subjects are shared."""
    return shares_of_many(conn, "experiment", experiment_ids_of_subjects(ids))


def subject_shares_of_experiments(conn: Connection, ids: Ids) -> Sequence[RowMapping]:
    """Where the subjects of some experiments are shared (their labels in other projects)."""
    of = select(experiments.c.subject_id).where(experiments.c.id.in_(ids))
    return shares_of_many(conn, "subject", of)
