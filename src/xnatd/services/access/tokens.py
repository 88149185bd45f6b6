"""Alias tokens: a temporary username (alias) and password (secret) that work wherever a password does.

Secrets are stored as SHA-256 digests; the secret itself is shown once, when the token is issued.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import string
import uuid
from typing import Any

from sqlalchemy import insert, select, update

from xnatd.auth import passwords
from xnatd.db import users as qu
from xnatd.db.archive import now
from xnatd.db.schema import alias_tokens
from xnatd.errors import Forbidden, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context

_ALPHABET = string.ascii_letters + string.digits


def _ms(value: _dt.datetime) -> int:
    return int(value.replace(tzinfo=_dt.UTC).timestamp() * 1000)


def _document(row: Any, secret: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": row["id"],
        "enabled": bool(row["enabled"]),
        "created": _ms(row["created"]),
        "timestamp": _ms(row["created"]),
        "disabled": 0,
        "alias": row["alias"],
        "singleUse": bool(row["single_use"]),
        "estimatedExpirationTime": _ms(row["expires"]),
        "xdatUserId": row["username"],
        "validIPAddresses": [],
    }
    if secret is not None:
        doc["secret"] = secret
    return doc


def issue(ctx: Context, actor: Actor, for_user: str | None = None) -> dict[str, Any]:
    username = for_user or actor.username
    access.require_user(actor)  # the guest has no account to issue a token for: it is asked to log in
    if actor.by_token:  # a token that makes tokens would outlive its own expiry and invalidation
        raise Forbidden("An alias token cannot issue alias tokens: log in with your password to do this")
    if username != actor.username and not actor.is_admin:
        raise Forbidden("Only a site administrator can issue tokens for another user")
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(64))
    stamp = now()
    with ctx.db.write() as conn:
        if qu.user(conn, username) is None:
            raise NotFound(f"User {username} not found")
        values = {
            "alias": str(uuid.uuid4()),
            "secret_hash": passwords.secret_digest(secret),
            "username": username,
            "created": stamp,
            "expires": stamp + _dt.timedelta(seconds=ctx.settings.token_timeout),
            "enabled": True,
            "single_use": False,
        }
        pk = conn.execute(insert(alias_tokens).values(**values).returning(alias_tokens.c.id)).scalar_one()
    return _document({"id": pk, **values}, secret)


def _live(row: Any, secret: str) -> bool:
    return (
        bool(row["enabled"])
        and row["expires"] > now()
        and passwords.same(row["secret_hash"], passwords.secret_digest(secret))
    )


def validate(ctx: Context, actor: Actor, alias: str, secret: str) -> dict[str, Any]:
    with ctx.db.read() as conn:
        row = qu.token(conn, alias)
    if row is None:
        raise NotFound(f"Alias token {alias} not found")
    return {"valid": row["username"] if _live(row, secret) else None}


def invalidate(ctx: Context, actor: Actor, alias: str, secret: str) -> dict[str, Any]:
    with ctx.db.write() as conn:
        row = qu.token(conn, alias)
        if row is None or not passwords.same(row["secret_hash"], passwords.secret_digest(secret)):
            raise NotFound(f"Alias token {alias} not found")
        if row["username"] != actor.username and not actor.is_admin:
            raise Forbidden("This token belongs to another user")
        conn.execute(update(alias_tokens).where(alias_tokens.c.id == row["id"]).values(enabled=False))
    return {"result": "OK"}


def show(ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    with ctx.db.read() as conn:
        stmt = select(alias_tokens).where(alias_tokens.c.username == actor.username, alias_tokens.c.enabled)
        rows = conn.execute(stmt.order_by(alias_tokens.c.id)).mappings().all()
    return [_document(r, None) for r in rows if r["expires"] > now()]
