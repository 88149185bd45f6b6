"""Queries on the prearchive tables and on the SOP instances of archived DICOM files.

Every function takes the caller's connection, so a service decides what one transaction covers.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    Select,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from xnatd.db.archive import now
from xnatd.db.schema import (
    dicom_instances,
    files,
    prearchive_files,
    prearchive_series,
    prearchive_sessions,
    resources,
)

Row = RowMapping
S, SER, F = prearchive_sessions, prearchive_series, prearchive_files
# A session that still takes files; anything else (archiving, deleting, moving) is left alone.
OPEN = ("RECEIVING", "READY", "CONFLICT", "ERROR")


# --- sessions ------------------------------------------------------------------------------------


def session(conn: Connection, pk: int) -> Row | None:
    return conn.execute(select(S).where(S.c.pk == pk)).mappings().first()


# what an import needs of a session to place files in it (not its log or header fields)
PLACE = (S.c.pk, S.c.project, S.c.timestamp, S.c.folder, S.c.directory, S.c.status, S.c.intake)


# Statements every imported file runs, built once (building one costs more than running it on SQLite).
_LOCKED = select(S).where(S.c.pk == bindparam("pk")).with_for_update()


def _open_in(project: Any, intake: Any) -> Select[Any]:
    """The newest session still receiving a study under a label, in ``project`` (a condition), that
    files of this ``intake`` (a condition) join."""
    where = (project, S.c.tag == bindparam("tag"), S.c.name == bindparam("name"), S.c.status.in_(OPEN))
    return select(*PLACE).where(*where, intake).order_by(S.c.pk.desc())


# (Unassigned?, a Direct-Archive staging session?) -> the statement
_OPEN = {
    (unassigned, direct): _open_in(
        S.c.project.is_(None) if unassigned else S.c.project == bindparam("project"),
        S.c.intake == bindparam("intake") if direct else S.c.intake.is_(None),
    )
    for unassigned in (False, True)
    for direct in (False, True)
}
_TOUCH = (
    update(S)
    .where(S.c.pk == bindparam("b_pk"), S.c.status.in_(OPEN))
    .values(status="RECEIVING", lastmod=bindparam("b_now"), log=S.c.log + bindparam("b_note"))
    .returning(*PLACE)
)
_SERIES_KEYS = (
    select(SER.c.pk, SER.c.uid, SER.c.number, SER.c.scan_dir)
    .where(SER.c.session_pk == bindparam("session_pk"))
    .order_by(SER.c.pk)
)
_INSERT_FILES = insert(F)  # every batch's commit: built once
_STORED = select(F.c.sop_uid).where(
    F.c.session_pk == bindparam("session_pk"), F.c.sop_uid.in_(bindparam("uids", expanding=True))
)


def session_locked(conn: Connection, pk: int) -> Row | None:
    """The session's newest row, locked until the transaction ends: on PostgreSQL this waits for a
    concurrent transaction that changed it (a move, a delete, an archive's claim) and then sees its
    result; SQLite's write lock already serialises them."""
    return conn.execute(_LOCKED, {"pk": pk}).mappings().first()


def session_at(conn: Connection, project: str | None, timestamp: str, folder: str) -> Row | None:
    cond = S.c.project.is_(None) if project is None else S.c.project == project
    stmt = select(S).where(cond, S.c.timestamp == timestamp, S.c.folder == folder)
    return conn.execute(stmt).mappings().first()


def open_session(
    conn: Connection, project: str | None, tag: str, name: str, intake: str | None = None
) -> Row | None:
    """The session still receiving files of this study under this label, if any: one any import
    joins (``intake`` None), or the Direct-Archive staging session with these options."""
    stmt = _OPEN[(project is None, intake is not None)]
    params = {"project": project, "tag": tag, "name": name, "intake": intake}
    return conn.execute(stmt, params).mappings().first()


def lock_study(conn: Connection, project: str | None, tag: str, name: str) -> None:
    """Serialise the find-or-create of a study's session (SQLite's write lock already does)."""
    _advisory(conn, f"{project}|{tag}|{name}")


def lock_archive_targets(conn: Connection, targets: Iterable[tuple[str, str]]) -> None:
    """Serialise the archiving of sessions into the same experiments, (project ID, label) each, until
    the transaction ends: a second archive into one experiment waits for the first and then merges
    as if it came later (SQLite's write lock already does). Taken in one order, so two transactions
    archiving into the same experiments cannot deadlock."""
    for project, label in sorted(set(targets)):
        _advisory(conn, f"archive|{project}|{label}")


def _advisory(conn: Connection, name: str) -> None:
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def sessions(conn: Connection, projects: Sequence[str | None] | None = None) -> Sequence[Row]:
    """Sessions of the given projects (None in the list = Unassigned); all of them if ``projects`` is None."""
    stmt = select(S).order_by(S.c.project, S.c.timestamp, S.c.folder)
    if projects is not None:
        named = [p for p in projects if p is not None]
        if None in projects:
            stmt = stmt.where(or_(S.c.project.in_(named), S.c.project.is_(None)))
        else:
            stmt = stmt.where(S.c.project.in_(named))
    return conn.execute(stmt).mappings().all()


def directory_taken(conn: Connection, directory: str) -> bool:
    return conn.execute(select(S.c.pk).where(S.c.directory == directory)).first() is not None


def insert_session(conn: Connection, **values: Any) -> int:
    stamp = now()
    stmt = insert(S).values(uploaded=stamp, lastmod=stamp, **values).returning(S.c.pk)
    return int(conn.execute(stmt).scalar_one())


def update_session(conn: Connection, pk: int, **values: Any) -> None:
    conn.execute(update(S).where(S.c.pk == pk).values(**values))


def touch_open(conn: Connection, pk: int, note: str) -> Row | None:
    """New files arrived: the session, if still open, is RECEIVING again and its log gets ``note``.
    Answers its ``PLACE`` columns (None if it is gone or no longer open); the update locks the row
    until the transaction ends, as ``session_locked`` does."""
    return conn.execute(_TOUCH, {"b_pk": pk, "b_now": now(), "b_note": note}).mappings().first()


def set_status(conn: Connection, pk: int, status: str, expected: Iterable[str] | None = None) -> bool:
    """Move a session to ``status``; with ``expected``, only from one of those (a lock, in effect)."""
    stmt = update(S).where(S.c.pk == pk)
    if expected is not None:
        stmt = stmt.where(S.c.status.in_(list(expected)))
    return conn.execute(stmt.values(status=status, lastmod=now())).rowcount == 1


def delete_session(conn: Connection, pk: int) -> None:
    conn.execute(delete(F).where(F.c.session_pk == pk))
    conn.execute(delete(SER).where(SER.c.session_pk == pk))
    conn.execute(delete(S).where(S.c.pk == pk))


def idle_receiving(conn: Connection, before: _dt.datetime) -> list[int]:
    stmt = select(S.c.pk).where(S.c.status == "RECEIVING", S.c.lastmod < before)
    return [int(pk) for pk in conn.execute(stmt).scalars()]


# --- series and files ----------------------------------------------------------------------------


def series_of(conn: Connection, session_pk: int, keys_only: bool = False) -> Sequence[Row]:
    """A session's series; ``keys_only``: just what files are filed by (pk, uid, number, scan_dir)."""
    if keys_only:
        return conn.execute(_SERIES_KEYS, {"session_pk": session_pk}).mappings().all()
    return conn.execute(select(SER).where(SER.c.session_pk == session_pk).order_by(SER.c.pk)).mappings().all()


def insert_series(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(SER).values(**values).returning(SER.c.pk)).scalar_one())


