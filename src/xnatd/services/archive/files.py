"""Files inside resources: listing, download (one file or a zip/tar bundle), upload and delete.

Uploads stream to ``DATA/tmp`` (hashing as they go), and only then, in one database transaction,
are renamed into place; a failure anywhere leaves neither rows nor files behind.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import mimetypes
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from xnatd.db import archive as q
from xnatd.domain.address import Address
from xnatd.domain.listing_columns import make_getter
from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import Conflict, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import snapshots
from xnatd.services.archive.resolve import resolve
from xnatd.services.archive.resources import (
    DEFAULT_RESOURCE,
    Owner,
    archive_path,
    ensure_resource,
    owners,
    select_resources,
)
from xnatd.storage import archives, bundles
from xnatd.storage.durability import sync_filesystem
from xnatd.storage.files import Staged, stage_fileobj, stage_stream
from xnatd.storage.paths import file_and_folder, parents_of, safe_relpath
from xnatd.storage.placement import Placement, drop
from xnatd.threads import run_in_threadpool

FILE_COLUMNS = [
    "Name",
    "Size",
    "URI",
    "collection",
    "file_tags",
    "file_format",
    "file_content",
    "cat_ID",
    "digest",
]


@dataclass
class FileInfo:
    path: Path
    name: str
    size: int
    md5: str
    modified: _dt.datetime
    media_type: str


@dataclass
class Download:
    filename: str
    media_type: str
    chunks: Iterator[bytes]
    length: int | None


@dataclass
class UploadPart:
    """One file of a request body: a multipart file part, or the whole raw body."""

    filename: str | None
    content_type: str | None
    chunks: AsyncIterator[bytes]


@dataclass
class UploadOptions:
    overwrite: bool = False
    extract: bool = False
    format: str = ""
    content: str = ""
    tags: str = ""
    params: Sequence[tuple[str, str]] = field(default_factory=list)


def _upto(addr: Address) -> str | None:
    return "experiment" if addr.child_kind and addr.child else None


def _selected(ctx: Context, actor: Actor, addr: Address) -> list[tuple[Owner, Any]]:
    with ctx.db.read() as conn:
        t = resolve(conn, actor, addr, access.READ, upto=_upto(addr))
        return select_resources(conn, owners(conn, addr, t), addr.resource)


def list_files(
    ctx: Context, actor: Actor, addr: Address, query: ListQuery, all_levels: bool, recursive: bool = True
) -> Table:
    """The files of the addressed resources, or of one folder of them (``files/sub/``);
    ``recursive=False`` leaves out the files of the folder's sub-folders."""
    with ctx.db.read() as conn:
        pairs = _file_scope(conn, ctx, actor, addr, all_levels)
        rows = _files_in(conn, pairs, addr.path, recursive)
    by_pk = {r["pk"]: (o, r) for o, r in pairs}
    records = []
    for f in rows:
        owner, res = by_pk[f["resource_pk"]]
        base = {
            "Name": PurePosixPath(f["path"]).name,
            "Size": f["size"],
            "URI": f"{owner.uri}/resources/{res['pk']}/files/{url_path(f['path'])}",
            "collection": res["label"],
            "file_tags": f["tags"],
            "file_format": f["format"],
            "file_content": f["content"],
            "cat_ID": res["pk"],
            "digest": f["md5"],
            "path": f["path"],
        }
        records.append({"_base": base, "_type": "xnat:resourceCatalog", "_fields": {}})
    # XNAT always sends the full file columns (xnatpy reads ``digest`` and ``Size`` from a listing it
    # asked only ``ID,URI,Name`` of); requested extras (pyxnat's ``path``) are added.
    extra = [c for c in (query.columns or []) if c not in FILE_COLUMNS and c.upper() != "DEFAULT"]
    query = dataclasses.replace(query, columns=FILE_COLUMNS + extra)
    table = shape(records, query, FILE_COLUMNS, make_getter("file"), title="Files", always=("URI",))
    table.total = None
    table.column_meta = [{"key": "URI", "serverRoot": ""}]
    return table


