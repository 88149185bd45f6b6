"""Group commit: concurrent jobs share a transaction, yet each fails or succeeds on its own."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, text

from xnatd.db import group_commit
from xnatd.db.engine import Database


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    with database.write() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))
    return database


def _values(db: Database) -> list[int]:
    with db.read() as conn:
        return sorted(int(v) for v in conn.execute(text("SELECT v FROM t")).scalars())


def _insert(value: int) -> group_commit.Job[int]:
    def job(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        return value * 10

    return job


def test_jobs_queued_during_a_commit_share_the_next_transaction(db: Database) -> None:
    started, release = threading.Event(), threading.Event()
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda conn: commits.append(1))

    def slow(conn: Connection) -> int:
        started.set()
        release.wait(10)
        return 0

    results: dict[int, int] = {}
    leader = threading.Thread(target=lambda: group_commit.run(db, slow))
    leader.start()
    assert started.wait(10)
    followers = [
        threading.Thread(target=lambda v=v: results.__setitem__(v, group_commit.run(db, _insert(v))))
        for v in range(1, 5)
    ]
    for t in followers:
        t.start()
    time.sleep(0.3)  # all four queue behind the slow commit
    release.set()
    for t in [leader, *followers]:
        t.join(10)
    assert results == {1: 10, 2: 20, 3: 30, 4: 40}
    assert len(commits) == 2  # the slow one, then the four together
    assert _values(db) == [1, 2, 3, 4]


def test_a_failing_job_fails_alone(db: Database) -> None:
    group_commit.run(db, _insert(7))
    committer = group_commit.GroupCommitter()
    entries = [group_commit._Entry(_insert(v)) for v in (1, 7, 2)]  # 7 clashes with the row above
    committer._commit(db, entries)
    assert [e.done for e in entries] == [True, True, True]
    assert entries[0].result == 10 and entries[2].result == 20
    assert entries[1].error is not None
    assert _values(db) == [1, 2, 7]
