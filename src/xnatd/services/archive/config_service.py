"""XNAT's configuration service (``/data/config/{tool}/{path}``, ``/data/projects/P/config/...``).

Scripts and tools keep their settings here as text documents: the BIDS map, anonymization scripts,
series import filters, any tool's JSON. A document is named by a tool and a path, site-wide or for
one project, and every change is a new version (``version=N`` reads an old one, ``action=getHistory``
lists them) unless it was stored ``unversioned``; ``status`` (enabled/disabled) is part of each
version, and a disabled document's contents are not served. Who may do what follows XNAT's
``ConfigResource``: a project's documents are read by whoever reads the project and changed by its
owners; the site's are read by every logged-in user and changed by site administrators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from xnatd.db import config_store as q
from xnatd.dicom import dicomedit
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.resolve import load_project

COLUMNS = [
    "tool",
    "path",
    "project",
    "user",
    "create_date",
    "reason",
    "contents",
    "unversioned",
    "version",
    "status",
]
ENABLED, DISABLED = "enabled", "disabled"
STATUS_WORDS = {"enabled": ENABLED, "true": ENABLED, "disabled": DISABLED, "false": DISABLED}
MAX_CONTENTS = 10_000_000  # characters, as XNAT's ConfigService.MAX_FILE_LENGTH bounds a document
MAX_PATH = 1024
ANON_TOOL = "anon"  # XNAT's DicomEdit scripts: path ``script`` (site), ``projects/{id}`` (a project)


@dataclass(frozen=True)
class Where:
    """A document's place: its project (None: the site), tool and path (None: a listing above it)."""

    project: str | None
    tool: str | None = None
    path: str | None = None

    @property
    def entity(self) -> str:
        return self.project or ""


@dataclass(frozen=True)
class Change:
    """What a PUT asks: new contents (None: status only), a status, whether versioned, why."""

    contents: str | None
    status: str | None
    unversioned: bool | None
    reason: str = ""


def _check_names(where: Where) -> None:
    for what, value, limit in (("tool", where.tool, 255), ("path", where.path, MAX_PATH)):
        if value is not None and (not value.strip() or len(value) > limit):
            raise InvalidInput(f"A configuration {what} needs 1 to {limit} characters")


def _read_access(conn: Connection, actor: Actor, where: Where) -> str | None:
    """The project's ID (as stored) once the caller may read there; None for the site."""
    if where.project is None:
        access.require_user(actor)
        return None
    project, _ = load_project(conn, actor, where.project, access.READ)
    return str(project["id"])


def _write_access(conn: Connection, actor: Actor, where: Where) -> str | None:
    access.require_user(actor)
    if where.project is None:
        if not actor.is_admin:
            raise Forbidden(f"User {actor.username} may not change the site's configuration")
        return None
    project, _ = load_project(conn, actor, where.project, access.DELETE)
    return str(project["id"])


# --- reading -----------------------------------------------------------------------------------------


def tools(ctx: Context, actor: Actor, where: Where) -> list[str]:
    """``GET /data/config`` and ``/data/projects/P/config``: the tools with documents there."""
    with ctx.db.read() as conn:
        project = _read_access(conn, actor, where)
        found = q.tools(conn, project or "")
    if not found:
        raise NotFound(missing_text(actor, where))
    return found


def listing(
    ctx: Context, actor: Actor, where: Where, history: bool, version: int | None, meta: bool
) -> Table:
    """The documents of a tool (the newest version of each path), or one document: its newest version,
    version ``version``, or (``history``) every version. ``meta`` leaves the contents out."""
    _check_names(where)
    with ctx.db.read() as conn:
        project = _read_access(conn, actor, where)
        rows = _rows(conn, Where(project, where.tool, where.path), history, version)
    if not rows:
        raise NotFound(missing_text(actor, where))
    records = [_record(r, project, meta) for r in rows]
    return shape(records, ListQuery(), COLUMNS, lambda r, c: r.get(c), always=())


def _rows(conn: Connection, where: Where, history: bool, version: int | None) -> Sequence[Any]:
    assert where.tool is not None
    if where.path is None:
        return q.latest_of_tool(conn, where.entity, where.tool)
    if history:
        return q.history(conn, where.entity, where.tool, where.path)
    row = (
        q.latest(conn, where.entity, where.tool, where.path)
        if version is None
        else q.at_version(conn, where.entity, where.tool, where.path, version)
    )
    return [row] if row is not None else []


def contents(ctx: Context, actor: Actor, where: Where, version: int | None) -> str | None:
    """``contents=true``: the text of the newest (or given) version; None when there is none or it
    is disabled (XNAT answers 404, or 204 with ``accept-not-found=true``)."""
    _check_names(where)
    with ctx.db.read() as conn:
        project = _read_access(conn, actor, where)
        rows = _rows(conn, Where(project, where.tool, where.path), False, version)
    if not rows or rows[0]["status"] != ENABLED:
        return None
    return str(rows[0]["contents"])


