"""XNAT's search service (``POST /data/search``): a parsed bundle in, a Table of what matched out.

The bundle's root element decides what a row is (a project, subject, experiment, scan or
reconstruction of that type); its columns may be fields of the root, of an object above it (a
session's subject or project) or of one object below it, the one XNAT's search joins (a subject's
latest session of the column's type, that session's last scan: XNAT's ``TestSearchJoins``); its
criteria may test fields of any related object, above (the session's subject) or below (a subject's
sessions: "has one that matches"). Every field name is checked before anything is loaded, so a typo
is a 400, not an empty answer.

Only objects the caller may read are ever loaded (``search_records``), so no criterion, column or
count can reveal anything of a project they cannot read. SQL narrows what it can (type, readable
projects, an ``ID`` criterion on the root); the rest is evaluated here on the loaded records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xnatd.domain import search as S
from xnatd.domain import search_fields as F
from xnatd.domain import search_match, types
from xnatd.domain.table import Table
from xnatd.errors import InvalidInput
from xnatd.services.access.context import Actor, Context
from xnatd.services.search.search_records import Loader, Rec

RANK = {F.PROJECT: 0, F.SUBJECT: 1, F.EXPERIMENT: 2, F.SCAN: 3, F.RECON: 3}
# Objects below the root whose fields a search shows, joining one of them to each row.
JOINED = {
    (F.SUBJECT, F.EXPERIMENT),
    (F.SUBJECT, F.SCAN),
    (F.SUBJECT, F.RECON),
    (F.EXPERIMENT, F.SCAN),
    (F.EXPERIMENT, F.RECON),
}
QUARANTINE = "quarantine_status"  # XNAT ends every search answer with this column
Check = Callable[[Loader, Rec], bool]


@dataclass(frozen=True)
class Col:
    element: str
    display: F.Display
    header: str


@dataclass(frozen=True)
class Plan:
    root: str
    kind: str
    columns: tuple[Col, ...]
    check: Check
    kinds: frozenset[str]
    id_filter: tuple[str, str] | None


def search(
    ctx: Context, actor: Actor, bundle: S.Bundle, sort_by: str | None = None, descending: bool = False
) -> Table:
    """Run a search for ``actor``; rows are in ID order unless ``sort_by`` names a column."""
    plan = make_plan(bundle)
    with ctx.db.read() as conn:
        loader = _load(Loader.for_actor(conn, actor), plan)
        hits = [rec for rec in loader.records(plan.kind) if _is_root(rec, plan) and plan.check(loader, rec)]
        rows = [_row(loader, rec, plan.columns) for rec in hits]
    headers = [c.header for c in plan.columns] + [QUARANTINE]
    if sort_by:
        rows = _sorted(rows, headers, plan.columns, sort_by, descending)
    return Table(columns=headers, rows=rows, total=len(rows), column_meta=_meta(plan))


def make_plan(bundle: S.Bundle) -> Plan:
    """Check every element and field the bundle names and compile its criteria."""
    root = F.element(bundle.root).xsi_type
    kind = F.kind_of(root)
    if kind is None:
        raise InvalidInput(f"{bundle.root} is not a searchable element")
    kinds = {kind}
    columns = _columns(bundle, root, kind, kinds)
    check = _compile(bundle.where, kinds)
    return Plan(root, kind, columns, check, frozenset(kinds), _id_filter(bundle.where, root))


# --- planning ---------------------------------------------------------------------------------


def _columns(bundle: S.Bundle, root: str, kind: str, kinds: set[str]) -> tuple[Col, ...]:
    if not bundle.columns:
        return tuple(Col(root, d, F.header(root, root, d)) for d in F.default_columns(root))
    out: dict[str, Col] = {}
    for column in bundle.columns:
        element, element_kind = _element(column.ref.element)
        below = RANK[element_kind] > RANK[kind] and (kind, element_kind) not in JOINED
        if below or (RANK[element_kind] == RANK[kind] and element_kind != kind):
            raise InvalidInput(
                f"A search of {root} rows cannot show fields of {element} (one row per {root}); "
                f"search {element} instead"
            )
        kinds.add(element_kind)
        display = F.resolve(element, column.ref.field, column.ref.value)
        col = Col(element, display, F.header(root, element, display))
        out.setdefault(col.header, col)  # XNAT keys its columns by header: a repeat is one column
    return tuple(out.values())


def _element(name: str) -> tuple[str, str]:
    element = F.element(name).xsi_type
    kind = F.kind_of(element)
    if kind is None:
        raise InvalidInput(f"{name} is not a searchable element")
    return element, kind


def _compile(item: S.Criterion | S.Group, kinds: set[str]) -> Check:
    if isinstance(item, S.Criterion):
        return _criterion(item, kinds)
    parts = [_compile(child, kinds) for child in item.items]
    if item.method == S.OR and parts:
        return lambda loader, rec: any(part(loader, rec) for part in parts)
    return lambda loader, rec: all(part(loader, rec) for part in parts)


def _criterion(criterion: S.Criterion, kinds: set[str]) -> Check:
    element, element_kind = _element(criterion.ref.element)
    kinds.add(element_kind)
    display = F.resolve(element, criterion.ref.field, criterion.ref.value)
    test = search_match.compile_test(criterion, display.kind)

    def check(loader: Loader, rec: Rec) -> bool:
        targets = _targets(rec, element, element_kind)
        if not targets:
            return test(None)  # as a SQL outer join: no related object is a NULL value
        return any(test(value_of(loader, target, display)) for target in targets)

    return check


def _id_filter(where: S.Group, root: str) -> tuple[str, str] | None:
    """An ``ID =`` or ``ID LIKE`` criterion on the root that every match must meet, for SQL."""
    for item in _required(where):
        if not isinstance(item, S.Criterion) or item.comparison not in (S.EQ, S.LIKE):
            continue
        if F.element(item.ref.element).xsi_type != root or "\\" in item.value:
            continue
        display = F.resolve(root, item.ref.field, item.ref.value)
        if display.path == "ID" and display.derive is None and item.value.strip():
            return item.comparison, item.value.strip()
    return None


def _required(group: S.Group) -> list[S.Criterion | S.Group]:
    if group.method != S.AND and len(group.items) > 1:
        return []
    out: list[S.Criterion | S.Group] = []
    for item in group.items:
        out.extend(_required(item) if isinstance(item, S.Group) else [item])
    return out


# --- loading and evaluating ---------------------------------------------------------------------


def _load(loader: Loader, plan: Plan) -> Loader:
    kind, kinds = plan.kind, plan.kinds
    below_root = types.subtypes(plan.root)
    if kind == F.PROJECT:
        loader.projects({plan.id_filter[1]} if plan.id_filter and plan.id_filter[0] == S.EQ else None)
    elif kind == F.SUBJECT:
        loader.subjects(plan.id_filter)
    elif kind == F.EXPERIMENT:
        loader.experiments(below_root, plan.id_filter)
    children = {
        k: loader.children(k, below_root if k == kind else None) for k in (F.SCAN, F.RECON) if k in kinds
    }
    if kind != F.EXPERIMENT and (F.EXPERIMENT in kinds or children):
        rows = children.get(kind) if kind in (F.SCAN, F.RECON) else None
        loader.experiments(ids={r["experiment_id"] for r in rows} if rows is not None else None)
    if kind != F.SUBJECT and (F.SUBJECT in kinds or kind == F.EXPERIMENT):
        above = RANK[kind] > RANK[F.SUBJECT]
        loader.subjects(ids={r.row["subject_id"] for r in loader.records(F.EXPERIMENT)} if above else None)
    if kind != F.PROJECT and F.PROJECT in kinds:
        loader.projects(
            {p for k in (F.SUBJECT, F.EXPERIMENT) for r in loader.records(k) for p, _ in r.places}
        )
    loader.link()
    for child_kind, rows in children.items():
        loader.link_children(child_kind, rows)
    return loader


def _is_root(rec: Rec, plan: Plan) -> bool:
    return types.is_a(rec.xsi_type, plan.root)


def _targets(rec: Rec, element: str, kind: str) -> list[Rec]:
    if kind == rec.kind:
        found = [rec]
    elif kind in rec.up:
        found = [rec.up[kind]]
    else:
        found = rec.down.get(kind, [])
    return [r for r in found if types.is_a(r.xsi_type, element)]


def value_of(loader: Loader, rec: Rec, display: F.Display) -> object:
    """A field's value on one record: a computed fact, a registry field or a custom variable."""
    if display.fact is not None:
        value = loader.fact(rec, display.fact)
    elif display.path is not None:
        value = rec.fields.get(display.path)
        if value is None and display.custom is not None:
            wanted = display.custom.lower()
            found = types.custom_values(rec.fields)
            value = next((v for k, v in found.items() if k.lower() == wanted), None)
    else:
        value = None
    return display.derive(value) if display.derive is not None else value


