"""Between database rows and the registry's typed fields.

A few fields live in real columns (labels, dates, scan types) so that listings can filter and sort
in SQL; the rest live in the JSON ``fields`` column. ``COLUMN_FIELDS`` is the only place that says
which is which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from defusedxml import ElementTree as SafeET

from xnatd.domain import types, xsd
from xnatd.domain.items import PROV_NS, XNAT_NS, XSI_NS
from xnatd.errors import InvalidInput

# registry field path -> column name, per kind of row
COLUMN_FIELDS: dict[str, dict[str, str]] = {
    "project": {"ID": "id", "secondary_ID": "secondary_id", "name": "name", "description": "description"},
    "subject": {"ID": "id", "label": "label", "project": "project_id"},
    "experiment": {
        "ID": "id",
        "label": "label",
        "project": "project_id",
        "date": "date",
        "time": "time",
        "subject_ID": "subject_id",
        "imageSession_ID": "session_id",
    },
    "scan": {"ID": "scan_id", "type": "type"},
}
# Field paths that clients may not set through query parameters (the server owns them).
READ_ONLY = frozenset({"ID", "project", "subject_ID", "imageSession_ID", "image_session_ID"})
DEMO = "demographics/"


# Keys older rows were written under, and the registry path that replaced them (the project's PI is
# XNAT's ``PI`` element).
_LEGACY_KEYS = {"pi/firstname": "PI/firstname", "pi/lastname": "PI/lastname"}


def field_values(kind: str, row: Mapping[Any, Any]) -> dict[str, Any]:
    """All typed field values of a row, keyed by registry path."""
    values: dict[str, Any] = {_LEGACY_KEYS.get(k, k): v for k, v in (row.get("fields") or {}).items()}
    for path, column in COLUMN_FIELDS.get(kind, {}).items():
        if column in row and row[column] is not None:
            values[path] = row[column]
    return values


def split_columns(kind: str, values: Mapping[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split field values into (column values, JSON fields)."""
    mapping = COLUMN_FIELDS.get(kind, {})
    cols = {mapping[p]: v for p, v in values.items() if p in mapping}
    rest = {p: v for p, v in values.items() if p not in mapping}
    return cols, rest


def parse_params(
    xsi_type: str, params: Iterable[tuple[str, str]], ignore: Iterable[str] = ()
) -> dict[str, Any]:
    """Typed field values from query parameters (XPaths or shortcuts); unknown plain keys are ignored.

    An XPath whose type prefix names a registered type must name a real field: a typo there is an
    error, not a silently dropped value.
    """
    skip = {k.lower() for k in ignore}
    out: dict[str, Any] = {}
    for key, raw in params:
        if not key or key.lower() in skip:
            continue
        keyed = types.keyed_field(xsi_type, key)
        if keyed is not None:
            out[keyed[1]] = types.coerce(types.CUSTOM_VALUE, raw)
            continue
        if "/" in key and _names_known_type(key) and not _prefix_fits(xsi_type, key):
            # ``xnat:ctScanData/parameters/kvp`` on an MR scan: a field of another type
            raise InvalidInput(f"Unknown field {key} for data type {xsi_type}")
        fl = types.resolve_field(xsi_type, key)
        if fl is None:
            if "/" in key and _names_known_type(key):
                raise InvalidInput(f"Unknown field {key} for data type {xsi_type}")
            continue
        if fl.path in READ_ONLY:
            continue
        out[fl.path] = types.coerce(fl, raw)
    return out


def _prefix_fits(xsi_type: str, key: str) -> bool:
    """Whether the type an XPath starts with is the object's type or one of its bases (or a type
    nested in it, ``xnat:demographicData`` in a subject's ``demographics``)."""
    head = key.split("/", 1)[0]
    if types.is_a(xsi_type, head):
        return True
    return types.DEMOGRAPHICS in types.children_of(xsi_type) and types.is_a(
        head, "xnat:abstractDemographicData"
    )


def _names_known_type(key: str) -> bool:
    head = key.split("/", 1)[0]
    if ":" not in head:
        return False
    try:
        types.get(head)
    except InvalidInput:
        return False
    return True


def parse_xml(body: bytes, expected_base: str) -> tuple[str, dict[str, Any]]:
    """An XNAT XML document → (xsi:type, field values). Only the registry's fields are read."""
    try:
        root = SafeET.fromstring(body)
    except Exception as exc:  # defusedxml raises several kinds; all mean "not acceptable XML"
        raise InvalidInput(f"Malformed XML document: {exc}") from exc
    xsi_type = root.get(f"{{{XSI_NS}}}type") or _type_of_element(root.tag)
    if not types.is_a(xsi_type, expected_base):
        raise InvalidInput(
            f"XML document of type {xsi_type} cannot be stored here (expected {expected_base})"
        )
    check_known_elements(root, xsi_type)
    values: dict[str, Any] = {}
    for fl in types.fields_of(xsi_type):
        raw = _xml_value(root, fl)
        if raw is not None and fl.path not in READ_ONLY:
            values[fl.path] = types.coerce(fl, raw)
    demo = root.find(f"{{{XNAT_NS}}}demographics")
    if demo is not None:
        for fl in types.fields_of("xnat:demographicData"):
            raw = _xml_value(demo, fl)
            if raw is not None:
                values[DEMO + fl.path] = types.coerce(fl, raw)
    values.update(_xml_custom_fields(root, xsi_type))
    steps = xml_provenance(root, xsi_type)
    if steps is not None:
        values[types.PROVENANCE] = steps
    return types.get(xsi_type).xsi_type, values


