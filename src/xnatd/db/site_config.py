"""Site configuration values set through ``/xapi/siteConfig`` (XNAT's site preferences).

One row per key; the value is kept as JSON text so lists and maps come back as they were posted.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Column, Connection, DateTime, String, Table, Text, delete, insert, select, update

from xnatd.db.archive import now
from xnatd.db.schema import LABEL, metadata

site_config = Table(
    "site_config",
    metadata,
    Column("key", String(LABEL), primary_key=True),
    Column("value", Text, nullable=False),
    Column("username", String(LABEL), nullable=False, default=""),
    Column("modified", DateTime, nullable=False),
)
C = site_config


def values(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(select(C.c.key, C.c.value)).all()
    return {key: json.loads(value) for key, value in rows}


def put(conn: Connection, key: str, value: Any, username: str) -> None:
    """Set one key (the write lock of the caller's transaction queues concurrent setters)."""
    text = json.dumps(value)
    stmt = update(C).where(C.c.key == key).values(value=text, username=username, modified=now())
    if conn.execute(stmt).rowcount == 0:
        conn.execute(insert(C).values(key=key, value=text, username=username, modified=now()))


def remove(conn: Connection, key: str) -> None:
    conn.execute(delete(C).where(C.c.key == key))