def _row(loader: Loader, rec: Rec, columns: tuple[Col, ...]) -> dict[str, str]:
    row = {}
    for col in columns:
        kind = F.kind_of(col.element) or ""
        if RANK.get(kind, 0) > RANK[rec.kind]:
            joined = _joined(rec, col.element, kind, columns)
            targets = [joined] if joined is not None else []
        else:
            targets = _targets(rec, col.element, kind)
        row[col.header] = types.text(value_of(loader, targets[0], col.display)) if targets else ""
    row[QUARANTINE] = "active"
    return row


def _joined(rec: Rec, element: str, kind: str, columns: tuple[Col, ...]) -> Rec | None:
    """The one object below ``rec`` whose fields its row shows, as XNAT's search joins it: a
    subject's latest session of the most specific session type the columns name (by date, a session
    without one first, as PostgreSQL sorts NULLs in a descending order), and the last scan (or
    reconstruction) of that session."""
    if kind == F.EXPERIMENT:
        return _latest(rec, element)
    session = rec
    if rec.kind == F.SUBJECT:
        named = [c.element for c in columns if F.kind_of(c.element) == F.EXPERIMENT]
        found = _latest(
            rec, max(named, key=lambda t: len(types.lineage(t))) if named else "xnat:imageSessionData"
        )
        if found is None:
            return None
        session = found
    children = [c for c in session.down.get(kind, []) if types.is_a(c.xsi_type, element)]
    return children[-1] if children else None


