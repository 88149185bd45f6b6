"""Listings of projects, subjects, experiments, scans and shares as Tables.

Each listing is XNAT's: its type (``xsiType``, else its default made more specific by the columns),
its default columns, the columns every row has, and any column a client names — a plain key, a
shortcut or an XPath, of the listed object or of the objects joined to it (``domain/listing_columns``,
``services/listing_joins``). Rows come in the order they were created: XNAT's listing queries have no
``ORDER BY``, and PostgreSQL answers in the order the rows were stored (``sortBy`` sorts).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import joins as jq
from xnatd.domain import listing_columns as lc
from xnatd.domain import types
from xnatd.domain.listing_columns import make_getter
from xnatd.domain.table import ListQuery, Table, column_list, shape
from xnatd.services import access
from xnatd.services.access import visibility
from xnatd.services.access.context import Actor
from xnatd.services.archive import listing_joins
from xnatd.services.archive.listing_joins import Rec, Rows, experiment_base, record, stamp, subject_base
from xnatd.services.archive.records import field_values
from xnatd.services.archive.resolve import Target

__all__ = ["experiment_base", "stamp"]

PROJECT, SUBJECT = "xnat:projectData", "xnat:subjectData"
EXPERIMENT, SUBJECT_ASSESSOR = "xnat:experimentData", "xnat:subjectAssessorData"


def readable_project_ids(conn: Connection, actor: Actor) -> set[str]:
    return visibility.readable_project_ids(conn, actor)


class _Listing:
    """One request's plan: the listed type, the columns shown, and the objects they need joined."""

    def __init__(self, default: str, xsi_type: str | None, query: ListQuery) -> None:
        names = [*query.filters, *(query.columns or [])]
        self.plan = lc.Plan(default, lc.root_type(default, xsi_type, names))
        # XNAT ignores a filter on a type or field it does not know, rather than matching nothing.
        filters = {k: v for k, v in query.filters.items() if self.plan.column(k) is not None}
        self.query = ListQuery(
            query.columns, filters, query.sort_by, query.descending, query.offset, query.limit
        )
        self.defaults = lc.default_columns(default, self.plan.root)
        self.always = lc.always(default, self.plan.root)
        self.shown = column_list(query.columns, self.defaults, self.always, self.plan.header)
        self.rows = Rows(self.plan, self.shown)
        self.needed = self.plan.ways([*self.shown, *filters, *query.sort_by])

    @property
    def root(self) -> str:
        return self.plan.root

    @property
    def joins_children(self) -> bool:
        return bool(self.rows.expanding)

    def table(self, records: Sequence[Rec], title: str, total_known: int | None = None) -> Table:
        return shape(
            records,
            self.query,
            self.defaults,
            self.rows.getter,
            title=title,
            always=self.always,
            total_known=total_known,
            namer=self.plan.header,
            values=self.rows.values,
            expand=self.rows.expand,
        )


def projects(conn: Connection, actor: Actor, query: ListQuery) -> Table:
    listing = _Listing(PROJECT, None, query)
    roles = q.roles(conn, actor.username) if not actor.is_guest else {}
    aliases = q.all_aliases(conn)
    records = []
    for row in q.all_projects(conn):
        if not access.can_see(actor, row, roles.get(row["id"])):
            continue
        values = field_values("project", row)
        base = {
            "ID": row["id"],
            "secondary_ID": row["secondary_id"],
            "name": row["name"],
            "description": row["description"],
            "pi_firstname": types.text(values.get("PI/firstname")),
            "pi_lastname": types.text(values.get("PI/lastname")),
            "URI": f"/data/projects/{row['id']}",
            "accessibility": row["accessibility"],
            "insert_date": stamp(row["insert_date"]),
            "insert_user": row["insert_user"],
            "xsiType": PROJECT,
            "alias": ",".join(aliases.get(row["id"], [])),
        }
        records.append(record(base, PROJECT, values))
    listing_joins.load_own(records, listing.needed)
    listing_joins.load_resources(
        conn, "project", records, listing.needed, [r["_base"]["ID"] for r in records]
    )
    return listing.table(records, "Projects")


def subjects(conn: Connection, actor: Actor, t: Target, query: ListQuery) -> Table:
    listing = _Listing(SUBJECT, None, query)
    project_id = t.project_id if t.project is not None else None
    readable = _readable(conn, actor, project_id is None or bool(listing.needed))
    records = []
    for row, proj, label in q.subjects_of(conn, project_id):
        if project_id is None and readable is not None and proj not in readable:
            continue
        records.append(record(subject_base(row, proj, label), SUBJECT, field_values("subject", row)))
    ids = listing_joins.ids_of(records, jq.subject_ids(project_id))
    listing_joins.load_subjects(conn, records, listing.needed, ids, readable)
    return listing.table(records, "Subjects")


