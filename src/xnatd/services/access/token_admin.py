"""Ending an alias token by its alias alone.

XNAT's ``/data/services/tokens/invalidate/{alias}/{secret}`` needs the secret, but secrets are shown
only once, when issued: the user's token page lists tokens without their secrets, so it ends one
by alias, after checking that the token is the caller's own (or the caller is an administrator).
"""

from __future__ import annotations

from sqlalchemy import update

from xnatd.db import users as qu
from xnatd.db.schema import alias_tokens
from xnatd.errors import NotFound
from xnatd.services.access.context import Actor, Context


def revoke(ctx: Context, actor: Actor, alias: str) -> None:
    with ctx.db.write() as conn:
        row = qu.token(conn, alias)
        # Someone else's token answers exactly as a missing one: aliases never leak.
        if row is None or (row["username"] != actor.username and not actor.is_admin):
            raise NotFound(f"Alias token {alias} not found")
        conn.execute(update(alias_tokens).where(alias_tokens.c.id == row["id"]).values(enabled=False))
