"""Streaming, hostile-safe reading of uploaded zip and tar archives.

Nothing is extracted to disk here: members are handed out one at a time as streams, so the caller
writes each through the same atomic path as any upload. Every name is validated, links and devices
are refused, and limits are enforced on the bytes actually produced, never on what headers claim,
so a zip bomb stops at the limit instead of filling the disk or the memory (``archive_limits``).
Zip members can also be taken by their central directory (``zip_entries``); tars are one stream
(``tar_members``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from xnatd.storage.archive_limits import ExtractLimits, Member
from xnatd.storage.tar_members import GZIP_MAGIC, iter_tar
from xnatd.storage.zip_entries import iter_zip

__all__ = ["ExtractLimits", "Member", "archive_kind", "iter_members"]


def _kind_from_name(filename: str) -> str | None:
    lower = filename.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if lower.endswith(".tar"):
        return "tar"
    return None


_TYPES = {
    "application/zip": "zip",
    "application/x-zip": "zip",
    "application/x-zip-compressed": "zip",
    "application/x-tar": "tar",
    "application/x-gtar": "tar.gz",
    "application/x-tgz": "tar.gz",
    "application/x-compressed-tar": "tar.gz",
    "application/x-tar+gzip": "tar.gz",
}


def _sniff(head: bytes) -> str | None:
    """Kind from magic bytes; ``"gzip"`` for a gzip file that is known not to hold a tar."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    if head[:2] == GZIP_MAGIC:
        try:
            inner = zlib.decompressobj(wbits=31).decompress(head, 512)
        except zlib.error:
            return None
        if inner[257:262] == b"ustar":
            return "tar.gz"
        if len(inner) >= 262:
            return "gzip"
    return None


def archive_kind(filename: str, content_type: str | None = None, head: bytes = b"") -> str | None:
    """``"zip"``, ``"tar"`` or ``"tar.gz"`` if the upload is an archive we can unpack, else None.

    Magic bytes win when they recognise the format. A gzip file that does not hold a tar (a
    ``.nii.gz`` image) is never an archive. Otherwise the file name, then the content type decide,
    so a misnamed upload fails later with a clear "not a valid zip" instead of being stored as is.
    """
    sniffed = _sniff(head)
    if sniffed == "gzip":
        return None
    if sniffed is not None:
        return sniffed
    by_name = _kind_from_name(filename)
    if by_name is not None:
        return by_name
    if content_type:
        return _TYPES.get(content_type.split(";", 1)[0].strip().lower())
    return None


def iter_members(path: Path, kind: str, limits: ExtractLimits) -> Iterator[tuple[Member, BinaryIO]]:
    """Yield each regular file of the archive, in archive order, with a stream of its content.

    The stream is valid only until the iteration advances; read it (or not) before asking for the
    next member. Directories and ``__MACOSX/`` entries are skipped; anything else that is not a
    regular file with an acceptable name stops the iteration with InvalidInput.
    """
    if kind == "zip":
        yield from iter_zip(path, limits)
    elif kind in ("tar", "tar.gz"):
        yield from iter_tar(path, kind, limits)
    else:
        raise ValueError(f"unknown archive kind {kind!r}")
