"""XNAT's status queue of a long operation (``/data/status/{transaction}``): a client names a
transaction, posts ``status`` (PROCESSING, WARNING, FAILED, COMPLETED) and ``message`` pairs to it
and reads them back (XNAT's upload pages poll it); DELETE empties it. Each user has their own
queues (XNAT keeps them in the HTTP session); they live in the database, so every server process
sees the same ones.
"""

from __future__ import annotations

from typing import Any

from xnatd.db import upload_status as q
from xnatd.errors import InvalidInput
from xnatd.services import access
from xnatd.services.access.context import Actor, Context

STATUSES = ("PROCESSING", "WARNING", "FAILED", "COMPLETED")
MAX_MESSAGES = 1000
MAX_TEXT = 4096


def _check(transaction_id: str) -> None:
    if not transaction_id or len(transaction_id) > 255:
        raise InvalidInput("A transaction ID has 1 to 255 characters")


def messages(ctx: Context, actor: Actor, transaction_id: str) -> list[dict[str, Any]]:
    access.require_user(actor)
    _check(transaction_id)
    with ctx.db.read() as conn:
        rows = q.messages(conn, actor.username, transaction_id)
    return [{"status": r["status"], "msg": r["message"]} for r in rows]


def post(ctx: Context, actor: Actor, transaction_id: str, status: str | None, message: str | None) -> None:
    access.require_user(actor)
    _check(transaction_id)
    wanted = (status or "").strip().upper()
    if wanted not in STATUSES:
        raise InvalidInput(f"{status} is not a valid Status: one of {', '.join(STATUSES)}")
    text = message or ""
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"A status message has at most {MAX_TEXT} characters")
    with ctx.db.write() as conn:
        if len(q.messages(conn, actor.username, transaction_id)) >= MAX_MESSAGES:
            raise InvalidInput(f"A transaction keeps at most {MAX_MESSAGES} messages: DELETE it first")
        q.add(conn, actor.username, transaction_id, wanted, text)


def clear(ctx: Context, actor: Actor, transaction_id: str) -> None:
    access.require_user(actor)
    _check(transaction_id)
    with ctx.db.write() as conn:
        q.clear(conn, actor.username, transaction_id)
