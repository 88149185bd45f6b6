"""The prearchive: sessions built from received DICOM, waiting to be archived.

Listing (XNAT's exact columns), one session as a row, a document or a zip, its scans and files;
building (scan IDs and data types from the headers), moving to another project, deleting. Every
call checks that the caller may edit the session's project; Unassigned sessions are for admins.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import prearchive as pq
from xnatd.dicom import session_builder as sb
from xnatd.domain.items import Item
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import Conflict, Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.resolve import load_project
from xnatd.services.prearchive.archive_options import UNASSIGNED
from xnatd.storage import bundles
from xnatd.storage.moves import Moves
from xnatd.storage.paths import contained
from xnatd.storage.tmpdirs import own_folder

COLUMNS = [
    "project", "timestamp", "lastmod", "uploaded", "scan_date", "scan_time", "subject", "folderName",
    "name", "tag", "status", "url", "autoarchive", "prevent_anon", "prevent_auto_commit", "SOURCE",
    "VISIT", "PROTOCOL", "TIMEZONE",
]  # fmt: skip
CODES = {0: "Manual", 4: "AutoArchive", 5: "AutoArchiveOverwrite"}
SCAN_COLUMNS = ["ID", "xsiType", "series_description", "modality", "file_count", "URI"]


@dataclass(frozen=True)
class Key:
    """A prearchive session as URLs name it: ``/prearchive/projects/{P}/{TS}/{FOLDER}``."""

    project: str | None
    timestamp: str
    folder: str

    @classmethod
    def parse(cls, src: str) -> Key:
        parts = [p for p in src.strip().split("/") if p]
        if parts[:1] in (["data"], ["REST"]):
            parts = parts[1:]
        if len(parts) != 5 or parts[:2] != ["prearchive", "projects"]:
            raise InvalidInput(f"Not a prearchive session URI: {src}")
        return cls(None if parts[2] == UNASSIGNED else parts[2], parts[3], parts[4])


def uri(row: Any, data: bool = True) -> str:
    path = f"/prearchive/projects/{row['project'] or UNASSIGNED}/{row['timestamp']}/{row['folder']}"
    return f"/data{path}" if data else path


def folder_of(ctx: Context, row: Any) -> Path:
    return contained(ctx.settings.prearchive_dir, PurePosixPath(row["directory"]))


# --- access ------------------------------------------------------------------------------------------


def check(conn: Connection, actor: Actor, project: str | None) -> None:
    """Prearchive rights: edit rights on the project; Unassigned sessions are for admins only."""
    if project is None:
        if not actor.is_admin:
            raise NotFound("Unknown prearchive session.")
        return
    load_project(conn, actor, project, access.EDIT)


def load(conn: Connection, actor: Actor, key: Key) -> Any:
    """The session at ``key``, if the caller may manage it. One that exists but is not theirs answers
    exactly as one that does not (a wrong timestamp or folder must tell nothing about the right one)."""
    access.require_user(actor)
    row = pq.session_at(conn, key.project, key.timestamp, key.folder)
    if row is None:
        raise NotFound("Unknown prearchive session.")
    try:
        check(conn, actor, row["project"])
    except (NotFound, Forbidden):
        raise NotFound("Unknown prearchive session.") from None
    return row


def load_locked(conn: Connection, actor: Actor, key: Key) -> Any:
    """``load`` for a change: the row as it is once no other transaction changes it (a concurrent
    move, delete or archive ran first), still under the address the caller named."""
    found = pq.session_locked(conn, load(conn, actor, key)["pk"])
    if found is None or (found["project"], found["timestamp"], found["folder"]) != (
        key.project, key.timestamp, key.folder,
    ):  # fmt: skip
        raise NotFound("Unknown prearchive session.")
    return found


def visible_projects(conn: Connection, actor: Actor, wanted: str | None) -> list[str | None] | None:
    """Projects whose sessions the caller lists; None = every one (an admin asking for all)."""
    access.require_user(actor)
    if wanted:
        names = [None if p == UNASSIGNED else p for p in wanted.split(",") if p]
        for name in names:
            check(conn, actor, name)
        return names
    if actor.is_admin:
        return None
    roles = q.roles(conn, actor.username)
    return [
        p["id"] for p in q.all_projects(conn) if access.allowed(actor, p, roles.get(p["id"]), access.EDIT)
    ]


# --- listings ----------------------------------------------------------------------------------------


def row_of(row: Any) -> dict[str, str]:
    code = row["autoarchive"]
    return {
        "project": row["project"] or UNASSIGNED,
        "timestamp": row["timestamp"],
        "lastmod": _stamp(row["lastmod"]),
        "uploaded": _stamp(row["uploaded"]),
        "scan_date": row["scan_date"] or "",
        "scan_time": row["scan_time"] or "",
        "subject": row["subject"],
        "folderName": row["folder"],
        "name": row["name"],
        "tag": row["tag"],
        "status": row["status"],
        "url": uri(row, data=False),
        "autoarchive": CODES.get(code, "") if code is not None else "",
        "prevent_anon": "true" if row["prevent_anon"] else "false",
        "prevent_auto_commit": "true" if row["prevent_auto_commit"] else "false",
        "SOURCE": row["source"],
        "VISIT": row["visit"],
        "PROTOCOL": row["protocol"],
        "TIMEZONE": row["timezone"],
    }


def _stamp(value: _dt.datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-5]


def table(rows: Sequence[Any], query: ListQuery | None = None) -> Table:
    records = [row_of(r) for r in rows]
    t = shape(records, query or ListQuery(), COLUMNS, lambda r, c: r.get(c), always=())
    t.total = None  # XNAT's prearchive ResultSet has neither totalRecords nor title
    return t


def listing(ctx: Context, actor: Actor, projects: str | None, query: ListQuery) -> Table:
    tag = query.filters.pop("tag", None)
    with ctx.db.read() as conn:
        names = visible_projects(conn, actor, projects)
        rows = [r for r in pq.sessions(conn, names) if tag is None or r["tag"] == tag]
    return table(rows, query)


def session_table(ctx: Context, actor: Actor, key: Key) -> Table:
    with ctx.db.read() as conn:
        return table([load(conn, actor, key)])


def rows_for(ctx: Context, actor: Actor, keys: Sequence[Key]) -> Table:
    """The current rows of some sessions (what the batch services answer with)."""
    with ctx.db.read() as conn:
        return table([load(conn, actor, k) for k in keys])


# --- building ----------------------------------------------------------------------------------------


def build(ctx: Context, actor: Actor, key: Key) -> Any:
    with ctx.db.write() as conn:
        row = load_locked(conn, actor, key)
        if row["status"] in ("ARCHIVING", "DELETING", "MOVING"):
            raise Conflict("session document locked")
        return build_row(conn, row)


def build_filed(ctx: Context, pk: int) -> None:
    """Build a session an import has just filed files into, as its last step (``action=commit``, a
    ``dest`` in the prearchive): the import's rights were checked as it filed, so none are checked
    here (an Unassigned session is built for a non-admin too). A session archived, deleted or
    taken for archiving meanwhile by someone else is left as it is: its files went with it."""
    with ctx.db.write() as conn:
        row = pq.session_locked(conn, pk)
        if row is not None and row["status"] in pq.OPEN:
            build_row(conn, row)


def build_row(conn: Connection, row: Any, status: str | None = None) -> Any:
    """Assign scan IDs and the session type from the headers; the session becomes READY (or
    CONFLICT when its label is already taken in the archive)."""
    series = pq.series_of(conn, row["pk"])
    infos = [sb.SeriesInfo(s["uid"], s["number"], s["modality"], s["xsi_type"]) for s in series]
    ids = sb.scan_ids(infos)
    for s in series:
        pq.update_series(conn, s["pk"], scan_id=ids[(s["uid"], s["number"])])
    xsi_type = sb.session_type(s["modality"] for s in series) if series else "xnat:otherDicomSessionData"
    if status is None:
        taken = row["project"] is not None and q.label_taken(conn, "experiment", row["project"], row["name"])
        status = "CONFLICT" if taken else "READY"
    pq.update_session(conn, row["pk"], xsi_type=xsi_type, status=status, built=q.now(), lastmod=q.now())
    return pq.session(conn, row["pk"])


def session_item(conn: Connection, row: Any) -> Item:
    """The session document (XNAT keeps it as ``{FOLDER}.xml`` beside the folder)."""
    xsi_type = row["xsi_type"] or "xnat:otherDicomSessionData"
    series = pq.series_of(conn, row["pk"])
    values = dict(row["fields"] or {})
    values["modality"] = sb.lead_modality(s["modality"] for s in series)
    fields = sb.fit(xsi_type, values)
    fields.update({"label": row["name"], "project": row["project"] or "", "subject_ID": row["subject"]})
    counts = pq.file_counts(conn, row["pk"])
    item = Item(xsi_type, fields)
    item.child("scans/scan", [_scan_item(s, counts.get(s["pk"], (0, 0))) for s in series])
    return item


def _scan_item(s: Any, count: tuple[int, int]) -> Item:
    fields = dict(s["fields"] or {})
    fields.update({"ID": s["scan_id"] or s["scan_dir"], "type": s["description"] or None, "frames": count[0]})
    res_fields = {"label": "DICOM", "format": "DICOM", "content": "RAW", "file_count": count[0]}
    res = Item("xnat:resourceCatalog", {**res_fields, "file_size": count[1]}, element="file")
    item = Item(s["xsi_type"], {k: v for k, v in fields.items() if v is not None}, element="scan")
    item.child("file", [res])
    return item


def document(ctx: Context, actor: Actor, key: Key) -> Item:
    with ctx.db.read() as conn:
        row = load(conn, actor, key)
        if row["built"] is None:
            raise NotFound("The session document has not been built yet (it is still RECEIVING).")
        return session_item(conn, row)


# --- scans and files ---------------------------------------------------------------------------------


def scans(ctx: Context, actor: Actor, key: Key, query: ListQuery) -> Table:
    with ctx.db.read() as conn:
        row = load(conn, actor, key)
        counts = pq.file_counts(conn, row["pk"])
        series = pq.series_of(conn, row["pk"])
    records = []
    for s in series:
        sid = s["scan_id"] or s["scan_dir"]
        records.append({
            "ID": sid, "xsiType": s["xsi_type"], "series_description": s["description"],
            "modality": s["modality"], "file_count": str(counts.get(s["pk"], (0, 0))[0]),
            "URI": f"{uri(row)}/scans/{sid}",
        })  # fmt: skip
    return shape(records, query, SCAN_COLUMNS, lambda r, c: r.get(c), title="Scans", always=("ID",))


def scan_files(ctx: Context, actor: Actor, key: Key, scan: str) -> tuple[Any, list[tuple[Any, Path]]]:
    """The series rows and (file row, path) pairs of one scan of a session."""
    with ctx.db.read() as conn:
        row = load(conn, actor, key)
        series = [s for s in pq.series_of(conn, row["pk"]) if (s["scan_id"] or s["scan_dir"]) == scan]
        if not series:
            raise NotFound(f"Scan {scan} not found in prearchive session {key.folder}")
        pks = {s["pk"]: s for s in series}
        files = [f for f in pq.files_of(conn, row["pk"]) if f["series_pk"] in pks]
    base = folder_of(ctx, row)
    return series[0], [
        (f, base / "SCANS" / pks[f["series_pk"]]["scan_dir"] / "DICOM" / f["name"]) for f in files
    ]


def zip_of(ctx: Context, actor: Actor, key: Key, level: int) -> tuple[str, Iterator[bytes], int | None]:
    """The session folder as a streamed zip (``{FOLDER}/SCANS/{scan}/DICOM/{file}``)."""
    with ctx.db.read() as conn:
        row = load(conn, actor, key)
        series = {s["pk"]: s["scan_dir"] for s in pq.series_of(conn, row["pk"])}
        files = pq.files_of(conn, row["pk"])
    base = folder_of(ctx, row)
    entries = []
    for f in files:
        rel = f"SCANS/{series[f['series_pk']]}/DICOM/{f['name']}"
        entries.append((f"{row['folder']}/{rel}", base / rel))
    if not entries:
        raise NotFound("No files in this prearchive session.")
    chunks, length = bundles.zip_stream(entries, level)
    return f"{row['folder']}.zip", chunks, length


# --- move and delete ---------------------------------------------------------------------------------


def move(ctx: Context, actor: Actor, key: Key, new_project: str) -> str:
    """Move a session to another project's prearchive: one folder rename, journalled (``movedir``)
    and undone if the commit fails or never happens (the process dies: recovery moves it back)."""
    moves = Moves(ctx.settings.tmp_dir)
    try:
        with ctx.db.write() as conn:
            row = load_locked(conn, actor, key)
            target, _ = load_project(conn, actor, new_project, access.EDIT)
            if row["status"] in ("ARCHIVING", "DELETING", "MOVING"):
                raise Forbidden("Operation already in progress on this prearchive entry.")
            directory = f"{target['id']}/{row['timestamp']}/{row['folder']}"
            if pq.directory_taken(conn, directory):
                there = f"{row['timestamp']}/{row['folder']}"
                raise Conflict(f"Project {target['id']} already has prearchive session {there}")
            src, dest = folder_of(ctx, row), contained(ctx.settings.prearchive_dir, PurePosixPath(directory))
            moves.move_folder(src, dest)
            moves.make_durable(ctx.settings.data)
            code = target["prearchive_code"]
            pq.update_session(conn, row["pk"], project=target["id"], directory=directory, autoarchive=code)
    except BaseException:
        moves.rollback()
        raise
    moves.commit()
    _prune(ctx, src.parent)
    return f"/data/prearchive/projects/{target['id']}/{row['timestamp']}/{row['folder']}"


def delete(ctx: Context, actor: Actor, key: Key) -> None:
    with ctx.db.write() as conn:
        row = load_locked(conn, actor, key)
        if row["status"] == "ARCHIVING":
            raise Forbidden("Operation already in progress on this prearchive entry.")
        paths = file_paths(ctx, conn, row)
        pq.delete_session(conn, row["pk"])
    remove_session_files(ctx, row, paths)


def file_paths(ctx: Context, conn: Connection, row: Any) -> list[Path]:
    """Where each file a session's rows name is."""
    base = folder_of(ctx, row)
    dirs = {s["pk"]: s["scan_dir"] for s in pq.series_of(conn, row["pk"], keys_only=True)}
    return [base / "SCANS" / dirs[f["series_pk"]] / "DICOM" / f["name"] for f in pq.files_of(conn, row["pk"])]


