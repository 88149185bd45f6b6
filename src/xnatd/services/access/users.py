"""User accounts: created by site administrators, each able to see and edit their own profile."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from xnatd.auth import passwords
from xnatd.db import archive as q
from xnatd.db import users as qu
from xnatd.domain.labels import check_label
from xnatd.domain.listing_columns import make_getter
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import Conflict, Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access import auth
from xnatd.services.access.context import GUEST, Actor, Context

# XNAT's JSON user object ↔ our columns
JSON_FIELDS = {
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "enabled": "enabled",
    "verified": "verified",
}
LIST_COLUMNS = ["login", "firstname", "lastname", "email", "enabled", "xdat_user_id"]


def _ms(value: _dt.datetime | None) -> int | None:
    return None if value is None else int(value.replace(tzinfo=_dt.UTC).timestamp() * 1000)


def document(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "email": row["email"],
        "enabled": bool(row["enabled"]),
        "verified": bool(row["verified"]),
        "admin": bool(row["is_admin"]),
        "lastModified": _ms(row["last_modified"]),
        "lastSuccessfulLogin": _ms(row["last_login"]),
    }


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("Only site administrators may do this")


def _require_password_login(actor: Actor) -> None:
    """Accounts change only for a caller who logged in with a password: an alias token (or a session
    opened with one) is for using the data, and a leaked one must not take the account over."""
    if actor.by_token:
        raise Forbidden("An alias token cannot change accounts: log in with your password to do this")


def _new_password(ctx: Context, username: str, password: object) -> str:
    """The hash of an acceptable new password (``passwords.weakness`` is the one rule)."""
    text = password if isinstance(password, str) else ""
    problem = passwords.weakness(text, username, ctx.settings.password_min_length)
    if problem is not None:
        raise InvalidInput(problem)
    return passwords.hash_password(text)


def _columns(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, column in JSON_FIELDS.items():
        if key in data:
            value = data[key]
            out[column] = bool(value) if column in ("enabled", "verified") else str(value or "")
    return out


def create(ctx: Context, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    _require_admin(actor)
    _require_password_login(actor)
    username = str(data.get("username") or "")
    check_label(username, "user")
    if username == GUEST.username:
        raise InvalidInput(f"{username} is the anonymous caller's name; choose another")
    password_hash = _new_password(ctx, username, data.get("password"))
    with ctx.db.write() as conn:
        if qu.user(conn, username) is not None:
            raise Conflict(f"User {username} already exists")
        qu.insert_user(
            conn,
            username=username,
            password_hash=password_hash,
            is_admin=bool(data.get("admin", False)),
            **_columns(data),
        )
        row = qu.user(conn, username)
    assert row is not None
    return document(row)


def get(ctx: Context, actor: Actor, username: str) -> dict[str, Any]:
    if username != actor.username and not actor.is_admin:
        raise NotFound(f"User {username} not found")
    with ctx.db.read() as conn:
        row = qu.user(conn, username)
    if row is None:
        raise NotFound(f"User {username} not found")
    return document(row)


def update(ctx: Context, actor: Actor, username: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Admins change anything; users change their own names, email and password (giving the current
    one, ``currentPassword``, as XNAT's profile does). Nobody does it through an alias token. A new
    password, or disabling the account, ends the user's sessions (all but the caller's own) and
    alias tokens."""
    access.require_user(actor)
    own = username == actor.username
    if not own and not actor.is_admin:
        raise NotFound(f"User {username} not found")
    _require_password_login(actor)
    values = _columns(data)
    if not actor.is_admin and ({"enabled", "verified"} & set(values) or "admin" in data):
        raise Forbidden("Only site administrators may enable, disable or promote users")
    if "password" in data:
        if (own and not actor.is_admin) or "currentPassword" in data:  # given, it must be right
            _check_current(ctx, username, data.get("currentPassword"))
        values["password_hash"] = _new_password(ctx, username, data["password"])
    if "admin" in data:
        values["is_admin"] = bool(data["admin"])
    ends_logins = "password_hash" in values or values.get("enabled") is False
    with ctx.db.write() as conn:
        if qu.user(conn, username) is None:
            raise NotFound(f"User {username} not found")
        if values:
            qu.update_user(conn, username, **values)
        if ends_logins:
            qu.end_logins(conn, username, keep_session=actor.session_id if own else None)
        row = qu.user(conn, username)
    assert row is not None
    return document(row)


def _check_current(ctx: Context, username: str, given: object) -> None:
    if not isinstance(given, str) or not given:
        raise InvalidInput("Give your current password (currentPassword) to change it")
    if not auth.confirm_password(ctx, username, given):
        raise InvalidInput("The current password is wrong")


def names(ctx: Context, actor: Actor) -> list[str]:
    _require_admin(actor)
    with ctx.db.read() as conn:
        return [r["username"] for r in qu.all_users(conn)]


def profiles(ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    """``/xapi/users/profiles``: every user's JSON object, for the same callers as the list of names
    (site administrators: XNAT's ``restrictUserListAccessToAdmins`` default)."""
    _require_admin(actor)
    with ctx.db.read() as conn:
        return [document(r) for r in qu.all_users(conn)]


def table(ctx: Context, actor: Actor, query: ListQuery) -> Table:
    """``/data/users``: every user may list logins and names (to pick project members); only
    administrators see e-mail addresses and whether accounts are enabled."""
    if actor.is_guest:
        raise Forbidden("Log in to list users")
    with ctx.db.read() as conn:
        rows = qu.all_users(conn)
    records = []
    for r in rows:
        base = {
            "login": r["username"],
            "firstname": r["first_name"],
            "lastname": r["last_name"],
            "xdat_user_id": r["id"],
        }
        if actor.is_admin:
            base |= {"email": r["email"], "enabled": "true" if r["enabled"] else "false"}
        records.append({"_base": base, "_type": "xdat:user", "_fields": {}})
    return shape(records, query, LIST_COLUMNS, make_getter("user"), title="Users", always=())


def access_projects(ctx: Context, actor: Actor) -> list[dict[str, str]]:
    """``/xapi/access/projects``: the projects the caller can reach, with their role there."""
    with ctx.db.read() as conn:
        roles = q.roles(conn, actor.username) if not actor.is_guest else {}
        projects = q.all_projects(conn)
    out = []
    for p in projects:
        role = roles.get(p["id"])
        if access.allowed(actor, p, role, access.READ):
            out.append(
                {"ID": p["id"], "name": p["name"], "role": role or ("admin" if actor.is_admin else "")}
            )
    return out


# XNAT's role of a site administrator (``/xapi/users/{user}/roles``).
ADMIN_ROLE = "Administrator"


def roles(ctx: Context, actor: Actor, username: str) -> list[str]:
    """``/xapi/users/{user}/roles``: the user's site roles (XNAT's ``Administrator``); a user reads
    their own, an administrator anyone's."""
    return [ADMIN_ROLE] if get(ctx, actor, username)["admin"] else []


def active(ctx: Context, actor: Actor) -> dict[str, dict[str, Any]]:
    """``/xapi/users/active``: the users with open login sessions and how many each has (XNAT also
    lists the session IDs; xnatd does not hand out other users' session cookies)."""
    _require_admin(actor)
    with ctx.db.read() as conn:
        counts = qu.session_counts(conn)
    return {name: {"count": n, "sessions": []} for name, n in sorted(counts.items())}
