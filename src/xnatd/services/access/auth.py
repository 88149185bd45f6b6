"""Who is calling: passwords, alias tokens, login sessions (JSESSIONID) and the first admin.

Login sessions live in the database so several server processes share them. Basic-auth requests
never create one: a script that calls ``curl -u`` a million times leaves nothing behind.
"""

from __future__ import annotations

import datetime as _dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from xnatd.auth import passwords
from xnatd.db import users as qu
from xnatd.db.archive import now
from xnatd.errors import Conflict, Unauthenticated
from xnatd.services.access.context import GUEST, Actor, Context

log = logging.getLogger("xnatd.auth")
DENIED = "The request requires user authentication"
TOUCH_EVERY = _dt.timedelta(seconds=30)


def bootstrap(ctx: Context) -> None:
    """Create ``admin`` on first start, so a new site can be used at once.

    Several processes may start together on an empty database; one creates the user, the others
    find it (a uniqueness clash is the Conflict the database layer raises).
    """
    try:
        with ctx.db.write() as conn:
            if qu.count_users(conn) > 0:
                return
            qu.insert_user(
                conn,
                username="admin",
                password_hash=passwords.hash_password(ctx.settings.admin_password),
                is_admin=True,
                first_name="Admin",  # XNAT names its first administrator Admin Admin
                last_name="Admin",
            )
    except Conflict:
        return
    if ctx.settings.admin_password == "admin":
        log.warning("Created user 'admin' with password 'admin': change it (XNATD_ADMIN_PASSWORD sets it).")


@dataclass(frozen=True)
class Credentials:
    """What a request says about its caller: a login session, Basic username and password, both or
    neither. ``malformed_basic``: it sent a Basic header that could not be read."""

    session_id: str | None = None
    basic: tuple[str, str] | None = None
    malformed_basic: bool = False


def caller(ctx: Context, credentials: Credentials) -> Actor | None:
    """A live session's user first, else the Basic credentials' (Unauthenticated if wrong); None
    when the request carries neither."""
    if credentials.session_id:
        actor = session_actor(ctx, credentials.session_id)
        if actor is not None:
            return actor
    if credentials.malformed_basic:
        raise Unauthenticated("Malformed Basic credentials")
    if credentials.basic is not None:
        return check_password(ctx, *credentials.basic)
    return None


def required_caller(ctx: Context, credentials: Credentials) -> Actor:
    """The caller; without credentials, the guest where the site allows guests, else Unauthenticated."""
    actor = caller(ctx, credentials)
    if actor is None:
        if ctx.settings.guest_access:
            return GUEST
        raise Unauthenticated(DENIED)
    return actor


def check_password(ctx: Context, username: str, password: str) -> Actor:
    """Basic credentials: a user's password, or an alias token's alias and secret.

    Every failure says the same thing, whether or not the user exists, and takes about as long;
    an account with too many failures in a row is locked for a while (``login_lockout``).
    """
    with ctx.db.read() as conn:
        row = qu.user(conn, username)
        token = qu.token(conn, username) if row is None else None
        owner = qu.user(conn, token["username"]) if token is not None else None
    if token is not None and owner is not None:
        if owner["enabled"] and _token_ok(token, password):
            return Actor(owner["username"], bool(owner["is_admin"]), token=token["alias"])
        raise Unauthenticated(DENIED)
    if row is None:
        passwords.verify_password(passwords.DUMMY_HASH, password)  # same cost as a real check
        raise Unauthenticated(DENIED)
    if row["locked_until"] is not None and row["locked_until"] > now():
        raise Unauthenticated(DENIED)
    if not passwords.verify_password(row["password_hash"], password):
        _record_failure(ctx, username, int(row["failed_logins"] or 0))
        raise Unauthenticated(DENIED)
    if not row["enabled"]:
        raise Unauthenticated(DENIED)
    if row["failed_logins"]:
        with ctx.db.write() as conn:
            qu.update_user(conn, username, failed_logins=0, locked_until=None)
    return Actor(row["username"], bool(row["is_admin"]))


def _token_ok(token: Any, secret: str) -> bool:
    return (
        bool(token["enabled"])
        and token["expires"] > now()
        and passwords.same(token["secret_hash"], passwords.secret_digest(secret))
    )


def confirm_password(ctx: Context, username: str, password: str) -> bool:
    """Whether ``password`` is the user's own password (a change of password asks for it). A wrong
    one counts as a failed login, so this is no way around the lockout."""
    with ctx.db.read() as conn:
        row = qu.user(conn, username)
    if row is None or (row["locked_until"] is not None and row["locked_until"] > now()):
        return False
    if passwords.verify_password(row["password_hash"], password):
        return True
    _record_failure(ctx, username, int(row["failed_logins"] or 0))
    return False


def _record_failure(ctx: Context, username: str, failures: int) -> None:
    failures += 1
    values: dict[str, Any] = {"failed_logins": failures}
    if failures >= ctx.settings.login_max_failures:
        values = {
            "failed_logins": 0,
            "locked_until": now() + _dt.timedelta(seconds=ctx.settings.login_lockout),
        }
        log.warning(
            "Locked account %s for %s s after %s failed logins",
            username,
            ctx.settings.login_lockout,
            failures,
        )
    with ctx.db.write() as conn:
        qu.update_user(conn, username, **values)


def open_session(ctx: Context, actor: Actor) -> str:
    """A login session for ``actor``; one opened with an alias token remembers it (it ends with the
    token, and can change no more than the token could)."""
    if actor.is_guest:  # a session is a login; the guest has none (and writes no session rows)
        raise Unauthenticated(DENIED)
    session_id = secrets.token_hex(16).upper()
    with ctx.db.write() as conn:
        qu.insert_session(conn, session_id, actor.username, actor.token)
        qu.update_user(conn, actor.username, last_login=now())
    return session_id


def session_actor(ctx: Context, session_id: str) -> Actor | None:
    """The user of a live session; idle sessions past the timeout are dead, and so are sessions
    opened with an alias token that no longer works (invalidated, expired)."""
    limit = _dt.timedelta(seconds=ctx.settings.session_timeout)
    with ctx.db.read() as conn:
        row = qu.session_user(conn, session_id)
    if row is None:
        return None
    stamp = now()
    idle = stamp - row["last_access"]
    if idle > limit or not row["enabled"]:
        return None
    alias = row["token_alias"]
    if alias is not None and not (row["token_enabled"] and row["token_expires"] > stamp):
        return None
    if idle > TOUCH_EVERY:
        with ctx.db.write() as conn:
            qu.touch_session(conn, session_id)
    return Actor(row["username"], bool(row["is_admin"]), token=alias, session_id=session_id)


def close_session(ctx: Context, session_id: str) -> None:
    with ctx.db.write() as conn:
        qu.delete_session(conn, session_id)


def purge_idle_sessions(ctx: Context) -> int:
    with ctx.db.write() as conn:
        return qu.purge_sessions(conn, now() - _dt.timedelta(seconds=ctx.settings.session_timeout))
