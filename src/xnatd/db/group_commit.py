"""Group commit: concurrent ingest batches share one database transaction (and so one WAL flush).

Each request of a one-DICOM-file-per-request client (and each receiver batch) must have its rows
committed before it is answered. Committed one by one, N concurrent requests pay N commits, one
after the other, behind the database's single write lock. Here the requests that arrive while a
commit is under way queue up; the next thread to get the lock commits every queued job in one
transaction and hands each its result. Nothing is answered before its own rows are committed, so
the durability promise is unchanged; only the flushes are shared.

If the shared transaction fails, each job of the group is retried alone, so one bad batch (a
session archived meanwhile) fails only its own request. Jobs must therefore leave no trace of a
failed attempt: they compute and return, and their caller applies the result after the commit.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from xnatd.db.engine import Database

T = TypeVar("T")
Job = Callable[[Connection], T]


@dataclass
class _Entry(Generic[T]):
    job: Job[T]
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommitter:
    """One per database: the queue of jobs waiting for a write transaction."""

    def __init__(self) -> None:
        self._queue: list[_Entry[Any]] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()

    def run(self, db: Database, job: Job[T]) -> T:
        """Run ``job`` in a write transaction, perhaps shared; return once that has committed."""
        entry: _Entry[T] = _Entry(job)
        with self._queue_lock:
            self._queue.append(entry)
        with self._commit_lock:
            if not entry.done:  # no leader took it meanwhile: lead, committing all that queued
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit(db, group)
        if entry.error is not None:
            raise entry.error
        return entry.result

    def _commit(self, db: Database, group: list[_Entry[Any]]) -> None:
        try:
            with db.write() as conn:
                results = [e.job(conn) for e in group]
        except BaseException as exc:
            if len(group) == 1:
                group[0].error, group[0].done = exc, True
                return
            for e in group:  # each alone: only the faulty job fails
                self._commit(db, [e])
            return
        for e, result in zip(group, results, strict=True):
            e.result, e.done = result, True


_committers: weakref.WeakKeyDictionary[Database, GroupCommitter] = weakref.WeakKeyDictionary()
_committers_lock = threading.Lock()


def run(db: Database, job: Job[T]) -> T:
    """Run ``job`` in a write transaction of ``db`` shared with the jobs queued meanwhile."""
    with _committers_lock:
        found = _committers.get(db)
        if found is None:
            found = _committers[db] = GroupCommitter()
    return found.run(db, job)
