"""Which object and field each column of an archive listing names, as XNAT's REST listings read them.

XNAT's listings (``/data/projects``, ``.../subjects``, ``.../experiments``, ``.../assessors``,
``.../scans``) take plain names (XNAT's listing shortcuts, ``display_fields.LISTING_SHORTCUTS``) and
XPaths as columns and as filters (``QueryOrganizerResource``). An XPath may name a field of:

- the listed object (``xnat:mrSessionData/coil``; a subtype's field is empty for the other rows);
- an object above it (``xnat:subjectData/label`` on an experiment: its subject; on a scan,
  ``xnat:mrSessionData/operator``: its session);
- objects below it (``xnat:imageScanData/type`` or ``xnat:mrSessionData/scans/scan/ID`` on a session:
  its scans; ``xnat:mrSessionData/label`` on a subject: its MR sessions; ``.../fields/field/name``:
  its custom variables). XNAT joins them: one row per child, the object's own columns repeated, and one
  row with the child's columns empty for an object without such a child.

A column's type may also make the listing's own type more specific, as XNAT's
``getRootElementName`` does: without ``xsiType``, ``xnat:mrSessionData/...`` lists MR sessions only.
A column's header is the shortcut whose XPath it is, else the lowercased XPath (``formatHeaders``).

Nothing here reads the database: a ``Plan`` says, for one request, which objects along which ways
every column, filter and sort key needs; ``services/archive/listing_joins.py`` loads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xnatd.domain import types
from xnatd.domain.display_fields import (
    EXPERIMENT,
    LISTING_SHORTCUTS,
    META_KEYS,
    RECON,
    SCAN,
    SUBJECT,
    TYPE_PATH,
    kind_of,
)
from xnatd.errors import InvalidInput

# The ways from a listed object to other objects: up to one, or down to several.
SUBJECT_OF, SESSION_OF = "subject", "session"
EXPERIMENTS, SCANS, RECONSTRUCTIONS, ASSESSORS = "experiments", "scans", "reconstructions", "assessors"
FIELDS, SHARES, RESOURCES = "fields", "sharing", "resources"
UP = frozenset({SUBJECT_OF, SESSION_OF})
# A list of children an XPath walks into (``scans/scan/ID``), by the registry's name for it.
_REF_WAYS = {w: w for w in (SCANS, RECONSTRUCTIONS, ASSESSORS, EXPERIMENTS, FIELDS, SHARES, RESOURCES)}
RESOURCE = "xnat:abstractResource"

IMAGE_SESSION, IMAGE_ASSESSOR = "xnat:imageSessionData", "xnat:imageAssessorData"
_META_PATHS = {path.lower(): key for key, path in META_KEYS.items()} | {TYPE_PATH: "xsiType"}
_PREDICATE = re.compile(r"\[[^\]]*\]")
Ways = tuple[str, ...]


@dataclass(frozen=True)
class Column:
    """Where one named column's value comes from.

    ``ways`` leads from a row's object to the object holding the value; ``element`` is the type that
    object must be (else the cell is empty); ``key`` is a key of that object's listing row or a
    registry field path, ``custom`` a custom variable's stored key. A ``raw`` key is a name as the
    client gave it: a key of the row, else a registry field's name or shortcut.
    """

    text: str
    header: str
    ways: Ways = ()
    element: str | None = None
    key: str = ""
    custom: str | None = None
    provenance: str | None = None  # a processing step's field (``provenance/processStep/program``)
    raw: bool = False

    @property
    def down(self) -> bool:
        return any(w not in UP for w in self.ways)


def root_type(default: str, xsi_type: str | None, names: Iterable[str]) -> str:
    """The type a listing lists: ``xsiType`` if one is given, else its default made more specific by
    every column or filter whose type extends it (``getRootElementName``)."""
    if xsi_type and "," not in xsi_type:
        return types.get(xsi_type).xsi_type
    root = default
    for name in names:
        element = _element(LISTING_SHORTCUTS[default].get(name, name))
        if element is not None and element != root and types.is_a(element, root):
            root = element
    return root


def header(default: str, text: str) -> str:
    """XNAT's header of a column: a plain name as named; an XPath under the shortcut whose XPath it
    is (``xnat:imagesessiondata/label`` is ``session_label`` on experiments), else in lower case."""
    if "/" not in text:
        return text
    low = text.lower()
    return next((name for name, xpath in LISTING_SHORTCUTS[default].items() if xpath.lower() == low), low)


def resolve(default: str, root: str, text: str) -> Column | None:
    """The column ``text`` names on a listing of ``root`` objects; None for a type or field that does
    not exist (XNAT leaves such a column out of its query)."""
    name = header(default, text)
    plain = Column(text, name, key=text, raw=True)  # a key of the listing's rows, or a field's name
    xpath = LISTING_SHORTCUTS[default].get(text, text)
    head, sep, rest = xpath.partition("/")
    if not sep:
        return plain
    if ":" not in head:
        return _below(text, name, root, (), None, xpath)  # ``fields/field[name=x]/field``
    element = _element(xpath)
    way = None if element is None else _way(root, element)
    found = None if element is None or way is None else _below(text, name, element, way[0], way[1], rest)
    return plain if found is None and "/" not in text else found


def key_column(root: str) -> str:
    """The column XNAT always lists: the primary key of the listed type, headed after that type."""
    kind = kind_of(root)
    if kind == SCAN:
        return f"{root}/xnat_imagescandata_id"
    if kind == RECON:
        return f"{root}/xnat_reconstructedimagedata_id"
    return f"{root}/ID"


def always(default: str, root: str) -> tuple[str, ...]:
    """Columns of every row: the key column; for a base type of experiments (not one of XNAT's secure
    data types) also the type and project, which XNAT needs to check each row's access; the URI."""
    extra: tuple[str, ...] = ()
    if kind_of(root) == EXPERIMENT and (types.get(root).abstract or root == default):
        extra = (f"xnat:experimentData/{TYPE_PATH}", "xnat:experimentData/project")
    return (key_column(root), *extra, "URI")


