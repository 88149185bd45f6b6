"""``xnatd verify``: hold the database and the data folder against each other.

Reports archive and prearchive files that a row names but the disk lacks (missing), files on disk
no row names (orphans), size and MD5 mismatches, temporaries a dead process left behind and
prearchive sessions stuck in a transient status. ``repair`` fixes only what is safe: temporaries are
deleted, stuck sessions reset, orphans moved to ``DATA/quarantine`` (data is never deleted); missing
files and mismatches are reported for a human. ``recover`` is the safe part alone, run at every
server start so a crashed server heals itself.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from xnatd.db import archive as q
from xnatd.db import prearchive as pq
from xnatd.db import verify as qv
from xnatd.services.access.context import Context
from xnatd.services.ingest.dicom_spool import spool_root
from xnatd.services.prearchive.archive_options import staged_options
from xnatd.storage import inventory, tmpdirs
from xnatd.storage.files import md5_of
from xnatd.storage.moves import is_empty_folder

log = logging.getLogger("xnatd.verify")

# A temporary or a transient session younger than this may belong to a live process.
STALE_AFTER = 3600.0


@dataclass
class Problem:
    kind: str  # missing | orphan | size | md5 | temporary | stuck
    where: str  # a path relative to DATA, or a prearchive session
    detail: str = ""
    fixed: str = ""  # what --repair did, empty when nothing


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    checked_files: int = 0
    # Missing prearchive files by name: (problem, path under DATA/prearchive, size, MD5). An archive
    # killed between its renames and its commit left them in the archive as orphans (see _orphans).
    missing_pre: dict[str, list[tuple[Problem, str, int, str]]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.problems

    @property
    def unfixed(self) -> list[Problem]:
        return [p for p in self.problems if not p.fixed]

    def add(self, kind: str, where: str, detail: str = "", fixed: str = "") -> None:
        self.problems.append(Problem(kind, where, detail, fixed))


def verify(
    ctx: Context,
    project: str | None = None,
    *,
    md5: bool = True,
    repair: bool = False,
    stale_after: float = STALE_AFTER,
    progress: Callable[[int], None] | None = None,
) -> Report:
    report = Report()
    quarantine = ctx.settings.data / "quarantine" / time.strftime("%Y%m%d-%H%M%S")
    for tree in ("prearchive", "archive"):
        _check_tree(ctx, tree, project, md5, repair, stale_after, quarantine, report, progress)
    _temporaries(ctx, repair, stale_after, report)
    _stuck(ctx, project, repair, stale_after, report)
    return report


def recover(ctx: Context, stale_after: float = STALE_AFTER) -> Report:
    """The safe part of a repair, for server start-up: old temporaries go, stuck sessions are reset.
    Several processes may run it at once: a deletion that finds nothing and a reset that matches no
    row are fine, and only entries older than ``stale_after`` are touched, so work a live process is
    doing right now is left alone."""
    report = Report()
    _temporaries(ctx, True, stale_after, report)
    _stuck(ctx, None, True, stale_after, report)
    for p in report.problems:
        log.warning("start-up recovery: %s %s %s -> %s", p.kind, p.where, p.detail, p.fixed or "left")
    return report


def _compare(report: Report, where: str, path: Path, size: int, digest: str, md5: bool) -> None:
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        report.add("missing", where, "no file on disk", "")
        if where.startswith("prearchive/"):
            rel = where.removeprefix("prearchive/")
            entry = (report.problems[-1], rel, size, digest)
            report.missing_pre.setdefault(PurePosixPath(rel).name, []).append(entry)
        return
    if actual != size:
        report.add("size", where, f"database says {size} bytes, disk has {actual}")
    elif md5 and md5_of(path) != digest:
        report.add("md5", where, f"database says MD5 {digest}, the file differs")


def _check_tree(
    ctx: Context,
    tree: str,
    project: str | None,
    md5: bool,
    repair: bool,
    stale_after: float,
    quarantine: Path,
    report: Report,
    progress: Callable[[int], None] | None,
) -> None:
    """Compare the archive's (or the prearchive's) file rows with the files on disk."""
    archive = tree == "archive"
    root = ctx.settings.archive_dir if archive else ctx.settings.prearchive_dir
    walked = inventory.walk(root, project or "")  # before the rows: a file committed meanwhile is no orphan
    known: set[str] = set()
    with ctx.db.read() as conn:
        rows = qv.archive_files(conn, project) if archive else qv.prearchive_files_of(conn, project)
        for row in rows:
            rel = (
                str(PurePosixPath(row["directory"]) / row["path"])
                if archive
                else f"{row['directory']}/SCANS/{row['scan_dir']}/DICOM/{row['name']}"
            )
            known.add(rel)
            _compare(report, f"{tree}/{rel}", root / rel, int(row["size"]), str(row["md5"]), md5)
            report.checked_files += 1
            if progress:
                progress(1)
    give_back_to = ctx.settings.prearchive_dir if archive else None
    _orphans(report, root, tree, walked, known, repair, stale_after, quarantine / tree, give_back_to)


def _orphans(
    report: Report,
    root: Path,
    label: str,
    on_disk: list[str],
    known: set[str],
    repair: bool,
    stale_after: float,
    into: Path,
    give_back_to: Path | None = None,
) -> None:
    """Files no row names. A young one may be an upload placed a moment before its row commits:
    it is reported but never moved (that would lose an acknowledged file)."""
    for rel in on_disk:
        if rel in known:
            continue
        try:
            age = inventory.age_of(root / rel)
        except FileNotFoundError:
            continue  # deleted meanwhile (with its row)
        fixed, detail = "", "no database row names this file"
        if age < stale_after:
            detail += f" (changed {age:.0f} s ago: may be in flight, left in place)"
        elif repair:
            try:
                fixed = _give_back(report, root / rel, give_back_to) if give_back_to else ""
                fixed = fixed or f"moved to {inventory.quarantine(root / rel, root, into)}"
            except FileNotFoundError:
                continue
        report.add("orphan", f"{label}/{rel}", detail, fixed)


def _give_back(report: Report, path: Path, prearchive: Path) -> str:
    """An archive orphan with the name, size and MD5 of a missing prearchive file is that file, moved
    by an archive operation that died before its commit: rename it back (the session is then reset
    to READY and can be archived again)."""
    candidates = report.missing_pre.get(path.name, [])
    size = path.stat().st_size
    digest = ""
    for i, (problem, rel, want_size, want_md5) in enumerate(candidates):
        if want_size != size:
            continue
        digest = digest or md5_of(path)
        if digest != want_md5:
            continue
        dest = prearchive / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, dest)
        problem.fixed = f"moved back from the archive ({path})"
        del candidates[i]
        return f"moved back to prearchive/{rel}"
    return ""


def _old_temporaries(report: Report, found: list[Path], data: Path, repair: bool, stale_after: float) -> None:
    for path in found:
        try:
            age = inventory.age_of(path)
        except FileNotFoundError:
            continue
        if age < stale_after:
            continue
        fixed = ""
        if repair:
            fixed = "deleted" if inventory.remove_entry(path) else "gone meanwhile"
        report.add("temporary", str(path.relative_to(data)), f"left {age / 3600:.1f} h ago", fixed)


def _temporaries(ctx: Context, repair: bool, stale_after: float, report: Report) -> None:
    """A dead process's own temporary folder goes whatever its age (its lock could be taken, so
    nobody writes there); flat temporaries in DATA/tmp keep the age rule (their owner is unknown)."""
    root = ctx.settings.tmp_dir
    undo = lambda folder: _undo_dead(ctx, folder, report)  # noqa: E731
    for folder in tmpdirs.reclaim_dead(root, repair, undo):
        fixed = "deleted" if repair else ""
        report.add("temporary", str(folder.relative_to(ctx.settings.data)), "its process is dead", fixed)
    _old_temporaries(report, inventory.temporaries(root), ctx.settings.data, repair, stale_after)


def _stuck(ctx: Context, project: str | None, repair: bool, stale_after: float, report: Report) -> None:
    """A session a dead process left BUILDING goes back to RECEIVING (the idle builder takes it up
    again); any other transient status becomes READY when every file is still in the prearchive
    (archive again; a Direct-Archive staging session RECEIVING, archived again by the idle
    builder), else ERROR (the log says why; verify lists the missing files)."""
    before = q.now() - _dt.timedelta(seconds=stale_after)
    with ctx.db.read() as conn:
        rows = qv.stuck_sessions(conn, before, project)
    for row in rows:
        where = f"prearchive session {row['directory']}"
        detail = f"{row['status']} since {row['lastmod']:%Y-%m-%d %H:%M:%S}"
        fixed = ""
        if repair:
            status = "RECEIVING" if row["status"] == "BUILDING" else _after_interrupt(ctx, row)
            note = f"{row['status']} interrupted (the process died); reset to {status}\n"
            with ctx.db.write() as conn:
                done = qv.reset_stuck(conn, int(row["pk"]), status, before, note)
            fixed = f"reset to {status}" if done else "taken by another process"
        report.add("stuck", where, detail, fixed)


def _after_interrupt(ctx: Context, row: Any) -> str:
    """READY, or RECEIVING for a Direct-Archive staging session (the idle builder archives it, as its
    imports were promised), when every file is still there; else ERROR."""
    base = ctx.settings.prearchive_dir / str(row["directory"])
    with ctx.db.read() as conn:
        scan_dirs = {s["pk"]: s["scan_dir"] for s in pq.series_of(conn, int(row["pk"]))}
        names = [(scan_dirs[f["series_pk"]], f["name"]) for f in pq.files_of(conn, int(row["pk"]))]
    if not all((base / "SCANS" / d / "DICOM" / n).exists() for d, n in names):
        return "ERROR"
    return "RECEIVING" if staged_options(row["intake"]) is not None else "READY"


def _undo_dead(ctx: Context, folder: Path, report: Report) -> None:
    """Take back what a dead process made visible but never committed (its journal, see
    ``tmpdirs.note``): a placed file no row names goes to quarantine, a file it moved (archiving)
    goes back where it came from. A path a row names was committed and stays. Then the old copies it
    moved aside (an overwrite, a deletion) go back where the commit never happened (``_put_back``)."""
    journal = tmpdirs.journal_of(folder)
    _undo_placed(ctx, [e for e in journal if e[0] != "aside" and os.path.lexists(e[-1])], report)
    _put_back(ctx, folder, [e for e in journal if e[0] == "aside" and len(e) == 3], report)


def _undo_placed(ctx: Context, entries: list[list[str]], report: Report) -> None:
    if not entries:
        return
    known = _known_paths(ctx)
    roots = {"archive": ctx.settings.archive_dir, "prearchive": ctx.settings.prearchive_dir}
    into = ctx.settings.data / "quarantine" / time.strftime("%Y%m%d-%H%M%S")
    spooled = _Spooled(spool_root(ctx.settings))
    for entry in reversed(entries):
        dest = Path(os.path.abspath(entry[-1]))
        if not os.path.lexists(dest):
            continue
        where = (
            str(dest.relative_to(ctx.settings.data)) if dest.is_relative_to(ctx.settings.data) else str(dest)
        )
        if entry[0] in ("move", "movedir") and len(entry) == 3:
            src = Path(os.path.abspath(entry[1]))
            if _move_undone(entry[0], src, dest, known):
                src.parent.mkdir(parents=True, exist_ok=True)
                os.rename(dest, src)
                report.add("orphan", where, "moved by a process that died before its commit", "moved back")
            continue
        if str(dest) in known:
            continue
        label = next((k for k, r in roots.items() if dest.is_relative_to(os.path.abspath(r))), None)
        if entry[0] == "place" and label is not None and spooled.holds(dest):
            dest.unlink()
            again = "removed: the same object waits in the receiver's spool and is filed again"
            report.add("orphan", where, "placed by a DICOM receiver that died before its commit", again)
        elif entry[0] == "place" and label is not None:
            moved = inventory.quarantine(dest, Path(os.path.abspath(roots[label])), into / label)
            report.add(
                "orphan", where, "placed by a process that died before its commit", f"moved to {moved}"
            )


class _Spooled:
    """The DICOM receiver files an acknowledged object by giving its spool file a second name in
    the prearchive, and drops the spool name only after the commit. A placed file that is such a
    second name of an object still in the spool is no orphan: the spool copy is filed again (the
    spool's takeover), so the placed name is removed, not kept in quarantine as a copy of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._inodes: set[tuple[int, int]] | None = None

    def holds(self, path: Path) -> bool:
        st = path.lstat()
        if st.st_nlink < 2 or not path.is_file():
            return False
        if self._inodes is None:  # read once, and only when a candidate turns up
            self._inodes = set()
            for spooled in self.root.glob("*/*.dcm"):
                try:
                    s = spooled.lstat()
                except FileNotFoundError:
                    continue
                self._inodes.add((s.st_dev, s.st_ino))
        return (st.st_dev, st.st_ino) in self._inodes


def _put_back(ctx: Context, folder: Path, asides: list[list[str]], report: Report) -> None:
    """``Placement`` journals ``aside BACKUP DEST`` before it moves the old copy of an archive file
    it overwrites or deletes into its process's folder; the backup is gone once the transaction
    committed (dropped) or rolled back (put back). One still there was left by the kill: it goes
    back to DEST when DEST's row still describes it (same size and MD5: the overwrite never
    committed; the new file goes to quarantine) or when the row exists and DEST is gone (a deletion
    or an overwrite that never committed). Otherwise the commit happened, and the backup is deleted
    with the folder. The check and the rename run in a write transaction: on SQLite no other writer
    is between its own renames and its commit meanwhile."""
    found = [(folder / PurePosixPath(e[1]).name, Path(os.path.abspath(e[2]))) for e in asides]
    found = [(b, d) for b, d in found if b.is_file() or (b.is_dir() and not b.is_symlink())]
    if not found:
        return
    data = Path(os.path.abspath(ctx.settings.data))
    archive = Path(os.path.abspath(ctx.settings.archive_dir))
    into = data / "quarantine" / time.strftime("%Y%m%d-%H%M%S")
    with ctx.db.write() as conn:
        for backup, dest in reversed(found):
            where = str(dest.relative_to(data)) if dest.is_relative_to(data) else str(dest)
            present = os.path.lexists(dest)
            if not dest.is_relative_to(archive):  # not written by Placement: nothing to judge by
                kept = inventory.quarantine(backup, folder, into / "backups")
                report.add(
                    "temporary", str(backup.relative_to(data)), f"the old copy of {where}", f"moved to {kept}"
                )
                continue
            if backup.is_dir():  # a replaced scan's resource folder (archiving with overwrite=delete)
                _put_folder_back(conn, backup, dest, archive, report)
                continue
            row = qv.archive_file_at(conn, dest.relative_to(archive).as_posix())
            if row is None:
                continue  # deleted, and committed
            if not present:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(backup, dest)
                report.add(
                    "missing", where, "taken away by a process that died before its commit", "put back"
                )
                continue
            if backup.stat().st_size != int(row["size"]) or md5_of(backup) != str(row["md5"]):
                continue  # the overwrite committed
            moved = inventory.quarantine(dest, archive, into / "archive")
            os.replace(backup, dest)
            report.add(
                "md5",
                where,
                "overwritten by a process that died before its commit",
                f"old copy put back, the new one moved to {moved}",
            )


def _move_undone(kind: str, src: Path, dest: Path, known: set[str]) -> bool:
    """Whether a journalled move (a file, or a scan's folder for ``movedir``) never committed: a row
    still names its source (archiving deletes the prearchive rows in the same transaction), or no
    row names its destination. A replaced scan's old rows may name the very same archive paths, so
    the destination alone cannot tell."""
    if os.path.lexists(src):
        return False
    if kind == "movedir":
        return _any_inside(known, src) or not _any_inside(known, dest)
    return str(src) in known or str(dest) not in known


def _any_inside(known: set[str], folder: Path) -> bool:
    """Whether a row names a file in ``folder``."""
    prefix = str(folder) + os.sep
    return any(path.startswith(prefix) for path in known)


def _put_folder_back(conn: Any, backup: Path, dest: Path, archive: Path, report: Report) -> None:
    """The resource row still names the folder and nothing new is in it (the new scan's files went
    back to the prearchive, ``_undo_placed``): the replacement never committed, the old folder goes
    back. Otherwise the commit happened and the backup goes with the dead process's folder."""
    if not qv.resource_at(conn, dest.relative_to(archive).as_posix()):
        return
    if os.path.lexists(dest) and not is_empty_folder(dest):
        return
    if os.path.lexists(dest):
        dest.rmdir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(backup, dest)
    where = dest.relative_to(archive.parent).as_posix()
    report.add("missing", where, "taken away by a process that died before its commit", "put back")


def _known_paths(ctx: Context) -> set[str]:
    """The absolute path of every file a row names (archive and prearchive)."""
    arc = os.path.abspath(ctx.settings.archive_dir)
    pre = os.path.abspath(ctx.settings.prearchive_dir)
    with ctx.db.read() as conn:
        known = {f"{arc}/{row['directory']}/{row['path']}" for row in qv.archive_files(conn)}
        known |= {
            f"{pre}/{row['directory']}/SCANS/{row['scan_dir']}/DICOM/{row['name']}"
            for row in qv.prearchive_files_of(conn)
        }
    return {os.path.normpath(p) for p in known}