def _files_in(conn: Any, pairs: list[tuple[Owner, Any]], folder: str | None, recursive: bool) -> list[Any]:
    rows = q.files_of(conn, [r["pk"] for _, r in pairs], folder)
    return list(rows) if recursive else [f for f in rows if _in_folder(f["path"], folder)]


def _in_folder(path: str, folder: str | None) -> bool:
    """Whether a file lies in ``folder`` itself (None: the resource's top folder), not below it."""
    base = (folder or "").strip("/")
    if path == base:
        return True
    return "/" not in (path[len(base) + 1 :] if base else path)


def url_path(path: str) -> str:
    """A file path as it may stand in a URL: only the characters that would cut it short (``#``,
    ``?``) and ``%`` itself are escaped, so ordinary names read the same in listings as on disk."""
    return path.replace("%", "%25").replace("#", "%23").replace("?", "%3F")


def _file_scope(
    conn: Any, ctx: Context, actor: Actor, addr: Address, all_levels: bool
) -> list[tuple[Owner, Any]]:
    """The resources whose files an address means; ``experiments/E/files`` adds scans with all=true."""
    t = resolve(conn, actor, addr, access.READ, upto=_upto(addr))
    owner_list = owners(conn, addr, t)
    exp = t.experiment
    if all_levels and exp is not None and addr.level == "experiment" and q.children(conn, exp["id"], "scan"):
        scans = Address("child", addr.project, addr.subject, addr.experiment, "scan", "ALL")
        owner_list += owners(conn, scans, t)
    return select_resources(conn, owner_list, addr.resource)


def open_file(ctx: Context, actor: Actor, addr: Address) -> FileInfo | None:
    info, missing_picture = _find_file(ctx, actor, addr)
    if missing_picture is not None:  # made now, or waited for while another request makes it
        snapshots.make_for_scan(ctx, *missing_picture)
        info, _ = _find_file(ctx, actor, addr)
    return info


def _find_file(ctx: Context, actor: Actor, addr: Address) -> tuple[FileInfo | None, tuple[str, str] | None]:
    """The file, or None and, when it is a scan snapshot not made yet, (experiment ID, scan ID)."""
    assert addr.path is not None
    rel = str(safe_relpath(addr.path))
    with ctx.db.read() as conn:
        t = resolve(conn, actor, addr, access.READ, upto=_upto(addr))
        scan = addr.child if addr.child_kind == "scan" and addr.resource == snapshots.SNAPSHOTS else None
        candidates = owners(conn, addr, t)
        if scan and t.experiment is not None and rel in snapshots.names(scan):
            pairs = select_resources(conn, candidates, None)
            pairs = [p for p in pairs if p[1]["label"] == snapshots.SNAPSHOTS]
            if not pairs:
                return None, (str(t.experiment["id"]), scan)
        else:
            pairs = select_resources(conn, candidates, addr.resource)
        for _owner, res in pairs:
            row = q.file_row(conn, res["pk"], rel)
            if row is not None:
                path = archive_path(ctx, res["directory"], rel)
                media = media_type(rel)
                name = PurePosixPath(rel).name
                return FileInfo(path, name, row["size"], row["md5"], row["modified"], media), None
    return None, None


ENCODED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}


def media_type(name: str) -> str:
    """A stored file's type from its name; ``notes.txt.gz`` is gzip, not text (sent as text it
    would show as garbage, or, for ``page.html.gz``, be taken for the page it unpacks to)."""
    kind, encoding = mimetypes.guess_type(name)
    if encoding is not None:
        return ENCODED.get(encoding, "application/octet-stream")
    return kind or "application/octet-stream"


def is_folder(ctx: Context, actor: Actor, addr: Address) -> bool:
    """Whether the file path of ``addr`` is a folder holding files (``.../files/sub/``)."""
    assert addr.path is not None
    rel = str(safe_relpath(addr.path))
    with ctx.db.read() as conn:
        pairs = _file_scope(conn, ctx, actor, addr, False)
        rows = q.files_of(conn, [r["pk"] for _, r in pairs], rel)
    return any(r["path"] != rel for r in rows)


