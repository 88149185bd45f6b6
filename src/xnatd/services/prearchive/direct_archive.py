"""XNAT's Direct-Archive session API (``/xapi/direct-archive``): the sessions Direct-Archive imports
are staging (``Direct-Archive=true`` imports and receivers with ``directArchive``), listed, read,
archived now, or dropped.

xnatd stages them as prearchive sessions of their own (``intake`` ``direct:...``), archived by the
idle builder once their senders are quiet; this API shows them as XNAT's ``SessionData`` objects
(its field names, dates in milliseconds). Rights are the prearchive's: edit rights on the project.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from xnatd.db import prearchive as pq
from xnatd.errors import Conflict, InvalidInput, NotFound
from xnatd.services.access.context import Actor, Context
from xnatd.services.prearchive import archiver
from xnatd.services.prearchive import prearchive as pre
from xnatd.services.prearchive.archive_options import DIRECT, UNASSIGNED, staged_options

SORTABLE = {"lastBuiltDate": "lastmod", "uploadDate": "uploaded", "name": "name", "project": "project",
            "status": "status", "subject": "subject", "id": "pk"}  # fmt: skip
MAX_PAGE = 1000


def _ms(value: _dt.datetime | None) -> int | None:
    return None if value is None else int(value.replace(tzinfo=_dt.UTC).timestamp() * 1000)


def session_data(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A staging session as XNAT's ``SessionData``."""
    return {
        "id": row["pk"], "project": row["project"] or UNASSIGNED, "subject": row["subject"],
        "name": row["name"], "folderName": row["folder"], "tag": row["tag"], "status": row["status"],
        "timestamp": row["timestamp"], "url": pre.uri(row, data=False), "uploadDate": _ms(row["uploaded"]),
        "lastBuiltDate": _ms(row["lastmod"]), "scan_date": row["scan_date"], "scan_time": row["scan_time"],
        "visit": row["visit"], "protocol": row["protocol"], "timeZone": row["timezone"],
        "source": row["source"], "autoArchive": pre.CODES.get(row["autoarchive"] or 0, ""),
        "preventAnon": bool(row["prevent_anon"]), "preventAutoCommit": bool(row["prevent_auto_commit"]),
        "location": row["directory"], "message": "",
    }  # fmt: skip


def _staging(rows: Any) -> list[Any]:
    return [r for r in rows if (r["intake"] or "").startswith(DIRECT)]


def listing(ctx: Context, actor: Actor, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``POST /xapi/direct-archive``: a page (XNAT's paginated request: ``page`` from 1, ``size``,
    ``sortColumn``, ``sortDir``) of the staging sessions the caller may manage."""
    page, size = _whole(request.get("page", 1), "page", 1), _whole(request.get("size", 50), "size", 1)
    column = SORTABLE.get(str(request.get("sortColumn") or "lastBuiltDate"))
    if column is None:
        raise InvalidInput(f"sortColumn must be one of {', '.join(SORTABLE)}")
    descending = str(request.get("sortDir") or "desc").lower() != "asc"
    with ctx.db.read() as conn:
        rows = _staging(pq.sessions(conn, pre.visible_projects(conn, actor, None)))
    rows.sort(key=lambda r: (r[column] is None, r[column] or ""), reverse=descending)
    size = min(size, MAX_PAGE)
    return [session_data(r) for r in rows[(page - 1) * size : page * size]]


def _whole(value: object, what: str, least: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number, not {value!r}") from None
    if number < least or number > 2**31:
        raise InvalidInput(f"{what} must be at least {least}")
    return number


def _find(conn: Connection, actor: Actor, project: str, tag: str, name: str) -> Any:
    """The staging session of (project, study, label), once the caller may manage it."""
    pre.check(conn, actor, None if project == UNASSIGNED else project)
    for row in _staging(pq.sessions(conn, [None if project == UNASSIGNED else project])):
        if row["tag"] == tag and row["name"] == name:
            return row
    raise NotFound(f"No Direct-Archive session {project}/{tag}/{name}")


def one(ctx: Context, actor: Actor, project: str, tag: str, name: str) -> dict[str, Any]:
    with ctx.db.read() as conn:
        return session_data(_find(conn, actor, project, tag, name))


def archive_now(ctx: Context, actor: Actor, project: str, tag: str, name: str) -> str:
    """``POST .../{project}/{tag}/{name}``: archive the session now, without waiting for its senders
    to be quiet; refused (409) unless it is receiving or in error, as XNAT."""
    with ctx.db.read() as conn:
        row = _find(conn, actor, project, tag, name)
    if row["status"] not in ("RECEIVING", "ERROR"):
        raise Conflict(f"The session is {row['status']}: only a receiving or failed session is archived now")
    opts = staged_options(row["intake"])
    assert opts is not None
    key = pre.Key(row["project"], row["timestamp"], row["folder"])
    return archiver.archive(ctx, actor, key, opts).uri


def delete(ctx: Context, actor: Actor, session_id: int) -> None:
    """``DELETE /xapi/direct-archive/{id}``: drop a staging session and its files; refused (409) while
    it is being archived."""
    with ctx.db.read() as conn:
        row = pq.session(conn, session_id)
        if row is None or not (row["intake"] or "").startswith(DIRECT):
            raise NotFound(f"No Direct-Archive session {session_id}")
        key = pre.Key(row["project"], row["timestamp"], row["folder"])
    if row["status"] not in pq.OPEN:
        raise Conflict(f"The session is {row['status']}: try again once that is over")
    pre.delete(ctx, actor, key)
