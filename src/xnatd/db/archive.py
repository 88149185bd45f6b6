"""Queries on the archive tables. Every function takes the caller's connection (one transaction)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from xnatd.db.schema import (
    counters,
    experiments,
    files,
    project_aliases,
    project_users,
    projects,
    resources,
    scans,
    shares,
    subjects,
)

Row = RowMapping


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def next_number(conn: Connection, name: str) -> int:
    """A site-wide counter; the row lock (or SQLite's write lock) serialises concurrent callers."""
    stmt = update(counters).where(counters.c.name == name).values(value=counters.c.value + 1)
    value = conn.execute(stmt.returning(counters.c.value)).scalar()
    if value is None:
        if insert_if_absent(conn, counters, name=name, value=1):
            return 1
        value = conn.execute(stmt.returning(counters.c.value)).scalar_one()  # created meanwhile
    return int(value)


def insert_if_absent(conn: Connection, table: Any, **values: Any) -> bool:
    """Insert a row unless a unique key clashes (a concurrent writer got there first): True if inserted.

    The savepoint keeps the surrounding transaction usable after the clash on PostgreSQL.
    """
    try:
        with conn.begin_nested():
            conn.execute(insert(table).values(**values))
    except IntegrityError:
        return False
    return True


# --- projects -----------------------------------------------------------------------------------


# Statements run on every request are built once (building one costs more than running it on SQLite).
_PROJECT = select(projects).where(projects.c.id == bindparam("key"))
_PROJECT_BY_ALIAS = select(projects).where(
    projects.c.id
    == select(project_aliases.c.project_id)
    .where(project_aliases.c.alias == bindparam("key"))
    .scalar_subquery()
)
_ROLES = select(project_users.c.project_id, project_users.c.role).where(
    project_users.c.username == bindparam("username")
)


def project(conn: Connection, key: str) -> Row | None:
    row = conn.execute(_PROJECT, {"key": key}).mappings().first()
    if row is None:
        row = conn.execute(_PROJECT_BY_ALIAS, {"key": key}).mappings().first()
    return row


def all_projects(conn: Connection, ids: Iterable[str] | None = None) -> Sequence[Row]:
    """Projects in the order they were created, as XNAT lists them (its query has no ORDER BY, and
    PostgreSQL answers in the order the rows were stored)."""
    stmt = select(projects).order_by(projects.c.insert_date, projects.c.id)
    if ids is not None:
        stmt = stmt.where(projects.c.id.in_(list(ids)))
    return conn.execute(stmt).mappings().all()


def aliases(conn: Connection, project_id: str) -> list[str]:
    stmt = select(project_aliases.c.alias).where(project_aliases.c.project_id == project_id)
    return list(conn.execute(stmt.order_by(project_aliases.c.alias)).scalars())


def all_aliases(conn: Connection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    stmt = select(project_aliases.c.project_id, project_aliases.c.alias).order_by(project_aliases.c.alias)
    for project_id, alias in conn.execute(stmt):
        out.setdefault(project_id, []).append(alias)
    return out


def project_roles(conn: Connection, project_id: str, lock: bool = False) -> Sequence[Row]:
    """The project's users and roles; ``lock`` first locks the project's row (PostgreSQL; SQLite's
    writers run one at a time anyway), so concurrent changes of its roles queue."""
    if lock:
        conn.execute(select(projects.c.id).where(projects.c.id == project_id).with_for_update())
    stmt = select(project_users).where(project_users.c.project_id == project_id)
    return conn.execute(stmt.order_by(project_users.c.role, project_users.c.username)).mappings().all()


def remove_role(conn: Connection, project_id: str, username: str) -> int:
    stmt = delete(project_users).where(
        and_(project_users.c.project_id == project_id, project_users.c.username == username)
    )
    return conn.execute(stmt).rowcount


def alias_owner(conn: Connection, alias: str) -> str | None:
    stmt = select(project_aliases.c.project_id).where(project_aliases.c.alias == alias)
    return conn.execute(stmt).scalar()


def set_aliases(conn: Connection, project_id: str, names: Iterable[str]) -> None:
    conn.execute(delete(project_aliases).where(project_aliases.c.project_id == project_id))
    for name in names:
        conn.execute(insert(project_aliases).values(alias=name, project_id=project_id))


def insert_project(conn: Connection, **values: Any) -> None:
    conn.execute(insert(projects).values(insert_date=now(), **values))


def update_project(conn: Connection, project_id: str, **values: Any) -> None:
    conn.execute(update(projects).where(projects.c.id == project_id).values(**values))


def delete_project(conn: Connection, project_id: str) -> None:
    conn.execute(delete(projects).where(projects.c.id == project_id))


def roles(conn: Connection, username: str) -> dict[str, str]:
    return {r.project_id: r.role for r in conn.execute(_ROLES, {"username": username})}


def set_role(conn: Connection, project_id: str, username: str, role: str) -> None:
    conn.execute(
        delete(project_users).where(
            and_(project_users.c.project_id == project_id, project_users.c.username == username)
        )
    )
    conn.execute(insert(project_users).values(project_id=project_id, username=username, role=role))


# --- subjects and experiments --------------------------------------------------------------------

_TABLES = {"subject": subjects, "experiment": experiments}


def by_id(conn: Connection, kind: str, object_id: str) -> Row | None:
    t = _TABLES[kind]
    return conn.execute(select(t).where(t.c.id == object_id)).mappings().first()


def in_project(conn: Connection, kind: str, project_id: str, key: str) -> tuple[Row, str] | None:
    """Find a subject/experiment by label (own or shared) or ID in a project, with its label there."""
    t = _TABLES[kind]
    row = conn.execute(select(t).where(t.c.project_id == project_id, t.c.label == key)).mappings().first()
    if row is not None:
        return row, row["label"]
    shared = select(shares.c.object_id).where(
        shares.c.kind == kind, shares.c.project_id == project_id, shares.c.label == key
    )
    row = conn.execute(select(t).where(t.c.id == shared.scalar_subquery())).mappings().first()
    if row is not None:
        return row, key
    row = by_id(conn, kind, key)
    if row is None:
        return None
    if row["project_id"] == project_id:
        return row, row["label"]
    label = share_label(conn, kind, key, project_id)
    return (row, label) if label is not None else None


def share_label(conn: Connection, kind: str, object_id: str, project_id: str) -> str | None:
    stmt = select(shares.c.label).where(
        shares.c.kind == kind, shares.c.object_id == object_id, shares.c.project_id == project_id
    )
    return conn.execute(stmt).scalar()


def subject_label_in(conn: Connection, subject_id: str | None, project_id: str) -> str:
    """A subject's label in a project: its share label there if shared in, else its own ("" if none)."""
    if not subject_id:
        return ""
    shared = share_label(conn, "subject", subject_id, project_id)
    if shared is not None:
        return shared
    row = by_id(conn, "subject", subject_id)
    return str(row["label"]) if row is not None else ""


def shares_of(conn: Connection, kind: str, object_id: str) -> Sequence[Row]:
    stmt = select(shares).where(shares.c.kind == kind, shares.c.object_id == object_id)
    return conn.execute(stmt.order_by(shares.c.project_id)).mappings().all()


def add_share(conn: Connection, kind: str, object_id: str, project_id: str, label: str) -> None:
    conn.execute(insert(shares).values(kind=kind, object_id=object_id, project_id=project_id, label=label))


def set_share_label(conn: Connection, kind: str, object_id: str, project_id: str, label: str) -> None:
    stmt = update(shares).where(
        shares.c.kind == kind, shares.c.object_id == object_id, shares.c.project_id == project_id
    )
    conn.execute(stmt.values(label=label))


def remove_share(conn: Connection, kind: str, object_id: str, project_id: str) -> int:
    """Take an object back from a project it is shared into. A subject takes its experiments (and
    their assessors) along, as XNAT does: they are shared through it."""
    stmt = delete(shares).where(
        shares.c.kind == kind, shares.c.object_id == object_id, shares.c.project_id == project_id
    )
    removed = conn.execute(stmt).rowcount
    if kind == "subject" and removed:
        sessions = select(experiments.c.id).where(experiments.c.subject_id == object_id)
        below = select(experiments.c.id).where(
            or_(experiments.c.subject_id == object_id, experiments.c.session_id.in_(sessions))
        )
        conn.execute(
            delete(shares).where(
                shares.c.kind == "experiment",
                shares.c.project_id == project_id,
                shares.c.object_id.in_(below),
            )
        )
    return removed


def label_taken(conn: Connection, kind: str, project_id: str, label: str) -> bool:
    t = _TABLES[kind]
    own = conn.execute(select(t.c.id).where(t.c.project_id == project_id, t.c.label == label)).first()
    if own is not None:
        return True
    shared = select(shares.c.object_id).where(
        shares.c.kind == kind, shares.c.project_id == project_id, shares.c.label == label
    )
    return conn.execute(shared).first() is not None


def insert_object(conn: Connection, kind: str, **values: Any) -> bool:
    """Insert a subject or experiment; False if a concurrent writer took its label first."""
    stamp = now()
    return insert_if_absent(conn, _TABLES[kind], insert_date=stamp, last_modified=stamp, **values)


def update_object(conn: Connection, kind: str, object_id: str, **values: Any) -> None:
    """Update (or, with no values, just touch) a subject or experiment; its ``last_modified`` moves."""
    t = _TABLES[kind]
    conn.execute(update(t).where(t.c.id == object_id).values(last_modified=now(), **values))


def delete_object(conn: Connection, kind: str, object_id: str) -> None:
    t = _TABLES[kind]
    conn.execute(delete(shares).where(shares.c.kind == kind, shares.c.object_id == object_id))
    conn.execute(delete(t).where(t.c.id == object_id))


def subjects_of(conn: Connection, project_id: str | None) -> list[tuple[Row, str, str]]:
    """Subjects of a project (own and shared in) as (row, project shown, label shown); all if None.
    In the order they were created, those shared in among the project's own."""
    if project_id is None:
        rows = conn.execute(select(subjects).order_by(subjects.c.insert_date, subjects.c.id)).mappings()
        return [(r, r["project_id"], r["label"]) for r in rows]
    own = conn.execute(select(subjects).where(subjects.c.project_id == project_id)).mappings()
    out = [(r, project_id, r["label"]) for r in own]
    shared = conn.execute(
        select(subjects, shares.c.label.label("share_label"))
        .join(shares, and_(shares.c.object_id == subjects.c.id, shares.c.kind == "subject"))
        .where(shares.c.project_id == project_id)
    ).mappings()
    out.extend((r, project_id, r["share_label"]) for r in shared)
    return sorted(out, key=_created)


def _created(entry: tuple[Row, str, str]) -> tuple[Any, str]:
    return entry[0]["insert_date"], entry[0]["id"]


def experiments_query(
    conn: Connection,
    project_id: str | None,
    subject_id: str | None,
    session_id: str | None,
    xsi_types: Sequence[str] | None,
    page: tuple[int, int | None] | None = None,
) -> tuple[list[tuple[Row, str, str]], int]:
    """Experiments (own and shared in) as (row, project shown, label shown) in the order they were
    created, and the total count. A page (offset, limit) is taken in SQL from the project's own
    experiments; the caller pages in Python when some are shared in."""
    conds: list[Any] = []
    if subject_id is not None:
        conds.append(experiments.c.subject_id == subject_id)
    if session_id is not None:
        conds.append(experiments.c.session_id == session_id)
    if xsi_types is not None:
        conds.append(experiments.c.xsi_type.in_(list(xsi_types)))
    own_conds = [*conds, experiments.c.project_id == project_id] if project_id else conds
    stmt = select(experiments).where(*own_conds).order_by(experiments.c.insert_date, experiments.c.id)
    total = conn.execute(select(func.count()).select_from(experiments).where(*own_conds)).scalar() or 0
    if page is not None:
        offset, limit = page
        stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
    out = [(r, r["project_id"], r["label"]) for r in conn.execute(stmt).mappings()]
    if project_id:
        shared = conn.execute(
            select(experiments, shares.c.label.label("share_label"))
            .join(shares, and_(shares.c.object_id == experiments.c.id, shares.c.kind == "experiment"))
            .where(shares.c.project_id == project_id, *conds)
        ).mappings()
        extra = [(r, project_id, r["share_label"]) for r in shared]
        total += len(extra)
        if page is None and extra:
            out = sorted([*out, *extra], key=_created)  # in creation order, shared ones among the own
    return out, int(total)


def has_shared_experiments(conn: Connection, project_id: str) -> bool:
    stmt = select(shares.c.object_id).where(shares.c.kind == "experiment", shares.c.project_id == project_id)
    return conn.execute(stmt.limit(1)).first() is not None


# --- scans and reconstructions ------------------------------------------------------------------


def child(conn: Connection, experiment_id: str, kind: str, child_id: str) -> Row | None:
    stmt = select(scans).where(
        scans.c.experiment_id == experiment_id, scans.c.kind == kind, scans.c.scan_id == child_id
    )
    return conn.execute(stmt).mappings().first()


def children(conn: Connection, experiment_id: str, kind: str) -> Sequence[Row]:
    stmt = select(scans).where(scans.c.experiment_id == experiment_id, scans.c.kind == kind)
    rows = conn.execute(stmt).mappings().all()
    return sorted(rows, key=lambda r: _natural(r["scan_id"]))


def lock_scan(conn: Connection, pk: int) -> Row | None:
    """A scan's row, locked until the transaction ends (None if it is gone). On PostgreSQL writers
    that check and then add to one scan queue here instead of racing; SQLite's write lock already
    keeps them apart."""
    return conn.execute(select(scans).where(scans.c.pk == pk).with_for_update()).mappings().first()


def _natural(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def insert_child(conn: Connection, **values: Any) -> int:
    result = conn.execute(insert(scans).values(insert_date=now(), **values).returning(scans.c.pk))
    return int(result.scalar_one())


def update_child(conn: Connection, pk: int, **values: Any) -> None:
    conn.execute(update(scans).where(scans.c.pk == pk).values(**values))


def delete_child(conn: Connection, pk: int) -> None:
    conn.execute(delete(scans).where(scans.c.pk == pk))


# --- resources and files -------------------------------------------------------------------------


def resources_of(conn: Connection, owners: Sequence[str]) -> Sequence[Row]:
    stmt = select(resources).where(resources.c.owner.in_(list(owners))).order_by(resources.c.pk)
    return conn.execute(stmt).mappings().all()


def resources_of_project(conn: Connection, project_id: str) -> Sequence[Row]:
    """Every resource at any level of a project (to delete the whole project)."""
    return conn.execute(select(resources).where(resources.c.project_id == project_id)).mappings().all()


def resource_stats(conn: Connection, pks: Sequence[int]) -> dict[int, tuple[int, int]]:
    stmt = (
        select(files.c.resource_pk, func.count(), func.coalesce(func.sum(files.c.size), 0))
        .where(files.c.resource_pk.in_(list(pks)))
        .group_by(files.c.resource_pk)
    )
    return {int(pk): (int(n), int(size)) for pk, n, size in conn.execute(stmt)}


def directory_taken(conn: Connection, directory: str) -> bool:
    return conn.execute(select(resources.c.pk).where(resources.c.directory == directory)).first() is not None


def insert_resource(conn: Connection, **values: Any) -> int | None:
    """Insert a resource; None if a concurrent writer created the same (owner, label) first."""
    stmt = insert(resources).values(insert_date=now(), **values).returning(resources.c.pk)
    try:
        with conn.begin_nested():
            return int(conn.execute(stmt).scalar_one())
    except IntegrityError:
        return None


def update_resource(conn: Connection, pk: int, **values: Any) -> None:
    conn.execute(update(resources).where(resources.c.pk == pk).values(**values))


def delete_resource(conn: Connection, pk: int) -> None:
    conn.execute(delete(files).where(files.c.resource_pk == pk))
    conn.execute(delete(resources).where(resources.c.pk == pk))


def files_of(conn: Connection, resource_pks: Sequence[int], prefix: str | None = None) -> Sequence[Row]:
    stmt = select(files).where(files.c.resource_pk.in_(list(resource_pks)))
    if prefix:
        stmt = stmt.where(or_(files.c.path == prefix, files.c.path.like(_like_prefix(prefix), escape="\\")))
    return conn.execute(stmt.order_by(files.c.resource_pk, files.c.path)).mappings().all()


def _like_prefix(prefix: str) -> str:
    escaped = prefix.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


def file_row(conn: Connection, resource_pk: int, path: str) -> Row | None:
    stmt = select(files).where(files.c.resource_pk == resource_pk, files.c.path == path)
    return conn.execute(stmt).mappings().first()


def paths_among(conn: Connection, resource_pk: int, paths: Iterable[str]) -> set[str]:
    """Which of ``paths`` the resource holds files at (one query per 500)."""
    wanted, found = sorted(set(paths)), set[str]()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        stmt = select(files.c.path).where(files.c.resource_pk == resource_pk, files.c.path.in_(chunk))
        found.update(conn.execute(stmt).scalars())
    return found


def upsert_file(conn: Connection, resource_pk: int, path: str, **values: Any) -> None:
    existing = file_row(conn, resource_pk, path)
    if existing is None:
        conn.execute(insert(files).values(resource_pk=resource_pk, path=path, modified=now(), **values))
    else:
        conn.execute(update(files).where(files.c.pk == existing["pk"]).values(modified=now(), **values))


def delete_files(conn: Connection, pks: Sequence[int]) -> None:
    conn.execute(delete(files).where(files.c.pk.in_(list(pks))))


def experiment_types_in(conn: Connection, project_id: str) -> list[str]:
    """The data types of the experiments a project owns, each once, in name order."""
    rows = conn.execute(
        select(experiments.c.xsi_type).where(experiments.c.project_id == project_id).distinct()
    )
    return sorted(r[0] for r in rows)


def project_named(conn: Connection, text: str, other_than: str) -> str | None:
    """The ID of a project other than ``other_than`` whose name or secondary ID is ``text`` (case
    ignored), or None."""
    wanted = text.lower()
    found = conn.execute(
        select(projects.c.id)
        .where(
            or_(func.lower(projects.c.name) == wanted, func.lower(projects.c.secondary_id) == wanted),
            projects.c.id != other_than,
        )
        .limit(1)
    ).first()
    return None if found is None else str(found[0])
