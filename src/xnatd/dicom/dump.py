"""A DICOM header as XNAT's DICOM dump service shows it (``/data/services/dicomdump``).

One row per attribute, the file meta information first: ``tag1`` the tag as ``(gggg,eeee)``,
``tag2`` the tag inside a sequence (its sequence's tag is then ``tag1``; each item opens with a row
naming the sequence twice), ``vr``, ``value`` (at most 64 characters, as dcm4che's default; several
values joined by ``\\``; HTML special characters escaped, as XNAT escapes them) and ``desc``.
``fields`` keeps only the attributes asked for, by keyword (``PatientName``) or hexadecimal tag
(``00100010``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

COLUMNS = ["tag1", "tag2", "vr", "value", "desc"]
MAX_VALUE = 64


def parse_fields(values: Iterable[str]) -> set[int]:
    """Tags from keywords or hexadecimal numbers (``:subfield`` suffixes, for Siemens' private
    headers, are ignored); ``ValueError`` names one that is neither."""
    tags = set()
    for value in values:
        name = value.split(":", 1)[0].strip()
        if not name:
            continue
        tag = tag_for_keyword(name)
        if tag is None:
            hexa = name.strip("()").replace(",", "")
            try:
                tag = int(hexa, 16)
            except ValueError:
                raise ValueError(f"not a valid DICOM attribute tag: {name}") from None
            if not 0 <= tag <= 0xFFFFFFFF:
                raise ValueError(f"not a valid DICOM attribute tag: {name}")
        tags.add(tag)
    return tags


def rows(path: Path, fields: set[int]) -> list[dict[str, str]]:
    """The header of the file at ``path``; ``ValueError`` if it is not DICOM."""
    ds = _read(path)
    out: list[dict[str, str]] = []
    elements: list[DataElement] = []
    if getattr(ds, "file_meta", None) is not None:
        elements.extend(ds.file_meta)
    elements.extend(ds)
    for elem in elements:
        if fields and int(elem.tag) not in fields:
            continue
        if elem.VR == "SQ":
            _sequence(elem, out)
        else:
            out.append(_row(elem, None))
    return out


def _read(path: Path) -> Dataset:
    """The header; a file without the DICOM preamble is read too if it starts like a data set."""
    try:
        try:
            return pydicom.dcmread(str(path), stop_before_pixels=True)
        except InvalidDicomError:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"unable to read DICOM object {path.name}: {exc}") from None
    if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        raise ValueError(f"unable to read DICOM object {path.name}: not DICOM")
    return ds


def _sequence(elem: DataElement, out: list[dict[str, str]]) -> None:
    tag = _tag(elem)
    items: Sequence[Dataset] = elem.value or []
    for item in items:
        out.append(_row(elem, tag))
        for child in item:
            out.append(_row(child, tag))


def _row(elem: DataElement, parent: str | None) -> dict[str, str]:
    tag = _tag(elem)
    value = "" if elem.VR == "SQ" else _escape(_value(elem))
    desc = _escape(elem.name)
    if parent is None:
        return {"tag1": tag, "tag2": "", "vr": str(elem.VR), "value": value, "desc": desc}
    return {"tag1": parent, "tag2": tag, "vr": str(elem.VR), "value": value, "desc": desc}


def _escape(text: str) -> str:
    """As commons-lang's ``escapeHtml4`` (which XNAT applies): ``&<>"``, not the apostrophe."""
    return html.escape(text, quote=False).replace('"', "&quot;")


def _tag(elem: DataElement) -> str:
    return f"({elem.tag.group:04X},{elem.tag.element:04X})"


def _value(elem: DataElement) -> str:
    raw = elem.value
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        text = "\\".join(f"{b:02X}" for b in raw[: MAX_VALUE // 3 + 1])
    elif isinstance(raw, (list, tuple, pydicom.multival.MultiValue)):
        text = "\\".join(str(v) for v in raw)
    else:
        text = str(raw)
    return text[:MAX_VALUE]
