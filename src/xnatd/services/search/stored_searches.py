"""Stored searches (``/data/search/saved[/{id}[/results]]``): pyxnat's ``manage.search`` saves,
lists, reads, runs and deletes them; XNAT's ``SavedSearchResource`` rules.

A search is saved under the ID in its URL, shared with the users its bundle names (``allowed_user``)
plus whoever saved it; one that is not ``secure`` is listed to every user, as on XNAT. Running it
is the search service with the stored bundle, so its rows are what the caller may read. Deleting
takes the caller off its users, and removes it once nobody is left (a site administrator removes it
at once). XNAT's ``@{element}`` IDs name the element's plain listing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from xnatd.db import stored_searches as sq
from xnatd.domain import search as S
from xnatd.domain import stored_search as SS
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.search import search as search_service

COLUMNS = [
    "id", "brief_description", "description", "root_element_name", "sort_by_element_name",
    "sort_by_field_name", "allow_diff_columns", "secure", "tag", "users",
]  # fmt: skip
MAX_ID = 255


def _visible(row: Mapping[Any, Any], users: Sequence[str], actor: Actor) -> bool:
    return actor.is_admin or not row["secure"] or actor.username in users


def _not_found(sid: str) -> NotFound:
    return NotFound(f"No stored search {sid}")


def listing(ctx: Context, actor: Actor, query: ListQuery, include_tag: str | None, everything: bool) -> Table:
    """The stored searches the caller may see: untagged ones unless ``includeTag`` (``true`` or a
    project); ``all=true`` gives an administrator every one."""
    access.require_user(actor)
    with ctx.db.read() as conn:
        rows, users = sq.every(conn), sq.users_of(conn)
    out = []
    for row in rows:
        names = users.get(row["id"], [])
        if not (everything and actor.is_admin):
            if not _visible(row, names, actor):
                continue
            if include_tag is None and row["tag"] is not None:
                continue
            if include_tag not in (None, "true") and row["tag"] != include_tag:
                continue
        out.append(_record(row, names))
    return shape(out, query, COLUMNS, lambda r, c: r.get(c), title="Stored Searches", always=())


def _record(row: Mapping[Any, Any], users: Sequence[str]) -> dict[str, str]:
    return {
        "id": row["id"],
        "brief_description": row["brief_description"],
        "description": row["description"],
        "root_element_name": row["root_element_name"],
        "sort_by_element_name": "",
        "sort_by_field_name": "",
        "allow_diff_columns": "0",
        "secure": "1" if row["secure"] else "0",
        "tag": row["tag"] or "",
        "users": ",".join(users),
    }


def _load(conn: Connection, actor: Actor, sid: str) -> tuple[Mapping[Any, Any], list[str]]:
    access.require_user(actor)
    row = sq.one(conn, sid)
    users = sq.users_of(conn).get(sid, [])
    if row is None or not _visible(row, users, actor):
        raise _not_found(sid)
    return row, users


def document(ctx: Context, actor: Actor, sid: str) -> bytes:
    """The stored search as XNAT serves it (``<xdat:stored_search>``)."""
    if sid.startswith("@"):
        access.require_user(actor)
        return SS.listing_bundle(_element(sid))
    with ctx.db.read() as conn:
        row, users = _load(conn, actor, sid)
    return SS.document(str(row["bundle"]).encode(), sid, users)


def results(ctx: Context, actor: Actor, sid: str, sort_by: str | None, descending: bool) -> Table:
    """``.../results``: the stored bundle run for the caller."""
    if sid.startswith("@"):
        access.require_user(actor)
        bundle = S.Bundle(_element(sid), (), S.Group(S.AND))
    else:
        with ctx.db.read() as conn:
            row, _ = _load(conn, actor, sid)
        bundle = S.parse_bundle(str(row["bundle"]))
    return search_service.search(ctx, actor, bundle, sort_by, descending)


def _element(sid: str) -> str:
    name = sid[1:]
    search_service.make_plan(S.Bundle(name, (), S.Group(S.AND)))  # a searchable element, else 400
    return name


def save(ctx: Context, actor: Actor, sid: str, body: bytes, save_as: bool = False) -> str:
    """``PUT /data/search/saved/{id}``: store the bundle as ``sid`` (``saveAs``: under a free ID
    made from it); its ID. Changing a search needs to be one of its users (or an administrator)."""
    access.require_user(actor)
    if not sid.strip() or len(sid) > MAX_ID or sid.startswith("@") or "/" in sid:
        raise InvalidInput(
            f"A stored search needs an ID of 1 to {MAX_ID} characters, not starting with @ or /"
        )
    bundle = S.parse_bundle(body)
    # a searchable root element (XNAT's canQuery); the fields are checked when it runs, as XNAT's
    # handlePut stores the document without looking into its criteria
    search_service.make_plan(S.Bundle(bundle.root, (), S.Group(S.AND)))
    meta = SS.meta(body)
    with ctx.db.write() as conn:
        existing = sq.one(conn, sid, lock=True)
        if existing is not None and save_as:
            n = 1
            while sq.one(conn, f"{sid}_{n}") is not None:
                n += 1
            sid, existing = f"{sid}_{n}", None
        users = [] if save_as else list(meta.users)
        if existing is not None:
            current = sq.users_of(conn).get(sid, [])
            if actor.username not in current and not actor.is_admin:
                raise Forbidden(f"User {actor.username} may not change the stored search {sid}")
        if actor.username not in users:  # whoever saves a search is one of its users
            users.append(actor.username)
        values = {
            "id": sid, "root_element_name": bundle.root, "brief_description": meta.brief_description,
            "description": meta.description, "tag": meta.tag, "secure": meta.secure,
            "bundle": body.decode("utf-8", "replace"), "owner": actor.username,
        }  # fmt: skip
        if existing is not None:
            values["owner"] = existing["owner"]
        sq.save(conn, values, users)
    return sid


def delete(ctx: Context, actor: Actor, sid: str) -> None:
    """``DELETE``: the caller leaves the search's users; the last one (or an administrator) removes it."""
    with ctx.db.write() as conn:
        _, users = _load(conn, actor, sid)
        if actor.username in users and len(users) > 1:
            sq.remove_user(conn, sid, actor.username)
        elif actor.username in users or actor.is_admin:
            sq.remove(conn, sid)
        else:
            raise Forbidden(f"User {actor.username} may not delete the stored search {sid}")
