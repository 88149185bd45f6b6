"""Workflows: XNAT's ``wrk:workflowData`` records of what happened to an object (an archive, an
upload, a pipeline or job run), written by the server and by pipelines over REST.

The fields listings filter on are columns; the rest of XNAT's attributes (step, progress, comments,
category...) are one JSON ``fields`` column. ``project_id`` is the project the record belongs to
(its rows go with the project); ``external_id`` is XNAT's ``ExternalID`` as written. A job's
workflow names its job (``job_id``), whose row says how far the run is.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from xnatd.db.archive import now
from xnatd.db.schema import LABEL, jobs, metadata

workflows = Table(
    "workflows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("data_type", String(128), nullable=False),
    Column("object_id", String(LABEL), nullable=False),
    Column("external_id", String(LABEL), nullable=False, default=""),
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    # the job a job's workflow follows: its status is read from the job, and it goes with the job
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True),
    Column("scan_id", String(LABEL), nullable=True),
    Column("pipeline_name", Text, nullable=False),
    Column("launch_time", DateTime, nullable=False),
    Column("status", String(64), nullable=False, default=""),
    Column("fields", JSON, nullable=False, default=dict),
    Column("insert_user", String(LABEL), nullable=False, default=""),
    Column("insert_date", DateTime, nullable=False),
    Column("last_modified", DateTime, nullable=False),
    Index("ix_workflows_object", "object_id"),
    Index("ix_workflows_project", "project_id"),
)
W = workflows


def add(conn: Connection, values: dict[str, Any]) -> int:
    stamp = now()
    stmt = insert(W).values(insert_date=stamp, last_modified=stamp, **values).returning(W.c.id)
    return int(conn.execute(stmt).scalar_one())


def change(conn: Connection, wid: int, values: dict[str, Any]) -> None:
    conn.execute(update(W).where(W.c.id == wid).values(last_modified=now(), **values))


def _select() -> Any:
    """Workflow rows with their job's state (None for workflows that follow no job)."""
    return select(
        W, jobs.c.status.label("job_status"), jobs.c.message.label("job_message"),
        jobs.c.started.label("job_started"), jobs.c.finished.label("job_finished"),
    ).outerjoin(jobs, jobs.c.id == W.c.job_id)  # fmt: skip


def one(conn: Connection, wid: int) -> RowMapping | None:
    return conn.execute(_select().where(W.c.id == wid)).mappings().first()


def find(
    conn: Connection, pipeline_name: str, object_id: str, launch_time: _dt.datetime, scan_id: str | None
) -> RowMapping | None:
    """XNAT's unique workflow: pipeline, object, launch time (and scan, when given)."""
    stmt = _select().where(
        W.c.pipeline_name == pipeline_name, W.c.object_id == object_id, W.c.launch_time == launch_time
    )
    if scan_id:
        stmt = stmt.where(W.c.scan_id == scan_id)
    return conn.execute(stmt.order_by(W.c.id)).mappings().first()


def matching(
    conn: Connection, projects: Sequence[str] | None, object_id: str | None = None
) -> Sequence[RowMapping]:
    """Rows in some projects (None: every row, for an administrator), newest launch first."""
    stmt = _select()
    if projects is not None:
        stmt = stmt.where(W.c.project_id.in_(list(projects)))
    if object_id is not None:
        stmt = stmt.where(W.c.object_id == object_id)
    return conn.execute(stmt.order_by(W.c.launch_time.desc(), W.c.id.desc())).mappings().all()
