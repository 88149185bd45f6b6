"""Migration 0008 creates the site configuration, configuration service, workflow, stored search and
status message tables exactly as their db modules declare them."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from xnatd.db import config_store, site_config, stored_searches, upload_status, workflows
from xnatd.db.engine import Database
from xnatd.db.schema import metadata

TABLES = {
    t.name
    for t in (
        site_config.site_config,
        config_store.config_entries,
        workflows.workflows,
        stored_searches.stored_searches,
        stored_searches.stored_search_users,
        upload_status.status_messages,
    )
}


def _tables_named(entry: object) -> set[str]:
    """Every table name an autogenerate diff entry mentions."""
    item = entry[0] if isinstance(entry, list) else entry
    names: set[str] = set()
    for part in item[1:] if isinstance(item, tuple) else ():
        table = getattr(part, "table", None)
        if table is not None:
            names.add(str(table.name))
        elif isinstance(part, str):
            names.add(part)
        else:
            names.add(str(getattr(part, "name", "")))
    return names


def test_site_record_tables_match_their_modules(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        present = set(conn.dialect.get_table_names(conn))
    db.dispose()
    assert present >= TABLES
    assert [d for d in diff if _tables_named(d) & TABLES] == []
