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


_TOKEN = alias_tokens.alias("session_token")
_SESSION_USER = (
    select(
        http_sessions.c.last_access,
        http_sessions.c.token_alias,
        users.c.username,
        users.c.is_admin,
        users.c.enabled,
        _TOKEN.c.enabled.label("token_enabled"),
        _TOKEN.c.expires.label("token_expires"),
    )
    .join(users, users.c.username == http_sessions.c.username)
    .outerjoin(_TOKEN, _TOKEN.c.alias == http_sessions.c.token_alias)
    .where(http_sessions.c.id == bindparam("session_id"))
)


def session_user(conn: Connection, session_id: str) -> RowMapping | None:
    """A login session's last access with its user's name, admin flag and enabled flag, and, for a
    session opened with an alias token, whether that token still works (one query: every request
    with a session cookie asks)."""
    return conn.execute(_SESSION_USER, {"session_id": session_id}).mappings().first()


def insert_session(conn: Connection, session_id: str, username: str, token_alias: str | None = None) -> None:
    stamp = now()
    conn.execute(
        insert(http_sessions).values(
            id=session_id, username=username, created=stamp, last_access=stamp, token_alias=token_alias
        )
    )


def end_logins(conn: Connection, username: str, keep_session: str | None = None) -> None:
    """End every login session and alias token of a user (but the session ``keep_session``): after
    a password change, or when the account is disabled, whoever held one must log in again."""
    gone = delete(http_sessions).where(http_sessions.c.username == username)
    if keep_session is not None:
        gone = gone.where(http_sessions.c.id != keep_session)
    conn.execute(gone)
    conn.execute(
        update(alias_tokens)
        .where(alias_tokens.c.username == username, alias_tokens.c.enabled)
        .values(enabled=False)
    )


def touch_session(conn: Connection, session_id: str) -> None:
    conn.execute(update(http_sessions).where(http_sessions.c.id == session_id).values(last_access=now()))


def delete_session(conn: Connection, session_id: str) -> None:
    conn.execute(delete(http_sessions).where(http_sessions.c.id == session_id))


def purge_sessions(conn: Connection, idle_before: _dt.datetime) -> int:
    return conn.execute(delete(http_sessions).where(http_sessions.c.last_access < idle_before)).rowcount


def token(conn: Connection, alias: str) -> RowMapping | None:
    return conn.execute(select(alias_tokens).where(alias_tokens.c.alias == alias)).mappings().first()


def session_counts(conn: Connection) -> dict[str, int]:
    """How many login sessions each user has open."""
    rows = conn.execute(select(http_sessions.c.username, func.count()).group_by(http_sessions.c.username))
    return {r[0]: int(r[1]) for r in rows}
