"""Making writes durable: fsyncs of files and folders, a whole filesystem's sync, writeback started
early. Every archive change goes through these before its database commit (``files``, ``moves``,
``ingest``)."""

from __future__ import annotations

import errno
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from xnatd.errors import Conflict

if TYPE_CHECKING:  # imported where used: the zip-import helper processes do without it
    import ctypes

_SYNC_FILE_RANGE_WRITE = 2


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path, sync: bool = True) -> list[Path]:
    """``mkdir -p`` with each new folder's entry made durable (``sync``), so a crash cannot lose it,
    or left to a later filesystem sync. Answers the folders it made, outermost first (a caller that
    undoes its work removes them again); a file where a folder is needed is a Conflict."""
    missing: list[Path] = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        probe = probe.parent
    made: list[Path] = []
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:  # outermost first: the first one taken is the file in the way
            if not directory.is_dir():
                raise Conflict(f"'{directory.name}' is a file; it cannot hold other files.") from None
            continue
        made.append(directory)
        if sync:
            fsync_dir(directory.parent)
    return made


def fsync_file(path: Path) -> None:
    """Make one already written file durable (see ``stage_fileobj(..., sync=False)``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path, root: Path, flushed: set[Path] | None = None) -> None:
    """fsync ``folder`` and its parents up to ``root``: new entries and new folders become durable.

    ``flushed``: folders already fsynced by this caller (skipped, and added to): several trees that
    share their upper folders flush each of them once."""
    current = Path(os.path.abspath(folder))
    stop = Path(os.path.abspath(root))
    while True:
        if flushed is not None:
            if current in flushed:
                return
            flushed.add(current)
        fsync_dir(current)
        if current == stop or stop not in current.parents:
            return
        current = current.parent


def sync_filesystem(path: Path) -> None:
    """Flush every pending write of the filesystem holding ``path`` (Linux ``syncfs``).

    Batch imports write thousands of small files; one filesystem flush before the database commit
    gives them the same durability as an fsync each, at a fraction of the cost.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = _libc()
        if libc is not None and libc.syncfs(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


def start_writeback(fd: int, offset: int, length: int) -> bool:
    """Start writing a range of a file to disk without waiting for it (Linux ``sync_file_range``
    with ``SYNC_FILE_RANGE_WRITE``); whether it was started. Not durable by itself: the fsync is
    still needed, but then has little left to do. Without it (not Linux) the fsync does all."""
    libc = _libc()
    if libc is None or not hasattr(libc, "sync_file_range"):
        return False
    return bool(libc.sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE) == 0)


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def rename_noreplace(src: Path, dest: Path) -> bool:
    """Rename ``src`` to ``dest`` in one step that fails if ``dest`` exists (Linux ``renameat2``
    with ``RENAME_NOREPLACE``): FileExistsError then. False when this system or filesystem cannot
    (the caller falls back to a hard link)."""
    libc = _libc()
    if libc is None or not hasattr(libc, "renameat2"):
        return False
    if libc.renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dest), _RENAME_NOREPLACE) == 0:
        return True
    err = _errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dest))


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


@functools.cache
def _libc() -> ctypes.CDLL | None:
    import ctypes
    import ctypes.util

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.syncfs.argtypes = [ctypes.c_int]
        if hasattr(lib, "renameat2"):
            lib.renameat2.argtypes = [
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_uint,
            ]
        if hasattr(lib, "sync_file_range"):
            lib.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        return lib
    except (OSError, AttributeError):  # not Linux/glibc: os.sync() does the job, more broadly
        return None