def latest(ctx: Context, actor: Actor, where: Where) -> tuple[str, str] | None:
    """The newest version's (contents, status), disabled or not; None when there is none."""
    _check_names(where)
    with ctx.db.read() as conn:
        project = _read_access(conn, actor, where)
        row = q.latest(conn, project or "", str(where.tool), str(where.path))
    return None if row is None else (str(row["contents"]), str(row["status"]))


def _record(row: Mapping[Any, Any], project: str | None, meta: bool) -> dict[str, str]:
    return {
        "tool": row["tool"],
        "path": row["path"],
        "project": project or "",
        "user": row["username"],
        "create_date": row["created"].strftime("%a %b %d %H:%M:%S UTC %Y"),
        "reason": row["reason"],
        "contents": "" if meta else row["contents"],
        "unversioned": "true" if row["unversioned"] else "false",
        "version": str(row["version"]),
        "status": row["status"],
    }


def missing_text(actor: Actor, where: Where) -> str:
    return (
        f"Couldn't find config for user {actor.username} and project {where.project} "
        f"on tool [{where.tool}] path [{where.path}]"
    )


# --- changing ----------------------------------------------------------------------------------------


def parse_status(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    status = STATUS_WORDS.get(raw.strip().lower())
    if status is None:
        raise InvalidInput(
            f"Only valid values for the status flag are enabled or true and disabled or false: {raw}"
        )
    return status


def put(ctx: Context, actor: Actor, where: Where, change: Change) -> bool:
    """Store new contents and/or a status; True when the document did not exist before (201).

    Sending what is already stored (same contents, enabled, no status asked) changes nothing, so a
    repeated PUT adds no version, as XNAT's."""
    _check_names(where)
    if change.contents is None and change.status is None:
        raise InvalidInput(
            "You must specify either the status querystring parameter or a configuration object "
            "in the request body."
        )
    if change.contents is not None and not change.contents.strip():
        raise InvalidInput("No contents provided")
    if change.contents is not None and len(change.contents) > MAX_CONTENTS:
        raise InvalidInput(f"A configuration document must be shorter than {MAX_CONTENTS} characters")
    with ctx.db.write() as conn:
        project = _write_access(conn, actor, where)
        if change.contents is not None and where.tool == ANON_TOOL:
            dicomedit.parse(change.contents)  # XNAT stores scripts unread: a broken one failed uploads
        here = Where(project, where.tool, where.path)
        previous = q.latest(conn, here.entity, str(here.tool), str(here.path))
        if change.contents is None:
            if previous is None:
                raise NotFound(
                    f"No configuration for tool {where.tool} and path {where.path} to set the status of"
                )
            _store(
                conn,
                actor,
                here,
                previous,
                Change(str(previous["contents"]), change.status, None, change.reason),
            )
            return False
        _store(conn, actor, here, previous, change)
        return previous is None


def _store(
    conn: Connection, actor: Actor, where: Where, previous: Mapping[Any, Any] | None, change: Change
) -> None:
    """XNAT's ``replaceConfig``: a new version, unless the document is (and stays) unversioned."""
    if (
        previous is not None
        and previous["status"] == (change.status or ENABLED)
        and previous["contents"] == change.contents
    ):
        return
    if change.unversioned is not None:
        unversioned = change.unversioned
    else:
        unversioned = bool(previous["unversioned"]) if previous is not None else False
    values = {
        "contents": change.contents or "",
        "status": change.status or ENABLED,
        "unversioned": unversioned,
        "reason": change.reason,
        "username": actor.username,
    }
    if previous is not None and unversioned and previous["unversioned"]:
        q.change(conn, int(previous["pk"]), values)
        return
    version = int(previous["version"]) + 1 if previous is not None else 1
    q.add(conn, {**values, "tool": where.tool, "path": where.path, "entity": where.entity,
                 "project_id": where.project, "version": version})  # fmt: skip


def disable(ctx: Context, actor: Actor, where: Where) -> None:
    """``DELETE``: XNAT keeps the document and disables it (a new, disabled version)."""
    _check_names(where)
    with ctx.db.write() as conn:
        project = _write_access(conn, actor, where)
        here = Where(project, where.tool, where.path)
        previous = q.latest(conn, here.entity, str(here.tool), str(here.path))
        if previous is None:
            raise NotFound(missing_text(actor, where))
        change = Change(str(previous["contents"]), DISABLED, None, "Disabling this setting")
        _store(conn, actor, here, previous, change)
