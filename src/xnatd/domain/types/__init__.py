"""The data-type registry: every XNAT data type xnatd knows, and its fields.

This is the single source for validation of typed fields, for the XML and JSON item documents, for
listing columns addressed by XPath or shortcut, and for the XSD schemas that xnatpy downloads to
generate its classes. A field is written here once and nowhere else.

The entries are XNAT's own schema (``xnat.xsd``), by area: ``core`` (projects, subjects,
experiments and what they nest), ``imaging`` (sessions, scans, reconstructions, assessors), and the
``proc`` schema of the dax pipeline framework (``proc``); the building blocks are in ``model``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Iterator, Mapping

from xnatd.domain.types import core, imaging, proc
from xnatd.domain.types.core import CUSTOM_FIELDS, CUSTOM_NAME, CUSTOM_VALUE, GENDERS, HANDEDNESS
from xnatd.domain.types.model import (
    BOOLEAN,
    DATE,
    DATETIME,
    DOUBLE,
    FLOAT,
    INTEGER,
    LONG,
    STRING,
    TIME,
    DataType,
    Field,
    Ref,
    f,
)
from xnatd.errors import InvalidInput

__all__ = [
    "BOOLEAN",
    "CUSTOM_FIELDS",
    "CUSTOM_NAME",
    "CUSTOM_VALUE",
    "DATE",
    "DATETIME",
    "DOUBLE",
    "FLOAT",
    "GENDERS",
    "HANDEDNESS",
    "INTEGER",
    "LONG",
    "STRING",
    "TIME",
    "DataType",
    "Field",
    "Ref",
    "f",
]

_TYPES: list[DataType] = [*core.TYPES, *imaging.TYPES, *proc.TYPES]
# One item type per owner of custom variables (``xnat:subjectData_field``), from the refs above.
_TYPES += [
    DataType(
        r.xsi_type,
        None,
        None,
        (CUSTOM_NAME, CUSTOM_VALUE),
        display_id=CUSTOM_NAME.name,
        doc="One custom variable.",
    )
    for t in list(_TYPES)
    for r in t.refs
    if r.name == CUSTOM_FIELDS and r.key
]

REGISTRY: dict[str, DataType] = {t.xsi_type: t for t in _TYPES}
_BY_LOWER: dict[str, DataType] = {t.xsi_type.lower(): t for t in _TYPES}
# Element names are also accepted wherever a type name is (``xnat:MRSession`` = ``xnat:mrSessionData``).
for _t in _TYPES:
    if _t.element:
        _BY_LOWER.setdefault(_t.element.lower(), _t)


def get(xsi_type: str) -> DataType:
    """Look a type up by xsi:type or element name, case-insensitively."""
    found = _BY_LOWER.get(xsi_type.strip().lower())
    if found is None:
        raise InvalidInput(f"Unknown data type: {xsi_type}")
    return found


def lineage(xsi_type: str) -> list[DataType]:
    """The type and its bases, most basic first."""
    chain: list[DataType] = []
    t: DataType | None = get(xsi_type)
    while t is not None:
        chain.append(t)
        t = REGISTRY[t.base] if t.base else None
    return list(reversed(chain))


def is_a(xsi_type: str, base: str) -> bool:
    base_l = get(base).xsi_type
    return any(t.xsi_type == base_l for t in lineage(xsi_type))


def subtypes(base: str) -> list[str]:
    """Concrete types that are ``base`` or derive from it (for ``xsiType=`` filters on base types)."""
    return [t.xsi_type for t in _TYPES if not t.abstract and is_a(t.xsi_type, base)]


def fields_of(xsi_type: str) -> list[Field]:
    """Every field of a type: its own and its bases', then those of its inline objects (a project's
    ``PI/lastname``), which are stored flattened among its values."""
    own = [fl for t in lineage(xsi_type) for fl in t.own_fields]
    return own + [
        Field(
            f"{r.name}/{fl.path}", fl.kind, fl.attr, fl.shortcut or _inline_shortcut(r, fl), fl.enum, fl.doc
        )
        for r in refs_of(xsi_type)
        if r.inline
        for fl in fields_of(r.xsi_type)
    ]


def _inline_shortcut(ref: Ref, fl: Field) -> str | None:
    # XNAT's listings name the PI's fields ``pi_firstname``, ``pi_lastname``.
    return f"pi_{fl.name}" if ref.name == "PI" else None


def children_of(xsi_type: str) -> tuple[str, ...]:
    return tuple(c for t in lineage(xsi_type) for c in t.children)


def refs_of(xsi_type: str) -> tuple[Ref, ...]:
    """Child objects and listings of a type, inherited ones first."""
    return tuple(r for t in lineage(xsi_type) for r in t.refs)


def display_id_of(xsi_type: str) -> str | None:
    """The field naming an object of this type within its parent, inherited from the nearest base."""
    return next((t.display_id for t in reversed(lineage(xsi_type)) if t.display_id), None)


def concrete(base: str) -> Iterator[DataType]:
    return (REGISTRY[x] for x in subtypes(base))


def session_type_for_modality(modality: str) -> str:
    for t in concrete("xnat:imageSessionData"):
        if t.modality == modality.upper():
            return t.xsi_type
    return "xnat:otherDicomSessionData"


def scan_type_for_modality(modality: str) -> str:
    for t in concrete("xnat:imageScanData"):
        if t.modality == modality.upper():
            return t.xsi_type
    return "xnat:otherDicomScanData"


# ---------------------------------------------------------------------------------------------
# Field addressing: XPaths and shortcuts as clients send them.

_PREDICATE = re.compile(r"\[[^\]]*\]")
DEMOGRAPHICS = "demographics"


def normalize_path(key: str) -> str:
    """``xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender`` → ``demographics/gender``."""
    key = _PREDICATE.sub("", key.strip())
    head, sep, rest = key.partition("/")
    if sep and ":" in head:
        return rest
    return key


def resolve_field(xsi_type: str, key: str) -> Field | None:
    """Find the field a query key names: an XPath (with or without type prefix) or a shortcut."""
    path = normalize_path(key).lower()
    candidates = fields_of(xsi_type)
    if DEMOGRAPHICS in children_of(xsi_type):
        candidates = candidates + [
            Field(f"{DEMOGRAPHICS}/{fl.path}", fl.kind, fl.attr, fl.path, fl.enum)
            for fl in fields_of("xnat:demographicData")
        ]
    for fl in candidates:
        if fl.path.lower() == path:
            return fl
    if "/" in path:
        return None
    for fl in candidates:
        if (fl.shortcut or fl.name).lower() == path:
            return fl
    return None


# Named values (custom variables ``fields/field[name=X]``, parameters ``parameters/addParam[name=X]``)
# are addressed as ``[type/]{list}[name=X]/{value}`` (pyxnat, xnatpy, XNAT's docs) and stored under
# ``{list}[name=X]``: a key no registry path can take, as registry paths carry no predicates, so the
# names never clash with typed fields. xnatpy removes a variable by sending both
# ``.../field[name=X]/field=NULL`` and ``.../field[name=X]/X=NULL``, so ``/X`` names the same value.
_CUSTOM_KEY = f"{CUSTOM_FIELDS}/field[name="


def keyed_refs(xsi_type: str) -> tuple[Ref, ...]:
    """The lists of named values of a type (``Ref.key``), inherited ones first."""
    if xsi_type.strip().lower() not in _BY_LOWER:
        return ()
    return tuple(r for r in refs_of(xsi_type) if r.key)


def custom_fields_ref(xsi_type: str) -> Ref | None:
    """The ``fields/field`` reference of a type that carries custom variables, else None."""
    return next((r for r in keyed_refs(xsi_type) if r.name == CUSTOM_FIELDS), None)


def keyed_key(ref: Ref, name: str) -> str:
    """Where a named value is stored among an object's field values."""
    return f"{ref.field}[{ref.key}={name}]"


