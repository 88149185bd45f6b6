"""The SQLite the server runs on must be new enough for the statements it uses."""

from __future__ import annotations

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
