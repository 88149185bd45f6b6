"""XNAT's scanner and scan type listings (``/data/archive/scanners``, ``/data/archive/scan_types``,
``/data/projects/P/scan_types``; xnatpy's ``session.scanners`` and ``session.scan_types``).

``table`` names the data type as XNAT's table name (``xnat_mrSessionData``, ``xnat_ctScanData``; MR
by default). Unlike XNAT, which counts every session, only what the caller may read is counted.
"""

from __future__ import annotations

from sqlalchemy import Connection

from xnatd.db import summaries as sq
from xnatd.domain import types
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import InvalidInput
from xnatd.services import access
from xnatd.services.access import visibility
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.resolve import load_project


def _data_type(table: str | None, default: str, base: str) -> str:
    """``xnat_mrScanData`` (any case) -> ``xnat:mrScanData``, one of ``base``'s concrete types."""
    if not table:
        return default
    prefix, _, name = table.partition("_")
    wanted = f"{prefix}:{name}".lower()
    for t in types.concrete(base):
        if t.xsi_type.lower() == wanted:
            return t.xsi_type
    raise InvalidInput(
        f"table must name a {base} type's table (such as {default.replace(':', '_')}), not {table!r}"
    )


def _projects(conn: Connection, actor: Actor, project: str | None) -> list[str] | None:
    """The projects whose data the caller reads (None: all, for an administrator)."""
    if project is not None:
        row, _ = load_project(conn, actor, project, access.READ)
        return [str(row["id"])]
    access.require_user(actor)
    readable = visibility.viewer(conn, actor).readable
    return None if readable is None else sorted(readable)


def scanners(ctx: Context, actor: Actor, table: str | None, project: str | None, query: ListQuery) -> Table:
    """The distinct scanners (the sessions' ``scanner`` field) of one session type."""
    xsi_type = _data_type(table, "xnat:mrSessionData", "xnat:imageSessionData")
    with ctx.db.read() as conn:
        fields = sq.session_fields(conn, xsi_type, _projects(conn, actor, project))
    found = sorted({str(f["scanner"]) for f in fields if f.get("scanner")})
    return shape([{"scanner": s} for s in found], query, ["scanner"], lambda r, c: r.get(c), title="Scanners")


def scan_types(ctx: Context, actor: Actor, table: str | None, project: str | None, query: ListQuery) -> Table:
    """Each scan type of one scan data type, with the series descriptions seen under it
    (``series_descriptions``: each followed by a comma, as XNAT's ``xs_a_concat``)."""
    xsi_type = _data_type(table, "xnat:mrScanData", "xnat:imageScanData")
    with ctx.db.read() as conn:
        pairs = sq.scan_types(conn, xsi_type, _projects(conn, actor, project))
    by_type: dict[str, list[str]] = {}
    for scan_type, description in pairs:
        by_type.setdefault(scan_type, []).append(description)
    rows = [
        {"series_descriptions": "".join(f"{d}," for d in descs), "type": t}
        for t, descs in sorted(by_type.items())
    ]
    return shape(rows, query, ["series_descriptions", "type"], lambda r, c: r.get(c), title="Scan Types")