def custom_key(name: str) -> str:
    """Where a custom variable's value is stored among an object's field values."""
    return f"{_CUSTOM_KEY}{name}]"


def _keyed_xpath(ref: Ref) -> re.Pattern[str]:
    return re.compile(
        r"^(?:(?P<owner>[^/\s]+:[^/\s]+)/)?"
        + re.escape(ref.field)
        + r"\[\s*@?"
        + re.escape(ref.key or "")
        + r"\s*=\s*(?P<quote>['\"]?)(?P<name>[^\]]*?)(?P=quote)\s*\](?:/(?P<part>[^/]*))?$",
        re.IGNORECASE,
    )


def keyed_field(xsi_type: str, key: str) -> tuple[Ref, str] | None:
    """The list and stored key of the named value an XPath names, or None when ``key`` is no such
    XPath of this type (its type prefix, if any, must be the type or one of its bases)."""
    for ref in keyed_refs(xsi_type):
        found = _keyed_xpath(ref).match(key.strip())
        if found is None:
            continue
        owner = found.group("owner")
        if owner and (owner.lower() not in _BY_LOWER or not is_a(xsi_type, owner)):
            return None
        name, part = found.group("name").strip(), found.group("part")
        if part is not None and part.lower() != (ref.value or "").lower() and part != name:
            return None
        if not name:
            raise InvalidInput(f"A {ref.field} value needs a {ref.key}: {key}")
        return ref, keyed_key(ref, name)
    return None


