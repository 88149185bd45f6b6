"""The database engine and its two kinds of transaction.

SQLite runs in WAL mode with ``synchronous=FULL`` so a committed row survives a crash; write
transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the lock instead of failing
when one tries to upgrade a read lock. PostgreSQL needs none of this.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError

from xnatd.errors import Conflict, StorageFull

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x786E617464  # "xnatd": one advisory lock for schema upgrades


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: Engine = _make_engine(url)
        self._reading = threading.local()  # the connection of this thread's ``reading`` block

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        shared: Connection | None = getattr(self._reading, "conn", None)
        if shared is not None:  # inside ``reading``: its transaction
            yield shared
            return
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction for every ``read`` this thread makes until the block ends: a few
        lookups in a row (who is calling, may they import there) pay for one begin and commit.
        Only for reads that need not see what the block writes meanwhile (its snapshot is older)."""
        if getattr(self._reading, "conn", None) is not None:
            yield
            return
        with self.engine.connect() as conn, conn.begin():
            self._reading.conn = conn
            try:
                yield
            finally:
                self._reading.conn = None

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction. A uniqueness clash with a concurrent writer (PostgreSQL lets two
        transactions race where SQLite queues them) becomes a Conflict, never a server error."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
        except IntegrityError as exc:
            raise Conflict(f"A concurrent change conflicts with this one; retry it ({exc.orig})") from exc
        except OperationalError as exc:
            if _disk_full(exc):
                raise StorageFull("No space left for the database to record this change.") from exc
            raise

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent; safe on every start).

        Several server processes (``--workers``, other hosts) start at once: they take turns, under
        a PostgreSQL advisory lock or, for SQLite, a lock file beside the database.
        """
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self._migration_lock(), self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        path = self.engine.url.database if self.is_sqlite else None
        if not path or path == ":memory:":
            yield
            return
        with open(f"{path}.migrate.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def dispose(self) -> None:
        self.engine.dispose()


def _disk_full(exc: OperationalError) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full") or PostgreSQL's disk_full (SQLSTATE 53100)."""
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    return code == 13 or getattr(orig, "sqlstate", None) == "53100" or "disk is full" in str(orig)


SQLITE_AT_LEAST = (3, 35, 0)  # UPDATE ... RETURNING (filing a batch locks and reads its session at once)


def _make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if sqlite3.sqlite_version_info < SQLITE_AT_LEAST:
        need = ".".join(map(str, SQLITE_AT_LEAST))
        raise RuntimeError(f"xnatd needs SQLite {need} or newer; this Python has {sqlite3.sqlite_version}")
    # LIFO: the connection used last (its page cache warm, its WAL view current) serves the next
    # request, instead of each in turn of the up to 20 a burst of requests left open
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 60}, pool_size=20, pool_use_lifo=True
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "DEFERRED":  # takes no lock, so cannot fail: straight to the driver, half the cost
            conn.connection.driver_connection.execute("BEGIN DEFERRED")  # type: ignore[union-attr]
        else:  # IMMEDIATE waits for the write lock: a timeout is translated as any other error
            conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