def bundle(
    ctx: Context,
    actor: Actor,
    addr: Address,
    kind: str,
    all_levels: bool,
    level: int | None,
    recursive: bool = True,
) -> Download:
    """A zip or tar(.gz) of the addressed files (as listed: ``recursive=False`` leaves out a
    folder's sub-folders), with XNAT's entry paths, streamed."""
    with ctx.db.read() as conn:
        pairs = _file_scope(conn, ctx, actor, addr, all_levels)
        rows = _files_in(conn, pairs, addr.path, recursive)
    if not rows:
        raise NotFound("No files to download here.")
    by_pk = {r["pk"]: (o, r) for o, r in pairs}
    # Each resource folder is checked against the archive root once; the file paths below it were
    # validated when they were stored, so joining them is enough (a check per file cost more than
    # writing the zip); strings, not Paths: 2,000 Path joins cost a tenth of the zip's start.
    folders = {pk: f"{archive_path(ctx, res['directory'])}/" for pk, (_o, res) in by_pk.items()}
    entries: list[tuple[str, str | Path]] = []
    for f in rows:
        owner, res = by_pk[f["resource_pk"]]
        arcname = f"{owner.zip_prefix}/resources/{res['label']}/files/{f['path']}"
        entries.append((arcname, folders[f["resource_pk"]] + f["path"]))
    name = pairs[0][0].zip_prefix.split("/", 1)[0]
    compress = ctx.settings.zip_compression if level is None else level
    if kind == "zip":
        chunks, length = bundles.zip_stream(entries, compress)
        return Download(f"{name}.zip", "application/zip", chunks, length)
    gz = kind == "tar.gz"
    media = "application/x-gzip" if gz else "application/x-tar"
    return Download(f"{name}.{kind}", media, bundles.tar_stream(entries, gzip=gz), None)


def delete_files(ctx: Context, actor: Actor, addr: Address) -> None:
    prefix = str(safe_relpath(addr.path)) if addr.path else None
    with ctx.db.write() as conn:
        t = resolve(conn, actor, addr, access.EDIT, upto=_upto(addr))
        access.require(actor, t.project_row, t.role, access.DELETE)
        pairs = select_resources(conn, owners(conn, addr, t), addr.resource)
        rows = q.files_of(conn, [r["pk"] for _, r in pairs], prefix)
        if not rows:
            raise NotFound("No matched files")
        dirs = {r["pk"]: r["directory"] for _, r in pairs}
        placement = Placement(ctx.settings.tmp_dir)
        try:
            for f in rows:
                root = archive_path(ctx, dirs[f["resource_pk"]])
                placement.remove(archive_path(ctx, dirs[f["resource_pk"]], f["path"]), stop_at=root)
            q.delete_files(conn, [f["pk"] for f in rows])
        except BaseException:
            placement.rollback()
            raise
    placement.commit()


# --- upload ----------------------------------------------------------------------------------------


async def upload(
    ctx: Context, actor: Actor, addr: Address, parts: AsyncIterator[UploadPart], opts: UploadOptions
) -> None:
    """Stage every part (extracting archives when asked), then place them all in one transaction."""
    await run_in_threadpool(_check_target, ctx, actor, addr)
    staged: list[tuple[str, Staged]] = []
    try:
        async for part in parts:
            name = _target_name(addr, part, count=len(staged))
            item = await stage_stream(ctx.settings.tmp_dir, part.chunks, ctx.settings.max_upload_bytes)
            kind = archives.archive_kind(name, part.content_type) if opts.extract else None
            if kind is None:
                staged.append((name, item))
                continue
            try:
                base = str(PurePosixPath(name).parent)
                members = await run_in_threadpool(_extract, ctx, item, kind, base)
                staged.extend(members)
            finally:
                drop([item])
        if not staged:
            raise InvalidInput(
                "You tried to PUT to this service, but didn't provide any data (no file in the body)."
            )
        await run_in_threadpool(_commit_upload, ctx, actor, addr, staged, opts)
    except BaseException:
        drop([s for _, s in staged])
        raise


def _check_target(ctx: Context, actor: Actor, addr: Address) -> None:
    with ctx.db.read() as conn:
        t = resolve(conn, actor, addr, access.EDIT, upto=_upto(addr))
        if len(owners(conn, addr, t)) != 1:
            raise InvalidInput("Upload to a single scan, not a list")