def _known_paths(xsi_type: str) -> tuple[set[str], set[str]]:
    """Element paths a document of this type may hold: (value elements, subtrees of child objects)."""
    elements: set[str] = set()
    for fl in types.fields_of(xsi_type):
        parts = fl.path.split("/")
        upto = len(parts) - 1 if fl.attr else len(parts)
        elements.update("/".join(parts[: i + 1]) for i in range(upto))
    subtrees = {r.name for r in types.refs_of(xsi_type)}
    return elements, subtrees


def check_known_elements(root: Any, xsi_type: str) -> None:
    """Refuse a document with elements the registry does not know, rather than silently drop them."""
    elements, subtrees = _known_paths(xsi_type)
    unknown: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for child in node:
            local = str(child.tag).rsplit("}", 1)[-1]
            path = f"{prefix}{local}"
            if path in subtrees:
                continue
            if path not in elements:
                unknown.append(path)
                continue
            walk(child, path + "/")

    walk(root, "")
    if unknown:
        names = ", ".join(sorted(set(unknown))[:10])
        raise InvalidInput(f"The {xsi_type} document has elements xnatd does not store: {names}")


def parse_xml_scans(body: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    """The scans nested in a session document: (xsi:type, scan ID, field values) each."""
    root = SafeET.fromstring(body)
    out = []
    for node in root.findall(f"{{{XNAT_NS}}}scans/{{{XNAT_NS}}}scan"):
        xsi_type = node.get(f"{{{XSI_NS}}}type") or "xnat:otherDicomScanData"
        if not types.is_a(xsi_type, "xnat:imageScanData"):
            raise InvalidInput(f"Scan of type {xsi_type} is not a kind of xnat:imageScanData")
        scan_id = node.get("ID")
        if not scan_id:
            raise InvalidInput("A scan in the document has no ID attribute")
        check_known_elements(node, xsi_type)
        values = {}
        for fl in types.fields_of(xsi_type):
            raw = _xml_value(node, fl)
            if raw is not None and fl.path not in READ_ONLY:
                values[fl.path] = types.coerce(fl, raw)
        values.update(_xml_custom_fields(node, xsi_type))
        out.append((types.get(xsi_type).xsi_type, scan_id, values))
    return out


def _xml_custom_fields(node: Any, xsi_type: str) -> dict[str, Any]:
    """Named values of a document element (custom variables ``<xnat:fields><xnat:field name="X">v``,
    parameters ``<xnat:parameters><xnat:addParam name="X">v``) under their stored keys, so that
    creating or updating an object from XML keeps them."""
    out: dict[str, Any] = {}
    for ref in types.keyed_refs(xsi_type):
        key = ref.key or ""
        path = "/".join(f"{{{XNAT_NS}}}{part}" for part in ref.field.split("/"))
        for el in node.findall(path):
            name = (el.get(key) or "").strip()
            if not name:
                raise InvalidInput(f"A {ref.field} element in the document has no {key} attribute")
            if el.text is not None:
                out[types.keyed_key(ref, name)] = types.coerce(types.CUSTOM_VALUE, str(el.text))
    return out


def xml_provenance(node: Any, xsi_type: str) -> list[dict[str, Any]] | None:
    """The processing steps of a document's ``<xnat:provenance>`` (BIRN's ``prov:processStep``
    elements), each a mapping of ``prov:processStep`` field paths; None when it has none."""
    if not types.has_provenance(xsi_type):
        return None
    prov = node.find(f"{{{XNAT_NS}}}{types.PROVENANCE}")
    if prov is None:
        return None
    steps = []
    for step in prov.findall(f"{{{PROV_NS}}}processStep"):
        values: dict[str, Any] = {}
        for fl in types.fields_of("prov:processStep"):
            raw = _xml_value(step, fl, PROV_NS)
            if raw is not None:
                values[fl.path] = types.coerce(fl, raw)
        steps.append(values)
    return steps


def xml_root_attr(body: bytes, name: str) -> str | None:
    try:
        root = SafeET.fromstring(body)
    except Exception as exc:
        raise InvalidInput(f"Malformed XML document: {exc}") from exc
    value = root.get(name)
    return None if value is None else str(value)


def _type_of_element(tag: str) -> str:
    """The type a root element without ``xsi:type`` names, by its namespace and name:
    ``{http://nrg.wustl.edu/proc}Processing`` is ``proc:Processing`` (the registry's element names)."""
    uri, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    prefix = next((p for p in xsd.schema_names() if xsd.namespace(p) == uri), "xnat")
    return f"{prefix}:{local}"


def _xml_value(root: Any, fl: types.Field, ns: str = "*") -> str | None:
    # A field's element is in the namespace of the schema declaring it (``proc:procstatus`` beside
    # ``xnat:date``; see ``domain.items``); documents are read by local names, as the element check
    # above reads them.
    parts = fl.path.split("/")
    node = root
    steps = parts[:-1] if fl.attr else parts
    for part in steps:
        node = node.find(f"{{{ns}}}{part}")
        if node is None:
            return None
    if fl.attr:
        value = node.get(parts[-1])
        return None if value is None else str(value)
    return None if node.text is None else str(node.text)


def demographics(values: Mapping[Any, Any]) -> dict[str, Any]:
    return {k[len(DEMO) :]: v for k, v in values.items() if k.startswith(DEMO) and v is not None}


def without_demographics(values: Mapping[Any, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not k.startswith(DEMO)}


def check_demographics(values: dict[str, Any]) -> None:
    """XNAT's schema allows only one of dob, yob and age; the newest one given wins."""
    given = [k for k in ("dob", "yob", "age") if values.get(DEMO + k) is not None]
    if len(given) > 1:
        raise InvalidInput("Only one of dob, yob and age may be set for a subject")