def remove_session_files(ctx: Context, row: Any, paths: Sequence[Path]) -> None:
    """After a session's rows are gone (deleted, archived): remove the files of its own it still
    holds (``paths``) and the folders left empty. Whatever else is in its folder was placed by an
    import that found the session before it went and has not committed yet: it stays for that
    import, which files it into the study's next session (``ingest_sessions.SessionGone``).

    The files are first moved into this process's own temporary folder, so a crash half-way leaves
    temporaries that start-up recovery removes, never files without rows."""
    if paths:
        doomed = own_folder(ctx.settings.tmp_dir) / f"gone-{secrets.token_hex(8)}"
        doomed.mkdir()
        for i, path in enumerate(paths):
            with suppress(FileNotFoundError):
                os.rename(path, doomed / str(i))
        shutil.rmtree(doomed, ignore_errors=True)
    folder = folder_of(ctx, row)
    for current, _dirs, _files in os.walk(folder, topdown=False):
        with suppress(OSError):  # not empty: an import's file is in it
            os.rmdir(current)
    _prune(ctx, folder.parent)


def _prune(ctx: Context, folder: Path) -> None:
    root = ctx.settings.prearchive_dir.resolve()
    current = folder.resolve()
    while current != root and root in current.parents:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent


def log_of(ctx: Context, actor: Actor, key: Key) -> str:
    with ctx.db.read() as conn:
        return str(load(conn, actor, key)["log"])


def scan_resources(files: Sequence[tuple[Any, Path]]) -> Table:
    """The one resource of a prearchive scan (``DICOM``), as a resource listing row."""
    row = {
        "label": "DICOM", "format": "DICOM", "content": "RAW", "file_count": str(len(files)),
        "file_size": str(sum(int(f["size"]) for f, _ in files)),
    }  # fmt: skip
    return Table(columns=list(row), rows=[row], title="Resources")


def file_table(session_uri: str, scan: str, files: Sequence[tuple[Any, Path]]) -> Table:
    rows = [
        {"Name": f["name"], "Size": str(f["size"]), "digest": f["md5"],
         "URI": f"{session_uri}/scans/{scan}/resources/DICOM/files/{f['name']}"}
        for f, _ in files
    ]  # fmt: skip
    return Table(columns=["Name", "Size", "URI", "digest"], rows=rows, title="Files")
