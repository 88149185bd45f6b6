"""Streaming, hostile-safe reading of uploaded zip and tar archives.

Nothing is extracted to disk here: members are handed out one at a time as streams, so the caller
writes each through the same atomic path as any upload. Every name is validated, links and devices
are refused, and limits are enforced on the bytes actually produced, never on what headers claim,
so a zip bomb stops at the limit instead of filling the disk or the memory.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, cast

from xnatd.errors import InvalidInput, TooLarge, XnatdError
from xnatd.storage.paths import safe_relpath

CHUNK = 1 << 20
# Below this output size the ratio limits are not applied: a small, very compressible file
# (a text report full of spaces) is not a bomb, and the total-size limit still bounds everything.
RATIO_FLOOR = 1 << 20
# Largest amount of tar metadata (pax headers, GNU long names) read for one entry. tarfile keeps it
# in memory, so it must be bounded separately from the data.
MAX_TAR_HEADER_BYTES = 8 << 20

_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, zlib.error, EOFError, lzma.LZMAError)
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ExtractLimits:
    """Zip-bomb guards; see the ``max_extract_*`` settings."""

    max_total_bytes: int
    max_ratio: int
    max_members: int


@dataclass(frozen=True)
class Member:
    """A regular file inside an archive; ``size`` is what the header claims (not trusted)."""

    name: PurePosixPath
    size: int


# ---------------------------------------------------------------- kind detection


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
    if head[:2] == _GZIP_MAGIC:
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


# ---------------------------------------------------------------- errors and limits


@contextmanager
def _translated(kind: str) -> Iterator[None]:
    """Turn the many ways a corrupt archive fails into one InvalidInput."""
    try:
        yield
    except XnatdError:
        raise
    except (*_CORRUPT, NotImplementedError) as err:
        raise InvalidInput(f"The uploaded file is not a valid {kind} archive: {err}.") from err
    except OSError as err:
        if err.errno is not None:  # a real I/O error, not a decoder's complaint
            raise
        raise InvalidInput(f"The uploaded file is not a valid {kind} archive: {err}.") from err


class _Budget:
    """Counts the member bytes actually produced by one archive."""

    def __init__(self, limits: ExtractLimits, archive_size: int) -> None:
        self.limits = limits
        self.total = 0
        self.max_from_ratio = max(RATIO_FLOOR, limits.max_ratio * archive_size)

    def add(self, n: int) -> None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            raise TooLarge(
                f"The archive expands to more than {self.limits.max_total_bytes} bytes, "
                "the limit for one upload."
            )
        self.check_ratio(self.total)

    def check_ratio(self, produced: int) -> None:
        if self.limits.max_ratio > 0 and produced > self.max_from_ratio:
            raise TooLarge(
                f"The archive expands to more than {self.limits.max_ratio} times its own size; "
                "it looks like a zip bomb and was refused."
            )


class _MemberReader(io.BufferedIOBase):
    """The stream handed to the caller: counts bytes against the limits and reports corruption."""

    def __init__(self, inner: IO[bytes], entry: str, kind: str, budget: _Budget, packed: int | None) -> None:
        super().__init__()
        self._inner = inner
        self._entry = entry
        self._kind = kind
        self._budget = budget
        self._read = 0
        limits = budget.limits
        self._max = (
            None if packed is None or limits.max_ratio <= 0 else max(RATIO_FLOOR, limits.max_ratio * packed)
        )

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        if self.closed:
            raise ValueError(f"archive entry {self._entry} was already consumed")
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        with _translated(self._kind):
            data = self._inner.read(size)
        self._count(len(data))
        return data

    def read1(self, size: int = -1, /) -> bytes:
        return self.read(size if size >= 0 else CHUNK)

    def readinto(self, buffer: bytearray | memoryview, /) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _count(self, n: int) -> None:
        self._read += n
        if self._max is not None and self._read > self._max:
            raise TooLarge(
                f"Archive entry {self._entry} expands to more than {self._budget.limits.max_ratio} times "
                "its compressed size; it looks like a zip bomb and was refused."
            )
        self._budget.add(n)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def _entry_name(raw: str, kind: str) -> PurePosixPath | None:
    """The validated name of an entry of type ``kind``, None to skip it silently."""
    if kind == "dir" or raw.startswith("__MACOSX/") or raw == "__MACOSX":
        return None
    if kind == "link":
        raise InvalidInput(f"Archive entry {raw!r} is a link; links are not accepted.")
    if kind == "special":
        raise InvalidInput(
            f"Archive entry {raw!r} is not a regular file (a device, fifo, sparse file or unknown type); "
            "only regular files and folders are accepted."
        )
    try:
        return safe_relpath(raw)
    except InvalidInput as err:
        raise InvalidInput(f"Archive entry {raw!r} has a name that is not accepted. {err}") from err


def _too_many(limits: ExtractLimits) -> TooLarge:
    return TooLarge(f"The archive has more than {limits.max_members} entries, the limit for one upload.")


def iter_members(path: Path, kind: str, limits: ExtractLimits) -> Iterator[tuple[Member, BinaryIO]]:
    """Yield each regular file of the archive, in archive order, with a stream of its content.

    The stream is valid only until the iteration advances; read it (or not) before asking for the
    next member. Directories and ``__MACOSX/`` entries are skipped; anything else that is not a
    regular file with an acceptable name stops the iteration with InvalidInput.
    """
    if kind == "zip":
        yield from _iter_zip(path, limits)
    elif kind in ("tar", "tar.gz"):
        yield from _iter_tar(path, kind, limits)
    else:
        raise ValueError(f"unknown archive kind {kind!r}")


# ---------------------------------------------------------------- zip


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
    budget = _Budget(limits, archive_size)
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise _too_many(limits)
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_total_bytes:
        budget.add(declared)
    entries = []
    for index, info in enumerate(infos):
        name = _entry_name(info.filename, _zip_entry_kind(info))
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
    with _translated("zip"):
        return zipfile.ZipFile(path)


def open_zip_entry(archive: zipfile.ZipFile, entry: ZipEntry) -> BinaryIO:
    """A stream of one entry found by ``zip_entries``; damage (a bad CRC, a broken local header) is
    InvalidInput when it is read."""
    info = archive.infolist()[entry.index]
    with _translated("zip"):
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
        with _translated(self._kind):
            return self._inner.read(-1 if size is None else size)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def _iter_zip(path: Path, limits: ExtractLimits) -> Iterator[tuple[Member, BinaryIO]]:
    size = path.stat().st_size
    budget = _Budget(limits, size)  # counts what is actually produced, as well
    with open_zip(path) as archive:
        entries = zip_entries(archive, size, limits)
        infos = archive.infolist()
        for entry in entries:
            info = infos[entry.index]
            with _translated("zip"):
                inner = archive.open(info)
            reader = _MemberReader(inner, info.filename, "zip", budget, info.compress_size)
            try:
                yield Member(entry.name, entry.size), cast(BinaryIO, reader)
            finally:
                reader.close()


# ---------------------------------------------------------------- tar


class _RawGuard:
    """Sits under tarfile and bounds what it reads outside member data.

    tarfile keeps pax headers and long names in memory whole, so a forged header size could make it
    allocate gigabytes; between members only ``MAX_TAR_HEADER_BYTES`` may be read. For a compressed
    tar it also applies the archive-wide ratio limit to everything decompressed.
    """

    def __init__(self, source: IO[bytes], budget: _Budget, compressed: bool) -> None:
        self._source = source
        self._budget = budget
        self._compressed = compressed
        self._count = 0
        self._header_start: int | None = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = self._source.read(CHUNK if size is None or size < 0 else size)
        self._count += len(data)
        if self._header_start is not None and self._count - self._header_start > MAX_TAR_HEADER_BYTES + CHUNK:
            raise TooLarge(f"The archive has an entry header larger than {MAX_TAR_HEADER_BYTES} bytes.")
        if self._compressed:
            self._budget.check_ratio(self._count)
        return data

    def headers(self) -> None:
        self._header_start = self._count

    def data(self) -> None:
        self._header_start = None

    def finish(self) -> None:
        """Read to the end, so a gzip stream's CRC and length are checked."""
        self.headers()
        while self.read(CHUNK):
            pass


