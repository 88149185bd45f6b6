"""XNAT's catalog refresh (``POST /data/services/refresh/catalog?resource=...&options=...``).

XNAT keeps a catalog file per resource and this service brings it back in line with the folder;
xnatd's catalog is the database, so the same operations apply to its file rows: ``append`` indexes
files found in a resource's folder that have no row (copied in by hand, by a script on the server),
``delete`` drops rows whose file is gone; ``checksum`` (fill in missing MD5s) and ``populateStats``
have nothing to do, since every row has its MD5 from the moment it is written and counts and sizes
are always computed. With no option the resources are only checked (they exist, the caller may
edit them), as XNAT reviews its catalogs and changes nothing; ``All`` means every operation.

A file newer than ``FRESH`` seconds is left alone by ``append``: it may be one an upload or an
archive has placed and not yet committed. The folder is read and the new files hashed before the
one short transaction that records them. Each refreshed object gets XNAT's "Catalog(s) Refreshed"
workflow. Refreshing needs edit rights, as on XNAT.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xnatd.db import archive as q
from xnatd.domain import address as A
from xnatd.errors import InvalidInput, XnatdError
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import workflows
from xnatd.services.archive.resolve import resolve
from xnatd.services.archive.resources import archive_path, owners, select_resources
from xnatd.storage.files import md5_of
from xnatd.storage.paths import safe_relpath

APPEND, CHECKSUM, DELETE, STATS = "append", "checksum", "delete", "populateStats"
OPERATIONS = (APPEND, CHECKSUM, DELETE, STATS)
FRESH = 60.0
REFRESHED = "Catalog(s) Refreshed"


def operations(values: Iterable[str]) -> set[str]:
    """XNAT's ``options=append,delete`` (or ``append=true`` flags, given here as names)."""
    wanted = {v.strip() for value in values for v in value.split(",") if v.strip()}
    if "All" in wanted or "all" in wanted:
        return set(OPERATIONS)
    unknown = wanted - set(OPERATIONS)
    if unknown:
        raise InvalidInput(
            f"Unknown refresh operation(s) {', '.join(sorted(unknown))}: {', '.join(OPERATIONS)}"
        )
    return wanted


def refresh(ctx: Context, actor: Actor, uris: Sequence[str], ops: set[str]) -> None:
    if not uris:
        raise InvalidInput("Give the resources to refresh as resource=/archive/projects/...")
    for uri in uris:
        _refresh_one(ctx, actor, _address(uri), ops)


def _address(uri: str) -> A.Address:
    segments = [s for s in uri.strip().split("/") if s]
    if segments[:1] in (["data"], ["REST"]):
        segments = segments[1:]
    try:
        addr = A.parse(segments)
    except XnatdError:
        raise InvalidInput(f"Invalid Resource URI: {uri}") from None
    if addr.kind not in (A.PROJECT, A.SUBJECT, A.EXPERIMENT, A.CHILD, A.RESOURCE):
        raise InvalidInput(f"Invalid Resource URI: {uri}")
    return addr


@dataclasses.dataclass
class _Plan:
    resource_pk: int
    new: dict[str, tuple[int, str]]  # path -> (size, md5)
    gone: list[tuple[int, Path]]  # rows without a file, and where the file would be


def _refresh_one(ctx: Context, actor: Actor, addr: A.Address, ops: set[str]) -> None:
    with ctx.db.read() as conn:
        target = resolve(conn, actor, addr, access.EDIT, upto="experiment" if addr.child else None)
        pairs = list(select_resources(conn, owners(conn, addr, target), addr.resource))
        if addr.kind == A.EXPERIMENT:  # a session's scans and reconstructions too (assessors by their URI)
            for kind in ("scan", "reconstruction"):
                below = dataclasses.replace(addr, kind=A.RESOURCES, child_kind=kind, child="ALL")
                pairs += select_resources(conn, owners(conn, below, target), None)
        rows = {res["pk"]: (res, q.files_of(conn, [res["pk"]])) for _, res in pairs}
        subject = target.subject
        experiment = target.experiment
        project_id = target.owner_project_id
    plans = [_plan(ctx, res, files, ops) for res, files in rows.values()]
    with ctx.db.write() as conn:
        for plan in plans:
            _apply(conn, actor, plan)
        record = experiment or (
            {"xsi_type": "xnat:subjectData", "id": subject["id"], "project_id": subject["project_id"]}
            if subject is not None
            else {"xsi_type": "xnat:projectData", "id": project_id, "project_id": project_id}
        )
        workflows.record(conn, actor, record, REFRESHED, "Complete")


def _plan(ctx: Context, res: Any, files: Sequence[Any], ops: set[str]) -> _Plan:
    folder = archive_path(ctx, res["directory"])
    on_disk = dict(_walk(folder))
    known = {f["path"]: f for f in files}
    plan = _Plan(int(res["pk"]), {}, [])
    if APPEND in ops:
        now = time.time()
        for rel, (path, size, mtime) in on_disk.items():
            if rel not in known and now - mtime >= FRESH:
                plan.new[rel] = (size, md5_of(path))
    if DELETE in ops:
        plan.gone = [(int(f["pk"]), folder / rel) for rel, f in known.items() if rel not in on_disk]
    return plan


def _walk(folder: Path) -> Iterable[tuple[str, tuple[Path, int, float]]]:
    """Regular files below ``folder`` whose relative path the server would accept as a name."""
    if not folder.is_dir():
        return
    for current, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not (Path(current) / d).is_symlink()]
        for name in names:
            path = Path(current) / name
            rel = path.relative_to(folder).as_posix()
            try:
                safe_relpath(rel)
                st = path.lstat()
            except (XnatdError, OSError):
                continue
            if path.is_symlink() or not path.is_file():
                continue
            yield rel, (path, st.st_size, st.st_mtime)


def _apply(conn: Any, actor: Actor, plan: _Plan) -> None:
    taken = q.paths_among(conn, plan.resource_pk, plan.new)
    for rel, (size, md5) in plan.new.items():
        if rel not in taken:  # recorded meanwhile by an upload: its row stands
            q.upsert_file(conn, plan.resource_pk, rel, size=size, md5=md5, format="", content="",
                          tags="", created_by=actor.username)  # fmt: skip
    gone = [pk for pk, path in plan.gone if not path.exists()]  # not put back meanwhile
    if gone:
        q.delete_files(conn, gone)
