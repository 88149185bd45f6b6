"""Renames within the data folder as one unit with a database transaction.

Archiving a prearchive session moves its files into the archive tree; on the same filesystem that is
a rename per file, never a copy. If the database commit fails, ``rollback`` moves everything back
(and restores what a replacement pushed aside), so neither side is left half-moved.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path

from xnatd.errors import Conflict
from xnatd.storage.durability import fsync_tree, make_dirs
from xnatd.storage.files import move_new
from xnatd.storage.tmpdirs import note_under, set_aside


class Moves:
    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self._done: list[tuple[Path, Path]] = []
        self._aside: list[tuple[Path, Path]] = []

    def move(self, src: Path, dest: Path) -> None:
        """Rename ``src`` to ``dest``; an existing ``dest`` is a Conflict (nothing is overwritten,
        not even a file another transaction placed between a check and the rename)."""
        make_dirs(dest.parent, sync=False)
        if os.path.lexists(dest):
            raise Conflict(f"The file '{dest.name}' already exists.")
        note_under(self.tmp_dir, "move", str(src), str(dest))  # recovery puts it back if we die
        move_new(src, dest)
        self._done.append((src, dest))

    def move_folder(self, src: Path, dest: Path) -> None:
        """Rename the folder ``src`` to ``dest``, which must be absent or an empty folder: archiving
        a new scan moves its prearchive folder in one rename instead of one per file. Journalled as
        ``movedir``: recovery moves it back if its commit never happened (``verify._move_undone``)."""
        make_dirs(dest.parent, sync=False)
        if os.path.lexists(dest) and not is_empty_folder(dest):
            raise Conflict(f"The folder '{dest.name}' already exists and is not empty.")
        note_under(self.tmp_dir, "movedir", str(src), str(dest))
        try:
            os.rename(src, dest)  # onto an empty folder only: one filled meanwhile is refused
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            raise Conflict(f"The folder '{dest.name}' already exists and is not empty.") from None
        self._done.append((src, dest))

    def put_aside(self, path: Path) -> None:
        """Take a file or folder out of view; it is deleted on commit and restored on rollback.

        It goes into this process's own folder after the journal line ``aside BACKUP PATH``, so if
        the process dies before the commit, recovery puts it back (``verify._put_back``)."""
        if not os.path.lexists(path):
            return
        self._aside.append((path, set_aside(self.tmp_dir, path, "aside-")))

    def rollback(self) -> None:
        for src, dest in reversed(self._done):
            if os.path.lexists(dest):
                make_dirs(src.parent, sync=False)
                _put_back(dest, src)
        for path, aside in reversed(self._aside):
            make_dirs(path.parent, sync=False)
            os.rename(aside, path)
        self._done.clear()
        self._aside.clear()

    def make_durable(self, root: Path, flushed: set[Path] | None = None) -> None:
        """fsync every folder the renames changed (and their parents up to ``root``, which covers
        folders made for them), so the renames survive a power cut once the caller commits. The
        files themselves were flushed when they were filed. Cheaper than a filesystem sync, which
        would also flush every other writer's data.

        ``flushed``: folders fsynced already, shared by the ``Moves`` of one transaction once all
        of them are done (a folder flushed after its last change need not be flushed again)."""
        flushed = set() if flushed is None else flushed
        for pair in [*self._done, *self._aside]:
            for folder in {path.parent for path in pair}:
                if folder.is_dir():
                    fsync_tree(folder, root, flushed)

    def commit(self) -> None:
        for _path, aside in self._aside:
            if aside.is_dir() and not aside.is_symlink():
                shutil.rmtree(aside, ignore_errors=True)
            else:
                aside.unlink(missing_ok=True)
        self._done.clear()
        self._aside.clear()


def _put_back(dest: Path, src: Path) -> None:
    """Undo the rename ``src`` -> ``dest``. An import may have placed new files at ``src`` meanwhile
    (it found the prearchive session being archived before the claim): a folder merges back into
    the one made again, file by file, and a file whose name was taken again is kept beside it,
    never replacing the other."""
    if not os.path.lexists(src):
        os.rename(dest, src)
    elif dest.is_dir() and not dest.is_symlink() and src.is_dir():
        for entry in os.listdir(dest):
            _put_back(dest / entry, src / entry)
        os.rmdir(dest)
    else:
        os.rename(dest, src.with_name(f"{src.name}.{uuid.uuid4().hex[:8]}"))


def is_empty_folder(path: Path) -> bool:
    """A real folder (not a link to one) with nothing in it."""
    if path.is_symlink() or not path.is_dir():
        return False
    with os.scandir(path) as entries:
        return next(entries, None) is None
