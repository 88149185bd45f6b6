"""The guards every archive reader shares: limits on what the members produce, counted as they are
read, entry names and types checked, and a corrupt archive reported as InvalidInput."""

from __future__ import annotations

import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from xnatd.errors import InvalidInput, TooLarge, XnatdError
from xnatd.storage.paths import safe_relpath

CHUNK = 1 << 20
# Below this output size the ratio limits are not applied: a small, very compressible file
# (a text report full of spaces) is not a bomb, and the total-size limit still bounds everything.
RATIO_FLOOR = 1 << 20

_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, zlib.error, EOFError, lzma.LZMAError)


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


@contextmanager
def translated(kind: str) -> Iterator[None]:
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


class Budget:
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


class MemberReader(io.BufferedIOBase):
    """The stream handed to the caller: counts bytes against the limits and reports corruption."""

    def __init__(self, inner: IO[bytes], entry: str, kind: str, budget: Budget, packed: int | None) -> None:
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
        with translated(self._kind):
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


def entry_name(raw: str, kind: str) -> PurePosixPath | None:
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


def too_many(limits: ExtractLimits) -> TooLarge:
    return TooLarge(f"The archive has more than {limits.max_members} entries, the limit for one upload.")
