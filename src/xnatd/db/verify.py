"""Queries ``xnatd verify`` and ``xnatd backup`` need: every file row with where it lives, and the
prearchive sessions left in a transient status by a process that died."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath

from sqlalchemy import Connection, RowMapping, and_, or_, select, update

from xnatd.db.archive import now
from xnatd.db.schema import files, prearchive_files, prearchive_series, prearchive_sessions, resources

# Statuses a session only holds while a process works on it; one found there long after is stuck.
TRANSIENT = ("BUILDING", "ARCHIVING", "MOVING", "DELETING", "QUEUED_BUILDING", "QUEUED_ARCHIVING")


def archive_files(conn: Connection, project: str | None = None) -> Iterator[RowMapping]:
    """(directory, path, size, md5) of every archive file row, streamed (an archive may hold millions)."""
    stmt = (
        select(resources.c.directory, files.c.path, files.c.size, files.c.md5)
        .join(resources, files.c.resource_pk == resources.c.pk)
        .order_by(files.c.pk)
    )
    if project is not None:
        stmt = stmt.where(resources.c.project_id == project)
    yield from conn.execution_options(yield_per=5000).execute(stmt).mappings()


def resource_at(conn: Connection, rel: str) -> bool:
    """Whether a resource's folder is ``rel`` (a path below the archive root)."""
    return conn.execute(select(resources.c.pk).where(resources.c.directory == rel)).first() is not None


def archive_file_at(conn: Connection, rel: str) -> RowMapping | None:
    """(size, md5) of the archive file row for ``rel`` (a path below the archive root), if any. The
    resource's folder may span any number of the path's leading segments: each split is tried."""
    parts = PurePosixPath(rel).parts
    splits = [("/".join(parts[:i]), "/".join(parts[i:])) for i in range(1, len(parts))]
    if not splits:
        return None
    stmt = (
        select(files.c.size, files.c.md5)
        .join(resources, files.c.resource_pk == resources.c.pk)
        .where(or_(*(and_(resources.c.directory == d, files.c.path == f) for d, f in splits)))
    )
    return conn.execute(stmt).mappings().first()


def resource_directories(conn: Connection, project: str | None = None) -> list[str]:
    stmt = select(resources.c.directory)
    if project is not None:
        stmt = stmt.where(resources.c.project_id == project)
    return [str(d) for d in conn.execute(stmt).scalars()]


def prearchive_files_of(conn: Connection, project: str | None = None) -> Iterator[RowMapping]:
    """(directory, scan_dir, name, size, md5) of every prearchive file row."""
    S, SER, F = prearchive_sessions, prearchive_series, prearchive_files
    stmt = (
        select(S.c.directory, SER.c.scan_dir, F.c.name, F.c.size, F.c.md5)
        .join(S, F.c.session_pk == S.c.pk)
        .join(SER, F.c.series_pk == SER.c.pk)
        .order_by(F.c.pk)
    )
    if project is not None:
        stmt = stmt.where(S.c.project == project)
    yield from conn.execution_options(yield_per=5000).execute(stmt).mappings()


def session_directories(conn: Connection, project: str | None = None) -> list[str]:
    stmt = select(prearchive_sessions.c.directory)
    if project is not None:
        stmt = stmt.where(prearchive_sessions.c.project == project)
    return [str(d) for d in conn.execute(stmt).scalars()]


def stuck_sessions(
    conn: Connection, before: _dt.datetime, project: str | None = None
) -> Sequence[RowMapping]:
    S = prearchive_sessions
    stmt = select(S).where(S.c.status.in_(TRANSIENT), S.c.lastmod < before).order_by(S.c.pk)
    if project is not None:
        stmt = stmt.where(S.c.project == project)
    return conn.execute(stmt).mappings().all()


def reset_stuck(conn: Connection, pk: int, status: str, before: _dt.datetime, note: str) -> bool:
    """Move a stuck session to ``status`` only if it is still stuck: several processes starting at
    once may all try, one wins."""
    S = prearchive_sessions
    stmt = update(S).where(S.c.pk == pk, S.c.status.in_(TRANSIENT), S.c.lastmod < before)
    values = {"status": status, "lastmod": now(), "log": S.c.log + note}
    return conn.execute(stmt.values(**values)).rowcount == 1
