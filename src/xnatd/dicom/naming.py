"""File names of stored DICOM objects.

XNAT keeps the name a file was sent with when it is a safe, unused name, and otherwise (or with
``rename=true``) names it from its header: ``{StudyInstanceUID}-{SeriesNumber}-{InstanceNumber}-
{hash of SOP class and instance UIDs}.dcm``. Both are plain single path segments, so no name coming
from a zip entry or a header can reach outside its scan folder.
"""

from __future__ import annotations

import hashlib
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
    """XNAT's default ``dicomFileNameTemplate``; the hash keeps two instances apart."""
    digest = int.from_bytes(
        hashlib.sha1(f"{keys.sop_class_uid}{keys.sop_instance_uid}".encode()).digest()[:5], "big"
    )
    # each part bounded (a UID is at most 64 characters, an IS 12) so hostile headers still make
    # a name well under the file system's 255 bytes
    series = sanitize_label(keys.series_number, "0")[:16]
    instance = sanitize_label(keys.instance_number, "0")[:16]
    study = re.sub(r"[^0-9A-Za-z.]", "_", keys.study_instance_uid[:64]) or "study"
    return f"{study}-{series}-{instance}-{_base36(digest)}.dcm"


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
