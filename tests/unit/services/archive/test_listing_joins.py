"""A listing that joins other objects costs the same few SQL statements for any number of rows.

The listing services run on a real SQLite file with the real schema; every statement is counted as it
reaches the database. Ten sessions and six hundred, each with scans and a subject, must take exactly as
many statements (no statement per row), and the joined rows must be right.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event

from xnatd.db import archive as q
from xnatd.db.engine import Database
from xnatd.domain.table import ListQuery
from xnatd.services.access.context import Actor
from xnatd.services.archive import listing_joins, listings
from xnatd.services.archive.resolve import Target

ADMIN = Actor("admin", is_admin=True)
COLUMNS = "ID,label,subject_label,xnat:subjectData/gender,xnat:imagescandata/id,xnat:imagescandata/type"
COLUMNS += ",xnat:imagescandata/file/label,xnat:mrSessionData/fields/field/name"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    database.migrate()
    yield database
    database.dispose()


def _fill(conn: Connection, project: str, sessions: int) -> None:
    q.insert_project(conn, id=project, secondary_id=project, name=project, fields={})
    for i in range(sessions):
        subject, session = f"{project}_S{i}", f"{project}_E{i}"
        q.insert_object(
            conn,
            "subject",
            id=subject,
            project_id=project,
            label=f"S{i}",
            fields={"demographics/gender": "female"},
        )
        q.insert_object(
            conn, "experiment", id=session, project_id=project, subject_id=subject, label=f"E{i}",
            xsi_type="xnat:mrSessionData", fields={},
        )  # fmt: skip
        for n in range(1, 4):
            q.insert_child(
                conn,
                experiment_id=session,
                kind="scan",
                scan_id=str(n),
                xsi_type="xnat:mrScanData",
                type=f"T{n}",
                fields={},
            )


def _listing(db: Database, project: str, params: list[tuple[str, str]]) -> tuple[Any, int]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    with db.read() as conn:
        t = Target(project=q.project(conn, project))
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            table = listings.experiments(conn, ADMIN, t, ListQuery.from_params(params), None, None)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    return table, len(statements)


def test_joined_listings_take_the_same_statements_for_any_number_of_rows(db: Database) -> None:
    """Ten sessions are named to the database by their IDs, six hundred by a sub-select of the
    listing's own query (past ``listing_joins._FEW``): both ways take the same statements."""
    with db.write() as conn:
        _fill(conn, "SMALL", 10)
        _fill(conn, "LARGE", 600)
    assert listing_joins._FEW < 600 < 10 * listing_joins._FEW
    for params in ([("columns", COLUMNS)], [("columns", COLUMNS), ("xnat:imagescandata/type", "T2")]):
        small, n_small = _listing(db, "SMALL", params)
        large, n_large = _listing(db, "LARGE", params)
        assert (len(small.rows), len(large.rows)) == (30, 1800)
        assert n_small == n_large, (n_small, n_large)
    row = next(r for r in large.rows if r["label"] == "E7" and r["xnat:imagescandata/id"] == "2")
    assert (row["subject_label"], row["xnat:subjectdata/gender"], row["xnat:imagescandata/type"]) == (
        "S7",
        "female",
        "T2",
    )
