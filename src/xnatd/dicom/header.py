"""Reading what the importer needs from a DICOM file, never its pixels.

Every imported file needs a dozen attributes (UIDs, numbers, names, comments) to be filed in the
right session and scan. pydicom's reader costs about a millisecond per file even with
``stop_before_pixels``, which alone would make a zip import slower than unzipping it, so the common
encodings (explicit and implicit VR little endian, which every compressed transfer syntax uses for
its header) are scanned here directly from the first bytes of the file; anything unusual (big
endian, deflated, odd VRs, short reads) falls back to pydicom, which stays the reference.

pydicom is imported only when a file needs it: the zip-import helper processes
(``services/ingest/unpack_helper``) scan headers with this module and stay small without it.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatd.errors import InvalidInput

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # DICOMDIR and Philips DIRFILE: an index, not an image
PREFIX_BYTES = 256 * 1024

# (group, element) -> attribute of FileKeys. Everything the importer needs per file lies before
# StudyComments (0032,4000), so the scan stops there, long before any pixel data.
WANTED: dict[int, str] = {
    0x00080005: "charset",
    0x00080016: "sop_class_uid",
    0x00080018: "sop_instance_uid",
    0x00080020: "study_date",
    0x00080030: "study_time",
    0x00080050: "accession_number",
    0x00080060: "modality",
    0x00081030: "study_description",
    0x0008103E: "series_description",
    0x00100010: "patient_name",
    0x00100020: "patient_id",
    0x001021B0: "additional_patient_history",
    0x00104000: "patient_comments",
    0x0020000D: "study_instance_uid",
    0x0020000E: "series_instance_uid",
    0x00200011: "series_number",
    0x00200013: "instance_number",
    0x00324000: "study_comments",
}
LAST_WANTED = 0x00324000
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


class NotDicom(InvalidInput):
    """The file is not a DICOM object the archive can file (a README, an index, a broken header)."""


@dataclass(frozen=True)
class FileKeys:
    """The attributes of one DICOM file that decide where it goes and what it is called."""

    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    series_number: str = ""
    instance_number: str = ""
    modality: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    study_description: str = ""
    series_description: str = ""
    patient_name: str = ""
    patient_id: str = ""
    additional_patient_history: str = ""
    patient_comments: str = ""
    study_comments: str = ""
    charset: str = ""


class _Fallback(Exception):
    """The fast scanner met something it does not handle; pydicom reads the file instead."""


def read_keys(path: Path, prefix: bytes | None = None) -> FileKeys:
    """The keys of the DICOM file at ``path``; ``prefix`` (its first bytes, if at hand) saves a read.

    Raises NotDicom when the file is not a usable DICOM object.
    """
    if prefix is None:
        with open(path, "rb") as f:
            prefix = f.read(PREFIX_BYTES)
    keys = scan_keys(prefix, whole=len(prefix) < PREFIX_BYTES)
    if keys is None:
        keys = _keys_from_dataset(read_dataset(path, stop_before_pixels=True))
    return checked(keys, path.name)


def keys_of(data: bytes, name: str) -> FileKeys:
    """The keys of a DICOM file held in memory (``name`` only names it in errors)."""
    keys = scan_keys(data)
    if keys is None:
        keys = _keys_from_dataset(dataset_of(data, name))
    return checked(keys, name)


def scan_keys(data: bytes, whole: bool = True) -> FileKeys | None:
    """The keys the fast scanner finds in a file (``whole``) or its first bytes, unchecked; None
    when it needs more of the file, or pydicom (an unusual encoding, a header longer than
    ``PREFIX_BYTES``, not DICOM at all)."""
    if len(data) > PREFIX_BYTES:
        data, whole = data[:PREFIX_BYTES], False
    try:
        return _scan(data, whole)
    except (_Fallback, struct.error, IndexError, ValueError):
        return None


def dataset_of(data: bytes, name: str, stop_before_pixels: bool = True) -> Dataset:
    """``read_dataset`` for a file held in memory."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels, force=True)
    except Exception as exc:
        raise NotDicom(f"unable to read DICOM object {name}: {exc}") from None


