"""XNAT's DICOM dump service (``/data/services/dicomdump?src=...&field=...``; xnatpy's
``services.dicom_dump``): the header of the first DICOM file of a session, a scan (assessor,
reconstruction) or one named file, in the archive or the prearchive.

``src`` is XNAT's URI: ``/archive/projects/P[/subjects/S]/experiments/E[/scans/C[/resources/DICOM/
files/F]]`` (``/archive/experiments/E/...`` too) or ``/prearchive/projects/P/TS/FOLDER[/scans/C[/
resources/DICOM/files/F]]``. Archive data needs read access; the prearchive its usual rights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from xnatd.db import archive as q
from xnatd.db import prearchive as pq
from xnatd.dicom import dump
from xnatd.domain import address as A
from xnatd.domain.table import Table
from xnatd.errors import InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import files
from xnatd.services.archive.resolve import resolve
from xnatd.services.archive.resources import archive_path, owners, select_resources
from xnatd.services.prearchive import prearchive as pre

IMAGE_RESOURCES = ("DICOM", "secondary")  # XNAT's ``dumpImageTypes`` default


def header(ctx: Context, actor: Actor, src: str, fields: Sequence[str]) -> Table:
    try:
        tags = dump.parse_fields(fields)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    segments = [s for s in src.strip().split("/") if s]
    if segments[:1] in (["data"], ["REST"]):
        segments = segments[1:]
    if segments[:1] == ["prearchive"]:
        path = _prearchive_file(ctx, actor, segments)
    elif segments[:1] == ["archive"]:
        path = _archive_file(ctx, actor, segments)
    else:
        raise InvalidInput(f"src must be an /archive or /prearchive URI, not {src!r}")
    try:
        rows = dump.rows(path, tags) if path is not None else []
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return Table(columns=list(dump.COLUMNS), rows=rows, total=len(rows))


def _archive_file(ctx: Context, actor: Actor, segments: list[str]) -> Path | None:
    """The first image file an archive URI names (None: it names none)."""
    segments = ["reconstructions" if s == "recons" else s for s in segments]
    addr = A.parse(segments)
    if addr.kind == A.FILE:
        info = files.open_file(ctx, actor, addr)
        if info is None:
            raise NotFound("Unable to find file.")
        return info.path
    if addr.kind == A.EXPERIMENT:
        addr = dataclasses.replace(addr, child_kind="scan", child="ALL")
    elif addr.kind != A.CHILD:
        raise InvalidInput("src must name a session, a scan, an assessor, a reconstruction or a file")
    addr = dataclasses.replace(addr, kind=A.RESOURCES)
    with ctx.db.read() as conn:
        target = resolve(conn, actor, addr, access.READ, upto="experiment")
        for _owner, res in select_resources(conn, owners(conn, addr, target), None):
            if res["label"] in IMAGE_RESOURCES:
                found = q.files_of(conn, [res["pk"]])
                if found:
                    return archive_path(ctx, res["directory"], found[0]["path"])
    return None


def _prearchive_file(ctx: Context, actor: Actor, segments: list[str]) -> Path | None:
    if len(segments) < 5 or segments[1] != "projects":
        raise InvalidInput("A prearchive src is /prearchive/projects/P/TIMESTAMP/FOLDER[/scans/ID...]")
    key = pre.Key.parse("/".join(segments[:5]))
    rest = segments[5:]
    if not rest:
        with ctx.db.read() as conn:
            row = pre.load(conn, actor, key)
            series = pq.series_of(conn, row["pk"])
            paths = pre.file_paths(ctx, conn, row)
        first = min(series, key=lambda s: s["scan_id"] or s["scan_dir"], default=None)
        chosen = [p for p in paths if first is not None and p.parent.parent.name == first["scan_dir"]]
        return chosen[0] if chosen else (paths[0] if paths else None)
    if rest[0] != "scans" or len(rest) < 2:
        raise InvalidInput("A prearchive src is /prearchive/projects/P/TIMESTAMP/FOLDER[/scans/ID...]")
    _series, found = pre.scan_files(ctx, actor, key, rest[1])
    if len(rest) >= 6 and rest[2:5] == ["resources", rest[3], "files"]:
        name = "/".join(rest[5:])
        for row, path in found:
            if row["name"] == name:
                return path
        raise NotFound("Unable to find file.")
    return found[0][1] if found else None
