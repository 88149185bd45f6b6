"""A project's protocols (XNAT's ``studyProtocol``): the data types it uses, each with the sets of
custom variables defined for it.

XNAT gives every project a ``xnat:datatypeProtocol`` for subjects (named by the type's plural,
``Subjects``, with ID ``{project}_xnat_subjectData``) and one for each experiment type it holds, each
with a ``default`` definition set. Clients add their own sets by PUTting the project document back
with more ``definitions/definition`` elements marked ``project-specific`` (pyxnat's
``add_custom_variables``, read back by ``get_custom_variables``). Those sets are stored in the
project's fields under ``studyProtocol``, by data type; the rest is derived.
"""

from __future__ import annotations

from typing import Any

from defusedxml import ElementTree as SafeET
from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.domain import types
from xnatd.domain.items import XNAT_NS, Item

STORED = "studyProtocol"
_DEF_ATTRS = ("ID", "data-type", "description", "project-specific")
_FIELD_ATTRS = ("name", "type", "datatype", "required", "sequence", "xmlPath", "group")


def protocol_items(conn: Connection, project_id: str, values: dict[str, Any]) -> list[Item]:
    """The project's ``studyProtocol`` children: subjects first, then each experiment type it holds,
    then any other type a stored definition set names."""
    stored: dict[str, list[dict[str, Any]]] = values.get(STORED) or {}
    data_types = ["xnat:subjectData", *q.experiment_types_in(conn, project_id)]
    data_types += [t for t in stored if t not in data_types]
    return [_protocol(project_id, t, stored.get(t, [])) for t in data_types]


def _protocol(project_id: str, data_type: str, definitions: list[dict[str, Any]]) -> Item:
    known = types.REGISTRY.get(data_type)
    plural = (known.plural if known else None) or data_type
    sql_name = data_type.replace(":", "_")
    item = Item(
        "xnat:datatypeProtocol",
        {"ID": f"{project_id}_{sql_name}", "name": plural, "data-type": data_type},
        element="studyProtocol",
    )
    default = {"ID": "default", "data-type": data_type, "project-specific": False, "fields": []}
    item.child("definitions/definition", [_definition(d) for d in [default, *definitions]])
    return item


def _definition(d: dict[str, Any]) -> Item:
    item = Item(
        "xnat:fieldDefinitionGroup",
        {k: d.get(k) for k in _DEF_ATTRS},
        element="definition",
    )
    item.child(
        "fields/field",
        [Item("xnat:fieldDefinitionGroup_field", dict(fl), element="field") for fl in d.get("fields", [])],
    )
    return item


def parse(body: bytes) -> dict[str, list[dict[str, Any]]] | None:
    """The project-specific definition sets of a project document, by data type; None when the
    document has no ``studyProtocol`` (a document without them changes none)."""
    root = SafeET.fromstring(body)
    protocols = root.findall(f"{{{XNAT_NS}}}studyProtocol")
    if not protocols:
        return None
    out: dict[str, list[dict[str, Any]]] = {}
    for protocol in protocols:
        data_type = protocol.get("data-type") or ""
        for el in protocol.findall(f"{{{XNAT_NS}}}definitions/{{{XNAT_NS}}}definition"):
            if not _true(el.get("project-specific")):
                continue  # the derived ``default`` sets
            d: dict[str, Any] = {k: el.get(k) for k in _DEF_ATTRS if el.get(k) is not None}
            d["project-specific"] = True
            d["data-type"] = d.get("data-type") or data_type
            d["fields"] = [
                {k: fl.get(k) for k in _FIELD_ATTRS if fl.get(k) is not None}
                for fl in el.findall(f"{{{XNAT_NS}}}fields/{{{XNAT_NS}}}field")
                if fl.get("name")
            ]
            out.setdefault(str(d["data-type"]), []).append(d)
    return out


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")
