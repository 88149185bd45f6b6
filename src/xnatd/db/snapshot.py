"""A consistent copy of the database while the server writes to it.

SQLite: the online backup API copies the pages of one read snapshot (writers go on meanwhile).
PostgreSQL: a REPEATABLE READ transaction exports its snapshot; ``pg_dump --snapshot`` dumps exactly
that state, and the file list is read in the same transaction, so the manifest matches the dump.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from xnatd.db.engine import Database
from xnatd.errors import XnatdError


def sqlite_copy(url: str, dest: Path) -> None:
    """Copy a live SQLite database to ``dest`` (one consistent snapshot, WAL included)."""
    path = make_url(url).database
    if not path:
        raise XnatdError("The database URL names no SQLite file.")
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    out = sqlite3.connect(dest)
    try:
        with out:
            src.backup(out)
    finally:
        out.close()
        src.close()


def sqlite_settle(path: Path) -> None:
    """Leave a copy as one self-contained file (rollback journal, no -wal/-shm beside it)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise XnatdError(f"{name} is not installed: PostgreSQL backups need the PostgreSQL client tools.")
    return found


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def pg_snapshot(db: Database, dump: Path) -> Iterator[Connection]:
    """Dump the database to ``dump`` and yield a connection that sees the very same state."""
    tool = pg_tool("pg_dump")
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snap = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            cmd = [tool, "--format=custom", f"--snapshot={snap}", f"--file={dump}", _libpq_url(db.url)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise XnatdError(f"pg_dump failed: {done.stderr.strip()}")
            yield conn


def pg_restore(dump: Path, url: str) -> None:
    """Load a ``pg_dump`` into an empty PostgreSQL database."""
    cmd = [pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={_libpq_url(url)}", str(dump)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise XnatdError(f"pg_restore failed: {done.stderr.strip()}")
