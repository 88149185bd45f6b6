"""The SQLite the server runs on must be new enough for the statements it uses."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from xnatd.db import engine


def test_an_old_sqlite_is_refused_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an old SQLite cannot be installed beside this Python: its version number is what is checked
    monkeypatch.setattr(engine.sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(engine.sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(RuntimeError, match=r"SQLite 3\.35\.0 or newer.*3\.31\.1"):
        engine.Database(f"sqlite:///{tmp_path / 'x.db'}")


def test_this_sqlite_runs_update_returning(tmp_path: Path) -> None:
    db = engine.Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO t (v) VALUES ('a')")
        row = conn.exec_driver_sql("UPDATE t SET v = 'b' WHERE k = 1 RETURNING k, v").first()
    assert tuple(row or ()) == (1, "b")
    db.dispose()


def test_reads_inside_reading_share_one_transaction_and_its_snapshot(tmp_path: Path) -> None:
    """``reading`` hands every ``read`` of its thread one connection: they see one snapshot, older
    than a write committed meanwhile; other threads, and reads after the block, see the write."""
    db = engine.Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO t (v) VALUES ('a')")

    def count() -> int:
        with db.read() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one())

    with db.reading():
        with db.read() as first, db.read() as second:
            assert first is second
        assert count() == 1
        with db.write() as conn:  # another connection: the write commits
            conn.exec_driver_sql("INSERT INTO t (v) VALUES ('b')")
        assert count() == 1, "the block's snapshot was taken before the write"
        elsewhere: list[int] = []
        thread = threading.Thread(target=lambda: elsewhere.append(count()))
        thread.start()
        thread.join()
        assert elsewhere == [2]
        with db.reading():  # nested: the same transaction
            assert count() == 1
    assert count() == 2
    with db.read() as first, db.read() as second:
        assert first is not second
    db.dispose()
