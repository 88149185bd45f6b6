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


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _parts(item: Item) -> tuple[dict[str, Any], list[tuple[str, list[Item]]]]:
    """An item's own values and its children. Custom variables are stored among the values (under
    ``fields/field[name=X]``); documents show them as XNAT does, as items of the ``fields/field`` child,
    placed where the registry declares that child among the others."""
    if not any(types.is_custom_key(k) for k in item.fields):
        return item.fields, item.children
    values = {k: v for k, v in item.fields.items() if not types.is_custom_key(k)}
    ref = types.custom_fields_ref(item.xsi_type)
    custom = {n: v for n, v in types.custom_values(item.fields).items() if _present(v)}
    if ref is None or not custom:
        return values, item.children
    kids = [
        Item(ref.xsi_type, {types.CUSTOM_NAME.path: name, types.CUSTOM_VALUE.path: value}, element=ref.item)
        for name, value in custom.items()
    ]
    order = [r.field for r in types.refs_of(item.xsi_type)]
    mine = order.index(ref.field)
    children = list(item.children)
    at = next(
        (i for i, (name, _) in enumerate(children) if name in order and order.index(name) > mine),
        len(children),
    )
    children.insert(at, (ref.field, kids))
    return values, children


def to_json(item: Item) -> dict[str, Any]:
    meta: dict[str, Any] = {"isHistory": False, "xsi:type": item.xsi_type}
    if item.created is not None:
        meta["start_date"] = item.created.strftime("%a %b %d %H:%M:%S UTC %Y")
        meta["create_event_id"] = 1
    values, children = _parts(item)
    data = {k: v for k, v in values.items() if _present(v)}
    return {
        "children": [{"field": name, "items": [to_json(c) for c in kids]} for name, kids in children],
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
    known = types.fields_of(item.xsi_type) if item.xsi_type in types.REGISTRY else []
    # A nested element names its type, except one with simple content (``<xnat:field name="X">v``):
    # XNAT declares those inline, so there is no type a reader could look up.
    if tag is not None and not any(fl.text for fl in known):
        root.set(f"{{{XSI_NS}}}type", item.xsi_type)
    values, children = _parts(item)
    for fl in known:
        value = values.get(fl.path)
        if not _present(value):
            continue
        _put(root, fl, types.text(value))
    for name, kids in children:
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
    if fl.text:
        root.text = value
        return
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
