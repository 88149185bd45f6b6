"""XNAT's search bundle (``<xdat:bundle>``), parsed into plain values; no I/O, no database.

``POST /data/search`` takes the XML both clients build: pyxnat's ``select(type, columns).where(...)``
and its objects' ``repr()``, xnatpy's ``Class.query().filter(...)``. A bundle names the root element
(one result row per object of that type), the columns (``search_field``: an element and a field ID,
or an XPath) and the criteria (``search_where``: AND/OR groups of ``criteria`` and nested
``child_set``). Old bundles write ``element.FIELD`` where new ones write ``element/FIELD``, and a
field ID may carry a value after ``=`` (``XNAT_SUBJECTDATA_FIELD_MAP=age``, a custom variable);
both spellings are accepted.

The body comes from the network, so it is parsed with defusedxml (no DTD, no entities, no external
references) and bounded in size, nesting and number of parts: a hostile or malformed bundle is an
``InvalidInput`` with a plain reason, never a crash or a long parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from xnatd.errors import InvalidInput, TooLarge

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 16  # nested child_set levels
MAX_PARTS = 1000  # columns plus criteria

AND, OR = "AND", "OR"
EQ, NE, LT, LE, GT, GE = "=", "!=", "<", "<=", ">", ">="
LIKE, NOT_LIKE, IS_NULL, IS_NOT_NULL, BETWEEN = "LIKE", "NOT LIKE", "IS NULL", "IS NOT NULL", "BETWEEN"
COMPARISONS = (EQ, NE, LT, LE, GT, GE, LIKE, NOT_LIKE, IS_NULL, IS_NOT_NULL, BETWEEN)
_ALIASES = {"<>": NE, "==": EQ, "=<": LE, "=>": GE, "ILIKE": LIKE}
_SPACES = re.compile(r"\s+")
_BETWEEN = re.compile(r"^(.*?)\s+AND\s+(.*)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class FieldRef:
    """An element and one of its fields: a field ID (``AGE``) or an XPath below it (``demographics/age``).

    ``value`` is what followed ``=`` in the field ID: the name of a custom variable for XNAT's
    ``*_FIELD_MAP`` fields.
    """

    element: str
    field: str
    value: str | None = None

    @property
    def name(self) -> str:
        return f"{self.element}/{self.field}" + (f"={self.value}" if self.value is not None else "")


@dataclass(frozen=True)
class Column:
    ref: FieldRef
    header: str = ""


@dataclass(frozen=True)
class Criterion:
    ref: FieldRef
    comparison: str
    value: str = ""

    def bounds(self) -> tuple[str, str]:
        """The two ends of a ``BETWEEN`` value, written ``low AND high`` as XNAT takes it."""
        found = _BETWEEN.match(self.value.strip())
        if found is None:
            raise InvalidInput(f"BETWEEN needs a value 'low AND high' for {self.ref.name}: {self.value!r}")
        return found.group(1).strip(), found.group(2).strip()


@dataclass(frozen=True)
class Group:
    method: str
    items: tuple[Criterion | Group, ...] = ()


@dataclass(frozen=True)
class Bundle:
    root: str
    columns: tuple[Column, ...]
    where: Group

    def criteria(self) -> list[Criterion]:
        """Every criterion, at any depth (to check the fields they name before searching)."""
        out: list[Criterion] = []
        stack: list[Criterion | Group] = [self.where]
        while stack:
            item = stack.pop()
            if isinstance(item, Group):
                stack.extend(item.items)
            else:
                out.append(item)
        return out


def parse_bundle(body: bytes | str) -> Bundle:
    """Parse a search bundle; raise ``InvalidInput`` (``TooLarge`` past ``MAX_BYTES``) with a reason."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_BYTES:
        raise TooLarge(f"The search document is larger than {MAX_BYTES} bytes")
    if not raw.strip():
        raise InvalidInput("The search needs an <xdat:bundle> XML document in the request body")
    root = _xml(raw)
    if _local(root.tag) not in ("bundle", "stored_search"):
        raise InvalidInput(f"The search document must be an <xdat:bundle>, not <{_local(root.tag)}>")
    name = _text(_child(root, "root_element_name"))
    if not name:
        raise InvalidInput("The search document needs a root_element_name")
    columns = tuple(_column(node) for node in _children(root, "search_field"))
    sequences = [_sequence(node) for node in _children(root, "search_field")]
    if all(s is not None for s in sequences):
        columns = tuple(c for _, c in sorted(zip(sequences, columns, strict=True), key=lambda p: p[0] or 0))
    budget = [MAX_PARTS - len(columns)]
    groups = tuple(_group(node, 1, budget) for node in _children(root, "search_where"))
    where = groups[0] if len(groups) == 1 else Group(AND, groups)
    if budget[0] < 0:
        raise InvalidInput(f"The search document has more than {MAX_PARTS} columns and criteria")
    return Bundle(name, columns, where)


