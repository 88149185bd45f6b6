"""What is on disk, as ``xnatd verify`` and ``xnatd backup`` see it: the files under a root, the
temporaries a dead process left behind, and moves that never delete data (quarantine)."""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

# Names the writers give their temporaries (storage/files.py, tmpdirs.py, placement.py, moves.py): a
# crash between creating one and renaming or deleting it leaves it behind. Flat in DATA/tmp, where
# nothing is a user's, the prefix is enough (``backup-*`` only from older versions: backups now wait in
# their process's own folder).
TEMP_PREFIXES = (".stage-", "backup-", ".deleting-", ".aside-")
# Their exact shapes, random token included. In the archive and prearchive trees users name the files,
# so there only these are temporaries: a user's ``backup-notes.txt`` or ``.stage-1.part`` is a file.
_TEMP_NAME = re.compile(
    r"\.stage-[0-9a-f]{24}\.part|\.stage-proc-[0-9a-f]{16}|backup-[0-9a-f]{32}"
    r"|\.deleting-[0-9a-f]{16}|\.aside-[0-9a-f]{16}"
)


def is_temporary(name: str) -> bool:
    """A name only a writer of temporaries gives (see ``_TEMP_NAME``)."""
    return _TEMP_NAME.fullmatch(name) is not None


def age_of(path: Path) -> float:
    """Seconds since the entry last changed. A rename keeps the modification time but sets the
    change time, so a file just put aside counts as young."""
    st = path.lstat()
    return time.time() - max(st.st_mtime, st.st_ctime)


@dataclass(frozen=True)
class Walked:
    files: list[str]  # relative POSIX paths of the regular files (and symlinks)
    temporaries: list[Path]  # temporary entries met on the way (not descended into)


def walk(root: Path, under: str = "") -> Walked:
    """Every file below ``root / under`` (relative to ``root``), temporaries set apart."""
    found: list[str] = []
    temps: list[Path] = []
    start = root / under if under else root
    if not start.is_dir():
        return Walked(found, temps)
    for dirpath, dirnames, filenames in os.walk(start):
        here = Path(dirpath)
        for d in list(dirnames):
            if is_temporary(d) or (here / d).is_symlink():
                dirnames.remove(d)
                if is_temporary(d):
                    temps.append(here / d)
                else:
                    found.append((here / d).relative_to(root).as_posix())
        for name in filenames:
            if is_temporary(name):
                temps.append(here / name)
            else:
                found.append((here / name).relative_to(root).as_posix())
    return Walked(found, temps)


def temporaries(folder: Path) -> list[Path]:
    """The temporary entries directly in ``folder`` (DATA/tmp)."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIXES) and not p.name.endswith(".keep")]


def remove_entry(path: Path) -> bool:
    """Delete a temporary file or folder; False when it was already gone (another process won)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    return True


def quarantine(path: Path, root: Path, into: Path) -> Path:
    """Move ``path`` (below ``root``) to the same relative place below ``into``: out of the archive's
    view, never deleted."""
    dest = into / path.relative_to(root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(path, dest)
    return dest


def link_or_copy(src: Path, dest: Path) -> bool:
    """Hard-link ``src`` to ``dest`` (instant, no extra space; archive files are never rewritten in
    place, so the link stays a faithful copy), else copy it. True when linked."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    shutil.copy2(src, dest)
    return False
