"""The fields a search can show and test, named as XNAT's display fields are.

A bundle names a field by display-field ID (``SUBJECT_LABEL``: XNAT's extras in ``display_fields``
first, then the registry's IDs from ``search_elements``), by ``*_FIELD_MAP=name`` (a custom
variable, as xnatpy names them) or by XPath (``xnat:mrSessionData/ID``, as xnatpy's query objects
do; it takes the ID of the display field over that path, ``SESSION_ID``, as XNAT does).

A field's value comes from a registry ``path`` of the object, from a ``fact`` the search service
computes (an object's insert date, its project's owners), or from a custom variable. A column is
headed by its lower-case ID when it belongs to the root element, else by the element's SQL name and
the ID (``xnat_subjectdata_gender_text``), as in XNAT's ``SearchResource``.
"""

from __future__ import annotations

import re

from xnatd.domain import search_elements, types
from xnatd.domain.display_fields import (
    DEFAULTS,
    EXPERIMENT,
    PROJECT,
    RECON,
    SCAN,
    SUBJECT,
    Display,
    extra_fields,
    kind_of,
)
from xnatd.errors import InvalidInput, NotFound

__all__ = ["EXPERIMENT", "PROJECT", "RECON", "SCAN", "SUBJECT", "Display", "extra_fields", "kind_of"]

_NON_ID = re.compile(r"[^A-Za-z0-9]+")
_CUSTOM_SUFFIX = "_FIELD_MAP"


def element(name: str) -> types.DataType:
    """The data type an element name in a bundle names (``xnat:MRSession`` = ``xnat:mrSessionData``)."""
    try:
        return types.get(name)
    except InvalidInput:
        raise InvalidInput(f"Unknown search element: {name}") from None


def resolve(xsi_type: str, field: str, value: str | None = None) -> Display:
    """The field a bundle names on an element: a display-field ID, a custom variable, or an XPath.

    Raises ``InvalidInput`` for a field the type does not have, so a typo is an error rather than a
    column of blanks or a criterion that never matches.
    """
    text = field.strip()
    found = _by_xpath(xsi_type, text) if "/" in text or "[" in text else _by_id(xsi_type, text, value)
    if found is None:
        raise InvalidInput(f"Unknown search field {text!r} for {xsi_type}")
    return found


def default_columns(xsi_type: str) -> list[Display]:
    kind = kind_of(xsi_type)
    wanted = DEFAULTS.get(kind or "", ("ID",))
    out = []
    for field_id in wanted:
        found = _by_id(xsi_type, field_id, None)
        if found is not None:
            out.append(found)
    return out


def header(root: str, xsi_type: str, d: Display) -> str:
    """A column's header: ``subject_label`` on the root element, ``xnat_subjectdata_gender_text`` else."""
    name = d.id.lower() + (f"_{_NON_ID.sub('_', d.custom).lower()}" if d.custom else "")
    if element(root).xsi_type == element(xsi_type).xsi_type:
        return name
    return f"{sql_name(xsi_type)}_{name}"


def sql_name(xsi_type: str) -> str:
    return element(xsi_type).xsi_type.replace(":", "_").lower()


# ---------------------------------------------------------------------------------------------


def _by_id(xsi_type: str, field_id: str, value: str | None) -> Display | None:
    wanted = field_id.upper()
    if wanted.endswith(_CUSTOM_SUFFIX) and types.custom_fields_ref(xsi_type) is not None:
        if not value:
            raise InvalidInput(f"{field_id} needs the name of a custom variable: {field_id}=name")
        return Display(wanted, value, path=types.custom_key(value), custom=value)
    for d in extra_fields(xsi_type):
        if d.id == wanted:
            return d
    fl = next((f for fid, f in _catalogue(xsi_type) if fid == wanted), None)
    if fl is None:
        return None
    return Display(wanted, fl.name, fl.kind, path=fl.path)


def _by_xpath(xsi_type: str, text: str) -> Display | None:
    head, sep, rest = text.partition("/")
    if sep and ":" in head:
        if not types.is_a(xsi_type, element(head).xsi_type):
            return None
        text = rest
    custom = types.custom_field_key(xsi_type, text)
    if custom is not None:
        label = next(iter(types.custom_values({custom: None})), text)
        return Display(sql_name(xsi_type).upper() + _CUSTOM_SUFFIX, label, path=custom, custom=label)
    fl = _registry_field(xsi_type, text)
    if fl is None:
        return None
    for d in extra_fields(xsi_type):
        if d.path == fl.path and d.derive is None:
            return d
    return Display(_NON_ID.sub("_", fl.path).strip("_").upper(), fl.name, fl.kind, path=fl.path)


def _registry_field(xsi_type: str, path: str) -> types.Field | None:
    fl = types.resolve_field(xsi_type, path)
    if fl is not None:
        return fl
    return next((f for _, f in _catalogue(xsi_type) if f.path.lower() == path.lower()), None)


def _catalogue(xsi_type: str) -> list[tuple[str, types.Field]]:
    """The registry's search fields of a type; none for abstract types (criteria may still name
    their fields by XPath)."""
    try:
        return search_elements.search_fields(xsi_type)
    except NotFound:
        return []
