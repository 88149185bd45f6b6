"""Atomic, streamed file writes.

Every archive file is written the same way: streamed into this process's own folder under
``DATA/tmp`` (same filesystem as the archive; see ``process_tmp_dir``) while its MD5 is computed,
fsynced, then renamed into place. A reader therefore sees either no file or the complete one, and a
failure at any point leaves nothing behind but, at worst, a temp file in that folder, which the next
start-up recovery removes as soon as the process is dead (``reclaim_dead``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import AsyncIterable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from xnatd.errors import Conflict, StorageFull, TooLarge
from xnatd.storage.durability import fsync_dir, make_dirs, rename_noreplace, start_writeback
from xnatd.storage.tmpdirs import folder_for, is_own_folder, note, process_tmp_dir

if TYPE_CHECKING:  # imported where used: the zip-import helper processes do without it
    import asyncio

CHUNK = 1 << 20
# A large file's disk writes are started every this many bytes, while it is still arriving, so the
# fsync before the answer waits for the last few MiB only, not for the whole file.
WRITEBACK_EVERY = 16 * CHUNK
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# os.link is refused on a few filesystems (some FUSE, SMB and FAT mounts); see move_new.
_NO_LINK_ERRNOS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK})


@dataclass(frozen=True)
class Staged:
    """A complete, fsynced temp file waiting to be placed (or discarded)."""

    path: Path
    size: int
    md5: str


@dataclass(frozen=True)
class Held:
    """A small file read into memory (an archive member: most DICOM files are a few hundred KB),
    written once, straight to its final place (``write_new``), instead of staged, linked and unlinked."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


HOLD_UP_TO = 4 << 20  # bytes: larger members are staged on disk, so memory stays flat


def _storage_full() -> StorageFull:
    return StorageFull("No space left on the archive filesystem to store this file.")


class _TempWriter:
    """Owns one temp file while it is written; shared by the async and the sync stager.

    Small chunks (HTTP bodies arrive in pieces of a few KiB) are gathered into ~1 MiB writes: fewer
    syscalls, and hashlib releases the GIL on large buffers.
    """

    def __init__(self, tmp_dir: Path, max_bytes: int, hashed: bool = True) -> None:
        try:
            tmp_dir = process_tmp_dir(tmp_dir)
        except OSError as err:
            if err.errno in _FULL_ERRNOS:
                raise _storage_full() from err
            raise
        self.max_bytes = max_bytes
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False) if hashed else None
        self._pending = bytearray()
        self._offset = 0  # bytes written to the file
        self._started = 0  # bytes whose writeback has been started
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        while True:
            self.path = tmp_dir / f".stage-{secrets.token_hex(12)}.part"
            try:
                self.fd = os.open(self.path, flags, 0o644)
                break
            except FileExistsError:  # pragma: no cover - 96 random bits
                continue
            except OSError as err:
                if err.errno in _FULL_ERRNOS:
                    raise _storage_full() from err
                raise

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.size += len(data)
        if self.max_bytes > 0 and self.size > self.max_bytes:
            raise TooLarge(f"The file is larger than the limit of {self.max_bytes} bytes.")
        if len(data) >= CHUNK:
            self._flush()
            self._out(data)
            return
        self._pending += data
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._out(self._pending)
            self._pending = bytearray()

    def _out(self, data: bytes | bytearray | memoryview) -> None:
        if self.md5 is not None:
            self.md5.update(data)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as err:
            if err.errno in _FULL_ERRNOS:
                raise _storage_full() from err
            raise
        self._offset += len(data)
        if self._offset - self._started >= WRITEBACK_EVERY:
            start_writeback(self.fd, self._started, self._offset - self._started)
            self._started = self._offset

    def flush_pending(self) -> None:
        self._flush()

    def sync_and_close(self) -> Staged:
        try:
            os.fsync(self.fd)
        except OSError as err:  # NFS reports a full disk only here
            if err.errno in _FULL_ERRNOS:
                raise _storage_full() from err
            raise
        os.close(self.fd)
        self.fd = -1
        return self._staged()

    def close_unsynced(self) -> Staged:
        os.close(self.fd)
        self.fd = -1
        return self._staged()

    def _staged(self) -> Staged:
        return Staged(
            path=self.path, size=self.size, md5=self.md5.hexdigest() if self.md5 is not None else ""
        )

    def abort(self) -> None:
        if self.fd >= 0:
            with suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        with suppress(FileNotFoundError):
            os.unlink(self.path)


