"""Project settings reached by their own URLs (``/data/projects/P/{setting}[/{value}]``) and the
project's users (``/data/projects/P/users[/{group}/{user}]``)."""

from __future__ import annotations

import re

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import users as qu
from xnatd.domain.listing_columns import make_getter
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import Conflict, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import config_service, scan_types
from xnatd.services.archive.resolve import load_project

SETTINGS = {
    "accessibility": ("accessibility", ("private", "protected", "public")),
    # any integer, as XNAT stores it: 0 keeps uploads in the prearchive, 4 or more archives them when
    # they end, 5 alone replacing files sent again (XNAT's FinishImageUpload); XNAT's test sets 11
    "prearchive_code": ("prearchive_code", None),
    "current_arc": ("current_arc", None),
    "quarantine_code": (None, ("0", "1")),
    # may the project's collaborators share its data into other projects (see access.may_share_out)
    "collaborator_sharing": ("collaborator_sharing", ("true", "false")),
    # XNAT's scan type mapping, kept as the project's configuration document (services/archive/scan_types.py)
    "scan_type_mapping": (None, None),
}
SCAN_TYPE_MAPPING = "scan_type_mapping"
BOOLEAN_SETTINGS = frozenset({"collaborator_sharing"})
GROUPS = {"owners": "owner", "members": "member", "collaborators": "collaborator"}
DISPLAY = {"owner": "Owners", "member": "Members", "collaborator": "Collaborators"}
USER_COLUMNS = ["role", "login", "firstname", "lastname", "email", "displayname", "GROUP_ID", "xdat_user_id"]


def get_setting(ctx: Context, actor: Actor, project: str, name: str) -> str:
    column, _ = _setting(name)
    with ctx.db.read() as conn:
        row, _role = load_project(conn, actor, project, access.READ)
        if name == SCAN_TYPE_MAPPING:
            return "true" if scan_types.mapping_on(conn, row["id"]) else "false"
    if column in BOOLEAN_SETTINGS:
        return "true" if row[column] else "false"
    return "0" if column is None else str(row[column])


def set_setting(ctx: Context, actor: Actor, project: str, name: str, value: str) -> None:
    column, allowed = _setting(name)
    if allowed is not None and value not in allowed:
        raise InvalidInput(f"Invalid {name} {value!r}: one of {', '.join(allowed)}")
    if column == "current_arc" and not value.replace("_", "").isalnum():
        raise InvalidInput(f"Invalid archive folder name {value!r}")
    if name == SCAN_TYPE_MAPPING:
        _set_scan_type_mapping(ctx, actor, project, value)
        return
    stored: str | int | bool = value
    if column == "prearchive_code":
        stored = _arc_code(value)
    with ctx.db.write() as conn:
        row, _role = load_project(conn, actor, project, access.OWN)
        if column in BOOLEAN_SETTINGS:
            q.update_project(conn, row["id"], **{column: value == "true"})
        elif column is not None:
            q.update_project(conn, row["id"], **{column: stored})


def _arc_code(value: str) -> int:
    """A prearchive code as XNAT's ``translateArcProjectCode`` reads it: an integer, or true (1) or
    false (0)."""
    words = {"true": 1, "false": 0}
    text = value.strip()
    if text in words:
        return words[text]
    if re.fullmatch(r"[+-]?\d{1,10}", text) and -(2**31) <= int(text) < 2**31:
        return int(text)
    raise InvalidInput(f"The submitted code {value} is invalid: must be an integer.")


def _set_scan_type_mapping(ctx: Context, actor: Actor, project: str, value: str) -> None:
    """XNAT's ``scan_type_mapping/{value}`` stores the project's configuration document
    ``project/scanTypeMapping`` (Commons' ``BooleanUtils.toBoolean``: true, on, yes, y, t)."""
    with ctx.db.read() as conn:
        row, _role = load_project(conn, actor, project, access.OWN)
    on = value.strip().lower() in ("true", "on", "yes", "y", "t")
    where = config_service.Where(str(row["id"]), scan_types.TOOL, scan_types.PATH)
    config_service.put(ctx, actor, where, config_service.Change("true" if on else "false", None, None))


def _setting(name: str) -> tuple[str | None, tuple[str, ...] | None]:
    if name not in SETTINGS:
        raise NotFound(f"Unknown project setting {name}")
    return SETTINGS[name]


def users(ctx: Context, actor: Actor, project: str, query: ListQuery) -> Table:
    with ctx.db.read() as conn:
        row, _role = load_project(conn, actor, project, access.READ)
        records = []
        for entry in q.project_roles(conn, row["id"]):
            user = qu.user(conn, entry["username"])
            base = {
                "role": entry["role"],
                "login": entry["username"],
                "displayname": DISPLAY[entry["role"]],
                "GROUP_ID": f"{row['id']}_{entry['role']}",
                "firstname": user["first_name"] if user else "",
                "lastname": user["last_name"] if user else "",
                "email": user["email"] if user else "",
                "xdat_user_id": user["id"] if user else "",
            }
            records.append({"_base": base, "_type": "xnat:projectData", "_fields": {}})
    return shape(records, query, USER_COLUMNS, make_getter("user"), title="Users", always=())


def set_user(ctx: Context, actor: Actor, project: str, group: str, username: str) -> None:
    with ctx.db.write() as conn:
        row, _ = load_project(conn, actor, project, access.OWN)
        role = _role(group, row["id"], project)
        if qu.user(conn, username) is None:
            raise NotFound(f"User {username} not found")
        if role != "owner":
            _keep_an_owner(conn, row["id"], username)
        q.set_role(conn, row["id"], username, role)


def remove_user(ctx: Context, actor: Actor, project: str, group: str, username: str) -> None:
    with ctx.db.write() as conn:
        row, _ = load_project(conn, actor, project, access.OWN)
        _role(group, row["id"], project)
        _keep_an_owner(conn, row["id"], username)
        if not q.remove_role(conn, row["id"], username):
            raise NotFound(f"User {username} has no role in project {row['id']}")


def _keep_an_owner(conn: Connection, project_id: str, leaving: str) -> None:
    """A project always keeps an owner: only owners manage its members and settings, so without one
    it could be managed by site administrators alone. The owners are read under a lock on the
    project's row, so two owners removing each other at once cannot both succeed."""
    owners = {r["username"] for r in q.project_roles(conn, project_id, lock=True) if r["role"] == "owner"}
    if owners == {leaving}:
        raise Conflict(
            f"{leaving} is the last owner of project {project_id}: a project keeps at least one owner, "
            "so make someone else an owner first"
        )


def _role(group: str, project_id: str, named: str) -> str:
    """The role a group names, as XNAT finds a project's group: by its display name (``Members``),
    its ID (``P_member``, as ``GROUP_ID`` lists it, under the project's ID or the alias the URL
    used) or its role alone (``member``)."""
    wanted = group.lower()
    role = GROUPS.get(wanted)
    if role is None:
        for prefix in {f"{project_id.lower()}_", f"{named.lower()}_", ""}:
            if wanted.startswith(prefix) and wanted[len(prefix) :] in GROUPS.values():
                role = wanted[len(prefix) :]
                break
    if role is None:
        raise InvalidInput(
            f"Unknown project group {group}: Owners, Members or Collaborators, or {project_id}_owner, "
            f"{project_id}_member or {project_id}_collaborator"
        )
    return role
