"""Each process's own temporary folder under ``DATA/tmp``, and the reclaiming of a dead one's.

Start-up recovery used to delete a temporary only once older than ``recover_after``, since another
live process (another worker, another host) may own a young one; right after a crash the dead
process's temporaries therefore stayed for an hour. Owning a folder under an exclusive ``flock``
tells the two apart at once: a lock that can be taken means its owner is dead.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from xnatd.errors import StorageFull

OWNER_LOCK = "owner.lock"
_owned: dict[Path, tuple[int, Path, int]] = {}  # tmp root -> (pid, its folder, the locked fd)
_owned_guard = threading.Lock()


def process_tmp_dir(root: Path) -> Path:
    """This process's own folder under ``root`` (``DATA/tmp``): ``{host}-{pid}-{start}``, made on first use.

    The process holds an exclusive ``flock`` on ``owner.lock`` inside it for its whole life, so a
    recovering process can tell a dead owner's leftovers (the lock can be taken: delete them now,
    whatever their age) from a live one's (left alone), on this host or another. The folder is built
    under a ``.stage-`` name and renamed once locked, so it is never seen unlocked under its final name.
    A forked child gets a folder of its own (the cache is keyed by PID).
    """
    key = Path(os.path.abspath(root))
    with _owned_guard:
        held = _owned.get(key)
        if held is not None and held[0] == os.getpid() and held[1].is_dir():
            return held[1]
        if held is not None and held[0] == os.getpid():
            os.close(held[2])  # our folder was removed under us (by hand): make a new one
            _forget_journal(held[1])
        folder, fd = _make_owned(key)
        _owned[key] = (os.getpid(), folder, fd)
        return folder


def _make_owned(root: Path) -> tuple[Path, int]:
    root.mkdir(parents=True, exist_ok=True)
    building = root / f".stage-proc-{secrets.token_hex(8)}"
    building.mkdir()
    fd = os.open(building / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    start = time.strftime("%Y%m%dT%H%M%S")
    final = root / f"{socket.gethostname()}-{os.getpid()}-{start}-{secrets.token_hex(3)}"
    os.rename(building, final)
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final, fd


def is_own_folder(path: Path) -> bool:
    """Whether ``path`` is this process's own folder (``process_tmp_dir``). A folder that merely
    holds files named ``owner.lock`` and ``placed.log`` (a job's outputs) is not one."""
    folder = Path(os.path.abspath(path))
    pid = os.getpid()
    return any(owner == pid and held == folder for owner, held, _fd in list(_owned.values()))


def is_process_dir(path: Path) -> bool:
    """A per-process temporary folder (see ``process_tmp_dir``), as opposed to a flat temporary."""
    return path.is_dir() and not path.is_symlink() and (path / OWNER_LOCK).is_file()


JOURNAL = "placed.log"
JOURNAL_ROTATE = 4 << 20  # bytes (some 30,000 paths)


def note(folder: Path, *fields: str) -> None:
    """Append one line to ``folder``'s journal (``folder`` being a process folder; else nothing).

    ``place`` and ``Moves.move`` note every path they make visible before the database commit that
    names it, ``Placement`` every file it moves aside (``aside``, the backup in this folder, the path
    it came from); if the process dies before that commit, recovery finds them here (``journal_of``)
    and takes the paths back out of view, or puts the backups back. Not fsynced: it guards against a
    killed process, whose page cache survives; after a power cut ``xnatd verify`` still finds such
    files as orphans. The journal stays open between notes (a zip import notes thousands of paths):
    one ``write`` per note.
    """
    note_all(folder, [fields])


def note_all(folder: Path, lines: Iterable[Iterable[str]]) -> None:
    """``note`` each line of fields, in one ``write`` (the places of a whole chunk of a zip)."""
    line = "".join("\t".join(fields) + "\n" for fields in lines).encode()
    with _journals_guard:
        journal = _journal(folder)
        if journal is None:
            return
        with _full_disk("to store this file"):
            os.write(journal[0], line)
        journal[1] += len(line)
        if journal[1] > JOURNAL_ROTATE:  # one older generation is kept: a transaction placing more is rare
            os.close(journal[0])
            del _journals[folder]
            with suppress(FileNotFoundError):
                os.replace(folder / JOURNAL, folder / f"{JOURNAL}.1")


_journals: dict[Path, list[int]] = {}  # process folder -> [open journal fd, its size]; this process's
_journals_pid = os.getpid()
_journals_guard = threading.Lock()


def _journal(folder: Path) -> list[int] | None:
    global _journals_pid
    if _journals_pid != os.getpid():  # a forked child: the parent's descriptors are not its journals
        _journals.clear()
        _journals_pid = os.getpid()
    journal = _journals.get(folder)
    if journal is None:
        if folder.name.startswith(".") or not (folder / OWNER_LOCK).exists():
            return None
        with _full_disk("to store this file"):
            fd = os.open(folder / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        journal = _journals[folder] = [fd, os.fstat(fd).st_size]
    return journal


def _forget_journal(folder: Path) -> None:
    with _journals_guard:
        journal = _journals.pop(folder, None)
        if journal is not None:
            with suppress(OSError):
                os.close(journal[0])


def own_folder(root: Path) -> Path:
    """This process's folder under ``root`` (``DATA/tmp``), made if need be; a full disk is StorageFull."""
    with _full_disk("for this change"):
        return process_tmp_dir(root)


def note_under(root: Path, *fields: str) -> None:
    """``note`` into this process's folder under ``root`` (``DATA/tmp``), made if need be."""
    note(own_folder(root), *fields)


def set_aside(root: Path, path: Path, prefix: str) -> Path:
    """Move ``path`` (a file or folder) out of view into this process's folder under ``root``, named
    ``prefix`` and a random token, after the journal line ``aside BACKUP PATH``: if the process dies
    before its commit, recovery puts it back (``verify._put_back``). Answers where it went."""
    folder = own_folder(root)
    backup = folder / f"{prefix}{secrets.token_hex(16)}"
    note(folder, "aside", str(backup), str(path))
    os.replace(path, backup)
    return backup


@contextmanager
def _full_disk(purpose: str) -> Iterator[None]:
    """A full disk (or quota) met inside is StorageFull, a 507 for HTTP; other errors pass."""
    try:
        yield
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(f"No space left on the archive filesystem {purpose}.") from err
        raise


def folder_for(dest: Path) -> Path | None:
    """This process's folder in the data folder holding ``dest`` (made if need be), for a file placed
    from elsewhere than a staging folder (the DICOM spool, a job's outputs): the data folder is the
    outermost ancestor with ``tmp`` and ``prearchive`` in it and ``dest`` in its ``archive`` or
    ``prearchive``. Outermost: projects named ``tmp`` and ``prearchive`` make ``DATA/archive`` look
    like one too. None when ``dest`` is in no data folder."""
    pid = os.getpid()
    path = Path(os.path.abspath(dest))
    for root, (owner, folder, _fd) in list(_owned.items()):
        if owner == pid and path.is_relative_to(root.parent):
            return folder
    for parent in reversed(path.parents):
        inside = path.relative_to(parent).parts
        if (
            len(inside) > 1
            and inside[0] in ("archive", "prearchive")
            and (parent / "tmp").is_dir()
            and (parent / "prearchive").is_dir()
        ):
            return process_tmp_dir(parent / "tmp")
    return None


def journal_of(folder: Path) -> list[list[str]]:
    """The lines ``note`` wrote into a (dead process's) folder, split into their fields."""
    lines: list[list[str]] = []
    for name in (f"{JOURNAL}.1", JOURNAL):
        with suppress(FileNotFoundError):
            text = (folder / name).read_text(errors="replace")
            lines += [line.split("\t") for line in text.splitlines() if line]
    return lines


def reclaim_dead(
    root: Path, repair: bool = True, before_delete: Callable[[Path], None] | None = None
) -> list[Path]:
    """The per-process folders under ``root`` whose owner is dead (their lock can be taken).

    With ``repair`` each is renamed out of view and deleted while the lock is held, so two processes
    recovering at once never both act on it. A live owner's folder (this process's included: flock
    conflicts between two descriptions of the same file) is never listed.
    """
    found: list[Path] = []
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not is_process_dir(entry):
            continue
        try:
            fd = os.open(entry / OWNER_LOCK, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # reclaimed by another process meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its owner is alive
            if not entry.exists():
                continue
            found.append(entry)
            if repair and before_delete is not None:
                before_delete(entry)  # still locked: nobody else acts on it meanwhile
            if repair:
                doomed = root / f".deleting-{secrets.token_hex(8)}"
                with suppress(FileNotFoundError):
                    os.rename(entry, doomed)
                    shutil.rmtree(doomed, ignore_errors=True)
        finally:
            os.close(fd)
    return found


def release(root: Path) -> None:
    """Give up this process's folder under ``root``: deleted when nothing but the lock and the journal
    are left, then unlocked. Run at a clean exit (atexit) and by tests that unmount the filesystem
    afterwards."""
    key = Path(os.path.abspath(root))
    with _owned_guard:
        held = _owned.pop(key, None)
        if held is None or held[0] != os.getpid():
            return
        _, folder, fd = held
        _forget_journal(folder)
        with suppress(OSError):
            names = {p.name for p in folder.iterdir()}
            if names <= {OWNER_LOCK, JOURNAL, f"{JOURNAL}.1"}:  # nothing staged is left
                for name in names:
                    (folder / name).unlink()
                folder.rmdir()
        os.close(fd)


def _release_all() -> None:
    for root in list(_owned):
        release(root)


atexit.register(_release_all)
