"""Scan snapshots: a ``SNAPSHOTS`` resource per scan with a picture of its middle slice, as XNAT keeps.

Pictures are made when first asked for (as XNAT 1.8 does), not while archiving: ordering a scan's
slices reads every header again, which tripled the time of a zip import, and most scans are never
looked at. ``files.open_file`` calls ``make_for_scan`` when a scan's ``{scan}_qc.png`` or
``_qc_t.png`` is requested and missing; the web page links those names for every scan with DICOM
files (``pending``). Each scan's pictures are staged, renamed into place and recorded in one
transaction, like any upload; a lock per scan keeps two requests from making them twice.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xnatd.db import archive as q
from xnatd.dicom import pictures
from xnatd.services.access.context import Context
from xnatd.services.archive.resources import Owner, archive_path, ensure_resource, session_dir
from xnatd.storage.files import Staged, stage_fileobj
from xnatd.storage.placement import Placement, drop

log = logging.getLogger("xnatd.snapshots")
SNAPSHOTS = "SNAPSHOTS"
SOURCE = "DICOM"
PARAMS = [("format", "PNG"), ("content", "SNAPSHOTS")]


def names(scan_id: str) -> tuple[str, str]:
    """File names of a scan's picture and thumbnail (XNAT's ``{scan}_qc.gif`` / ``_qc_t.gif``, as PNG)."""
    return f"{scan_id}_qc.png", f"{scan_id}_qc_t.png"


_LOCKS = [threading.Lock() for _ in range(32)]  # striped: bounded, whatever the number of scans


def _without_pictures(conn: Any, experiment_id: str, only: str | None = None) -> Iterator[tuple[Any, Any]]:
    """(scan, its DICOM resource) for the session's scans (all, or the one ``only`` names) that have
    DICOM files but no snapshots yet."""
    for scan in q.children(conn, experiment_id, "scan"):
        if only is not None and scan["scan_id"] != only:
            continue
        by_label = {r["label"]: r for r in q.resources_of(conn, [f"scan:{scan['pk']}"])}
        if SOURCE in by_label and SNAPSHOTS not in by_label:
            yield scan, by_label[SOURCE]


def _work(
    ctx: Context, experiment_id: str, only: str | None = None
) -> tuple[Any, str, list[tuple[Any, list[Path]]]]:
    """The session, its folder, and the scans to make pictures of, with their DICOM files."""
    with ctx.db.read() as conn:
        exp = q.by_id(conn, "experiment", experiment_id)
        if exp is None:
            return None, "", []
        todo = [
            (scan, [archive_path(ctx, src["directory"], f["path"]) for f in q.files_of(conn, [src["pk"]])])
            for scan, src in _without_pictures(conn, exp["id"], only)
        ]
        return exp, session_dir(conn, exp), todo


def pending(ctx: Context, experiment_id: str) -> list[str]:
    """IDs of the session's scans whose pictures will be made when first asked for."""
    with ctx.db.read() as conn:
        return [str(scan["scan_id"]) for scan, _src in _without_pictures(conn, experiment_id)]


def make_for_scan(ctx: Context, experiment_id: str, scan_id: str) -> None:
    """Make one scan's pictures if it has DICOM files and none yet; when this returns they exist,
    made by this call or by whoever was making them meanwhile (unless the pixels cannot be read)."""
    with _LOCKS[hash((experiment_id, scan_id)) % len(_LOCKS)]:
        _make(ctx, *_work(ctx, experiment_id, scan_id))


def _make(ctx: Context, exp: Any, folder: str, todo: list[tuple[Any, list[Path]]]) -> None:
    for scan, paths in todo:
        try:
            pngs = pictures.middle_slice(paths)
            if pngs is not None:
                _store(ctx, exp, folder, scan, pngs)
        except Exception:  # a picture is a convenience: never let it break the caller
            log.exception("No snapshot for scan %s of %s", scan["scan_id"], exp["id"])


def _store(ctx: Context, exp: Any, folder: str, scan: Any, pngs: tuple[bytes, bytes]) -> None:
    sid = str(scan["scan_id"])
    staged = [
        (name, stage_fileobj(ctx.settings.tmp_dir, io.BytesIO(data)))
        for name, data in zip(names(sid), pngs, strict=True)
    ]
    placement = Placement(ctx.settings.tmp_dir)
    try:
        with ctx.db.write() as conn:
            if q.lock_scan(conn, scan["pk"]) is None or _has_pictures(conn, scan):
                staged_only = True  # another process stored them meanwhile (or the scan is gone)
            else:
                staged_only = False
                _record(ctx, conn, exp, folder, scan, staged, placement)
    except BaseException:
        placement.rollback()
        drop([s for _, s in staged])
        raise
    placement.commit()
    if staged_only:
        drop([s for _, s in staged])


def _record(
    ctx: Context,
    conn: Any,
    exp: Any,
    folder: str,
    scan: Any,
    staged: list[tuple[str, Staged]],
    placement: Placement,
) -> None:
    sid = str(scan["scan_id"])
    owner = Owner(f"scan:{scan['pk']}", "scan", f"{folder}/SCANS/{sid}", "", "", "scans", sid)
    res = ensure_resource(ctx, conn, owner, exp["project_id"], SNAPSHOTS, PARAMS)
    for name, item in staged:
        placement.put(item, archive_path(ctx, res["directory"], name))
        q.upsert_file(
            conn, res["pk"], name, size=item.size, md5=item.md5, format="PNG", content="SNAPSHOTS",
            tags="", created_by="system",
        )  # fmt: skip


def _has_pictures(conn: Any, scan: Any) -> bool:
    return any(r["label"] == SNAPSHOTS for r in q.resources_of(conn, [f"scan:{scan['pk']}"]))
