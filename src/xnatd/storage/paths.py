"""Validation of every user-supplied name before it reaches the filesystem.

Upload file names, ``files/{path}`` URL tails, archive member names and resource labels all pass
through here, so the archive tree can never be escaped (``..``, absolute paths, symlinks) and a bad
name is a clear ``InvalidInput`` instead of an ``OSError`` deep inside a write.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from xnatd.errors import InvalidInput

MAX_PATH_CHARS = 1024
# Filesystems (ext4, xfs, NFS) limit one name to 255 *bytes*; counting UTF-8 bytes rather than
# characters keeps a long non-ASCII name from failing later with ENAMETOOLONG.
MAX_SEGMENT_BYTES = 255

_DRIVE = re.compile(r"^[A-Za-z]:")


def _control_char(text: str) -> str | None:
    for ch in text:
        if unicodedata.category(ch) == "Cc":
            return ch
    return None


def _segment_problem(segment: str) -> str | None:
    """Why one path segment cannot be a file or folder name, or None when it can."""
    try:
        size = len(segment.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if size > MAX_SEGMENT_BYTES:
        return f"a name is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def safe_relpath(name: str) -> PurePosixPath:
    """Return ``name`` as a normalised relative path, or raise InvalidInput saying what is wrong.

    Normalisation is deliberately limited to harmless forms (``a//b``, ``a/./b``, a trailing ``/``):
    anything that could point elsewhere (``..``, absolute, drive letters, backslashes, which some
    tools treat as separators) is refused rather than repaired, so what is stored is what was meant.
    """

    def bad(reason: str) -> InvalidInput:
        return InvalidInput(f"Invalid file path {name!r}: {reason}.")

    if not name:
        raise InvalidInput("Invalid file path: the path is empty.")
    if len(name) > MAX_PATH_CHARS:
        raise bad(f"it is longer than {MAX_PATH_CHARS} characters")
    ch = _control_char(name)
    if ch is not None:
        raise bad(f"it contains the control character {ch!r}")
    if "\\" in name:
        raise bad("backslashes are not allowed; use '/' between folders")
    if name.startswith("/") or _DRIVE.match(name):
        raise bad("absolute paths are not allowed")
    segments = [s for s in name.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise bad("'..' is not allowed")
    if not segments:
        raise bad("it names no file")
    for segment in segments:
        problem = _segment_problem(segment)
        if problem is not None:
            raise bad(problem)
    return PurePosixPath(*segments)


def safe_label(name: str, what: str) -> str:
    """Return ``name`` unchanged if it can be one directory name; ``what`` names it in the error.

    Labels are shown back to users exactly as given, so nothing is normalised here.
    """
    if not name:
        raise InvalidInput(f"The {what} is empty.")
    ch = _control_char(name)
    if ch is not None:
        raise InvalidInput(f"The {what} {name!r} contains the control character {ch!r}.")
    if "/" in name or "\\" in name:
        raise InvalidInput(f"The {what} {name!r} may not contain '/' or '\\'.")
    if name in (".", ".."):
        raise InvalidInput(f"The {what} may not be {name!r}.")
    problem = _segment_problem(name)
    if problem is not None:
        raise InvalidInput(f"The {what} {name!r} is not allowed: {problem}.")
    return name


def contained(root: Path, rel: PurePosixPath) -> Path:
    """Join ``rel`` onto ``root`` and refuse the result if it leaves ``root``.

    Symlinks in the parts that already exist are resolved, so a link planted inside the tree
    (or an archive folder replaced by one) cannot redirect a write outside it.
    """
    if rel.is_absolute() or ".." in rel.parts:
        raise InvalidInput(f"Invalid file path {str(rel)!r}: it leaves the archive folder.")
    joined = root / rel
    real_root = root.resolve()
    try:
        real = joined.resolve(strict=False)
    except (OSError, RuntimeError) as err:  # a symlink loop (RuntimeError before Python 3.13)
        raise InvalidInput(f"Invalid file path {str(rel)!r}: it cannot be resolved ({err}).") from err
    if real != real_root and not real.is_relative_to(real_root):
        raise InvalidInput(f"Invalid file path {str(rel)!r}: it leaves the archive folder.")
    return joined


def parents_of(path: str) -> list[str]:
    """The folders a relative path lies in, outermost first: ``a/b/c`` -> ``a``, ``a/b``."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def file_and_folder(paths: Iterable[str]) -> str | None:
    """A path that a set of file paths names both as a file and as a folder (``x`` and ``x/y``),
    or None: one folder on disk cannot also be a file."""
    named = set(paths)
    for path in sorted(named):
        for parent in parents_of(path):
            if parent in named:
                return parent
    return None
