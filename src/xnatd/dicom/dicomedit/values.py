"""DicomEdit's values are text: an attribute reads as its DICOM string form (values of a
multi-valued attribute joined by backslashes) and an assignment writes text converted to the
attribute's VR. The change list shows each attribute before and after in that same form."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue

# Values a script computes: text, numbers, booleans (isPresent, ismatch), or nothing.
Value = str | int | float | bool | None

_BINARY_INT = {"US", "SS", "UL", "SL", "UV", "SV", "AT"}
_BINARY_FLOAT = {"FL", "FD"}
_BYTES = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
_SINGLE_TEXT = {"LT", "ST", "UT", "UR"}


@dataclass(frozen=True)
class Change:
    """One attribute a script changed: ``before`` is None when it was created, ``after`` None when
    it was deleted."""

    path: str
    tag: str
    keyword: str
    before: str | None
    after: str | None


def as_text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def element_text(element: DataElement) -> str:
    """An attribute's value as DicomEdit reads it."""
    value = element.value
    if element.VR == "SQ":
        return f"<sequence of {len(value or [])} items>"
    if element.VR in _BYTES or isinstance(value, bytes | bytearray):
        return f"<{len(value or b'')} bytes>"
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_one(v) for v in value)
    return _one(value)


def _one(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write(element: DataElement, text: str) -> None:
    """Set ``element`` to ``text`` in its VR: numbers for binary numeric VRs, several values where a
    backslash separates them (not in LT, ST, UT, UR, whose text may hold one)."""
    vr = element.VR
    if vr == "SQ":
        raise ValueError(f"cannot assign text to the sequence {element.tag}")
    if vr in _BYTES:
        element.value = text.encode("latin-1", "replace")
        return
    if text == "":
        element.value = None if vr in _BINARY_INT | _BINARY_FLOAT else ""
        return
    parts = [text] if vr in _SINGLE_TEXT else text.split("\\")
    if vr in _BINARY_INT:
        converted: list[object] = [int(p, 0) if vr != "AT" else int(p, 16) for p in parts]
    elif vr in _BINARY_FLOAT:
        converted = [float(p) for p in parts]
    else:
        converted = list(parts)
    element.value = converted[0] if len(converted) == 1 else converted
