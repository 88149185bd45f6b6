"""Status messages of a client's long operation (XNAT's ``/data/status/{transaction}`` queue): what a
client or the server posted under a transaction ID, per user, in order."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)

from xnatd.db.archive import now
from xnatd.db.schema import LABEL, metadata

status_messages = Table(
    "status_messages",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("username", String(LABEL), nullable=False),
    Column("transaction_id", String(LABEL), nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("created", DateTime, nullable=False),
    Index("ix_status_messages_user_transaction", "username", "transaction_id"),
)
M = status_messages


def messages(conn: Connection, username: str, transaction_id: str) -> Sequence[RowMapping]:
    stmt = select(M).where(M.c.username == username, M.c.transaction_id == transaction_id)
    return conn.execute(stmt.order_by(M.c.pk)).mappings().all()


def add(conn: Connection, username: str, transaction_id: str, status: str, message: str) -> None:
    conn.execute(insert(M).values(username=username, transaction_id=transaction_id, status=status,
                                  message=message, created=now()))  # fmt: skip


def clear(conn: Connection, username: str, transaction_id: str) -> None:
    conn.execute(delete(M).where(M.c.username == username, M.c.transaction_id == transaction_id))
