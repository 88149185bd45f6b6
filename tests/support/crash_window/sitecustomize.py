"""Holds a file write of a test server at a chosen point, so a test can SIGKILL it exactly there.

Python imports ``sitecustomize`` at start-up from ``sys.path``: a server started with this folder on
``PYTHONPATH`` (and ``XNATD_TEST_HOLD_MARK`` naming a marker file) wraps ``Placement``, the one
class that replaces and removes archive files inside a transaction. When the file concerned has a
name starting with

- ``hold-put``: when it overwrites a file, after the new one is renamed over it (the old one moved
  aside), before the database commit;
- ``hold-remove``: after the file to delete is moved aside, before the database commit;
- ``hold-commit``: after the database commit, before the old copies are dropped;

the thread writes the name into the marker file and sleeps (the request never answers) until the
test kills the process. Any other file goes through untouched. Likewise a resource whose label
starts with ``hold-remove`` is held once it is deleted (its row, and its folder set aside or gone)
inside the delete's transaction, before the commit; and a prearchive session moved to a project
whose ID starts with ``HOLDMV``, once its folder is renamed and its row updated, before the commit;
and a DICOM receiver's filing batch of objects from a calling AE title starting with ``HOLD``, once
its files are placed in the prearchive and flushed, before the commit.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

MARK = os.environ.get("XNATD_TEST_HOLD_MARK", "")


def _hold(name: str) -> None:
    Path(MARK).write_text(name)
    time.sleep(3600)


def _install() -> None:
    from xnatd.storage.placement import Placement

    put, remove, commit = Placement.put, Placement.remove, Placement.commit

    def held_put(self: Placement, staged: Any, dest: Path, *args: Any, **kw: Any) -> None:
        before = len(self._backups)
        put(self, staged, dest, *args, **kw)
        if dest.name.startswith("hold-put") and len(self._backups) > before:  # an overwrite
            _hold(dest.name)

    def held_remove(self: Placement, path: Path, stop_at: Path) -> None:
        remove(self, path, stop_at)
        if path.name.startswith("hold-remove"):
            _hold(path.name)

    def held_commit(self: Placement) -> None:
        for dest, _backup in self._backups:
            if dest.name.startswith("hold-commit"):
                _hold(dest.name)
        commit(self)

    from xnatd.services.archive import resources

    drop = resources._drop_resource

    def held_drop(ctx: Any, conn: Any, row: Any, *rest: Any) -> None:
        drop(ctx, conn, row, *rest)
        if str(row["label"]).startswith("hold-remove"):
            _hold(str(row["label"]))

    resources._drop_resource = held_drop

    from xnatd.db import prearchive as pq

    update = pq.update_session

    def held_update(conn: Any, pk: int, **values: Any) -> Any:
        done = update(conn, pk, **values)
        if str(values.get("project", "")).startswith("HOLDMV"):
            _hold(str(values["project"]))
        return done

    pq.update_session = held_update

    from xnatd.services.ingest.ingest import IngestBatch

    make_durable = IngestBatch._make_durable

    def held_make_durable(self: IngestBatch, slots: Any) -> None:
        make_durable(self, slots)
        if self.opts.source.startswith("DICOM HOLD"):
            _hold(self.opts.source)

    IngestBatch._make_durable = held_make_durable  # type: ignore[method-assign]
    Placement.put = held_put  # type: ignore[method-assign]
    Placement.remove = held_remove  # type: ignore[method-assign]
    Placement.commit = held_commit  # type: ignore[method-assign]


if MARK:
    _install()