def checked(keys: FileKeys, name: str) -> FileKeys:
    """``keys`` if they name a file the archive can file; NotDicom otherwise."""
    if keys.sop_class_uid == MEDIA_DIRECTORY:
        raise NotDicom(f"{name} is a DICOM media directory (DICOMDIR), not an image")
    missing = [
        label
        for label, value in (
            ("SOPInstanceUID", keys.sop_instance_uid),
            ("StudyInstanceUID", keys.study_instance_uid),
            ("SeriesInstanceUID", keys.series_instance_uid),
        )
        if not value
    ]
    if missing:
        raise NotDicom(f"{name} is not a usable DICOM object (no {', '.join(missing)})")
    return keys


def read_dataset(path: Path, stop_before_pixels: bool = True) -> Dataset:
    """The header as a pydicom Dataset (files without a preamble are read too)."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd encodings are expected here; the caller reports
            return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    except Exception as exc:  # pydicom raises many kinds on garbage; all mean "not DICOM"
        raise NotDicom(f"unable to read DICOM object {path.name}: {exc}") from None


def _keys_from_dataset(ds: Dataset) -> FileKeys:
    values: dict[str, str] = {}
    for tag, attr in WANTED.items():
        try:
            elem = ds.get(tag)
        except Exception:  # a value pydicom cannot convert is as good as absent here
            elem = None
        if elem is not None and elem.value is not None:
            values[attr] = text_of(elem.value)
    if not values.get("sop_instance_uid"):
        values["sop_instance_uid"] = _meta_text(ds, "MediaStorageSOPInstanceUID")
        values.setdefault("sop_class_uid", _meta_text(ds, "MediaStorageSOPClassUID"))
    return FileKeys(**values)


def _meta_text(ds: Dataset, keyword: str) -> str:
    """A file meta attribute, "" when absent or undecodable (pydicom decodes lazily and raises
    NotImplementedError, not AttributeError, for a damaged VR, which getattr's default misses)."""
    try:
        meta = getattr(ds, "file_meta", None)
        return str(getattr(meta, keyword, "") or "") if meta is not None else ""
    except Exception:
        return ""


def text_of(value: Any) -> str:
    """A DICOM value as XNAT stores it: multi-values joined with ``\\``, stripped."""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value).strip()
    if isinstance(value, bytes):
        return value.decode("latin-1").strip("\x00 ").strip()
    return str(value).strip("\x00 ").strip()


# --------------------------------------------------------------------------- the fast scanner


def _scan(data: bytes, whole: bool) -> FileKeys:
    pos, ts, meta_sop = _skip_meta(data)
    if ts in (EXPLICIT_BE, DEFLATED):
        raise _Fallback
    explicit = ts != IMPLICIT_LE if ts else _looks_explicit(data, pos)
    found: dict[str, bytes] = {}
    _walk(data, pos, explicit, found, whole)
    values = {attr: _decode(raw, found.get("charset", b"")) for attr, raw in found.items()}
    if not values.get("sop_instance_uid") and meta_sop:
        values["sop_instance_uid"] = meta_sop
    return FileKeys(**values)


def _skip_meta(data: bytes) -> tuple[int, str, str]:
    """Position of the dataset, its transfer syntax ("" if unknown) and the meta SOP instance UID."""
    pos = 132 if data[128:132] == b"DICM" else 0
    ts, sop = "", ""
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4 : pos + 6]
        if vr in LONG_VRS:
            length = struct.unpack_from("<I", data, pos + 8)[0]
            start = pos + 12
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            start = pos + 8
        if length == UNDEFINED or start + length > len(data):
            raise _Fallback
        if elem == 0x0010:
            ts = data[start : start + length].decode("ascii", "replace").strip("\x00 ")
        elif elem == 0x0003:
            sop = data[start : start + length].decode("ascii", "replace").strip("\x00 ")
        pos = start + length
    if pos == 0 and data[:2] not in (b"\x08\x00", b"\x10\x00", b"\x18\x00", b"\x20\x00"):
        raise _Fallback  # no preamble, no meta, not a little-endian dataset start: let pydicom judge
    return pos, ts, sop


