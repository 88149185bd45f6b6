"""A stored search's own attributes (XNAT's ``xdat:stored_search``): its descriptions, tag, whether it
is private, and the users it is shared with, read from the bundle a client saves; and the document
served back, the bundle under the search's ID.

The bundle itself (root element, columns, criteria) is ``domain.search``'s, which checks it first;
this module reads only what sits around it, with defusedxml as there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from xnatd.errors import InvalidInput

XDAT = "http://nrg.wustl.edu/security"
ET.register_namespace("xdat", XDAT)


def _xml(body: bytes) -> Any:
    try:
        return SafeET.fromstring(body, forbid_dtd=True)
    except (DefusedXmlException, SafeET.ParseError) as exc:
        raise InvalidInput(f"The search document is not acceptable XML: {exc}") from None


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(node: Any, name: str) -> list[Any]:
    return [child for child in node if _local(child.tag) == name]


@dataclass(frozen=True)
class StoredMeta:
    brief_description: str
    description: str
    tag: str | None
    secure: bool
    users: tuple[str, ...]


def meta(body: bytes) -> StoredMeta:
    """The stored-search attributes of a bundle (already checked by ``search.parse_bundle``)."""
    root = _xml(body)
    users = tuple(
        (login.text or "").strip()
        for allowed in _children(root, "allowed_user")
        for login in _children(allowed, "login")
        if (login.text or "").strip()
    )
    tag = (root.get("tag") or "").strip() or None
    secure = (root.get("secure") or "false").strip().lower() in ("1", "true")
    return StoredMeta(root.get("brief-description") or "", root.get("description") or "", tag, secure, users)


def document(body: bytes, search_id: str, users: Sequence[str]) -> bytes:
    """The stored document: the bundle as ``<xdat:stored_search ID="...">`` with its current users."""
    root = _xml(body)
    stored = ET.Element(f"{{{XDAT}}}stored_search", dict(root.attrib))
    stored.set("ID", search_id)
    for child in root:
        if _local(child.tag) != "allowed_user":
            stored.append(child)
    for name in users:
        allowed = ET.SubElement(stored, f"{{{XDAT}}}allowed_user")
        ET.SubElement(allowed, f"{{{XDAT}}}login").text = name
    out: bytes = ET.tostring(stored, encoding="UTF-8", xml_declaration=True)
    return out


def listing_bundle(root_element: str) -> bytes:
    """XNAT's ``@{element}`` search: every object of the element with its listing columns."""
    stored = ET.Element(f"{{{XDAT}}}stored_search", {"ID": f"@{root_element}", "secure": "false"})
    ET.SubElement(stored, f"{{{XDAT}}}root_element_name").text = root_element
    out: bytes = ET.tostring(stored, encoding="UTF-8", xml_declaration=True)
    return out
