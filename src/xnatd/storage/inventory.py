"""What is on disk, as ``xnatd verify`` and ``xnatd backup`` see it: the files under a root, the
temporaries a dead process left behind, and moves that never delete data (quarantine)."""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path

# Names the writers give their temporaries in DATA/tmp (storage/files.py, tmpdirs.py, placement.py,
# moves.py): a crash between creating one and renaming or deleting it leaves it behind. Nothing in
# DATA/tmp is a user's, so the prefix is enough. The archive and prearchive trees hold no temporaries
# at all (every writer stages, sets aside and deletes inside its own process folder in DATA/tmp):
# there every name is a user's or a DICOM file's, and none is ever judged by its look.
TEMP_PREFIXES = (".stage-", "backup-", ".deleting-", ".aside-")


def age_of(path: Path) -> float:
    """Seconds since the entry last changed. A rename keeps the modification time but sets the
    change time, so a file just put aside counts as young."""
    st = path.lstat()
    return time.time() - max(st.st_mtime, st.st_ctime)


def walk(root: Path, under: str = "") -> list[str]:
    """Every file below ``root / under``, as POSIX paths relative to ``root`` (a link to a folder
    counts as a file and is not followed)."""
    found: list[str] = []
    start = root / under if under else root
    if not start.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(start):
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                dirnames.remove(d)
                found.append((here / d).relative_to(root).as_posix())
        found += [(here / name).relative_to(root).as_posix() for name in filenames]
    return found


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