async def stage_stream(
    tmp_dir: Path, chunks: AsyncIterable[bytes], max_bytes: int = 0, sync: bool = True, hashed: bool = True
) -> Staged:
    """Stream an upload body into a new temp file; see the module docstring for why.

    ``hashed=False`` leaves ``md5`` empty (an archive to unpack needs no MD5 of its own; hashing
    83 MB costs the event loop 0.15 s): ``with_md5`` computes it should it be needed after all.

    Writes happen on the event loop (1 MiB at a time, which is quick); only the final fsync, which
    can take seconds for a large file, goes to a thread. Any exception, including a client
    disconnect (CancelledError), removes the temp file before propagating.
    """
    writer = _TempWriter(tmp_dir, max_bytes, hashed)
    try:
        async for chunk in chunks:
            writer.write(chunk)
        writer.flush_pending()
        if not sync:  # the caller syncs the filesystem before it commits (see sync_filesystem)
            return writer.close_unsynced()
    except BaseException:
        writer.abort()
        raise
    return await _sync_off_loop(writer)


def _abort_after(done: asyncio.Future[Staged], writer: _TempWriter) -> None:
    if not done.cancelled():
        done.exception()  # retrieved so asyncio does not log it: the caller is gone
    writer.abort()


async def _sync_off_loop(writer: _TempWriter) -> Staged:
    """fsync in a thread; if the caller is cancelled meanwhile, clean up once the thread is done.

    The thread owns the file descriptor until it returns, so closing it from here on cancellation
    could close a descriptor number already reused by someone else.
    """
    import asyncio

    task = asyncio.ensure_future(asyncio.to_thread(writer.sync_and_close))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda done: _abort_after(done, writer))
        raise
    except BaseException:
        writer.abort()
        raise


def stage_fileobj(
    tmp_dir: Path,
    src: BinaryIO,
    max_bytes: int = 0,
    chunk: int = CHUNK,
    sync: bool = True,
    head: Iterable[bytes] = (),
) -> Staged:
    """Copy a readable binary stream (an archive member, a local file) into a new temp file;
    ``head``: its first bytes, already read from it.

    ``sync=False`` leaves the fsync to the caller, who must call ``sync_filesystem`` before it
    commits: one flush for thousands of small DICOM files instead of one each.
    """
    writer = _TempWriter(tmp_dir, max_bytes)
    try:
        for data in head:
            writer.write(data)
        while data := src.read(chunk):
            writer.write(data)
        writer.flush_pending()
        return writer.sync_and_close() if sync else writer.close_unsynced()
    except BaseException:
        writer.abort()
        raise


def hold_or_stage(tmp_dir: Path, src: BinaryIO, limit: int = HOLD_UP_TO) -> Held | Staged:
    """Read a stream into memory if it has at most ``limit`` bytes; otherwise stage it on disk
    (unsynced, like ``stage_fileobj(..., sync=False)``)."""
    parts: list[bytes] = []
    size = 0
    while size <= limit and (data := src.read(limit + 1 - size)):
        parts.append(data)
        size += len(data)
    if size <= limit:
        return Held(b"".join(parts))
    return stage_fileobj(tmp_dir, src, sync=False, head=parts)


async def hold_stream(chunks: AsyncIterable[bytes], limit: int) -> Held:
    """Read a small request body into memory; TooLarge past ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"The file is larger than the limit of {limit} bytes for one DICOM object.")
        parts.append(chunk)
    return Held(b"".join(parts))


def write_new(held: Held, dest: Path, journal: Path | None = None) -> str:
    """Create ``dest`` with the held bytes and answer their MD5; Conflict (nothing written) if the
    name is taken.

    Not atomic to a reader of ``dest`` itself: meant for files no row names yet (a batch's files in
    a prearchive folder, indexed at its commit). ``dest`` is noted in this process's journal first,
    so recovery removes it should the process die before that commit (``journal``: that folder,
    when the caller has it at hand); the caller syncs the filesystem before it commits, and has
    made ``dest``'s folder (once for all its files).
    """
    folder = journal or folder_for(dest)
    if folder is not None:
        note(folder, "place", str(dest))
    return write_chunks_new((held.data,), dest)[1]


def write_chunks_new(chunks: Iterable[bytes], dest: Path) -> tuple[int, str]:
    """Create ``dest`` with ``chunks``: (size, MD5); Conflict (nothing written) if the name is
    taken, and no file left if ``chunks`` fails. The same contract as ``write_new`` (the caller
    journals ``dest`` and syncs the filesystem before it commits), for a file streamed rather than
    held: a zip-import helper process writes archive members this way, straight to their session
    folder."""
    fd = _create(dest)
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        for data in chunks:
            md5.update(data)
            size += len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
    except BaseException as err:
        os.close(fd)
        os.unlink(dest)
        if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
            raise _storage_full() from err
        raise
    os.close(fd)
    return size, md5.hexdigest()


def _create(dest: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        try:
            return os.open(dest, flags, 0o644)
        except FileNotFoundError:  # the folder went meanwhile (a move, by hand): made again
            make_dirs(dest.parent, sync=False)
            return os.open(dest, flags, 0o644)
    except FileExistsError:
        raise Conflict(f"The file '{dest.name}' already exists.") from None
    except OSError as err:
        raise _storage_full() if err.errno in _FULL_ERRNOS else err from None


def move_new(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest`` only if ``dest`` does not exist, without a check-then-act race.

    One ``renameat2(RENAME_NOREPLACE)`` where the system has it; else a hard link, which fails
    atomically if the name is taken, and the old name unlinked afterwards.
    """
    try:
        if rename_noreplace(src, dest):
            return
        os.link(src, dest, follow_symlinks=False)
    except FileExistsError:
        raise Conflict(f"The file '{dest.name}' already exists.") from None
    except OSError as err:
        if err.errno not in _NO_LINK_ERRNOS:
            raise
        # No hard links on this filesystem: fall back to a check then rename, which only a
        # concurrent writer of the very same path could race.
        if os.path.lexists(dest):
            raise Conflict(f"The file '{dest.name}' already exists.") from None
        os.rename(src, dest)
        return
    with suppress(FileNotFoundError):
        os.unlink(src)


