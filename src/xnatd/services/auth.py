"""Who is calling: passwords, alias tokens, login sessions (JSESSIONID) and the first admin.

Login sessions live in the database so several server processes share them. Basic-auth requests
never create one: a script that calls ``curl -u`` a million times leaves nothing behind.
"""

from __future__ import annotations

import datetime as _dt
import logging
import secrets

from xnatd.auth import passwords
from xnatd.db import users as qu
from xnatd.db.archive import now
from xnatd.errors import InvalidInput, Unauthenticated
from xnatd.services.context import Actor, Context

log = logging.getLogger("xnatd.auth")
TOUCH_EVERY = _dt.timedelta(seconds=30)


def bootstrap(ctx: Context) -> None:
    """Create ``admin`` on first start, so a new site can be used at once."""
    with ctx.db.write() as conn:
        if qu.count_users(conn) > 0:
            return
        qu.insert_user(
            conn,
            username="admin",
            password_hash=passwords.hash_password(ctx.settings.admin_password),
            is_admin=True,
            first_name="Site",
            last_name="Administrator",
        )
    if ctx.settings.admin_password == "admin":
        log.warning("Created user 'admin' with password 'admin': change it (XNATD_ADMIN_PASSWORD sets it).")


def add_user(ctx: Context, username: str, password: str, admin: bool = False, **extra: str) -> None:
    from xnatd.domain.labels import check_label

    check_label(username, "user")
    with ctx.db.write() as conn:
        if qu.user(conn, username) is not None:
            raise InvalidInput(f"User {username} already exists")
        qu.insert_user(
            conn, username=username, password_hash=passwords.hash_password(password), is_admin=admin, **extra
        )


def check_password(ctx: Context, username: str, password: str) -> Actor:
    """Basic credentials: a user's password, or an alias token's alias and secret."""
    with ctx.db.read() as conn:
        row = qu.user(conn, username)
        if row is None:
            tok = qu.token(conn, username)
            if (
                tok is not None
                and tok["enabled"]
                and tok["expires"] > now()
                and passwords.same(tok["secret_hash"], passwords.secret_digest(password))
            ):
                row = qu.user(conn, tok["username"])
    if (
        row is None
        or not row["enabled"]
        or (row["username"] == username and not passwords.verify_password(row["password_hash"], password))
    ):
        raise Unauthenticated("The request requires user authentication")
    return Actor(row["username"], bool(row["is_admin"]))


def open_session(ctx: Context, actor: Actor) -> str:
    session_id = secrets.token_hex(16).upper()
    with ctx.db.write() as conn:
        qu.insert_session(conn, session_id, actor.username)
        qu.update_user(conn, actor.username, last_login=now())
    return session_id


def session_actor(ctx: Context, session_id: str) -> Actor | None:
    """The user of a live session; idle sessions past the timeout are dead."""
    limit = _dt.timedelta(seconds=ctx.settings.session_timeout)
    with ctx.db.read() as conn:
        row = qu.session(conn, session_id)
        if row is None:
            return None
        idle = now() - row["last_access"]
        user = qu.user(conn, row["username"])
    if idle > limit or user is None or not user["enabled"]:
        return None
    if idle > TOUCH_EVERY:
        with ctx.db.write() as conn:
            qu.touch_session(conn, session_id)
    return Actor(user["username"], bool(user["is_admin"]))


def close_session(ctx: Context, session_id: str) -> None:
    with ctx.db.write() as conn:
        qu.delete_session(conn, session_id)


def purge_idle_sessions(ctx: Context) -> int:
    with ctx.db.write() as conn:
        return qu.purge_sessions(conn, now() - _dt.timedelta(seconds=ctx.settings.session_timeout))
