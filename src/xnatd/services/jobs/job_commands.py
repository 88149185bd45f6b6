"""Command definitions (the built-in dcm2niix plus the ones a site administrator registers) and the
per-project list of commands to run automatically when a session is archived."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from xnatd.db import jobs as qj
from xnatd.domain import jobs as J
from xnatd.errors import Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.resolve import load_project


def lookup(conn: Connection, name: str) -> J.Command:
    """The definition of ``name`` as it is now (jobs keep a copy of it from when they were queued)."""
    if name == J.BUILTIN:
        return J.DCM2NIIX
    row = qj.command(conn, name)
    if row is None:
        raise NotFound(f"Unknown command {name!r}")
    return J.parse_command(row["definition"])


def from_spec(spec: Mapping[str, Any]) -> J.Command:
    """The definition a job was queued with (stored in its row)."""
    if spec.get("name") == J.BUILTIN:
        return J.DCM2NIIX
    return J.parse_command(spec)


def list_commands(ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    _require_user(actor)
    with ctx.db.read() as conn:
        rows = qj.commands(conn)
    return [J.DCM2NIIX.to_json()] + [J.parse_command(r["definition"]).to_json() for r in rows]


def get_command(ctx: Context, actor: Actor, name: str) -> dict[str, Any]:
    _require_user(actor)
    with ctx.db.read() as conn:
        return lookup(conn, name).to_json()


def put_command(ctx: Context, actor: Actor, doc: Mapping[str, Any], name: str | None = None) -> bool:
    """Register or replace a definition (site administrators only); True if it is new."""
    _require_admin(actor)
    if name is not None and doc.get("name", name) != name:
        raise InvalidInput(f"The definition's name {doc.get('name')!r} differs from the URL's {name!r}")
    command = J.parse_command({**doc, "name": name or doc.get("name")})
    definition = command.to_json()
    definition.pop("builtin", None)
    with ctx.db.write() as conn:
        return qj.put_command(conn, command.name, definition, actor.username)


def delete_command(ctx: Context, actor: Actor, name: str) -> None:
    _require_admin(actor)
    if name == J.BUILTIN:
        raise Forbidden(f"'{J.BUILTIN}' is built in and cannot be deleted")
    with ctx.db.write() as conn:
        if not qj.delete_command(conn, name):
            raise NotFound(f"Unknown command {name!r}")


def get_automation(ctx: Context, actor: Actor, project: str) -> dict[str, Any]:
    with ctx.db.read() as conn:
        row, _ = load_project(conn, actor, project, access.READ)
        return {"project": row["id"], "commands": qj.automations(conn, row["id"])}


def set_automation(ctx: Context, actor: Actor, project: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Which commands run on every scan of a session when it is archived (project owners)."""
    names = doc.get("commands")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput('The body must be {"commands": ["dcm2niix", ...]}')
    with ctx.db.write() as conn:
        row, _ = load_project(conn, actor, project, access.OWN)
        for name in names:
            lookup(conn, name)
        qj.set_automations(conn, row["id"], sorted(set(names)))
        return {"project": row["id"], "commands": qj.automations(conn, row["id"])}


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("Only site administrators may define commands")


def _require_user(actor: Actor) -> None:
    if actor.is_guest:
        raise Forbidden("Log in to see the commands")