def place(staged: Staged, dest: Path, overwrite: bool, sync: bool = True) -> None:
    """Make a staged file visible at ``dest`` in one atomic step, durable once this returns.

    Without ``overwrite`` an existing file raises Conflict and is left untouched; the staged file
    is kept in that case so the caller decides (usually ``discard``). ``sync=False`` skips the
    folder fsyncs: the caller calls ``sync_filesystem`` once before it commits.
    """
    make_dirs(dest.parent, sync)
    if dest.is_dir() and not dest.is_symlink():
        raise Conflict(f"'{dest.name}' is a folder; a file cannot replace it.")
    _journal(staged, dest)
    try:
        if overwrite:
            os.replace(staged.path, dest)
        else:
            move_new(staged.path, dest)
    except OSError as err:
        if err.errno in _FULL_ERRNOS:
            raise _storage_full() from err
        raise
    if sync:
        fsync_dir(dest.parent)


def _journal(staged: Staged, dest: Path) -> None:
    """Note ``dest`` in this process's journal, for recovery should the process die before the commit;
    a file staged elsewhere (the DICOM spool, a job's outputs) is noted in this process's folder of
    the data folder, never in a journal-like file beside it."""
    try:
        journal = staged.path.parent if is_own_folder(staged.path.parent) else folder_for(dest)
    except OSError as err:
        if err.errno in _FULL_ERRNOS:
            raise _storage_full() from err
        raise
    if journal is not None:
        note(journal, "place", str(dest))


def discard(staged: Staged) -> None:
    """Drop a staged file that will not be placed; safe to call twice or after ``place``."""
    with suppress(FileNotFoundError):
        os.unlink(staged.path)


def _prune(start: Path, stop_at: Path | None) -> None:
    """Remove ``start`` and its ancestors while they are empty, stopping below ``stop_at``."""
    if stop_at is None:
        return
    stop = Path(os.path.abspath(stop_at))
    current = Path(os.path.abspath(start))
    if not current.is_relative_to(stop):
        raise ValueError(f"{start} is not inside {stop_at}")
    while current != stop:
        try:
            current.rmdir()
        except FileNotFoundError:
            pass
        except OSError:  # not empty (or not ours to remove): stop pruning
            return
        current = current.parent


def remove_file(path: Path, stop_at: Path | None = None) -> None:
    """Delete one file (a missing one is fine) and the folders it leaves empty, up to ``stop_at``."""
    with suppress(FileNotFoundError):
        os.unlink(path)
    _prune(path.parent, stop_at)


def remove_tree(path: Path, tmp_dir: Path | None, stop_at: Path | None = None) -> None:
    """Delete a folder tree (a missing one is fine) and the folders it leaves empty.

    The tree is first renamed into this process's own folder under ``tmp_dir`` (``DATA/tmp``), so
    it disappears from view at once; if the deletion then fails half-way, or the process dies, what
    is left is in that folder, which recovery deletes with the dead process's other temporaries,
    never a half tree at the real path. Never beside it: there a leftover would share the archive's
    names with the users' files, and a name recovery deleted could be a user's.
    Without ``tmp_dir`` (or across filesystems) the tree is deleted where it is.
    """
    if path.is_symlink() or path.is_file():
        remove_file(path, stop_at)
        return
    if not path.exists():
        _prune(path.parent, stop_at)
        return
    doomed = path
    if tmp_dir is not None:
        doomed = process_tmp_dir(tmp_dir) / f"deleting-{secrets.token_hex(8)}"
        try:
            os.rename(path, doomed)
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
            doomed = path
    shutil.rmtree(doomed)
    _prune(path.parent, stop_at)


def with_md5(staged: Staged) -> Staged:
    """``staged`` with its MD5 (read back from the file when it was staged without one)."""
    return staged if staged.md5 else Staged(staged.path, staged.size, md5_of(staged.path))


def md5_of(path: Path) -> str:
    """MD5 hex digest of a file, read in 1 MiB blocks into one reused buffer."""
    digest = hashlib.md5(usedforsecurity=False)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()
