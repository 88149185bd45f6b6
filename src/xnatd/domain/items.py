"""Single-object documents: XNAT's JSON ``items`` document and its XML document.

Both are rendered from the same ``Item`` using the type registry, so a field added to the
registry appears in both without further code.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from xnatd.domain import types

XNAT_NS = "http://nrg.wustl.edu/xnat"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
ET.register_namespace("xnat", XNAT_NS)
ET.register_namespace("xsi", XSI_NS)


@dataclass
class Item:
    xsi_type: str
    fields: dict[str, Any]
    children: list[tuple[str, list[Item]]] = field(default_factory=list)
    created: _dt.datetime | None = None
    element: str | None = None  # element name when nested (``scan``, ``resource``, ``share``)

    def child(self, name: str, items: list[Item]) -> None:
        if items:
            self.children.append((name, items))


def to_json(item: Item) -> dict[str, Any]:
    meta: dict[str, Any] = {"isHistory": False, "xsi:type": item.xsi_type}
    if item.created is not None:
        meta["start_date"] = item.created.strftime("%a %b %d %H:%M:%S UTC %Y")
        meta["create_event_id"] = 1
    data = {k: v for k, v in item.fields.items() if v is not None and v != ""}
    return {
        "children": [{"field": name, "items": [to_json(c) for c in kids]} for name, kids in item.children],
        "meta": meta,
        "data_fields": data,
    }


def items_document(item: Item) -> dict[str, Any]:
    return {"items": [to_json(item)]}


def _q(local: str) -> str:
    return f"{{{XNAT_NS}}}{local}"


def _element_name(xsi_type: str) -> str:
    dt = types.get(xsi_type)
    name = dt.element or xsi_type
    return name.split(":", 1)[1]


def to_xml_element(item: Item, tag: str | None = None) -> ET.Element:
    root = ET.Element(_q(tag or _element_name(item.xsi_type)))
    if tag is not None:
        root.set(f"{{{XSI_NS}}}type", item.xsi_type)
    known = types.fields_of(item.xsi_type) if item.xsi_type in types.REGISTRY else []
    for fl in known:
        value = item.fields.get(fl.path)
        if value is None or value == "":
            continue
        _put(root, fl, types.text(value))
    for name, kids in item.children:
        parent = root
        parts = name.split("/")
        for part in parts[:-1]:
            parent = _child(parent, part)
        for kid in kids:
            parent.append(to_xml_element(kid, tag=kid.element or parts[-1]))
    return root


def _child(parent: ET.Element, local: str) -> ET.Element:
    found = parent.find(_q(local))
    if found is None:
        found = ET.SubElement(parent, _q(local))
    return found


def _put(root: ET.Element, fl: types.Field, value: str) -> None:
    parts = fl.path.split("/")
    if fl.attr:
        target = root
        for part in parts[:-1]:
            target = _child(target, part)
        target.set(parts[-1], value)
        return
    target = root
    for part in parts:
        target = _child(target, part)
    target.text = value


def to_xml(item: Item) -> bytes:
    root = to_xml_element(item)
    body: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return body