def _tar_entry_kind(info: tarfile.TarInfo) -> str:
    if info.isreg() and not info.issparse():
        return "file"
    if info.isdir():
        return "dir"
    if info.issym() or info.islnk():
        return "link"
    return "special"


def _iter_tar(path: Path, kind: str, limits: ExtractLimits) -> Iterator[tuple[Member, BinaryIO]]:
    budget = _Budget(limits, path.stat().st_size)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        source: IO[bytes] = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if compressed else raw
        guard = _RawGuard(source, budget, compressed)
        with _open_tar(guard, kind) as archive:
            yield from _tar_members(archive, guard, kind, budget)
            with _translated(kind):
                guard.finish()


def _open_tar(guard: _RawGuard, kind: str) -> tarfile.TarFile:
    # tarfile's default 10 KiB stream buffer: a 1 MiB one measured 4x slower, since tarfile copies
    # the unread rest of its buffer on every small read.
    with _translated(kind):
        return tarfile.open(fileobj=cast(IO[bytes], guard), mode="r|")


def _tar_members(
    archive: tarfile.TarFile, guard: _RawGuard, kind: str, budget: _Budget
) -> Iterator[tuple[Member, BinaryIO]]:
    count = 0
    while True:
        guard.headers()
        with _translated(kind):
            info = archive.next()
        if info is None:
            return
        archive.members.clear()  # type: ignore[attr-defined]  # tarfile keeps every entry; stay flat
        count += 1
        if count > budget.limits.max_members:
            raise _too_many(budget.limits)
        entry_kind = _tar_entry_kind(info)
        name = _entry_name(info.name, entry_kind)
        if entry_kind != "file":
            continue
        guard.data()
        with _translated(kind):
            inner = archive.extractfile(info)
        assert inner is not None  # a regular file always has a stream
        reader = _MemberReader(inner, info.name, kind, budget, None)
        try:
            if name is not None:
                yield Member(name, info.size), cast(BinaryIO, reader)
            reader.drain()  # skipped or partly read data still counts against the limits
        finally:
            reader.close()
