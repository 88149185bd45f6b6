"""The DICOM receivers defined through ``/xapi/dicomscp`` (those in settings are not stored).

One row per receiver, XNAT's ``DicomSCPInstance`` fields as columns; the whitelist is a JSON list.
The receiver processes read this table at the start of every association, so a change made over
HTTP applies to the next association without a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)

from xnatd.db.archive import now
from xnatd.db.schema import LABEL, metadata

dicom_receivers = Table(
    "dicom_receivers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ae_title", String(16), nullable=False),
    Column("port", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("project", String(LABEL), nullable=False, default=""),
    Column("direct_archive", Boolean, nullable=False, default=False),
    Column("whitelist_enabled", Boolean, nullable=False, default=False),
    Column("whitelist", JSON, nullable=False, default=list),
    Column("routing_enabled", Boolean, nullable=False, default=False),
    Column("project_routing", Text, nullable=False, default=""),
    Column("subject_routing", Text, nullable=False, default=""),
    Column("session_routing", Text, nullable=False, default=""),
    Column("modified", DateTime, nullable=False),
    UniqueConstraint("ae_title", "port", name="uq_dicom_receivers_ae_title_port"),
)
R = dicom_receivers


def all_rows(conn: Connection) -> Sequence[RowMapping]:
    return conn.execute(select(R).order_by(R.c.id)).mappings().all()


def row(conn: Connection, rid: int) -> RowMapping | None:
    return conn.execute(select(R).where(R.c.id == rid)).mappings().first()


def insert_row(conn: Connection, values: dict[str, Any]) -> int:
    stmt = insert(R).values(modified=now(), **values).returning(R.c.id)
    return int(conn.execute(stmt).scalar_one())


def update_row(conn: Connection, rid: int, values: dict[str, Any]) -> bool:
    stmt = update(R).where(R.c.id == rid).values(modified=now(), **values)
    return conn.execute(stmt).rowcount == 1


def delete_row(conn: Connection, rid: int) -> bool:
    return conn.execute(delete(R).where(R.c.id == rid)).rowcount == 1


def version(conn: Connection) -> tuple[int, str]:
    """(count, newest change): cheap to poll, changes whenever a receiver is added, edited or removed."""
    count, newest = conn.execute(select(func.count(), func.max(R.c.modified))).one()
    return int(count), str(newest)
