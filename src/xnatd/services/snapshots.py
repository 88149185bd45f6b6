"""Scan snapshots: a ``SNAPSHOTS`` resource per scan with a picture of its middle slice, as XNAT keeps.

``make_for_session`` is meant to run after a session is archived (outside the archive's transaction:
a picture that cannot be made never fails an archive). It skips scans that already have snapshots,
so calling it twice costs one query. Each scan's pictures are staged, renamed into place and
recorded in one transaction, like any upload.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from xnatd.db import archive as q
from xnatd.dicom import pictures
from xnatd.services.context import Context
from xnatd.services.resources import Owner, archive_path, ensure_resource, session_dir
from xnatd.storage.files import stage_fileobj
from xnatd.storage.placement import Placement, drop

log = logging.getLogger("xnatd.snapshots")
SNAPSHOTS = "SNAPSHOTS"
SOURCE = "DICOM"
PARAMS = [("format", "PNG"), ("content", "SNAPSHOTS")]


def names(scan_id: str) -> tuple[str, str]:
    """File names of a scan's picture and thumbnail (XNAT's ``{scan}_qc.gif`` / ``_qc_t.gif``, as PNG)."""
    return f"{scan_id}_qc.png", f"{scan_id}_qc_t.png"


def _work(ctx: Context, experiment_id: str) -> tuple[Any, str, list[tuple[Any, list[Path]]]]:
    """The session, its folder, and the scans that have DICOM files but no snapshots yet."""
    with ctx.db.read() as conn:
        exp = q.by_id(conn, "experiment", experiment_id)
        if exp is None:
            return None, "", []
        todo = []
        for scan in q.children(conn, exp["id"], "scan"):
            by_label = {r["label"]: r for r in q.resources_of(conn, [f"scan:{scan['pk']}"])}
            if SNAPSHOTS in by_label or SOURCE not in by_label:
                continue
            src = by_label[SOURCE]
            paths = [archive_path(ctx, src["directory"], f["path"]) for f in q.files_of(conn, [src["pk"]])]
            todo.append((scan, paths))
        return exp, session_dir(conn, exp), todo


def make_for_session(ctx: Context, experiment_id: str) -> int:
    """Make the missing snapshots of a session's scans; answers how many scans got one."""
    exp, folder, todo = _work(ctx, experiment_id)
    made = 0
    for scan, paths in todo:
        try:
            pngs = pictures.middle_slice(paths)
            if pngs is None:
                continue
            _store(ctx, exp, folder, scan, pngs)
            made += 1
        except Exception:  # a picture is a convenience: never let it break the caller
            log.exception("No snapshot for scan %s of %s", scan["scan_id"], experiment_id)
    return made


def _store(ctx: Context, exp: Any, folder: str, scan: Any, pngs: tuple[bytes, bytes]) -> None:
    sid = str(scan["scan_id"])
    staged = [
        (name, stage_fileobj(ctx.settings.tmp_dir, io.BytesIO(data)))
        for name, data in zip(names(sid), pngs, strict=True)
    ]
    placement = Placement(ctx.settings.tmp_dir)
    try:
        with ctx.db.write() as conn:
            owner = Owner(f"scan:{scan['pk']}", "scan", f"{folder}/SCANS/{sid}", "", "", "scans", sid)
            res = ensure_resource(ctx, conn, owner, exp["project_id"], SNAPSHOTS, PARAMS)
            for name, item in staged:
                placement.put(item, archive_path(ctx, res["directory"], name))
                q.upsert_file(
                    conn, res["pk"], name, size=item.size, md5=item.md5, format="PNG", content="SNAPSHOTS",
                    tags="", created_by="system",
                )  # fmt: skip
    except BaseException:
        placement.rollback()
        drop([s for _, s in staged])
        raise
    placement.commit()
