"""Migration 0003 creates the job tables exactly as db/schema.py declares them."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from xnatd.db.engine import Database
from xnatd.db.schema import metadata

JOB_TABLES = {"jobs", "job_commands", "job_automations"}


def test_job_tables_match_the_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    db.dispose()

    def table_of(entry: object) -> str:
        item = entry[0] if isinstance(entry, list) else entry
        for part in item[1:] if isinstance(item, tuple) else ():
            name = getattr(part, "name", None) if not isinstance(part, str) else None
            table = getattr(part, "table", None)
            if table is not None:
                return str(table.name)
            if name in JOB_TABLES:
                return str(name)
            if isinstance(part, str) and part in JOB_TABLES:
                return part
        return ""

    assert [d for d in diff if table_of(d) in JOB_TABLES] == []
