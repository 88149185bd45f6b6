"""Archiving a prearchive session: rows for subject, session, scans, DICOM resources and files, and a
rename of every file into the archive tree, all in one transaction.

Overwrite follows XNAT: ``none`` refuses an existing session (409), ``append`` merges scans into it
(an instance already archived is not stored twice), ``delete`` replaces the scans that collide. If
anything fails, the renames are undone and the prearchive session is marked CONFLICT or ERROR.

Archives into one experiment queue (``lock_archive_targets``), so concurrent ones merge as if they
came one after the other. An import may still be placing files into the session being archived (it
found the session before the claim): the archive moves and removes only the files its rows name, and
gives back any such file a whole-folder rename took along, so that import files them into the
study's next session at its commit (``ingest_sessions.SessionGone``).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import prearchive as pq
from xnatd.dicom import session_builder as sb
from xnatd.domain import labels
from xnatd.errors import Conflict, Forbidden, InvalidInput, XnatdError
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import objects, scan_types, workflows
from xnatd.services.archive.resolve import load_project
from xnatd.services.archive.resources import Owner, archive_path, ensure_resource, new_resource, session_dir
from xnatd.services.jobs import jobs
from xnatd.services.prearchive import prearchive as pre
from xnatd.services.prearchive.archive_options import UNASSIGNED, ArchiveOptions
from xnatd.storage.durability import make_dirs
from xnatd.storage.moves import Moves, is_empty_folder
from xnatd.storage.paths import safe_label

log = logging.getLogger("xnatd.archiver")

DICOM_PARAMS = [("format", "DICOM"), ("content", "RAW")]


@dataclass(frozen=True)
class Archived:
    project: str
    subject_label: str
    label: str
    experiment_id: str

    @property
    def uri(self) -> str:
        return f"/data/archive/projects/{self.project}/subjects/{self.subject_label}/experiments/{self.label}"


def archive(ctx: Context, actor: Actor, key: pre.Key, opts: ArchiveOptions) -> Archived:
    """Archive the session ``key`` names (building it first if needed)."""
    row = _claim(ctx, actor, key, opts)
    return archive_claimed(ctx, actor, row, opts)


def refuse_early(ctx: Context, pk: int, opts: ArchiveOptions) -> None:
    """Before a Direct-Archive import answers: if its staging session cannot be archived as asked (the
    label is taken and ``overwrite=none``, or taken by another subject's session), the session is
    marked CONFLICT now (its files wait in the prearchive) and Conflict raised, rather than a 200 for
    files that will never be archived."""
    with ctx.db.read() as conn:
        row = pq.session(conn, pk)
        reason = _refusal(conn, row, opts) if row is not None and row["project"] is not None else None
    if reason is None:
        return
    with ctx.db.write() as conn:
        row = pq.session_locked(conn, pk)
        if row is not None and pq.set_status(conn, pk, "CONFLICT", pq.OPEN):
            pq.update_session(conn, pk, log=f"{row['log'] or ''}archive refused: {reason}\n")
    raise Conflict(reason)


def _refusal(conn: Connection, row: Any, opts: ArchiveOptions) -> str | None:
    """Why archiving the session into the experiment already there would be refused, as
    ``_experiment`` decides (None: it would not, or there is no such experiment yet)."""
    label = opts.label or row["name"]
    found = q.in_project(conn, "experiment", row["project"], label)
    if found is None:
        return None
    if opts.overwrite == "none":
        return "Session already exists, retry with overwrite enabled"
    subject = q.in_project(conn, "subject", row["project"], opts.subject or row["subject"] or "")
    exp = found[0]
    if exp["project_id"] != row["project"] or subject is None or exp["subject_id"] != subject[0]["id"]:
        return f"Session {label} already exists for another subject or project"
    return None


def _claim(ctx: Context, actor: Actor, key: pre.Key, opts: ArchiveOptions) -> Any:
    with ctx.db.write() as conn:
        return _claim_in(conn, actor, key, opts)


def _claim_in(conn: Connection, actor: Actor, key: pre.Key, opts: ArchiveOptions) -> Any:
    row = pre.load_locked(conn, actor, key)  # after a concurrent move or delete: not found
    if row["project"] is None and not opts.project:
        raise InvalidInput("Cannot archive sessions from the Unassigned folder.")
    if not pq.set_status(conn, row["pk"], "ARCHIVING", (*pq.OPEN, "BUILDING")):
        raise Forbidden("Operation already in progress on this prearchive entry.")
    return pq.session(conn, row["pk"])


def archive_claimed(ctx: Context, actor: Actor, row: Any, opts: ArchiveOptions) -> Archived:
    """Archive a session already in ARCHIVING status (claimed by this caller)."""
    moves = Moves(ctx.settings.tmp_dir)
    try:
        with ctx.db.write() as conn:
            pq.lock_archive_targets(conn, _targets(conn, [row], opts))
            row, done, left = _archive_row(ctx, conn, actor, row, opts, moves)
            moves.make_durable(ctx.settings.data)
    except BaseException as exc:
        moves.rollback()
        _mark_failed(ctx, row, exc)
        raise
    _archived(ctx, row, done, moves, left)
    return done


def _targets(conn: Connection, rows: Sequence[Any], opts: ArchiveOptions) -> list[tuple[str, str]]:
    """The experiments (project ID, label) sessions are archived into, for ``lock_archive_targets``."""
    out = []
    for row in rows:
        name = opts.project or row["project"]
        project = q.project(conn, name) if name else None
        if project is not None:
            out.append((str(project["id"]), str(opts.label or row["name"])))
    return out


def archive_all(
    ctx: Context, actor: Actor, keys: Sequence[pre.Key], opts: ArchiveOptions
) -> list[Archived | XnatdError]:
    """Archive several sessions (the studies of one zip import) together: what ``archive`` does
    for each, in one transaction with a savepoint per session, and one flush of the folders their
    renames changed. A session that fails is undone alone (and marked CONFLICT or ERROR, as by
    ``archive``); its error takes its place in the answer. Any other failure undoes them all."""
    outcome: list[Archived | XnatdError | None] = [None] * len(keys)
    done: list[tuple[int, Any, Archived, Moves, list[Path]]] = []
    failed: list[tuple[Any, XnatdError]] = []
    try:
        with ctx.db.write() as conn:
            found = [pq.session_at(conn, k.project, k.timestamp, k.folder) for k in keys]
            pq.lock_archive_targets(conn, _targets(conn, [r for r in found if r is not None], opts))
            for i, key in enumerate(keys):
                moves = Moves(ctx.settings.tmp_dir)
                claimed = None
                try:
                    with conn.begin_nested():
                        claimed = _claim_in(conn, actor, key, opts)
                        row, archived, left = _archive_row(ctx, conn, actor, claimed, opts, moves)
                    done.append((i, row, archived, moves, left))
                except XnatdError as exc:
                    moves.rollback()
                    outcome[i] = exc
                    if claimed is not None:  # refused before its claim: left as it was
                        failed.append((claimed, exc))
            flushed: set[Path] = set()  # every rename is done: each folder is flushed once
            for entry in done:
                entry[3].make_durable(ctx.settings.data, flushed)
    except BaseException:
        for entry in reversed(done):
            entry[3].rollback()
        raise
    for i, row, archived, moves, left in done:
        _archived(ctx, row, archived, moves, left)
        outcome[i] = archived
    for row, error in failed:
        _mark_failed(ctx, row, error)
    return [r for r in outcome if r is not None]


def _archive_row(
    ctx: Context, conn: Connection, actor: Actor, claimed: Any, opts: ArchiveOptions, moves: Moves
) -> tuple[Any, Archived, list[Path]]:
    """Within the caller's transaction: a claimed session built, archived and out of the
    prearchive's rows; also the prearchive files it left (instances archived already), which go
    after the commit (``_archived``)."""
    row = pre.build_row(conn, claimed, status="ARCHIVING")
    done, left = _archive(ctx, conn, actor, row, opts, moves)
    pq.delete_session(conn, row["pk"])
    return row, done, left


def _archived(ctx: Context, row: Any, done: Archived, moves: Moves, left: list[Path]) -> None:
    """After the commit: what the renames pushed aside goes, and what the session's folder still
    holds of its own files (a file an import placed there meanwhile stays for that import)."""
    moves.commit()
    pre.remove_session_files(ctx, row, left)
    after_archive(ctx, done.experiment_id)


def _mark_failed(ctx: Context, row: Any, exc: BaseException) -> None:
    status = "CONFLICT" if isinstance(exc, Conflict) else "ERROR"
    with ctx.db.write() as conn:
        pq.set_status(conn, row["pk"], status)
        note = f"archive failed: {exc}\n" if isinstance(exc, XnatdError) else "archive failed\n"
        pq.update_session(conn, row["pk"], log=(row["log"] or "") + note)


def after_archive(ctx: Context, experiment_id: str) -> None:
    """What follows every archive, whichever door it came through (REST, auto-archive, direct
    import, the DICOM receiver): the project's automatic conversions (scan thumbnails are made
    when first asked for, see ``services/snapshots``)."""
    jobs.on_session_archived(ctx, experiment_id)


def _archive(
    ctx: Context, conn: Connection, actor: Actor, row: Any, opts: ArchiveOptions, moves: Moves
) -> tuple[Archived, list[Path]]:
    project, _ = load_project(conn, actor, opts.project or row["project"], access.EDIT)
    pid = str(project["id"])
    subject_label = labels.check_label(opts.subject or row["subject"] or "", "subject")
    label = labels.check_label(opts.label or row["name"], "experiment")
    subject_id = _subject(ctx, conn, actor, pid, subject_label)
    exp, created = _experiment(ctx, conn, actor, pid, subject_id, label, row, opts)
    series = pq.series_of(conn, row["pk"])
    files = pq.files_of(conn, row["pk"])
    by_series: dict[int, list[Any]] = {}
    for f in files:
        by_series.setdefault(f["series_pk"], []).append(f)
    sdir = session_dir(conn, exp)
    targets = _scan_targets(conn, exp, series, opts, created)
    # new scans are typed by XNAT's scan type mapping, from the project's scans as they were before
    known = scan_types.history(conn, pid) if any(t[1] is None for t in targets.values()) else {}
    resources = [
        _scan_resource(ctx, conn, exp, sdir, s, targets[s["pk"]], len(by_series.get(s["pk"], [])), known)
        for s in series
    ]
    archived = {} if created else pq.archived_sops(conn, exp["id"])
    base = pre.folder_of(ctx, row)
    out_files: list[dict[str, Any]] = []
    out_sops: list[dict[str, Any]] = []
    left: list[Path] = []
    for s, res in zip(series, resources, strict=True):
        folder = archive_path(ctx, res["directory"])  # checked once; names are single segments
        src_dir = base / "SCANS" / s["scan_dir"] / "DICOM"
        rows = by_series.get(s["pk"], [])
        _replace_archived(ctx, conn, [f["sop_uid"] for f in rows], archived, opts, moves)
        whole = _whole_folder(src_dir, folder, rows, archived)
        if whole:
            moves.move_folder(src_dir, folder)
            _give_back(src_dir, folder, rows)
        for f in rows:
            if f["sop_uid"] in archived:
                left.append(src_dir / f["name"])
                continue  # filed by this archive already: not stored twice
            name = f["name"]
            if not whole:
                name = _free_name(folder, name)
                moves.move(src_dir / f["name"], folder / name)
            archived[f["sop_uid"]] = 0
            out_files.append({
                "resource_pk": res["pk"], "path": name, "size": f["size"], "md5": f["md5"],
                "format": "DICOM", "content": "RAW", "created_by": actor.username,
            })  # fmt: skip
            out_sops.append({"experiment_id": exp["id"], "sop_uid": f["sop_uid"], "series_uid": s["uid"]})
    pks = pq.insert_archive_files(conn, out_files)
    pq.insert_instances(conn, [{**r, "file_pk": pk} for r, pk in zip(out_sops, pks, strict=True)])
    q.update_object(conn, "experiment", exp["id"])
    workflows.record(conn, actor, exp, workflows.TRANSFERRED, "Complete")  # XNAT's history entry
    return Archived(pid, subject_label, label, exp["id"]), left


def _replace_archived(
    ctx: Context,
    conn: Connection,
    sops: list[str],
    archived: dict[str, int],
    opts: ArchiveOptions,
    moves: Moves,
) -> None:
    """Instances of a series the experiment holds already (XNAT's catalog merge): ``overwrite=append``
    refuses them, as XNAT does ("Duplicate DICOM file uploaded"), so no file is silently dropped or
    replaced; ``overwrite_files=true`` or ``overwrite=delete`` replaces each one's file by the one
    sent, and nothing else (the other files of its scan stay)."""
    again = [sop for sop in sops if archived.get(sop)]
    if not again:
        return
    if opts.overwrite != "delete" and not opts.overwrite_files:
        raise Conflict(
            f"Duplicate DICOM file uploaded: {len(again)} instances are archived already (e.g. {again[0]}); "
            "overwrite_files=true or overwrite=delete replaces them"
        )
    for sop in again:
        old = pq.archived_file(conn, archived.pop(sop))
        if old is not None:
            moves.put_aside(archive_path(ctx, old["directory"]) / old["path"])
            pq.delete_archived_files(conn, [int(old["pk"])])


def _subject(ctx: Context, conn: Connection, actor: Actor, pid: str, label: str) -> str:
    found = q.in_project(conn, "subject", pid, label)
    if found is not None:
        return str(found[0]["id"])
    new_id = objects.new_id(ctx, conn, "subject")
    if not q.insert_object(
        conn, "subject", id=new_id, project_id=pid, label=label, fields={}, insert_user=actor.username
    ):  # created by a concurrent archive a moment ago
        return _subject(ctx, conn, actor, pid, label)
    return new_id


def _experiment(
    ctx: Context,
    conn: Connection,
    actor: Actor,
    pid: str,
    subject_id: str,
    label: str,
    row: Any,
    opts: ArchiveOptions,
) -> tuple[Any, bool]:
    xsi_type = row["xsi_type"] or "xnat:otherDicomSessionData"
    series = pq.series_of(conn, row["pk"])
    values = dict(row["fields"] or {})
    values["modality"] = sb.lead_modality(s["modality"] for s in series)
    fitted = sb.fit(xsi_type, values)
    date, time = fitted.pop("date", None), fitted.pop("time", None)
    found = q.in_project(conn, "experiment", pid, label)
    if found is None:
        new_id = objects.new_id(ctx, conn, "experiment")
        if q.insert_object(
            conn, "experiment", id=new_id, project_id=pid, subject_id=subject_id, label=label,
            xsi_type=xsi_type, date=date, time=time, fields=fitted, insert_user=actor.username,
        ):  # fmt: skip
            return q.by_id(conn, "experiment", new_id), True
        found = q.in_project(conn, "experiment", pid, label)  # archived concurrently a moment ago
        if found is None:
            raise Conflict(f"Session label {label} is taken in project {pid}")
    exp = found[0]
    if opts.overwrite == "none":
        raise Conflict("Session already exists, retry with overwrite enabled")
    if exp["project_id"] != pid or exp["subject_id"] != subject_id:
        raise Conflict(f"Session {label} already exists for another subject or project")
    if exp["xsi_type"] != xsi_type:
        raise Conflict(f"Session {label} is a {exp['xsi_type']}, the DICOM makes a {xsi_type}")
    merged = (
        {**fitted, **dict(exp["fields"] or {})}
        if opts.overwrite == "append"
        else {**dict(exp["fields"] or {}), **fitted}
    )
    q.update_object(
        conn, "experiment", exp["id"], fields=merged, date=exp["date"] or date, time=exp["time"] or time
    )
    return exp, False


ScanTarget = tuple[str, Any]  # (the scan ID a series gets, the existing scan it merges into or None)


def _scan_targets(
    conn: Connection, exp: Any, series: Sequence[Any], opts: ArchiveOptions, new_session: bool
) -> dict[int, ScanTarget]:
    """The scan each series goes to, by XNAT's rules (``PrearcSessionArchiver.correctScanID``): the
    existing scan with its SeriesInstanceUID; else the scan of its number, unless that one holds
    another series, then a new ``{number}-{modality}{n}`` (``1-MR1``). A series whose UID an
    existing scan of another number holds, while its own number is free, is refused unless
    ``overwrite=delete``."""
    if new_session:
        return {s["pk"]: (s["scan_id"], None) for s in series}
    existing = q.children(conn, exp["id"], "scan")
    by_id = {e["scan_id"]: e for e in existing}
    by_uid = {_uid(e): e for e in existing if _uid(e)}
    used = set(by_id) | {s["scan_id"] for s in series}
    out: dict[int, ScanTarget] = {}
    for s in series:
        sid, same_uid = s["scan_id"], by_uid.get(s["uid"])
        if same_uid is not None:
            if same_uid["scan_id"] != sid and sid not in by_id and opts.overwrite != "delete":
                raise Conflict(
                    f"Session already contains a scan with the same UID, but a different number "
                    f"({same_uid['scan_id']})."
                )
            out[s["pk"]] = (same_uid["scan_id"], same_uid)
            continue
        match = by_id.get(sid)
        if match is None or not _uid(match):
            out[s["pk"]] = (sid, match)
            continue
        new_id = sb.next_scan_id(sid, sb.modality_code(s["xsi_type"]), used)
        used.add(new_id)
        out[s["pk"]] = (new_id, None)
    return out


def _uid(scan: Any) -> str:
    return str((scan["fields"] or {}).get("UID") or "")


def _scan_resource(
    ctx: Context,
    conn: Connection,
    exp: Any,
    sdir: str,
    s: Any,
    target: ScanTarget,
    nfiles: int,
    known: scan_types.History,
) -> Any:
    """The DICOM resource of the scan a series goes to: an existing scan's (merged: its files stay,
    the series' files join them, its type too) or a new scan's (typed by ``known``)."""
    sid, existing = target
    if existing is not None:
        pk = int(existing["pk"])
    else:
        fields = {**dict(s["fields"] or {}), "frames": nfiles}
        scan_type = scan_types.type_of({"series_description": s["description"], **fields}, known)
        pk = q.insert_child(
            conn, experiment_id=exp["id"], kind="scan", scan_id=sid, xsi_type=s["xsi_type"],
            type=scan_type, fields=fields,
        )  # fmt: skip
    owner = Owner(f"scan:{pk}", "scan", f"{sdir}/SCANS/{sid}", "", "", "scans", sid)
    if existing is None:  # a scan made just now has no resource yet
        return new_resource(ctx, conn, owner, exp["project_id"], "DICOM", DICOM_PARAMS)
    return ensure_resource(ctx, conn, owner, exp["project_id"], "DICOM", DICOM_PARAMS)


def _whole_folder(src_dir: Path, folder: Path, rows: list[Any], archived: dict[str, int]) -> bool:
    """Whether a series' prearchive folder can become the scan's resource folder in one rename:
    every file in it is one of its rows, none is archived already, and the resource folder is new."""
    if not rows or any(f["sop_uid"] in archived for f in rows) or not is_empty_folder(folder):
        return False
    try:
        return sorted(os.listdir(src_dir)) == sorted(f["name"] for f in rows)
    except FileNotFoundError:
        return False


def _give_back(src_dir: Path, folder: Path, rows: list[Any]) -> None:
    """After a whole-folder rename: a file no row names was placed there by an import between the
    check and the rename; it goes back (its import finds it where it put it and files it into the
    study's next session at its commit). Not journalled: should the process die, it is where that
    import's own journal has it."""
    names = {f["name"] for f in rows}
    strays = [n for n in os.listdir(folder) if n not in names]
    if strays:
        make_dirs(src_dir, sync=False)
    for name in strays:
        dest = src_dir / name
        try:
            os.link(folder / name, dest, follow_symlinks=False)
        except FileExistsError:  # its name was taken again meanwhile: kept beside it, never replacing
            dest = src_dir / f"{name}.{uuid.uuid4().hex[:8]}"
            os.link(folder / name, dest, follow_symlinks=False)
            log.warning("archive: an import's file %s came back as %s (its name was taken)", name, dest)
        os.unlink(folder / name)


def _free_name(folder: Path, name: str) -> str:
    """``name`` if it is free in the resource folder, else a numbered variant: a file is never
    replaced because another instance has its name (only the same instance sent again replaces its
    own file, ``_replace_archived``), and a folder of that name (a user's upload) neither."""
    safe_label(name, "file name")  # one path segment: ``folder / name`` stays in ``folder``
    if not os.path.lexists(folder / name):
        return name
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    n = 2
    while os.path.lexists(folder / f"{stem}-{n}{dot}{ext}"):
        n += 1
    return f"{stem}-{n}{dot}{ext}"


def archive_many(ctx: Context, actor: Actor, keys: Sequence[pre.Key], opts: ArchiveOptions) -> list[Archived]:
    """``/data/services/archive`` with several ``src``: each session in turn, until one fails. The
    ones archived before stay archived, so the failure's reason names them: the answer says what
    happened to every session, not only to the one that failed."""
    done: list[Archived] = []
    for key in keys:
        try:
            done.append(archive(ctx, actor, key, opts))
        except XnatdError as exc:
            if len(keys) > 1:
                archived = f"; archived: {', '.join(d.uri for d in done)}" if done else "; none archived"
                uri = f"/data/prearchive/projects/{key.project or UNASSIGNED}/{key.timestamp}/{key.folder}"
                exc.message = f"{exc.message} ({uri}{archived})"
            raise
    return done
