"""``xnatd backup DEST`` and ``xnatd restore SRC --data DIR``.

A backup is a database snapshot plus a manifest (area, path, size, MD5) of every archive and
prearchive file that snapshot names, and the files themselves: hard links when DEST is on the data
folder's filesystem (instant; files are never rewritten in place, a replacement is a new file renamed
over the old name, so a link keeps the old content), copies otherwise. The manifest is read from the
snapshot itself, so it and the database agree; each copied file is checked against it, and a file
deleted or replaced after the snapshot is listed as such instead of being silently wrong.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import Connection

from xnatd import config
from xnatd.db import snapshot
from xnatd.db import verify as qv
from xnatd.db.engine import Database
from xnatd.errors import InvalidInput
from xnatd.services.access.context import Context
from xnatd.storage import inventory
from xnatd.storage.files import md5_of

MANIFEST = "manifest.tsv"
INFO = "backup.json"
SQLITE_FILE = "database.sqlite"
PG_DUMP = "database.pgdump"


@dataclass
class Outcome:
    files: int = 0
    linked: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)


def _empty_folder(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidInput(f"{what} {path} must be an empty (or new) folder.")
    path.mkdir(parents=True, exist_ok=True)


def _rows(conn: Connection) -> Iterator[tuple[str, str, int, str]]:
    for r in qv.archive_files(conn):
        yield "archive", str(PurePosixPath(r["directory"]) / r["path"]), int(r["size"]), str(r["md5"])
    for r in qv.prearchive_files_of(conn):
        rel = f"{r['directory']}/SCANS/{r['scan_dir']}/DICOM/{r['name']}"
        yield "prearchive", rel, int(r["size"]), str(r["md5"])


@contextlib.contextmanager
def _snapshot(ctx: Context, dest: Path) -> Iterator[tuple[str, Connection]]:
    if ctx.db.is_sqlite:
        snapshot.sqlite_copy(ctx.db.url, dest / SQLITE_FILE)
        copy = Database(f"sqlite:///{(dest / SQLITE_FILE).resolve()}")
        try:
            with copy.read() as conn:
                yield "sqlite", conn
        finally:
            copy.dispose()
            snapshot.sqlite_settle(dest / SQLITE_FILE)
    else:
        with snapshot.pg_snapshot(ctx.db, dest / PG_DUMP) as conn:
            yield "postgresql", conn


def backup(
    ctx: Context, dest: Path, md5: bool = True, progress: Callable[[int], None] | None = None
) -> Outcome:
    """``md5=False`` checks each copy's size only: a hard link is the very same inode, so reading a
    whole large archive again buys little (``xnatd verify`` checks the MD5s)."""
    _empty_folder(dest, "The backup folder")
    out = Outcome()
    data = ctx.settings.data
    with _snapshot(ctx, dest) as (backend, conn), open(dest / MANIFEST, "w", encoding="utf-8") as manifest:
        for area, rel, size, digest in _rows(conn):
            src, copy = data / area / rel, dest / area / rel
            try:
                out.linked += inventory.link_or_copy(src, copy)
            except FileNotFoundError:
                out.problems.append(f"{area}/{rel}: deleted after the snapshot (or missing), not copied")
                continue
            if copy.stat().st_size != size or (md5 and md5_of(copy) != digest):
                out.problems.append(f"{area}/{rel}: differs from the snapshot (replaced since?)")
            manifest.write(f"{area}\t{rel}\t{size}\t{digest}\n")
            out.files += 1
            out.bytes += size
            if progress:
                progress(1)
    info = {"format": 1, "backend": backend, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    info.update({"files": out.files, "bytes": out.bytes, "problems": out.problems})
    (dest / INFO).write_text(json.dumps(info, indent=2) + "\n")
    return out


def restore(
    src: Path, data: Path, database_url: str | None = None, progress: Callable[[int], None] | None = None
) -> Outcome:
    """Bring a backup back into an empty data folder (and, for PostgreSQL, an empty database named by
    ``database_url``); every file is checked against the manifest."""
    info = json.loads((src / INFO).read_text())
    _empty_folder(data, "The data folder")
    settings = config.load({"data": data, "database_url": database_url})
    if info["backend"] == "sqlite":
        if database_url:
            raise InvalidInput("This backup holds a SQLite database: restore it without --database.")
        snapshot.sqlite_copy(f"sqlite:///{(src / SQLITE_FILE).resolve()}", data / "xnatd.db")
    else:
        if not database_url:
            raise InvalidInput("This backup holds a PostgreSQL dump: --database must name an empty database.")
        snapshot.pg_restore(src / PG_DUMP, database_url)
    settings.ensure_dirs()
    out = Outcome()
    with open(src / MANIFEST, encoding="utf-8") as manifest:
        for line in manifest:
            area, rel, size, digest = line.rstrip("\n").split("\t")
            path = PurePosixPath(rel)
            if area not in ("archive", "prearchive") or path.is_absolute() or ".." in path.parts:
                raise InvalidInput(f"Bad manifest line: {line!r}")
            copy = data / area / rel
            out.linked += inventory.link_or_copy(src / area / rel, copy)
            if copy.stat().st_size != int(size) or md5_of(copy) != digest:
                out.problems.append(f"{area}/{rel}: does not match the manifest")
            out.files += 1
            out.bytes += int(size)
            if progress:
                progress(1)
    return out
