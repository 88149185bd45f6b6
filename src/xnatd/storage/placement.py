"""Put staged files into the archive as one unit with the database transaction around it.

Files are renamed into place before the database commits; if the commit fails, ``rollback`` puts
back what was there before (the old copy of an overwritten file, or nothing). After a successful
commit, ``commit`` drops the backups. Either way no half of an upload stays visible.

The old copy of a file replaced or removed is moved aside into this process's own folder in
``DATA/tmp`` (``tmpdirs``), and a journal line ``aside BACKUP DEST`` is written before that rename:
if the process is killed before the commit, start-up recovery (``services/operations/verify._undo_dead``) puts
the backup back when the database row for DEST still describes it, and drops it otherwise.

Only files are ever replaced: a file never takes the place of a folder holding files, nor a folder
that of a file (a Conflict, before anything moves). Moving the folder aside as the "old copy" would
drop every file in it at the commit.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from xnatd.errors import Conflict
from xnatd.storage.durability import make_dirs
from xnatd.storage.files import Staged, discard, place
from xnatd.storage.tmpdirs import set_aside

BACKUP_PREFIX = "backup-"


class Placement:
    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self._placed: list[Path] = []
        self._backups: list[tuple[Path, Path]] = []
        self._prune: list[tuple[Path, Path]] = []
        self._made: list[Path] = []  # folders made for placed files: removed again by a rollback

    def put(self, staged: Staged, dest: Path, sync: bool = True, replace: bool = True) -> None:
        """Rename ``staged`` to ``dest``; ``sync=False`` leaves the folder fsyncs to one
        ``sync_filesystem`` by the caller before it commits (thousands of extracted files).

        ``replace``: the file at ``dest`` is one the caller means to replace (its row says so).
        Otherwise a file found there is a Conflict, never replaced: with no committed row it is
        another transaction's, placed a moment ago (or left by a crash, for ``xnatd verify``). A
        folder at ``dest`` (an empty one is removed), or a file where ``dest`` needs a folder, is
        a Conflict either way, and nothing is moved."""
        self._made += make_dirs(dest.parent, sync)
        if _is_folder(dest):
            if not _remove_empty(dest):
                raise Conflict(f"'{dest.name}' is a folder; a file cannot take its place.")
        elif replace and os.path.lexists(dest):
            self._aside(dest)
        try:
            place(staged, dest, overwrite=replace, sync=sync)
        except IsADirectoryError:  # a folder made there meanwhile (another upload)
            raise Conflict(f"'{dest.name}' is a folder; a file cannot take its place.") from None
        self._placed.append(dest)

    def remove(self, path: Path, stop_at: Path) -> None:
        """Delete a file as part of the unit: it is moved aside and only dropped on commit.

        Directories it leaves empty are removed on commit, up to (not including) ``stop_at``. A
        folder found where the file should be is left where it is (its files are not this file).
        """
        self._prune.append((path.parent, stop_at))
        if os.path.lexists(path) and not _is_folder(path):
            self._aside(path)

    def _aside(self, path: Path) -> None:
        """Move ``path`` into this process's folder, journalled first (see the module's docstring)."""
        self._backups.append((path, set_aside(self.tmp_dir, path, BACKUP_PREFIX)))

    def commit(self) -> None:
        for _dest, backup in self._backups:
            backup.unlink(missing_ok=True)
        for directory, stop_at in self._prune:
            _prune_empty(directory, stop_at)
        self._prune.clear()
        self._placed.clear()
        self._backups.clear()
        self._made.clear()

    def rollback(self) -> None:
        for dest in reversed(self._placed):
            dest.unlink(missing_ok=True)
        for folder in reversed(self._made):  # before the backups: one may be a file of that name
            _remove_empty(folder)
        for dest, backup in reversed(self._backups):
            if _is_folder(dest):
                _remove_empty(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(backup, dest)
        self._placed.clear()
        self._backups.clear()
        self._prune.clear()
        self._made.clear()


def relocate(path: Path, old: Path, new: Path, stop_at: Path) -> Path:
    """Where a file placed under folder ``old`` is now that the folder became ``new``.

    A file placed before the folder was renamed went along with it; one placed after it sits in a
    re-created ``old`` folder and is moved over, under another name if that one is taken; folders
    it leaves empty are removed up to ``stop_at``.
    """
    target = new / path.relative_to(old)
    if not path.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{target.stem}-{uuid.uuid4().hex[:8]}{target.suffix}")
    os.replace(path, target)
    _prune_empty(path.parent, stop_at)
    return target


def _is_folder(path: Path) -> bool:
    """A real folder, not a link to one."""
    return path.is_dir() and not path.is_symlink()


def _remove_empty(folder: Path) -> bool:
    """Remove ``folder`` if it is empty; whether it is gone."""
    try:
        folder.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _prune_empty(directory: Path, stop_at: Path) -> None:
    """Remove directories left empty by deletions, stopping at ``stop_at`` or the first non-empty one."""
    stop = stop_at.resolve()
    current = directory.resolve()
    while current != stop and stop in current.parents:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent


def drop(staged: list[Staged]) -> None:
    for s in staged:
        discard(s)