def custom_field_key(xsi_type: str, key: str) -> str | None:
    """The stored key of the named value (custom variable or parameter) an XPath names, else None."""
    found = keyed_field(xsi_type, key)
    return found[1] if found else None


def keyed_values(ref: Ref, values: Mapping[str, object]) -> dict[str, object]:
    """The named values of one list among stored field values, by name, in stored order."""
    prefix = f"{ref.field}[{ref.key}="
    return {k[len(prefix) : -1]: v for k, v in values.items() if k.startswith(prefix) and k.endswith("]")}


def custom_values(values: Mapping[str, object]) -> dict[str, object]:
    """Custom variables among stored field values, by name, in stored order."""
    return {k[len(_CUSTOM_KEY) : -1]: v for k, v in values.items() if is_custom_key(k)}


def is_custom_key(key: str) -> bool:
    """Whether a stored field key holds a custom variable (see ``custom_key``)."""
    return key.startswith(_CUSTOM_KEY) and key.endswith("]")


def is_keyed_key(key: str) -> bool:
    """Whether a stored field key holds a named value of any list (see ``keyed_key``)."""
    return "[" in key and key.endswith("]")


# Provenance (``provenance/processStep``) is stored as a list of steps under ``provenance``, each a
# mapping of ``prov:processStep`` field paths; listings address a step's fields by XPath.
PROVENANCE = core.PROVENANCE.name
_PROVENANCE_XPATH = re.compile(r"^(?:[^/\s]+:[^/\s]+/)?provenance/processStep/(?P<path>.+)$", re.IGNORECASE)


def has_provenance(xsi_type: str) -> bool:
    return xsi_type.strip().lower() in _BY_LOWER and any(r.name == PROVENANCE for r in refs_of(xsi_type))


def provenance_field(xsi_type: str, key: str) -> str | None:
    """The processing-step field an XPath names (``xnat:mrAssessorData/provenance/processStep/program``
    → ``program``), or None."""
    found = _PROVENANCE_XPATH.match(key.strip())
    if found is None or not has_provenance(xsi_type):
        return None
    wanted = found.group("path").lower()
    return next((fl.path for fl in fields_of("prov:processStep") if fl.path.lower() == wanted), None)


def coerce(fl: Field, raw: str) -> object:
    """Validate a text value for a field and return its native value (None for XNAT's ``NULL``)."""
    value = raw.strip()
    if value == "" or value.upper() == "NULL":
        return None
    try:
        if fl.kind in (INTEGER, LONG):
            return int(float(value))
        if fl.kind in (FLOAT, DOUBLE):
            return float(value)
        if fl.kind == DATE:
            return _parse_date(value).isoformat()
        if fl.kind == TIME:
            return _parse_time(value)
        if fl.kind == BOOLEAN:
            return value.lower() in ("1", "true", "yes", "y")
    except ValueError as exc:
        raise InvalidInput(f"Invalid value for {fl.path}: {raw!r} is not a valid {fl.kind}") from exc
    if fl.enum and value not in fl.enum:
        lowered = {e.lower(): e for e in fl.enum}
        if value.lower() not in lowered:
            raise InvalidInput(f"Invalid value for {fl.path}: {raw!r} (one of {', '.join(fl.enum)})")
        value = lowered[value.lower()]
    return value


def _parse_date(value: str) -> _dt.date:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%Y/%m/%d", "%m/%d/%y"):
        try:
            return _dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(value)


def _parse_time(value: str) -> str:
    for fmt in ("%H:%M:%S", "%H:%M", "%H%M%S", "%H:%M:%S.%f", "%H%M%S.%f"):
        try:
            return _dt.datetime.strptime(value, fmt).time().strftime("%H:%M:%S")
        except ValueError:
            continue
    raise ValueError(value)


def text(value: object) -> str:
    """How a value appears in listings, CSV and XML: always a string (XNAT's tables are all text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def all_types() -> Iterable[DataType]:
    return tuple(_TYPES)
