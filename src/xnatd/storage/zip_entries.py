"""Zip members by their central directory: checked all at once before a byte is unpacked, then
opened one by one (in this process or a helper's), stored ones read straight from the file."""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, cast

from xnatd.errors import InvalidInput, TooLarge
from xnatd.storage.archive_limits import (
    CHUNK,
    RATIO_FLOOR,
    Budget,
    ExtractLimits,
    Member,
    MemberReader,
    entry_name,
    too_many,
    translated,
)


def _zip_entry_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    fmt = stat.S_IFMT(mode)
    # Not info.is_dir(): it indexes the name's last character, and an entry may have an empty name.
    if info.filename.endswith("/") or fmt == stat.S_IFDIR:
        return "dir"
    if fmt == stat.S_IFLNK:
        return "link"
    if fmt in (0, stat.S_IFREG):
        return "file"
    return "special"


def _check_zip_offset(info: zipfile.ZipInfo, archive_size: int) -> None:
    """Refuse an entry whose local header lies outside the file.

    zipfile derives the offset from the central directory's own position; a damaged directory can
    make it negative, and the seek then fails with EINVAL, an OSError that looks like a disk error.
    """
    if not 0 <= info.header_offset < archive_size:
        raise InvalidInput(
            f"The uploaded file is not a valid zip archive: entry {info.filename!r} points outside the file."
        )


@dataclass(frozen=True)
class ZipEntry:
    """A regular file of a zip whose central directory passed every check: its place in that
    directory (``zipfile.ZipFile.infolist()``), its validated name, its declared size; for a
    stored (uncompressed) one also its local header's offset and its CRC (``stored_chunks``)."""

    index: int
    name: PurePosixPath
    size: int
    offset: int = -1  # -1: compressed, read it through zipfile (``open_zip_entry``)
    crc: int = 0


def zip_entries(archive: zipfile.ZipFile, archive_size: int, limits: ExtractLimits) -> list[ZipEntry]:
    """The regular files of an open zip (``open_zip``) of ``archive_size`` bytes, in archive
    order, checked before a byte is unpacked.

    zipfile never yields more than an entry's declared size (and checks its CRC at the end), so
    the size and ratio limits applied here to the declared sizes bound what any reader of these
    entries gets, in this process or another (``open_zip_entry``).
    """
    budget = Budget(limits, archive_size)
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise too_many(limits)
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_total_bytes:
        budget.add(declared)
    entries = []
    for index, info in enumerate(infos):
        name = entry_name(info.filename, _zip_entry_kind(info))
        if name is None:
            continue
        if info.flag_bits & 0x1:
            raise InvalidInput(
                f"Archive entry {info.filename!r} is encrypted; encrypted archives are not accepted."
            )
        _check_zip_offset(info, archive_size)
        _check_entry_ratio(info, limits)
        stored = info.compress_type == zipfile.ZIP_STORED and info.compress_size == info.file_size
        offset = info.header_offset if stored else -1
        entries.append(ZipEntry(index, name, info.file_size, offset, info.CRC))
    budget.check_ratio(declared)
    return entries


def _check_entry_ratio(info: zipfile.ZipInfo, limits: ExtractLimits) -> None:
    if limits.max_ratio > 0 and info.file_size > max(RATIO_FLOOR, limits.max_ratio * info.compress_size):
        raise TooLarge(
            f"Archive entry {info.filename} expands to more than {limits.max_ratio} times "
            "its compressed size; it looks like a zip bomb and was refused."
        )


def open_zip(path: Path) -> zipfile.ZipFile:
    """The zip at ``path``, open for ``open_zip_entry`` (close it, or use it in a ``with``); a
    damaged one is InvalidInput."""
    with translated("zip"):
        return zipfile.ZipFile(path)


def open_zip_entry(archive: zipfile.ZipFile, entry: ZipEntry) -> BinaryIO:
    """A stream of one entry found by ``zip_entries``; damage (a bad CRC, a broken local header) is
    InvalidInput when it is read."""
    info = archive.infolist()[entry.index]
    with translated("zip"):
        inner = archive.open(info)
    return cast(BinaryIO, _Translating(inner, "zip"))


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length


def stored_head(fd: int, entry: ZipEntry, length: int) -> bytes:
    """The first ``length`` bytes of a stored entry, read straight from the zip's file descriptor
    (unchecked: its CRC covers the whole entry, which ``stored_chunks`` reads)."""
    return os.pread(fd, min(length, entry.size), _data_start(fd, entry))


def stored_chunks(fd: int, entry: ZipEntry, chunk: int = CHUNK) -> Iterator[bytes]:
    """A stored entry's bytes, read straight from the zip's file descriptor: what zipfile gives,
    at a fraction of its cost per member (a zip import's helpers read thousands). Its CRC is
    checked at the end; damage is InvalidInput, as from zipfile."""
    pos, left, crc = _data_start(fd, entry), entry.size, 0
    while left > 0:
        data = os.pread(fd, min(chunk, left), pos)
        if not data:
            break
        crc = zlib.crc32(data, crc)
        pos, left = pos + len(data), left - len(data)
        yield data
    if left or crc != entry.crc:
        raise InvalidInput(
            f"The uploaded file is not a valid zip archive: bad CRC-32 for {str(entry.name)!r}."
        )


def _data_start(fd: int, entry: ZipEntry) -> int:
    head = os.pread(fd, _LOCAL_HEADER.size, entry.offset)
    if len(head) < _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
        raise InvalidInput(
            f"The uploaded file is not a valid zip archive: bad local header of {str(entry.name)!r}."
        )
    names, extra = _LOCAL_HEADER.unpack(head)[1:]
    return int(entry.offset + _LOCAL_HEADER.size + names + extra)


class _Translating(io.BufferedIOBase):
    """A member stream whose corruption errors come out as InvalidInput."""

    def __init__(self, inner: IO[bytes], kind: str) -> None:
        super().__init__()
        self._inner = inner
        self._kind = kind

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        with translated(self._kind):
            return self._inner.read(-1 if size is None else size)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def iter_zip(path: Path, limits: ExtractLimits) -> Iterator[tuple[Member, BinaryIO]]:
    size = path.stat().st_size
    budget = Budget(limits, size)  # counts what is actually produced, as well
    with open_zip(path) as archive:
        entries = zip_entries(archive, size, limits)
        infos = archive.infolist()
        for entry in entries:
            info = infos[entry.index]
            with translated("zip"):
                inner = archive.open(info)
            reader = MemberReader(inner, info.filename, "zip", budget, info.compress_size)
            try:
                yield Member(entry.name, entry.size), cast(BinaryIO, reader)
            finally:
                reader.close()
