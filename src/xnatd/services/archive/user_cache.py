"""XNAT's user cache (``/data/user/cache/resources[/{name}[/files[/{path}]]]``): each user's own upload
area outside the archive, where uploaders put files before importing them (``src=`` of the import
service) or moving them into a resource. A folder per user (``DATA/cache/users/{user}``), one
folder per "resource" in it; nobody sees another user's.

Files become visible only complete, as everywhere: each is streamed to ``DATA/tmp``, fsynced, then
renamed into place. Archives are unpacked when ``extract=true``, within the same zip-bomb limits as
uploads to the archive.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path, PurePosixPath

from xnatd.domain.table import ListQuery, Table, shape
from xnatd.errors import Conflict, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.files import UploadPart
from xnatd.storage import archives, bundles
from xnatd.storage.archive_limits import ExtractLimits
from xnatd.storage.files import Staged, discard, place, remove_tree, stage_fileobj, stage_stream
from xnatd.storage.paths import contained, safe_label, safe_relpath
from xnatd.threads import run_in_threadpool

RESOURCE_COLUMNS = ["Resource", "URI"]
FILE_COLUMNS = ["Name", "Size", "URI"]
BASE = "/data/user/cache/resources"


def _root(ctx: Context, actor: Actor) -> Path:
    access.require_user(actor)
    return ctx.settings.data / "cache" / "users" / safe_label(actor.username, "user")


def _resource(ctx: Context, actor: Actor, name: str) -> Path:
    return _root(ctx, actor) / safe_label(name, "resource")


def _file(ctx: Context, actor: Actor, name: str, path: str) -> Path:
    return contained(_resource(ctx, actor, name), safe_relpath(path))


def resources(ctx: Context, actor: Actor, query: ListQuery) -> Table:
    root = _root(ctx, actor)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    rows = [{"Resource": n, "URI": f"{BASE}/{n}"} for n in names]
    return shape(rows, query, RESOURCE_COLUMNS, lambda r, c: r.get(c), title="Resources", always=())


def _walk(folder: Path) -> Iterator[tuple[str, Path]]:
    for current, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(current) / name
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(folder).as_posix(), path


def files(ctx: Context, actor: Actor, name: str, query: ListQuery) -> Table:
    folder = _resource(ctx, actor, name)
    if not folder.is_dir():
        raise NotFound("User directory not found or is not a directory.")
    rows = [
        {"Name": rel, "Size": str(path.stat().st_size), "URI": f"{BASE}/{name}/files/{rel}"}
        for rel, path in _walk(folder)
    ]
    return shape(rows, query, FILE_COLUMNS, lambda r, c: r.get(c), title="Files", always=())


def file_path(ctx: Context, actor: Actor, name: str, path: str) -> Path:
    found = _file(ctx, actor, name, path)
    if not found.is_file() or found.is_symlink():
        raise NotFound("User directory not found or is not a directory.")
    return found


def zipped(ctx: Context, actor: Actor, name: str, level: int) -> tuple[Iterator[bytes], int | None]:
    folder = _resource(ctx, actor, name)
    if not folder.is_dir():
        raise NotFound("User directory not found or is not a directory.")
    return bundles.zip_stream([(f"{name}/{rel}", path) for rel, path in _walk(folder)], level)


def create(ctx: Context, actor: Actor, name: str) -> None:
    folder = _resource(ctx, actor, name)
    if folder.exists():
        raise Conflict("Resource with this name already exists.")
    folder.mkdir(parents=True)


def delete(ctx: Context, actor: Actor, name: str, paths: str | None) -> None:
    """The whole resource, or files (``a.txt,b/c.txt``) in it; a folder named goes with its files."""
    folder = _resource(ctx, actor, name)
    if not folder.is_dir():
        raise NotFound("User directory not found or is not a directory.")
    if paths is None:
        remove_tree(folder, ctx.settings.tmp_dir)
        return
    targets = [_file(ctx, actor, name, p) for p in paths.split(",") if p]
    missing = [t for t in targets if not os.path.lexists(t)]
    if not targets or missing:
        raise NotFound("One or more specified files do not exist.")
    for target in targets:
        remove_tree(target, ctx.settings.tmp_dir, stop_at=folder)


async def upload(
    ctx: Context, actor: Actor, name: str, path: str | None, parts: AsyncIterator[UploadPart], extract: bool
) -> int:
    """Store each part at ``path`` (or under its own name), unpacking archives when ``extract``;
    answers how many files were stored. A file of the same name is replaced."""
    folder = _resource(ctx, actor, name)
    stored = 0
    async for part in parts:
        target = path if path and stored == 0 else part.filename
        if not target:
            raise InvalidInput("Please use HTTP PUT request to specify a file name in the URL.")
        staged = await stage_stream(ctx.settings.tmp_dir, part.chunks, ctx.settings.max_upload_bytes)
        try:
            kind = archives.archive_kind(target, part.content_type) if extract else None
            if kind is None:
                await run_in_threadpool(_place, staged, contained(folder, safe_relpath(target)))
                stored += 1
            else:
                base = PurePosixPath(target).parent
                stored += await run_in_threadpool(_unpack, ctx, staged, kind, folder, base)
        finally:
            discard(staged)
    if stored == 0:
        raise InvalidInput("You tried to upload to this resource, but didn't provide any data.")
    return stored


def _place(staged: Staged, dest: Path) -> None:
    if dest.is_dir():
        raise Conflict(f"'{dest.name}' is a folder; a file cannot take its place.")
    place(staged, dest, overwrite=True)


def _unpack(ctx: Context, staged: Staged, kind: str, folder: Path, base: PurePosixPath) -> int:
    s = ctx.settings
    limits = ExtractLimits(s.max_extract_bytes, s.max_extract_ratio, s.max_extract_members)
    count = 0
    for member, stream in archives.iter_members(staged.path, kind, limits):
        rel = safe_relpath(str(base / str(member.name)) if str(base) != "." else str(member.name))
        item = stage_fileobj(s.tmp_dir, stream)
        try:
            _place(item, contained(folder, rel))
        finally:
            discard(item)
        count += 1
    return count
