"""Every archive listing behind one function: the address says which, the query says how."""

from __future__ import annotations

from collections.abc import Sequence

from xnatd.domain import address as A
from xnatd.domain.params import param
from xnatd.domain.table import ListQuery, Table
from xnatd.errors import NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import listings, resources
from xnatd.services.archive.resolve import Target, resolve


def listing(
    ctx: Context, actor: Actor, addr: A.Address, query: ListQuery, params: Sequence[tuple[str, str]]
) -> Table:
    if addr.kind == A.RESOURCES:
        return resources.resource_rows(ctx, actor, addr, query)
    xsi_type = param(params, "xsiType")
    with ctx.db.read() as conn:
        if addr.kind == A.PROJECTS:
            return listings.projects(conn, actor, query)
        t = resolve(conn, actor, addr, access.READ) if addr.level != "site" else Target()
        if addr.kind == A.SUBJECTS:
            return listings.subjects(conn, actor, t, query)
        if addr.kind == A.EXPERIMENTS:
            return listings.experiments(conn, actor, t, query, xsi_type or None, None)
        if addr.kind == A.CHILDREN and addr.child_kind == "assessor":
            assert t.experiment is not None
            return listings.experiments(conn, actor, t, query, xsi_type or None, t.experiment["id"])
        if addr.kind == A.CHILDREN:
            return listings.children(conn, t, addr.child_kind or "scan", query, xsi_type or None)
        if addr.kind == A.SHARES:
            kind = "experiment" if addr.level == "experiment" else "subject"
            return listings.shares(conn, actor, t, kind, query)
    raise NotFound("Unknown listing")
