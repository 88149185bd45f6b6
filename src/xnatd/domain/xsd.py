"""XSD schemas rendered from the data-type registry.

xnatpy does not ship a data model: at connect time it downloads the schemas listed by
``GET /xapi/schemas`` and generates one Python class per ``complexType``, with one property per element
or attribute. So what these documents declare is exactly what a client can read and write:

* a ``complexType`` per registry type, extending its base type (``xs:complexContent``/``xs:extension``);
* a field path with ``/`` becomes nested anonymous elements (``parameters/tr``); a field that also has
  attribute children (``scanner`` + ``scanner/manufacturer``) becomes a text element with attributes
  (``xs:simpleContent``), as in XNAT's own schema, so clients build the same XPaths as against XNAT;
* field kinds map to XSD built-ins, which xnatpy uses to convert values (``age`` → ``int``); enums become
  ``xs:enumeration`` facets, which xnatpy checks before sending;
* a registry ``Ref`` to one object becomes an element typed with the referenced (abstract) type, which
  xnatpy turns into a sub-object reached through ``name[@xsi:type=…]`` (subject ``demographics``);
  a ``Ref`` list becomes a wrapper element around an unbounded item element, which xnatpy turns into a
  listing (``scans``/``scan`` → ``experiment.scans``);
* a type's ``display_id`` becomes XDAT's ``displayIdentifiers``; xnatpy builds creation URLs from it;
* a type with a ``text`` field (its value is the element's own text, custom variables'
  ``<xnat:field name="X">value</xnat:field>``) has simple content with attributes. A list of such items
  is declared inline, as XNAT does: xnatpy recognises custom variables (``obj.fields``) only in an
  anonymous simple-content ``fields/field`` element whose ``displayIdentifiers`` names the key attribute.

Nothing here lists fields by hand: every declaration is derived from ``xnatd.domain.types``. The one
fixed piece is the small ``xdat`` schema, which holds XDAT's simple types rather than data types.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

from xnatd.domain import types
from xnatd.domain.types import (
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
)
from xnatd.errors import NotFound

XS = "http://www.w3.org/2001/XMLSchema"
NAMESPACES: dict[str, str] = {
    "xnat": "http://nrg.wustl.edu/xnat",
    "xdat": "http://nrg.wustl.edu/xdat",
    "cat": "http://nrg.wustl.edu/catalog",
    "prov": "http://www.nbirn.net/prov",
}
XDAT = "xdat"

XS_TYPES: dict[str, str] = {
    STRING: "xs:string",
    INTEGER: "xs:integer",
    FLOAT: "xs:float",
    DATE: "xs:date",
    TIME: "xs:time",
    BOOLEAN: "xs:boolean",
    DATETIME: "xs:dateTime",
    DOUBLE: "xs:double",
    LONG: "xs:long",
}

# XDAT's simple types that XNAT-style schemas (and so clients' parsers) may refer to. xnatpy raises
# ``KeyError: 'xdat:LONGVARCHAR'`` when a type it resolves is missing, so the xdat schema defines them.
_XDAT_SIMPLE_TYPES: tuple[tuple[str, str, str], ...] = (
    ("LONGVARCHAR", "xs:string", "Unbounded text, stored as a long text column."),
)


def schema_names() -> list[str]:
    """Names served by ``GET /xapi/schemas``: one per registry namespace prefix, then ``xdat``.

    xnatpy downloads each of them from ``/xapi/schemas/{name}``; serving ``xnat`` alone is not enough.
    """
    names = [p for p in dict.fromkeys(_prefix(t.xsi_type) for t in types.all_types()) if p != XDAT]
    return [*names, XDAT]


def render_schema(name: str) -> str:
    """The XSD text for ``name`` (one of ``schema_names()``); ``NotFound`` for any other name."""
    if name not in schema_names():
        raise NotFound(f"Unknown schema: {name}")
    return _rendered(name)


@functools.cache
def _rendered(name: str) -> str:
    # The registry is fixed at import time, and every client connect downloads every schema.
    if name == XDAT:
        return _render_xdat()
    return _render_types(name, [t for t in types.all_types() if _prefix(t.xsi_type) == name])


def namespace(prefix: str) -> str:
    """The namespace URI of a schema prefix (XNAT's own for the known ones)."""
    return NAMESPACES.get(prefix, f"http://nrg.wustl.edu/{prefix}")


# ---------------------------------------------------------------------------------------------
# A minimal XML writer. ElementTree would drop the ``xmlns:xnat`` declaration (the prefix is only
# used inside attribute values), and xnatpy reads the prefixes from the literal ``<xs:schema …>``
# start tag with a regular expression, so the text is written directly.


@dataclass
class _El:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[_El] = field(default_factory=list)
    text: str | None = None

    def add(self, tag: str, **attrs: str) -> _El:
        child = _El(tag, dict(attrs))
        self.children.append(child)
        return child


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _write(el: _El, out: list[str], depth: int) -> None:
    pad = "\t" * depth
    attrs = "".join(f' {k}="{_escape(v)}"' for k, v in el.attrs.items())
    if el.text is not None:
        out.append(f"{pad}<{el.tag}{attrs}>{_escape(el.text)}</{el.tag}>")
    elif el.children:
        out.append(f"{pad}<{el.tag}{attrs}>")
        for child in el.children:
            _write(child, out, depth + 1)
        out.append(f"{pad}</{el.tag}>")
    else:
        out.append(f"{pad}<{el.tag}{attrs}/>")


def _document(target: str, body: Iterable[_El]) -> str:
    # Namespace declarations must sit in the ``<xs:schema`` start tag, double-quoted (xnatpy's regex).
    prefixes = dict.fromkeys([*NAMESPACES, *schema_names()])
    decls = "".join(f' xmlns:{prefix}="{namespace(prefix)}"' for prefix in prefixes)
    head = (
        f'<xs:schema targetNamespace="{namespace(target)}"{decls} xmlns:xs="{XS}"'
        ' elementFormDefault="qualified" attributeFormDefault="unqualified">'
    )
    out = ['<?xml version="1.0" encoding="UTF-8"?>', head]
    for el in body:
        _write(el, out, 1)
    out.append("</xs:schema>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Registry → XSD


def _prefix(qname: str) -> str:
    return qname.split(":", 1)[0]


def _local(qname: str) -> str:
    return qname.split(":", 1)[1]


def _doc_text(text: str) -> str:
    # xnatpy pastes documentation into generated docstrings: keep it to one plain line.
    return " ".join(text.replace("\\", "/").replace('"', "'").split())


def _annotate(el: _El, doc: str, appinfo: dict[str, str] | None = None) -> None:
    if not doc and not appinfo:
        return
    annotation = el.add("xs:annotation")
    if appinfo:
        annotation.add("xs:appinfo").add("xdat:element", **appinfo)
    if doc:
        annotation.add("xs:documentation").text = _doc_text(doc)


@dataclass
class _Node:
    """One element of a type's content: the field stored at its path, attributes, nested elements."""

    path: str
    value: Field | None = None
    attrs: list[Field] = field(default_factory=list)
    elements: dict[str, _Node] = field(default_factory=dict)
    refs: list[Ref] = field(default_factory=list)

    def child(self, name: str) -> _Node:
        node = self.elements.get(name)
        if node is None:
            node = self.elements[name] = _Node(f"{self.path}/{name}".lstrip("/"))
        return node

    def names(self) -> list[str]:
        return [*self.elements, *(a.name for a in self.attrs), *(r.name for r in self.refs)]


def _content_tree(t: DataType) -> _Node:
    """Arrange a type's own fields and refs by path, so each path segment becomes one XML element."""
    root = _Node("")
    for fl in t.own_fields:
        if not fl.schema:
            continue
        *parents, last = fl.path.split("/")
        node = root
        for name in parents:
            node = node.child(name)
        if fl.attr:
            node.attrs.append(fl)
        else:
            node = node.child(last)
            if node.value is not None:
                raise ValueError(f"{t.xsi_type}: field {fl.path} is declared twice")
            node.value = fl
    for ref in t.refs:
        # A ref may sit inside a field's element (``parameters/addParam`` beside ``parameters/tr``).
        *parents, last = ref.name.split("/")
        node = root
        for name in parents:
            node = node.child(name)
        node.refs.append(dataclasses.replace(ref, name=last))
    _check(t, root)
    return root


def _check(t: DataType, node: _Node) -> None:
    names = node.names()
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{t.xsi_type}: {node.path or 'root'} declares {', '.join(duplicates)} twice")
    if node.value is not None and node.elements:
        # XML would need mixed content, which XNAT never uses and clients cannot map to properties.
        raise ValueError(f"{t.xsi_type}: field {node.path} has a value and child elements")
    for child in node.elements.values():
        _check(t, child)


def _simple_type(parent: _El, fl: Field) -> None:
    restriction = parent.add("xs:simpleType").add("xs:restriction", base=XS_TYPES[fl.kind])
    for value in fl.enum:
        restriction.add("xs:enumeration", value=value)


def _typed(el: _El, fl: Field) -> None:
    """Give an element or attribute the field's type, inline when it has enumerated values."""
    _annotate(el, fl.doc)
    if fl.enum:
        _simple_type(el, fl)
    else:
        el.attrs["type"] = XS_TYPES[fl.kind]


def _attribute(parent: _El, fl: Field) -> None:
    _typed(parent.add("xs:attribute", name=fl.name), fl)


def _element(parent: _El, name: str, node: _Node) -> None:
    el = parent.add("xs:element", name=name, minOccurs="0")
    if node.value is not None and not node.attrs:
        _typed(el, node.value)
        return
    if node.value is not None:
        # A text value with attributes, e.g. ``scanner`` with ``manufacturer`` and ``model``.
        _annotate(el, node.value.doc)
        ext = el.add("xs:complexType").add("xs:simpleContent").add("xs:extension")
        ext.attrs["base"] = XS_TYPES[node.value.kind]
        for fl in node.attrs:
            _attribute(ext, fl)
        return
    _content(el.add("xs:complexType"), node)


def _simple_content(parent: _El, t: DataType) -> None:
    """Content of a type whose value is its element's own text: the text field's type, extended with
    the type's attributes."""
    text = [fl for fl in t.own_fields if fl.text]
    rest = [fl for fl in t.own_fields if not fl.text]
    if len(text) != 1 or t.base is not None or t.refs or any(not fl.attr for fl in rest):
        raise ValueError(f"{t.xsi_type}: a text field allows only attributes beside it, and no base or refs")
    ext = parent.add("xs:simpleContent").add("xs:extension", base=XS_TYPES[text[0].kind])
    for fl in rest:
        _attribute(ext, fl)


def _is_simple(t: DataType) -> bool:
    return any(fl.text for fl in t.own_fields)


def _ref(parent: _El, ref: Ref) -> None:
    if ref.repeated:
        # The element itself repeats (``studyProtocol``, ``parameters/addParam``), typed.
        el = parent.add("xs:element", name=ref.name, type=ref.xsi_type, minOccurs="0", maxOccurs="unbounded")
        _annotate(el, ref.doc)
        return
    if ref.item is not None and _is_simple(item := types.get(ref.xsi_type)):
        # Simple items (custom variables) inline, as in XNAT's schema; see the module docstring.
        wrapper = parent.add("xs:element", name=ref.name, minOccurs="0")
        _annotate(wrapper, ref.doc)
        sequence = wrapper.add("xs:complexType").add("xs:sequence", minOccurs="0")
        el = sequence.add("xs:element", name=ref.item, minOccurs="0", maxOccurs="unbounded")
        if item.display_id:
            _annotate(el, "", {"displayIdentifiers": item.display_id})
        _simple_content(el.add("xs:complexType"), item)
        return
    if ref.item is None:
        # One object: xnatpy makes it a sub-object addressed as ``name[@xsi:type=<actual type>]``.
        el = parent.add("xs:element", name=ref.name, type=ref.xsi_type, minOccurs="0")
        _annotate(el, ref.doc)
        return
    # A list: xnatpy folds a wrapper holding one unbounded element into a listing named after the
    # wrapper (``scans``), whose items are objects of the item type's subtypes.
    wrapper = parent.add("xs:element", name=ref.name, minOccurs="0")
    _annotate(wrapper, ref.doc)
    sequence = wrapper.add("xs:complexType").add("xs:sequence", minOccurs="0")
    if ref.name == types.CUSTOM_FIELDS:
        # xnatpy takes any ``fields`` element for custom variables and needs its item declared
        # inline (XNAT declares custom-variable definitions' ``fields/field`` so).
        el = sequence.add("xs:element", name=ref.item, minOccurs="0", maxOccurs="unbounded")
        _content(el.add("xs:complexType"), _content_tree(types.get(ref.xsi_type)))
        return
    sequence.add("xs:element", name=ref.item, type=ref.xsi_type, minOccurs="0", maxOccurs="unbounded")


def _content(parent: _El, node: _Node) -> None:
    """Child elements (fields first, then refs) in a sequence, then attributes, as XSD orders them."""
    if node.elements or node.refs:
        sequence = parent.add("xs:sequence", minOccurs="0")
        for name, child in node.elements.items():
            _element(sequence, name, child)
        for ref in node.refs:
            _ref(sequence, ref)
    for fl in node.attrs:
        _attribute(parent, fl)


def _complex_type(t: DataType) -> _El:
    el = _El("xs:complexType", {"name": _local(t.xsi_type)})
    appinfo: dict[str, str] = {}
    if t.abstract:
        appinfo["abstract"] = "true"
    if t.display_id:
        appinfo["displayIdentifiers"] = t.display_id
    _annotate(el, t.doc, appinfo)
    if _is_simple(t):
        _simple_content(el, t)
        return el
    tree = _content_tree(t)
    if t.base is None:
        _content(el, tree)
    else:
        types.get(t.base)  # the base must be a registry type (raises InvalidInput otherwise)
        _content(el.add("xs:complexContent").add("xs:extension", base=t.base), tree)
    return el


def _ordered(selected: list[DataType]) -> list[DataType]:
    """Bases before the types that extend them (xnatpy copes with any order; people and tools don't)."""
    done: set[str] = set()
    result: list[DataType] = []

    def visit(t: DataType) -> None:
        if t.xsi_type in done:
            return
        done.add(t.xsi_type)
        if t.base is not None and _prefix(t.base) == _prefix(t.xsi_type):
            visit(types.get(t.base))
        result.append(t)

    for t in selected:
        visit(t)
    return result


def _render_types(name: str, selected: list[DataType]) -> str:
    body: list[_El] = []
    for t in selected:
        if t.element is not None and _prefix(t.element) == name:
            body.append(_El("xs:element", {"name": _local(t.element), "type": t.xsi_type}))
    body.extend(_complex_type(t) for t in _ordered(selected))
    return _document(name, body)


def _render_xdat() -> str:
    body: list[_El] = []
    for type_name, base, doc in _XDAT_SIMPLE_TYPES:
        simple = _El("xs:simpleType", {"name": type_name})
        _annotate(simple, doc)
        simple.add("xs:restriction", base=base)
        body.append(simple)
    return _document(XDAT, body)
