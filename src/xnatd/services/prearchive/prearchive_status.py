"""XNAT's prearchive status actions (``POST /data/prearchive/projects/P/TS/F?action=...``):
``reset-status`` puts a session back to the status its contents give it (READY, or CONFLICT when its
label is taken in the archive; a session never built stays RECEIVING), for one left ERROR or
CONFLICT; ``set-status&status=X`` sets one, for site administrators.

Only the open statuses are set or left: ARCHIVING, DELETING, MOVING and BUILDING are claims the
server's own operations hold (and its start-up recovery releases), so a session in one of them is
in use and answers 409.
"""

from __future__ import annotations

from typing import Any

from xnatd.db import prearchive as pq
from xnatd.errors import Conflict, Forbidden, InvalidInput
from xnatd.services.access.context import Actor, Context
from xnatd.services.prearchive import prearchive as pre


def _open_row(conn: Any, actor: Actor, key: pre.Key, tag: str | None) -> Any:
    row = pre.load_locked(conn, actor, key)
    if tag and row["tag"] != tag:
        raise InvalidInput(f"The session's StudyInstanceUID is not {tag}")
    if row["status"] not in pq.OPEN:
        raise Conflict(f"Operation already in progress on this prearchive entry ({row['status']}).")
    return row


def reset(ctx: Context, actor: Actor, key: pre.Key, tag: str | None = None) -> str:
    """``action=reset-status[&tag=UID]``: the session's status as its contents give it."""
    with ctx.db.write() as conn:
        row = _open_row(conn, actor, key, tag)
        if row["built"] is None:
            pq.set_status(conn, row["pk"], "RECEIVING", pq.OPEN)
            return "RECEIVING"
        return str(pre.build_row(conn, row)["status"])


def set_status(ctx: Context, actor: Actor, key: pre.Key, status: str | None) -> str:
    """``action=set-status&status=X`` (site administrators): one of the open statuses."""
    wanted = (status or "").strip().upper()
    if wanted not in pq.OPEN:
        raise InvalidInput(f"status must be one of {', '.join(pq.OPEN)}, not {status!r}")
    if not actor.is_admin:
        raise Forbidden("Only site administrators may set a prearchive session's status")
    with ctx.db.write() as conn:
        row = _open_row(conn, actor, key, None)
        pq.set_status(conn, row["pk"], wanted, pq.OPEN)
    return wanted