def _latest(rec: Rec, element: str) -> Rec | None:
    found = [e for e in rec.down.get(F.EXPERIMENT, []) if types.is_a(e.xsi_type, element)]
    if not found:
        return None
    return max(found, key=lambda e: (e.fields.get("date") is None, str(e.fields.get("date") or "")))


def _sorted(
    rows: list[dict[str, str]], headers: list[str], columns: tuple[Col, ...], sort_by: str, descending: bool
) -> list[dict[str, str]]:
    wanted = sort_by.strip().replace(".", "/").rsplit("/", 1)[-1].lower()
    names = {c.display.id.lower(): c.header for c in columns} | {h.lower(): h for h in headers}
    if wanted not in names:
        raise InvalidInput(f"sortBy names no column of this search: {sort_by}")
    header = names[wanted]

    def key(row: dict[str, str]) -> tuple[int, float, str]:
        text = row.get(header, "")
        try:
            return (0, float(text), text)
        except ValueError:
            return (1, 0.0, text.lower())

    return sorted(rows, key=key, reverse=descending)


def _meta(plan: Plan) -> list[dict[str, str]]:
    """XNAT's column properties, which its JSON answers carry as ``Columns``."""
    out = []
    for c in plan.columns:
        field_id = c.display.id + (f"={c.display.custom}" if c.display.custom else "")
        meta = {"key": c.header, "element_name": c.element, "id": field_id, "header": c.display.header}
        out.append(meta | {"xPATH": f"{c.element}.{field_id}", "type": c.display.kind})
    return [*out, {"key": QUARANTINE}]
