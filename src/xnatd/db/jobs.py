"""Queries on the job tables. Status changes are conditional updates (``WHERE status IN (...)``), so
two processes racing to move the same job cannot both win: the loser's update touches no row."""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update

from xnatd.db.archive import Row, now
from xnatd.db.schema import job_automations, job_commands, jobs, scans


def insert_job(conn: Connection, **values: Any) -> int:
    stmt = insert(jobs).values(created=now(), **values).returning(jobs.c.id)
    return int(conn.execute(stmt).scalar_one())


def job(conn: Connection, job_id: int) -> Row | None:
    return conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()


def list_jobs(
    conn: Connection,
    project_ids: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = 1000,
) -> Sequence[Row]:
    """Newest first; ``None`` means no filter on that column."""
    stmt = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if project_ids is not None:
        stmt = stmt.where(jobs.c.project_id.in_(list(project_ids)))
    if statuses is not None:
        stmt = stmt.where(jobs.c.status.in_(list(statuses)))
    return conn.execute(stmt).mappings().all()


def jobs_by_id(conn: Connection, ids: Iterable[int]) -> Sequence[Row]:
    stmt = select(jobs).where(jobs.c.id.in_(list(ids))).order_by(jobs.c.id)
    return conn.execute(stmt).mappings().all()


def move(conn: Connection, job_id: int, sources: Sequence[str], new: str, **values: Any) -> bool:
    """Set ``status=new`` (and ``values``) only if the job is in one of ``sources``; True if it was."""
    stmt = (
        update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(list(sources))).values(status=new, **values)
    )
    return conn.execute(stmt).rowcount == 1


def move_run(conn: Connection, job_id: int, current: str, new: str, **values: Any) -> bool:
    """End the run ``current`` of a running job; False if the job moved on (cancelled, requeued)."""
    stmt = (
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "running", jobs.c.run_dir == current)
        .values(status=new, **values)
    )
    return conn.execute(stmt).rowcount == 1


def update_job(conn: Connection, job_id: int, **values: Any) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


def queued(conn: Connection, limit: int) -> Sequence[Row]:
    """The oldest queued jobs: first come, first served."""
    stmt = select(jobs).where(jobs.c.status == "queued").order_by(jobs.c.id).limit(limit)
    return conn.execute(stmt).mappings().all()


def running(conn: Connection) -> Sequence[Row]:
    return conn.execute(select(jobs).where(jobs.c.status == "running")).mappings().all()


def touch(conn: Connection, ids: Sequence[int], worker: str) -> None:
    """Heartbeat: the dispatcher ``worker`` still holds these running jobs."""
    if ids:
        stmt = update(jobs).where(
            jobs.c.id.in_(list(ids)), jobs.c.worker == worker, jobs.c.status == "running"
        )
        conn.execute(stmt.values(heartbeat=now()))


def scan(conn: Connection, pk: int) -> Row | None:
    return conn.execute(select(scans).where(scans.c.pk == pk)).mappings().first()


def active_for_scan(conn: Connection, scan_pk: int, command: str) -> Row | None:
    """The queued or running job of ``command`` on a scan, if any; the caller queues one only if not.

    Its transaction keeps the scan and command to itself until it ends: on PostgreSQL two launchers
    (HTTP workers, an archive's automatic jobs) would otherwise both find none and both queue one;
    the second now waits, and its query (a fresh snapshot) sees the first's job. SQLite's write lock
    already does this.
    """
    if conn.dialect.name == "postgresql":
        key = hashlib.sha1(f"job|{scan_pk}|{command}".encode()).digest()[:8]
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(key, "big", signed=True)})
    stmt = select(jobs).where(
        jobs.c.scan_pk == scan_pk, jobs.c.command == command, jobs.c.status.in_(["queued", "running"])
    )
    return conn.execute(stmt.limit(1)).mappings().first()


def older_than(stamp: _dt.datetime | None, seconds: float) -> bool:
    return stamp is None or stamp < now() - _dt.timedelta(seconds=seconds)


# --- command definitions and automations ------------------------------------------------------------


def commands(conn: Connection) -> Sequence[Row]:
    return conn.execute(select(job_commands).order_by(job_commands.c.name)).mappings().all()


def command(conn: Connection, name: str) -> Row | None:
    return conn.execute(select(job_commands).where(job_commands.c.name == name)).mappings().first()


def put_command(conn: Connection, name: str, definition: dict[str, Any], user: str) -> bool:
    """Insert or replace a definition; True if it is new."""
    existed = command(conn, name) is not None
    if existed:
        stmt = update(job_commands).where(job_commands.c.name == name)
        conn.execute(stmt.values(definition=definition, created_by=user, modified=now()))
    else:
        conn.execute(
            insert(job_commands).values(name=name, definition=definition, created_by=user, modified=now())
        )
    return not existed


def delete_command(conn: Connection, name: str) -> bool:
    return conn.execute(delete(job_commands).where(job_commands.c.name == name)).rowcount == 1


def automations(conn: Connection, project_id: str) -> list[str]:
    stmt = select(job_automations.c.command).where(job_automations.c.project_id == project_id)
    return sorted(conn.execute(stmt).scalars())


def set_automations(conn: Connection, project_id: str, names: Sequence[str]) -> None:
    conn.execute(delete(job_automations).where(job_automations.c.project_id == project_id))
    for name in names:
        conn.execute(insert(job_automations).values(project_id=project_id, command=name))