def default_columns(default: str, root: str) -> list[str]:
    """XNAT's columns of a listing asked for none (each resource's ``getDefaultFields``)."""
    if default == "xnat:projectData":
        return ["ID", "secondary_ID", "name", "description", "pi_firstname", "pi_lastname"]
    if default == "xnat:subjectData":
        return ["ID", "project", "label", "insert_date", "insert_user"]
    if default == "xnat:imageScanData":
        return ["xnat_imagescandata_id", "ID", "type", "quality", "xsiType", "note", "series_description"]
    if default == "xnat:reconstructedImageData":
        return ["xnat_reconstructedimagedata_id", "ID", "type", "baseScanType"]
    session = ["session_ID", "session_label"] if types.is_a(root, IMAGE_ASSESSOR) else []
    if default == IMAGE_ASSESSOR:  # a session's assessors
        return ["ID", "project", "label", "date", "xsiType", "insert_date", *session]
    cols = ["ID", "project", "date", "xsiType", "label", "insert_date"]
    if default != "xnat:experimentData":  # a project's or subject's experiments
        return cols
    subject = ["subject_ID", "subject_label"] if types.is_a(root, "xnat:subjectAssessorData") else []
    return [*cols, *subject, *session]


@dataclass
class Plan:
    """The columns of one listing request, resolved once (not per row)."""

    default: str
    root: str
    columns: dict[str, Column | None] = field(default_factory=dict)

    def column(self, text: str) -> Column | None:
        if text not in self.columns:
            self.columns[text] = resolve(self.default, self.root, text)
        return self.columns[text]

    def header(self, text: str) -> str:
        found = self.column(text)
        return found.header if found is not None else header(self.default, text)

    def ways(self, texts: Iterable[str]) -> set[Ways]:
        """Every prefix of the ways the named columns take (the objects to load)."""
        out: set[Ways] = set()
        for text in texts:
            found = self.column(text)
            if found is not None:
                out.update(found.ways[: i + 1] for i in range(len(found.ways)))
        return out

    def only(self, ways: Ways, texts: Iterable[str]) -> str | None:
        """The most specific type the columns ending at ``ways`` name: the children joined there (a
        subject's MR sessions for ``xnat:mrSessionData/label``, their MR scans for
        ``xnat:mrScanData/ID``)."""
        best: str | None = None
        for text in texts:
            found = self.column(text)
            if found is None or found.ways != ways or found.element is None:
                continue
            if best is None or types.is_a(found.element, best):
                best = found.element
        return best


# ---------------------------------------------------------------------------------------------


def _element(xpath: str) -> str | None:
    head, sep, _ = xpath.partition("/")
    if not sep or ":" not in head:
        return None
    try:
        return types.get(_PREDICATE.sub("", head)).xsi_type
    except InvalidInput:
        return None