def split_field(text: str) -> FieldRef:
    """``xnat:mrSessionData/AGE``, ``xnat:mrSessionData.AGE`` or ``...FIELD_MAP=age`` → a ``FieldRef``."""
    text = text.strip()
    head, sep, rest = text.partition("/")
    if not sep:
        prefix, colon, tail = text.partition(":")
        name, dot, rest = tail.partition(".")
        head, sep = prefix + colon + name, dot
    if not sep or not head or not rest.strip():
        raise InvalidInput(f"A search field must be written element/FIELD: {text!r}")
    return _ref(head, rest)


def normalize_comparison(text: str) -> str:
    """A comparison as XNAT writes it, case and spacing aside (xnatpy sends ``' LIKE '``)."""
    op = _SPACES.sub(" ", text.strip().upper())
    op = _ALIASES.get(op, op)
    if op not in COMPARISONS:
        raise InvalidInput(f"Unknown comparison {text.strip()!r} (one of {', '.join(COMPARISONS)})")
    return op


# ---------------------------------------------------------------------------------------------


def _xml(raw: bytes) -> Any:
    try:
        return SafeET.fromstring(raw, forbid_dtd=True)
    except DefusedXmlException:
        raise InvalidInput(
            "The search document may not contain a DTD, entities or external references"
        ) from None
    except SafeET.ParseError as exc:
        raise InvalidInput(f"The search document is not well-formed XML: {exc}") from None


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(node: Any, name: str) -> list[Any]:
    return [child for child in node if _local(child.tag) == name]


def _child(node: Any, name: str) -> Any | None:
    found = _children(node, name)
    return found[0] if found else None


def _text(node: Any | None) -> str:
    return (node.text or "").strip() if node is not None else ""


def _ref(element: str, field: str) -> FieldRef:
    field = field.strip()
    name, eq, value = field.partition("=")
    if eq and "[" not in name:  # ``fields/field[name=x]`` is an XPath predicate, not a value
        return FieldRef(element.strip(), name.strip(), value.strip())
    return FieldRef(element.strip(), field)


def _column(node: Any) -> Column:
    element = _text(_child(node, "element_name"))
    field = _text(_child(node, "field_ID"))
    if not element or not field:
        raise InvalidInput("Every search_field needs an element_name and a field_ID")
    ref = _ref(element, field)
    value = _text(_child(node, "value"))
    if value and ref.value is None:
        ref = FieldRef(ref.element, ref.field, value)
    return Column(ref, _text(_child(node, "header")))


def _sequence(node: Any) -> int | None:
    text = _text(_child(node, "sequence"))
    return int(text) if text.isdecimal() else None


def _group(node: Any, depth: int, budget: list[int]) -> Group:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"The search criteria are nested more than {MAX_DEPTH} levels deep")
    method = (node.get("method") or AND).strip().upper()
    if method not in (AND, OR):
        raise InvalidInput(f"A criteria set's method must be AND or OR, not {method!r}")
    items: list[Criterion | Group] = []
    for child in node:
        budget[0] -= 1
        if budget[0] < 0:
            raise InvalidInput(f"The search document has more than {MAX_PARTS} columns and criteria")
        kind = _local(child.tag)
        if kind == "criteria":
            items.append(_criterion(child))
        elif kind == "child_set":
            items.append(_group(child, depth + 1, budget))
    return Group(method, tuple(items))


def _criterion(node: Any) -> Criterion:
    field = _text(_child(node, "schema_field"))
    if not field:
        raise InvalidInput("Every search criterion needs a schema_field")
    op = normalize_comparison(_text(_child(node, "comparison_type")) or EQ)
    value_node = _child(node, "value")
    value = (value_node.text or "") if value_node is not None else ""
    criterion = Criterion(split_field(field), op, value.strip())
    if op == BETWEEN:
        criterion.bounds()
    return criterion
