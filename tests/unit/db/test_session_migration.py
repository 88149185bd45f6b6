"""Migration 0005 gives login sessions their token_alias column as db/schema.py declares it, and the
sessions open at the upgrade go on as password logins."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text

from xnatd.db.engine import MIGRATIONS, Database
from xnatd.db.schema import http_sessions, metadata


def _upgrade(db: Database, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_sessions_open_before_the_upgrade_stay_password_logins(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    _upgrade(db, "0004")
    stamp = _dt.datetime(2026, 12, 1)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO http_sessions (id, username, created, last_access) VALUES ('S1', 'ann', :t, :t)"
            ),
            {"t": stamp},
        )
    db.migrate()
    with db.engine.connect() as conn:
        row = conn.execute(http_sessions.select()).mappings().one()
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    db.dispose()
    assert (row["id"], row["username"], row["token_alias"]) == ("S1", "ann", None)
    assert [d for d in diff if "http_sessions" in repr(d)] == []