def _looks_explicit(data: bytes, pos: int) -> bool:
    vr = data[pos + 4 : pos + 6]
    return len(vr) == 2 and vr.isalpha() and vr.isupper()


_EXPLICIT = struct.Struct("<HH2sH")  # tag, VR, 16-bit length: one unpack per element
_IMPLICIT = struct.Struct("<HHI")  # tag, 32-bit length
_LENGTH = struct.Struct("<I")
SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH"}
    | {b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)


def _walk(data: bytes, pos: int, explicit: bool, found: dict[str, bytes], whole: bool) -> None:
    """Collect the wanted top-level elements; stop past the last one (or at the end of a whole
    file: a prefix that ends before the last wanted element is not enough).

    The hot loop of every import (some 180 elements per MR header): one struct call per element,
    set lookups for the VR; anything unusual goes to ``_Fallback`` and pydicom.
    """
    end = len(data)
    head = _EXPLICIT.unpack_from if explicit else _IMPLICIT.unpack_from
    long_length = _LENGTH.unpack_from
    wanted = WANTED
    while pos + 8 <= end:
        if explicit:
            group, elem, vr, length = head(data, pos)
            tag = group << 16 | elem
            if tag > LAST_WANTED:
                return
            if vr in SHORT_VRS:
                start = pos + 8
            elif vr in LONG_VRS and pos + 12 <= end:
                length, start = long_length(data, pos + 8)[0], pos + 12
            else:
                raise _Fallback  # an unknown or malformed VR: pydicom's forgiving reader decides
        else:
            group, elem, length = head(data, pos)
            tag = group << 16 | elem
            if tag > LAST_WANTED:
                return
            vr, start = b"", pos + 8
        if length == UNDEFINED:
            pos = _skip_undefined(data, start, explicit and vr != b"UN")
            continue
        if start + length > end:
            if tag in wanted or tag < LAST_WANTED:
                raise _Fallback  # the prefix ends inside the header: read it all with pydicom
            return
        attr = wanted.get(tag)
        if attr is not None:
            found[attr] = data[start : start + length]
        pos = start + length
    if pos < end or not whole:
        raise _Fallback


def _header(data: bytes, pos: int, explicit: bool) -> tuple[int, int, bytes]:
    """(value length, value start, VR) of the element at ``pos``."""
    if not explicit:
        return struct.unpack_from("<I", data, pos + 4)[0], pos + 8, b""
    vr = data[pos + 4 : pos + 6]
    if vr in LONG_VRS:
        return struct.unpack_from("<I", data, pos + 8)[0], pos + 12, vr
    if not (vr.isalpha() and vr.isupper()):
        raise _Fallback  # a malformed VR: pydicom's forgiving reader decides
    return struct.unpack_from("<H", data, pos + 6)[0], pos + 8, vr


def _skip_undefined(data: bytes, pos: int, explicit: bool) -> int:
    """Skip a sequence (or UN) of undefined length: items until the sequence delimiter.

    Iterative, with an explicit stack: a file nesting sequences thousands deep (fuzzing made one)
    must not exhaust Python's recursion limit.
    """
    unpack = struct.unpack_from
    stack: list[tuple[bool, bool]] = [(True, explicit)]  # (in a sequence, not an item; explicit VR)
    while stack and pos + 8 <= len(data):
        in_sequence, exp = stack[-1]
        group, elem = unpack("<HH", data, pos)
        tag = group << 16 | elem
        if in_sequence:
            length = unpack("<I", data, pos + 4)[0]
            pos += 8
            if tag == SEQ_END:
                stack.pop()
            elif tag != ITEM:
                raise _Fallback
            elif length != UNDEFINED:
                pos += length
            else:
                stack.append((False, exp))
        elif tag == ITEM_END:
            pos += 8
            stack.pop()
        else:
            length, start, vr = _header(data, pos, exp)
            if length == UNDEFINED:
                stack.append((True, exp and vr != b"UN"))
                pos = start
            else:
                pos = start + length
    if stack:
        raise _Fallback
    return pos


def _decode(raw: bytes, charset: bytes) -> str:
    encoding = "utf-8" if b"192" in charset else "latin-1"
    return raw.decode(encoding, "replace").strip("\x00 ").strip()
