"""Streaming zip and tar downloads of archive files.

Downloads are generated while they are sent: no temp file, no whole file in memory, so a 2 GB
session costs the same memory as a 2 KB one. Arcnames come from the services (built from validated
labels), so they are trusted here.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from zipstream import ZIP_DEFLATED, ZIP_STORED, ZipStream

from xnatd.errors import Conflict

CHUNK = 1 << 20
_TAR_BLOCK = tarfile.BLOCKSIZE
_TAR_RECORD = tarfile.RECORDSIZE


def _file_chunks(path: str | Path, size: int) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``path`` in 1 MiB reads; a file that shrank is an error.

    The size is already promised to the client in the tar header, so silently sending fewer bytes
    would produce a corrupt download that looks complete.
    """
    left = size
    with open(path, "rb", buffering=0) as f:
        while left > 0:
            data = f.read(min(CHUNK, left))
            if not data:
                raise Conflict(f"The file '{os.path.basename(path)}' changed while it was being downloaded.")
            left -= len(data)
            yield data


def _coalesced(pieces: Iterable[bytes], target: int = CHUNK) -> Iterator[bytes]:
    """Merge small pieces (headers, small files) into ~1 MiB chunks; big pieces pass uncopied.

    Each chunk costs an ASGI send and a syscall, so thousands of tiny ones would dominate the time.
    """
    pending: list[bytes] = []
    pending_size = 0
    for piece in pieces:
        if len(piece) >= target:
            if pending:
                yield b"".join(pending)
                pending, pending_size = [], 0
            yield piece
            continue
        if piece:
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= target:
                yield b"".join(pending)
                pending, pending_size = [], 0
    if pending:
        yield b"".join(pending)


def zip_stream(
    entries: Iterable[tuple[str, str | Path]], compress_level: int = 0
) -> tuple[Iterator[bytes], int | None]:
    """A zip of ``(arcname, path)`` pairs as a byte iterator, with its exact length when stored.

    Level 0 stores the files (DICOM barely compresses and storing is what makes the length known in
    advance, so clients get a Content-Length and a progress bar). zip64 is used where needed. Files
    are stat'ed now (a missing one raises FileNotFoundError before anything is sent) and read while
    the iterator is consumed; one whose size changes in between aborts the stream (RuntimeError).
    """
    if compress_level > 0:
        stream = ZipStream(compress_type=ZIP_DEFLATED, compress_level=compress_level)
    else:
        stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    for arcname, path in entries:
        # add_path keeps each file's mtime and permissions. It reads 64 KiB at a time, which measured
        # as fast as 1 MiB reads once the output is coalesced (see _coalesced).
        stream.add_path(os.fspath(path), arcname, recurse=False)
    length = len(stream) if compress_level <= 0 else None
    return _coalesced(stream), length


def _tar_header(arcname: str, path: str | Path) -> tuple[bytes, int]:
    st = os.stat(path)
    info = tarfile.TarInfo(arcname)
    info.size = st.st_size
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode)
    info.type = tarfile.REGTYPE
    # PAX adds extended headers only when needed (long or non-ASCII names, sizes of 8 GiB and more).
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), st.st_size


def _tar_pieces(entries: Iterable[tuple[str, str | Path]]) -> Iterator[bytes]:
    """The uncompressed tar stream, block-aligned and ending like tarfile's own output."""
    written = 0
    for arcname, path in entries:
        header, size = _tar_header(arcname, path)
        yield header
        yield from _file_chunks(path, size)
        padding = -size % _TAR_BLOCK
        yield b"\0" * padding
        written += len(header) + size + padding
    trailer = 2 * _TAR_BLOCK
    trailer += -(written + trailer) % _TAR_RECORD
    yield b"\0" * trailer


def _gzipped(pieces: Iterable[bytes], level: int) -> Iterator[bytes]:
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    for piece in pieces:
        out = packer.compress(piece)
        if out:
            yield out
    yield packer.flush()


def tar_stream(entries: Iterable[tuple[str, str | Path]], gzip: bool, level: int = 6) -> Iterator[bytes]:
    """A tar (or tar.gz) of ``(arcname, path)`` pairs, generated while it is consumed.

    The tar layout is written here (headers from ``TarInfo.tobuf``) rather than through
    ``tarfile``: ``TarFile.addfile`` copies a whole file in one call, which would buffer all of it
    in a streaming sink. ``level`` is the gzip level (6, like the gzip tool, trades well).
    """
    pieces = _tar_pieces(entries)
    return _coalesced(_gzipped(pieces, level) if gzip else pieces)
