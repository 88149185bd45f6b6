"""UIDs a script makes, in DicomEdit's form: ``2.25.`` followed by a UUID as a decimal integer
(PS3.5 B.2), which is at most 44 characters, well under the 64 a UID may have.

``hashUID`` is XNAT's: a name-based version 5 UUID (SHA-1) of the value's text with no namespace
(the Java UUID generator DicomEdit uses, given no namespace, hashes the name alone), so the same
UID maps to the same new UID on every site and every run; ``new UID`` is a random (version 4) UUID.
"""

from __future__ import annotations

import hashlib
import re
import uuid

UUID_ROOT = "2.25"
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def hash_uid(text: str) -> str:
    digest = bytearray(hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return f"{UUID_ROOT}.{int.from_bytes(digest, 'big')}"


def new_uid() -> str:
    return f"{UUID_ROOT}.{uuid.uuid4().int}"


def is_valid_uid(text: str) -> bool:
    """Digits and dots, no empty or zero-led component, at most 64 characters (PS3.5 9.1)."""
    return len(text) <= 64 and _UID.fullmatch(text) is not None
