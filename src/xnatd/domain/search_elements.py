"""Rows of XNAT's search-element catalogue, derived from the data-type registry.

``GET /data/search/elements`` lists the searchable data types and ``GET /data/search/elements/{type}``
their search fields. Both clients read them: xnatpy at connect time (``ELEMENT_NAME``, then each
type's ``FIELD_ID``), pyxnat before a search without explicit columns. Column names and order follow
XNAT's ``SearchElementListResource`` and ``SearchFieldListResource``; every value is a string, as the
clients parse CSV and compare strings.

xnatpy stores every ``FIELD_ID`` as a class attribute on the generated class (``setattr(cls, id, …)``,
an attribute without a getter), so an ID equal to a generated property name (always lower case,
``gender``) would make that property unreadable. Field IDs are therefore upper case, as XNAT's are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from xnatd.domain import display_fields, types
from xnatd.domain.types import DataType, Field
from xnatd.errors import InvalidInput, NotFound

ELEMENT_COLUMNS = ["ELEMENT_NAME", "SINGULAR", "PLURAL", "SECURED", "COUNT"]
FIELD_COLUMNS = [
    "FIELD_ID",
    "HEADER",
    "SUMMARY",
    "TYPE",
    "REQUIRES_VALUE",
    "DESC",
    "ELEMENT_NAME",
    "SRC",
    "VISIBLE",
    "SEARCHABLE",
    "VALUE",
]

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_NON_ID = re.compile(r"[^A-Za-z0-9]+")


def element_rows(counts: Mapping[str, int] | None = None) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows for ``/data/search/elements``, one row per searchable data type.

    ``counts`` (xsi:type → number of stored objects) fills ``COUNT``; types missing from it count 0.
    """
    rows = []
    for t in _searchable():
        singular = _singular(t)
        rows.append(
            {
                "ELEMENT_NAME": t.xsi_type,
                "SINGULAR": singular,
                "PLURAL": _plural(singular),
                "SECURED": "true" if _secured(t) else "false",
                "COUNT": str((counts or {}).get(t.xsi_type, 0)),
            }
        )
    return list(ELEMENT_COLUMNS), rows


def field_rows(element: str) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows for ``/data/search/elements/{element}``; ``element`` may be a comma list.

    Raises ``NotFound`` for a name that is not a searchable data type.
    """
    names = [part.strip() for part in element.split(",") if part.strip()]
    if not names:
        raise NotFound("No search element given")
    rows = []
    for name in names:
        t = _element(name)
        for field_id, fl, label_path in _search_fields(t):
            header = _header(label_path)
            rows.append(
                {
                    "FIELD_ID": field_id,
                    "HEADER": header,
                    "SUMMARY": fl.doc or header,
                    "TYPE": fl.kind,
                    "REQUIRES_VALUE": "false",
                    "DESC": fl.doc or header,
                    "ELEMENT_NAME": t.xsi_type,
                    "SRC": "0",
                    "VISIBLE": "true",
                    "SEARCHABLE": "true",
                    "VALUE": "",
                }
            )
        rows.extend(_display_rows(t, {r["FIELD_ID"] for r in rows if r["ELEMENT_NAME"] == t.xsi_type}))
    return list(FIELD_COLUMNS), rows


def _display_rows(t: DataType, taken: set[str]) -> list[dict[str, str]]:
    """XNAT's computed display fields of a type (``PROJECT_OWNERS``, ``SUBJECT_LABEL``...): the search
    service answers them, and pyxnat's ``repr()`` reads them from a search over every listed field."""
    return [
        {
            "FIELD_ID": d.id,
            "HEADER": d.header,
            "SUMMARY": d.header,
            "TYPE": d.kind,
            "REQUIRES_VALUE": "false",
            "DESC": d.header,
            "ELEMENT_NAME": t.xsi_type,
            "SRC": "0",
            "VISIBLE": "true",
            "SEARCHABLE": "true",
            "VALUE": "",
        }
        for d in display_fields.extra_fields(t.xsi_type)
        if d.id not in taken
    ]