def experiments(
    conn: Connection,
    actor: Actor,
    t: Target,
    query: ListQuery,
    xsi_type: str | None,
    assessors_of: str | None,
) -> Table:
    project_id = t.project_id if t.project is not None else None
    subject_id = t.subject["id"] if t.subject is not None else None
    site = project_id is None and assessors_of is None
    default = lc.IMAGE_ASSESSOR if assessors_of else EXPERIMENT if site else SUBJECT_ASSESSOR
    listing = _Listing(default, xsi_type, query)
    kinds = _kinds(xsi_type, listing.root)
    fast = (
        project_id is not None
        and not listing.query.filters
        and not query.sort_by
        and not listing.joins_children
        and not q.has_shared_experiments(conn, project_id)
    )
    page = ((query.offset or 0), query.limit) if fast and query.paged else None
    rows, total = q.experiments_query(conn, project_id, subject_id, assessors_of, kinds, page)
    readable = _readable(conn, actor, project_id is None or bool(listing.needed))
    records = []
    for row, proj, label in rows:
        if project_id is None and readable is not None and proj not in readable:
            continue
        records.append(
            record(experiment_base(row, proj, label), row["xsi_type"], field_values("experiment", row))
        )
    ids = listing_joins.ids_of(records, jq.experiment_ids(project_id, subject_id, assessors_of, kinds))
    listing_joins.load_experiments(conn, records, listing.needed, ids, readable)
    return listing.table(records, "Matching experiments", total if page is not None else None)


def _readable(conn: Connection, actor: Actor, needed: bool) -> set[str] | None:
    """The projects whose objects a caller may see in a listing (None: all); worked out only when a
    site-wide listing or a joined object needs it (a project's listing was checked on the way in)."""
    return None if actor.is_admin or not needed else readable_project_ids(conn, actor)


def _kinds(xsi_type: str | None, root: str) -> list[str]:
    """The concrete types listed: those of ``xsiType`` (each of a comma-separated list), else of the
    listing's type."""
    if xsi_type and "," in xsi_type:
        return [k for name in xsi_type.split(",") if name.strip() for k in types.subtypes(name.strip())]
    return types.subtypes(root)


def children(conn: Connection, t: Target, kind: str, query: ListQuery, xsi_type: str | None = None) -> Table:
    assert t.experiment is not None
    session = t.experiment
    default = "xnat:imageScanData" if kind == "scan" else "xnat:reconstructedImageData"
    listing = _Listing(default, xsi_type, query)
    records = [
        rec
        for rec in (
            listing_joins.child_record(row, session["id"]) for row in q.children(conn, session["id"], kind)
        )
        if types.is_a(rec["_type"], listing.root)
    ]
    if listing.needed & {(lc.SESSION_OF,), (lc.SESSION_OF, lc.SUBJECT_OF)}:
        _link_session(conn, t, records, listing.needed)
    listing_joins.load_own(records, listing.needed)
    keys = [
        str(r["_base"][f"xnat_{'imagescan' if kind == 'scan' else 'reconstructedimage'}data_id"])
        for r in records
    ]
    listing_joins.load_resources(conn, kind, records, listing.needed, keys)
    return listing.table(records, "Scans" if kind == "scan" else "Reconstructions")


def _link_session(conn: Connection, t: Target, records: Sequence[Rec], needed: set[lc.Ways]) -> None:
    """The one session (and its subject) a scan listing's session columns read."""
    assert t.experiment is not None
    row = t.experiment
    project = t.project_id if t.project is not None else row["project_id"]
    session = record(
        experiment_base(row, project, t.experiment_label or row["label"]),
        row["xsi_type"],
        field_values("experiment", row),
    )
    subject_row = t.subject if t.subject is not None else None
    if (lc.SESSION_OF, lc.SUBJECT_OF) in needed and row["subject_id"]:
        subject_row = subject_row or jq.subject_by_id(conn, row["subject_id"])
    if subject_row is not None:
        label = t.subject_label or subject_row["label"]
        base = subject_base(subject_row, subject_row["project_id"], label)
        session["_rel"][lc.SUBJECT_OF] = record(base, SUBJECT, field_values("subject", subject_row))
    for rec in records:
        rec["_rel"][lc.SESSION_OF] = session


def shares(conn: Connection, actor: Actor, t: Target, kind: str, query: ListQuery) -> Table:
    """``.../projects``: the object's own project, then those it is shared into, each with its
    label there; only projects the caller may read are rows."""
    row = t.experiment if kind == "experiment" else t.subject
    assert row is not None
    v = visibility.viewer(conn, actor)
    owner = q.project(conn, row["project_id"])
    entries = [(owner, row["label"])] + [
        (q.project(conn, s["project_id"]), s["label"]) for s in q.shares_of(conn, kind, row["id"])
    ]
    records = []
    for proj, label in entries:
        if proj is None or not v.reads(proj["id"]):
            continue
        base = {
            "label": label,
            "ID": proj["id"],
            "Secondary_ID": proj["secondary_id"],
            "Name": proj["name"],
            "URI": f"/data/projects/{proj['id']}",
        }
        records.append({"_base": base, "_type": PROJECT, "_fields": {}})
    return shape(
        records,
        query,
        ["label", "ID", "Secondary_ID", "Name"],
        make_getter("project"),
        title="Projects",
        always=("ID",),
    )
