"""Stored searches (XNAT's ``xdat:stored_search``): a search bundle saved under an ID, with the
users it is shared with (``allowed_user``). ``secure`` false lists it to every user, as XNAT does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    RowMapping,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from xnatd.db.archive import now
from xnatd.db.schema import LABEL, metadata

stored_searches = Table(
    "stored_searches",
    metadata,
    Column("id", String(LABEL), primary_key=True),
    Column("root_element_name", String(128), nullable=False),
    Column("brief_description", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("tag", String(LABEL), nullable=True),
    Column("secure", Boolean, nullable=False, default=False),
    Column("bundle", Text, nullable=False),
    Column("owner", String(LABEL), nullable=False, default=""),
    Column("modified", DateTime, nullable=False),
)
stored_search_users = Table(
    "stored_search_users",
    metadata,
    Column(
        "search_id", String(LABEL), ForeignKey("stored_searches.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("username", String(LABEL), primary_key=True),
)
S, U = stored_searches, stored_search_users


def one(conn: Connection, sid: str, lock: bool = False) -> RowMapping | None:
    stmt = select(S).where(S.c.id == sid)
    return conn.execute(stmt.with_for_update() if lock else stmt).mappings().first()


def every(conn: Connection) -> Sequence[RowMapping]:
    return conn.execute(select(S).order_by(S.c.id)).mappings().all()


def users_of(conn: Connection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sid, name in conn.execute(select(U.c.search_id, U.c.username).order_by(U.c.username)).all():
        out.setdefault(str(sid), []).append(str(name))
    return out


def save(conn: Connection, values: dict[str, Any], users: Sequence[str]) -> None:
    """Create or replace the search ``values["id"]`` and its list of users."""
    sid = values["id"]
    if conn.execute(update(S).where(S.c.id == sid).values(modified=now(), **values)).rowcount == 0:
        conn.execute(insert(S).values(modified=now(), **values))
    conn.execute(delete(U).where(U.c.search_id == sid))
    for name in dict.fromkeys(users):
        conn.execute(insert(U).values(search_id=sid, username=name))


def remove_user(conn: Connection, sid: str, username: str) -> None:
    conn.execute(delete(U).where(U.c.search_id == sid, U.c.username == username))


def remove(conn: Connection, sid: str) -> None:
    conn.execute(delete(S).where(S.c.id == sid))