def update_series(conn: Connection, pk: int, **values: Any) -> None:
    conn.execute(update(SER).where(SER.c.pk == pk).values(**values))


def files_of(conn: Connection, session_pk: int) -> Sequence[Row]:
    stmt = select(F).where(F.c.session_pk == session_pk).order_by(F.c.series_pk, F.c.name)
    return conn.execute(stmt).mappings().all()


def sop_uids(conn: Connection, session_pk: int) -> set[str]:
    return set(conn.execute(select(F.c.sop_uid).where(F.c.session_pk == session_pk)).scalars())


def stored_sops(conn: Connection, session_pk: int, candidates: Sequence[str]) -> set[str]:
    """Which of ``candidates`` a session already holds (in chunks, to keep statements small)."""
    found: set[str] = set()
    for i in range(0, len(candidates), 500):
        chunk = list(candidates[i : i + 500])
        found.update(conn.execute(_STORED, {"session_pk": session_pk, "uids": chunk}).scalars())
    return found


def file_counts(conn: Connection, session_pk: int) -> dict[int, tuple[int, int]]:
    """series pk -> (files, bytes)."""
    stmt = (
        select(F.c.series_pk, func.count(), func.coalesce(func.sum(F.c.size), 0))
        .where(F.c.session_pk == session_pk)
        .group_by(F.c.series_pk)
    )
    return {int(pk): (int(n), int(size)) for pk, n, size in conn.execute(stmt)}


def insert_files(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_INSERT_FILES, list(rows))


# --- archived DICOM ------------------------------------------------------------------------------


def archived_sops(conn: Connection, experiment_id: str) -> dict[str, int]:
    """SOP instance UID -> file pk of the DICOM files archived in an experiment."""
    stmt = select(dicom_instances.c.sop_uid, dicom_instances.c.file_pk).where(
        dicom_instances.c.experiment_id == experiment_id
    )
    return {str(sop): int(pk) for sop, pk in conn.execute(stmt)}


def archived_file(conn: Connection, file_pk: int) -> Row | None:
    """An archived file's row with its resource's ``directory`` (relative to the archive root)."""
    stmt = (
        select(files, resources.c.directory)
        .join(resources, resources.c.pk == files.c.resource_pk)
        .where(files.c.pk == file_pk)
    )
    return conn.execute(stmt).mappings().first()


def delete_archived_files(conn: Connection, file_pks: Sequence[int]) -> None:
    """Archived DICOM files replaced by the same instances sent again: their rows and instances."""
    if file_pks:
        conn.execute(delete(dicom_instances).where(dicom_instances.c.file_pk.in_(list(file_pks))))
        conn.execute(delete(files).where(files.c.pk.in_(list(file_pks))))


def insert_archive_files(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows of the archive's ``files`` table; their pks, in order.

    A plain executemany, then one query for the pks by (resource, path), which is unique: an
    INSERT ... RETURNING that must keep the rows' order runs one statement per row on SQLite
    (2,500 of them for a zip import's session)."""
    if not rows:
        return []
    stamp = now()
    conn.execute(insert(files), [{"modified": stamp, **r} for r in rows])
    wanted = {(r["resource_pk"], r["path"]) for r in rows}
    found = conn.execute(
        select(files.c.pk, files.c.resource_pk, files.c.path).where(
            files.c.resource_pk.in_({r["resource_pk"] for r in rows})
        )
    )
    pks = {(res, path): int(pk) for pk, res, path in found if (res, path) in wanted}
    return [pks[(r["resource_pk"], r["path"])] for r in rows]


def insert_instances(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(dicom_instances), list(rows))
