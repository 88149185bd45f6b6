"""Single-object documents: XNAT's JSON ``items`` document and its XML document.

Both are rendered from the same ``Item`` using the type registry, so a field added to the
registry appears in both without further code.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from xnatd.domain import types, xsd

XNAT_NS = xsd.namespace("xnat")
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PROV_NS = xsd.namespace("prov")
ET.register_namespace("xsi", XSI_NS)
for _prefix in dict.fromkeys(t.xsi_type.split(":", 1)[0] for t in types.all_types()):
    ET.register_namespace(_prefix, xsd.namespace(_prefix))
CUSTOM_NAME, CUSTOM_VALUE = types.CUSTOM_NAME.name, types.CUSTOM_VALUE.name


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
    """An item's own values and its children. Named values (custom variables, parameters) are stored
    among the values (under ``fields/field[name=X]``, ``parameters/addParam[name=X]``) and provenance
    as a list of steps; documents show them as XNAT does, as child items, each placed where the
    registry declares its child among the others."""
    structured = [k for k, v in item.fields.items() if types.is_keyed_key(k) or isinstance(v, list)]
    if not structured:
        return item.fields, item.children
    values = {k: v for k, v in item.fields.items() if k not in structured}
    children = list(item.children)
    for ref in types.keyed_refs(item.xsi_type):
        key, text = ref.key or CUSTOM_NAME, ref.value or CUSTOM_VALUE
        named = {n: v for n, v in types.keyed_values(ref, item.fields).items() if _present(v)}
        kids = [
            Item(
                ref.xsi_type,
                {key: name, text: value},
                element=ref.item or ref.name.rsplit("/", 1)[-1],
            )
            for name, value in named.items()
        ]
        _place(item.xsi_type, children, ref.field, kids)
    steps = item.fields.get(types.PROVENANCE)
    if isinstance(steps, list) and steps and types.has_provenance(item.xsi_type):
        process = Item("prov:process", {}, element=types.PROVENANCE)
        process.child(
            "processStep", [Item("prov:processStep", dict(step), element="processStep") for step in steps]
        )
        _place(item.xsi_type, children, types.PROVENANCE, [process])
    return values, children


def _place(xsi_type: str, children: list[tuple[str, list[Item]]], field: str, kids: list[Item]) -> None:
    """Insert a child list before the first child the registry declares after it."""
    if not kids:
        return
    order = [r.field for r in types.refs_of(xsi_type)]
    mine = order.index(field) if field in order else len(order)
    at = next(
        (i for i, (name, _) in enumerate(children) if name in order and order.index(name) > mine),
        len(children),
    )
    children.insert(at, (field, kids))


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


def _q(local: str, ns: str = XNAT_NS) -> str:
    return f"{{{ns}}}{local}"


def _ns_of(xsi_type: str) -> str:
    return xsd.namespace(xsi_type.split(":", 1)[0])


def _declared_in(xsi_type: str) -> dict[str, str]:
    """Field path or child list → namespace of the type that declares it. XNAT's schemas qualify
    every element by the schema declaring it, so a dax run (``proc:genProcData``) has
    ``<proc:procstatus>`` beside the ``<xnat:date>`` it inherits; readers look for them there."""
    out: dict[str, str] = {}
    for t in types.lineage(xsi_type):
        ns = _ns_of(t.xsi_type)
        out.update({fl.path: ns for fl in t.own_fields})
        out.update({r.field: ns for r in t.refs})
    return out


def _element_name(xsi_type: str) -> str:
    dt = types.get(xsi_type)
    name = dt.element or xsi_type
    return name.split(":", 1)[1]


def to_xml_element(item: Item, tag: str | None = None, tag_ns: str = XNAT_NS) -> ET.Element:
    """An item as an XML element; its children's elements are in the namespace of the type that
    declares them (``xnat:provenance`` holds ``prov:processStep``)."""
    root = ET.Element(_q(tag, tag_ns) if tag else _q(_element_name(item.xsi_type), _ns_of(item.xsi_type)))
    ns = _ns_of(item.xsi_type)
    registered = item.xsi_type in types.REGISTRY
    known = types.fields_of(item.xsi_type) if registered else []
    where = _declared_in(item.xsi_type) if registered else {}
    # A nested element names its type, except one with simple content (``<xnat:field name="X">v``):
    # XNAT declares those inline, so there is no type a reader could look up; nor do provenance steps.
    if tag is not None and not any(fl.text for fl in known) and ns != PROV_NS:
        root.set(f"{{{XSI_NS}}}type", item.xsi_type)
    values, children = _parts(item)
    for fl in known:
        value = values.get(fl.path)
        if not _present(value):
            continue
        _put(root, fl, types.text(value), where.get(fl.path, XNAT_NS if ns != PROV_NS else ns))
    for name, kids in children:
        parent = root
        parts = name.split("/")
        kid_ns = where.get(name, ns)
        for part in parts[:-1]:
            parent = _child(parent, part, kid_ns)
        for kid in kids:
            parent.append(to_xml_element(kid, tag=kid.element or parts[-1], tag_ns=kid_ns))
    return root


def _child(parent: ET.Element, local: str, ns: str = XNAT_NS) -> ET.Element:
    found = parent.find(_q(local, ns))
    if found is None:
        found = ET.SubElement(parent, _q(local, ns))
    return found


def _put(root: ET.Element, fl: types.Field, value: str, ns: str = XNAT_NS) -> None:
    if fl.text:
        root.text = value
        return
    parts = fl.path.split("/")
    if fl.attr:
        target = root
        for part in parts[:-1]:
            target = _child(target, part, ns)
        target.set(parts[-1], value)
        return
    target = root
    for part in parts:
        target = _child(target, part, ns)
    target.text = value


def to_xml(item: Item) -> bytes:
    root = to_xml_element(item)
    body: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return body
