"""Queries on users, login sessions and alias tokens."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, func, insert, select, update

from xnatd.db.archive import now
from xnatd.db.schema import alias_tokens, http_sessions, users

# built once: asked on most requests
_USER = select(users).where(users.c.username == bindparam("username"))


def user(conn: Connection, username: str) -> RowMapping | None:
    return conn.execute(_USER, {"username": username}).mappings().first()


def count_users(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(users)).scalar() or 0)


def insert_user(conn: Connection, **values: Any) -> None:
    stamp = now()
    conn.execute(insert(users).values(created=stamp, last_modified=stamp, **values))


def update_user(conn: Connection, username: str, **values: Any) -> None:
    conn.execute(update(users).where(users.c.username == username).values(last_modified=now(), **values))


def all_users(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(users).order_by(users.c.username)).mappings())


_SESSION_USER = (
    select(http_sessions.c.last_access, users.c.username, users.c.is_admin, users.c.enabled)
    .join(users, users.c.username == http_sessions.c.username)
    .where(http_sessions.c.id == bindparam("session_id"))
)


def session_user(conn: Connection, session_id: str) -> RowMapping | None:
    """A login session's last access with its user's name, admin flag and enabled flag (one query:
    every request with a session cookie asks)."""
    return conn.execute(_SESSION_USER, {"session_id": session_id}).mappings().first()


def insert_session(conn: Connection, session_id: str, username: str) -> None:
    stamp = now()
    conn.execute(
        insert(http_sessions).values(id=session_id, username=username, created=stamp, last_access=stamp)
    )


def touch_session(conn: Connection, session_id: str) -> None:
    conn.execute(update(http_sessions).where(http_sessions.c.id == session_id).values(last_access=now()))


def delete_session(conn: Connection, session_id: str) -> None:
    conn.execute(delete(http_sessions).where(http_sessions.c.id == session_id))


def purge_sessions(conn: Connection, idle_before: _dt.datetime) -> int:
    return conn.execute(delete(http_sessions).where(http_sessions.c.last_access < idle_before)).rowcount


def token(conn: Connection, alias: str) -> RowMapping | None:
    return conn.execute(select(alias_tokens).where(alias_tokens.c.alias == alias)).mappings().first()