def search_fields(xsi_type: str) -> list[tuple[str, Field]]:
    """``(FIELD_ID, field)`` pairs of a data type; each field's ``path`` is relative to the type.

    Fields of single child objects are included under the child's path (a subject's
    ``demographics/gender`` as ``GENDER``); their ID keeps the child's name only when the short one is
    already taken by the type's own fields.
    """
    return [(field_id, fl) for field_id, fl, _ in _search_fields(_element(xsi_type))]


def field_for_id(xsi_type: str, field_id: str) -> Field | None:
    """The field a search ``FIELD_ID`` names (case-insensitive), for answering searches by field ID."""
    wanted = field_id.strip().upper()
    return next((fl for fid, fl in search_fields(xsi_type) if fid == wanted), None)


# ---------------------------------------------------------------------------------------------


def _search_fields(t: DataType) -> list[tuple[str, Field, str]]:
    """``(FIELD_ID, field, path to name it by)``: nested fields are named without their child's name."""
    own: list[tuple[str, Field, str]] = []
    taken: set[str] = set()
    for fl in types.fields_of(t.xsi_type):
        field_id = _field_id(fl.path)
        if field_id not in taken:
            taken.add(field_id)
            own.append((field_id, fl, fl.path))
    nested: list[tuple[str, Field, str]] = []
    for ref in types.refs_of(t.xsi_type):
        if ref.many or ref.name not in types.children_of(t.xsi_type):
            continue  # only stored child objects (demographics); inline ones' fields are the type's own
        for child in _fields_below(ref.xsi_type):
            full = Field(
                f"{ref.name}/{child.path}", child.kind, child.attr, child.shortcut, child.enum, child.doc
            )
            field_id = _field_id(child.path)
            if field_id in taken:
                field_id = _field_id(full.path)
            if field_id in taken:
                continue
            taken.add(field_id)
            nested.append((field_id, full, child.path))
    return own + nested


def _searchable() -> list[DataType]:
    """Concrete types whose objects have their own ``ID`` (projects, subjects, experiments, scans,
    reconstructions); nested objects such as demographics, shares and resources are not searched."""
    return [
        t
        for t in types.all_types()
        if not t.abstract and any(fl.path == "ID" for fl in types.fields_of(t.xsi_type))
    ]


def _element(name: str) -> DataType:
    try:
        t = types.get(name)
    except InvalidInput as exc:
        raise NotFound(f"Unknown search element: {name}") from exc
    if t not in _searchable():
        raise NotFound(f"Not a search element: {name}")
    return t


def _secured(t: DataType) -> bool:
    # XNAT secures a type by its owning project (``project`` + ``sharing/share/project``); a project
    # is secured by its own ID.
    shared = any(r.name == "sharing" for r in types.refs_of(t.xsi_type))
    if types.is_a(t.xsi_type, "xnat:imageScanData"):
        return False  # secured through their session, not on their own
    return shared or t.xsi_type == "xnat:projectData"


def _fields_below(xsi_type: str) -> list[Field]:
    """Fields of a (possibly abstract) child type and of its concrete subtypes, each path once."""
    seen: dict[str, Field] = {}
    for name in [xsi_type, *types.subtypes(xsi_type)]:
        for fl in types.fields_of(name):
            seen.setdefault(fl.path, fl)
    return list(seen.values())


def _field_id(path: str) -> str:
    return _NON_ID.sub("_", path).strip("_").upper()


def _words(text: str) -> list[str]:
    return _WORDS.findall(text)


def _header(path: str) -> str:
    words = [w for segment in path.split("/") for w in _words(segment)]
    return " ".join(w if w.isupper() else w.capitalize() for w in words)


def _singular(t: DataType) -> str:
    name = (t.element or t.xsi_type).split(":", 1)[-1]
    return " ".join(_words(name))


def _plural(singular: str) -> str:
    return singular + ("es" if singular.endswith("s") else "s")
