"""File names of stored DICOM objects.

XNAT keeps the name a file was sent with when it is a safe, unused name, and otherwise (or with
``rename=true``) names it from its header: ``{StudyInstanceUID}-{SeriesNumber}-{InstanceNumber}-
{hash of SOP class and instance UIDs}.dcm``. Both are plain single path segments, so no name coming
from a zip entry or a header can reach outside its scan folder.
"""

from __future__ import annotations

import re

from xnatd.dicom.header import FileKeys
from xnatd.domain.labels import sanitize_label

_SAFE = re.compile(r"^[A-Za-z0-9_+=-][A-Za-z0-9._+=-]{0,199}$")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def is_safe(name: str) -> bool:
    return bool(_SAFE.match(name)) and name not in (".", "..")


def original_name(entry: str | None) -> str | None:
    """The last segment of an upload or zip entry name, if it may be used as is."""
    if not entry:
        return None
    base = entry.replace("\\", "/").rsplit("/", 1)[-1]
    return base if is_safe(base) else None


def template_name(keys: FileKeys) -> str:
    """XNAT's default ``dicomFileNameTemplate``, ``${StudyInstanceUID}-${SeriesNumber}-
    ${InstanceNumber}-${HashSOPClassUIDWithSOPInstanceUID}.dcm`` (``TemplatizedDicomFileNamer``): an
    element without a value reads ``no-value-for-{Name}``, and the hash is Java's ``List.hashCode``
    of the two UIDs, as an unsigned 32-bit number in base 36."""
    study = _value(keys.study_instance_uid, "StudyInstanceUID")
    series = _value(keys.series_number, "SeriesNumber")
    instance = _value(keys.instance_number, "InstanceNumber")
    digest = _java_list_hash(
        [_value(keys.sop_class_uid, "SOPClassUID"), _value(keys.sop_instance_uid, "SOPInstanceUID")]
    )
    # each part bounded (a UID is at most 64 characters, an IS 12) and made one safe path segment,
    # so hostile headers still make a name well under the file system's 255 bytes
    study = re.sub(r"[^0-9A-Za-z.-]", "_", study[:64])
    series = sanitize_label(series, "0")[:32]
    instance = sanitize_label(instance, "0")[:32]
    return f"{study}-{series}-{instance}-{_base36(digest)}.dcm"


def _value(value: str, name: str) -> str:
    return value.strip() or f"no-value-for-{name}"


def _java_list_hash(values: list[str]) -> int:
    """``java.util.List.hashCode`` of strings (``String.hashCode`` over UTF-16 code units), as the
    unsigned 32-bit value ``hash & 0xffffffffL``."""
    h = 1
    for value in values:
        code_units = value.encode("utf-16-be")
        sh = 0
        for i in range(0, len(code_units), 2):
            sh = (31 * sh + int.from_bytes(code_units[i : i + 2], "big")) & 0xFFFFFFFF
        h = (31 * h + sh) & 0xFFFFFFFF
    return h


def choose(entry: str | None, keys: FileKeys, rename: bool) -> str:
    """The name to try first for a file; the caller falls back to ``template_name`` if it is taken."""
    if not rename:
        name = original_name(entry)
        if name:
            return name
    return template_name(keys)


def scan_folder(keys: FileKeys) -> str:
    """The prearchive folder of a series under ``SCANS/``: its number, else its UID (XNAT's choice)."""
    number = keys.series_number.strip()
    if number:
        return sanitize_label(number.replace("+", "_"), "0")[:64]
    return re.sub(r"\W", "_", keys.series_instance_uid[:64]) or "0"


def _base36(value: int) -> str:
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = _DIGITS[rest] + out
        if value == 0:
            return out