def _way(root: str, element: str) -> tuple[Ways, str | None] | None:
    """How a ``root`` object reaches objects of type ``element`` (and which type they must be)."""
    if types.is_a(root, element):
        return (), None
    if types.is_a(element, root):
        return (), element
    rk, ek = kind_of(root), kind_of(element)
    if rk == EXPERIMENT:
        if ek == SUBJECT:
            return (SUBJECT_OF,), None
        if ek == EXPERIMENT and types.is_a(element, IMAGE_ASSESSOR):
            return (ASSESSORS,), element
        if ek == EXPERIMENT and types.is_a(root, IMAGE_ASSESSOR):
            return (SESSION_OF,), element
        if ek in (SCAN, RECON):
            return (SCANS if ek == SCAN else RECONSTRUCTIONS,), element
    if rk == SUBJECT and ek in (EXPERIMENT, SCAN, RECON):
        if ek == EXPERIMENT:
            return (EXPERIMENTS,), element
        return (EXPERIMENTS, SCANS if ek == SCAN else RECONSTRUCTIONS), element
    if rk in (SCAN, RECON) and ek == EXPERIMENT:
        return (SESSION_OF,), element
    if rk in (SCAN, RECON) and ek == SUBJECT:
        return (SESSION_OF, SUBJECT_OF), None
    return None


def _below(text: str, name: str, element: str, ways: Ways, only: str | None, rest: str) -> Column | None:
    """The column for ``rest``, a path below an object of type ``element`` reached by ``ways``."""
    custom = types.custom_field_key(element, rest)
    if custom is not None:
        return Column(text, name, ways, only, custom=custom)
    process = types.provenance_field(element, rest)
    if process is not None:
        return Column(text, name, ways, only, provenance=process)
    step = _child_list(element, rest)
    if step is not None:
        way, child_type, tail = step
        return _below(text, name, child_type, (*ways, way), None, tail)
    low = rest.lower()
    if low in _META_PATHS:
        return Column(text, name, ways, only, key=_META_PATHS[low])
    found = types.resolve_field(element, rest)
    if found is not None:
        return Column(text, name, ways, only, key=found.path)
    if "/" not in rest:
        return Column(text, name, ways, only, key=rest, raw=True)  # ``xnat_imagescandata_id``
    return None


def _child_list(element: str, rest: str) -> tuple[str, str, str] | None:
    """(way, children's type, path below a child) when ``rest`` walks into a list of children that
    the registry declares on ``element`` (``scans/scan/ID``, ``fields/field/name``), or into its
    resources as XNAT's schema names them on scans (``file/label``) and assessors (``out/file/label``)."""
    parts = rest.split("/")
    steps = [_PREDICATE.sub("", p).lower() for p in parts[:-1]]
    if steps[:1] == ["file"] and kind_of(element) in (SCAN, RECON):
        return RESOURCES, RESOURCE, "/".join(parts[1:])
    if steps[:2] == ["out", "file"] and types.is_a(element, IMAGE_ASSESSOR):
        return RESOURCES, RESOURCE, "/".join(parts[2:])
    if len(steps) < 2:
        return None
    for ref in types.refs_of(element):
        if ref.item and [ref.name.lower(), ref.item.lower()] == steps[:2] and ref.name in _REF_WAYS:
            return _REF_WAYS[ref.name], ref.xsi_type, "/".join(parts[2:])
    return None


def make_getter(kind: str) -> Callable[[Mapping[Any, Any], str], str | None]:
    """A getter for listings of other things (users, resources, files): a plain key of the record's
    ``_base``, else a registry field or custom variable of its ``_type``."""

    def getter(rec: Mapping[Any, Any], col: str) -> str | None:
        base = rec["_base"]
        if col in base:
            return str(base[col])
        low = col.lower()
        for key, value in base.items():
            if key.lower() == low:
                return str(value)
        if rec["_type"] not in types.REGISTRY:
            return None
        custom = types.custom_field_key(rec["_type"], col)
        if custom is not None:
            return types.text(rec["_fields"].get(custom))
        step = types.provenance_field(rec["_type"], col)
        if step is not None:
            # The first processing step (XNAT lists one row per step; see api-compatibility.md).
            steps = rec["_fields"].get(types.PROVENANCE) or [{}]
            return types.text(steps[0].get(step))
        fl = types.resolve_field(rec["_type"], col)
        if fl is None:
            return None
        return types.text(rec["_fields"].get(fl.path))

    return getter