def _target_name(addr: Address, part: UploadPart, count: int) -> str:
    given = addr.path
    if given and (count == 0 or not part.filename) and not given.endswith("/"):
        return str(safe_relpath(given)) if count == 0 else str(safe_relpath(f"{given}_{count}"))
    filename = str(safe_relpath(part.filename)) if part.filename else ""
    if not filename:
        if not given:
            raise InvalidInput(
                "Give the file's name in the URL (.../files/NAME) or as the multipart filename"
            )
        filename = "upload"
    joined = f"{given.rstrip('/')}/{filename}" if given else filename
    return str(safe_relpath(joined))


def _extract(ctx: Context, archive: Staged, kind: str, base: str) -> list[tuple[str, Staged]]:
    s = ctx.settings
    limits = archives.ExtractLimits(s.max_extract_bytes, s.max_extract_ratio, s.max_extract_members)
    out: list[tuple[str, Staged]] = []
    try:
        for member, stream in archives.iter_members(archive.path, kind, limits):
            rel = str(member.name) if base in ("", ".") else f"{base}/{member.name}"
            # not fsynced one by one: the commit flushes the filesystem once for all of them
            out.append((str(safe_relpath(rel)), stage_fileobj(s.tmp_dir, stream, sync=False)))
    except BaseException:
        drop([st for _, st in out])
        raise
    return out


def _commit_upload(
    ctx: Context, actor: Actor, addr: Address, staged: list[tuple[str, Staged]], opts: UploadOptions
) -> None:
    names = [n for n, _ in staged]
    if len(set(names)) != len(names):
        raise InvalidInput("The upload names the same file twice")
    placement = Placement(ctx.settings.tmp_dir)
    try:
        with ctx.db.write() as conn:
            t = resolve(conn, actor, addr, access.EDIT, upto=_upto(addr))
            owner = owners(conn, addr, t)[0]
            res = ensure_resource(
                ctx, conn, owner, t.owner_project_id, addr.resource or DEFAULT_RESOURCE, opts.params
            )
            folder = archive_path(ctx, res["directory"])  # checked once; names were checked on arrival
            existing = _refuse_clashes(conn, res["pk"], folder, names)
            if existing and not opts.overwrite:
                dupes = ", ".join(sorted(existing)[:10])
                raise Conflict(f"File already exists: {dupes}. Retry with overwrite=true to replace it.")
            for name, item in staged:
                placement.put(item, folder / name, sync=not opts.extract, replace=name in existing)
                q.upsert_file(
                    conn,
                    res["pk"],
                    name,
                    size=item.size,
                    md5=item.md5,
                    format=opts.format,
                    content=opts.content,
                    tags=opts.tags,
                    created_by=actor.username,
                )
            if opts.extract:
                sync_filesystem(folder)  # the extracted files and their folders, durable before commit
    except BaseException:
        placement.rollback()
        raise
    placement.commit()


def _refuse_clashes(conn: Any, resource_pk: int, folder: Path, names: list[str]) -> set[str]:
    """Refuse, before anything moves, a file where a folder of files is or a folder where a file is
    (``overwrite`` replaces files, never folders: the folder's files would go with it); answers the
    names that are files already."""
    both = file_and_folder(names)
    if both is not None:
        raise Conflict(f"'{both}' is both a file and a folder in this upload.")
    parents = {p for n in names for p in parents_of(n)}
    stored = q.paths_among(conn, resource_pk, parents.union(names))
    files_in_way = {p for p in parents if p in stored or (folder / p).is_file()}
    for name in names if files_in_way else ():
        for parent in parents_of(name):
            if parent in files_in_way:
                raise Conflict(f"'{parent}' is a file; '{name}' cannot be put inside it.")
    for name in names:
        if name not in stored and _holds_files(folder / name):
            raise Conflict(f"'{name}' is a folder; a file cannot take its place.")
    return stored.intersection(names)


def _holds_files(path: Path) -> bool:
    """A folder with anything in it (an empty one is only a leftover: the file may take its place)."""
    if path.is_symlink() or not path.is_dir():
        return False
    with os.scandir(path) as entries:
        return next(entries, None) is not None
