"""XNAT's configuration service: versioned text documents per (tool, path), site-wide or per project.

Every change of a versioned entry adds a row with the next version (XNAT keeps the history, and
``version=N`` reads an old one); an unversioned entry changes its one row in place. ``entity`` is
the scope in the unique key ('' for the site, else the project's ID); ``project_id`` is the same
project as a foreign key, so a project's entries go with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)

from xnatd.db.archive import now
from xnatd.db.schema import LABEL, metadata

config_entries = Table(
    "config_entries",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("tool", String(LABEL), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("entity", String(LABEL), nullable=False, default=""),
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("unversioned", Boolean, nullable=False, default=False),
    Column("contents", Text, nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("username", String(LABEL), nullable=False, default=""),
    Column("created", DateTime, nullable=False),
    UniqueConstraint("entity", "tool", "path", "version", name="uq_config_entries_entity_tool_path_version"),
    Index("ix_config_entries_project", "project_id"),
)
E = config_entries


def _scope(entity: str) -> Any:
    return E.c.entity == entity


def tools(conn: Connection, entity: str) -> list[str]:
    stmt = select(E.c.tool).where(_scope(entity)).distinct().order_by(E.c.tool)
    return [str(t) for t in conn.execute(stmt).scalars()]


def latest_of_tool(conn: Connection, entity: str, tool: str) -> Sequence[RowMapping]:
    """The newest version of every path of a tool."""
    newest = (
        select(E.c.path, func.max(E.c.version).label("version"))
        .where(_scope(entity), E.c.tool == tool)
        .group_by(E.c.path)
        .subquery()
    )
    stmt = (
        select(E)
        .join(newest, (E.c.path == newest.c.path) & (E.c.version == newest.c.version))
        .where(_scope(entity), E.c.tool == tool)
        .order_by(E.c.path)
    )
    return conn.execute(stmt).mappings().all()


def history(conn: Connection, entity: str, tool: str, path: str) -> Sequence[RowMapping]:
    stmt = select(E).where(_scope(entity), E.c.tool == tool, E.c.path == path).order_by(E.c.version)
    return conn.execute(stmt).mappings().all()


def latest(conn: Connection, entity: str, tool: str, path: str) -> RowMapping | None:
    stmt = (
        select(E)
        .where(_scope(entity), E.c.tool == tool, E.c.path == path)
        .order_by(E.c.version.desc())
        .limit(1)
    )
    return conn.execute(stmt).mappings().first()


def at_version(conn: Connection, entity: str, tool: str, path: str, version: int) -> RowMapping | None:
    stmt = select(E).where(_scope(entity), E.c.tool == tool, E.c.path == path, E.c.version == version)
    return conn.execute(stmt).mappings().first()


def add(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(E).values(created=now(), **values))


def change(conn: Connection, pk: int, values: dict[str, Any]) -> None:
    conn.execute(update(E).where(E.c.pk == pk).values(created=now(), **values))
