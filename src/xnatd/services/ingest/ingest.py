"""The one ingest path for DICOM: staged bytes → header → prearchive session folder → index.

REST imports (a file, a zip, a tar), ``xnatd import`` and the DICOM receiver all feed an
``IngestBatch``: ``add`` reads the header of each staged file, decides its session (XNAT's rules),
renames it into ``DATA/prearchive/{project}/{timestamp}/{session}/SCANS/{scan}/DICOM/`` and keeps its
row; ``finish`` flushes the filesystem once and indexes the whole batch in one transaction. Nothing is
visible in the prearchive before that commit, and a failure removes what the batch placed. The
sessions themselves (found, started, indexed at the commit) are ``ingest_sessions``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydicom.dataset import Dataset

from xnatd.db import archive as q
from xnatd.db import group_commit
from xnatd.dicom import header, naming
from xnatd.dicom.header import FileKeys, NotDicom
from xnatd.dicom.identify import Identity, identify
from xnatd.errors import Conflict
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.resolve import role_of
from xnatd.services.ingest.import_options import ImportOptions
from xnatd.services.ingest.ingest_sessions import (
    Opening,
    Pending,
    Remembered,
    Series,
    SessionGone,
    SessionRef,
    Slot,
    SlotKey,
    drop_if_empty,
    index_all,
    intake_of,
    open_slot,
    refile,
    remember,
    series_values,
)
from xnatd.storage import flushing
from xnatd.storage.durability import fsync_file, fsync_tree, make_dirs, sync_filesystem
from xnatd.storage.files import (
    Held,
    Staged,
    discard,
    place,
    write_new,
)
from xnatd.storage.tmpdirs import note_all, own_folder

log = logging.getLogger("xnatd.ingest")
T = TypeVar("T")
FSYNC_EACH_UP_TO = 16  # above this many files a batch syncs the filesystem once instead
REFILE_TRIES = 5  # sessions gone before a batch's commit, one after the other, before it gives up


@dataclass
class Report:
    """What a batch did with its files; skipped ones are reported, never fatal."""

    stored: int = 0
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)
    not_dicom: list[str] = field(default_factory=list)  # of the skipped: unreadable as DICOM

    def summary(self) -> str:
        text = f"stored={self.stored}; duplicates={self.duplicates}; skipped={len(self.skipped)}"
        if self.skipped:
            names = ", ".join(s.encode("ascii", "replace").decode() for s in self.skipped[:5])
            text += f" ({names}{', ...' if len(self.skipped) > 5 else ''})"
        return text


@dataclass(frozen=True)
class Planned:
    """A file the batch found a place for, written there by someone else (a zip-import helper
    process, ``services/unpacking``), then confirmed with ``placed`` or ``place_instead``."""

    key: SlotKey
    skey: tuple[str, str]
    dest: Path
    others: Iterator[str]  # the names it may take instead, should ``dest`` be taken meanwhile
    row: dict[str, Any]


Dataset_ = Callable[[], Dataset]  # the full header of the file at hand, read only if needed


class IngestBatch:
    """Files of one import request, or one DICOM association, on their way into the prearchive."""

    def __init__(
        self,
        ctx: Context,
        actor: Actor,
        opts: ImportOptions,
        projects: dict[str, tuple[str, int]] | None = None,
        remembered: Remembered | None = None,
    ) -> None:
        """``remembered``: the sessions earlier batches of the same stream filed into (``remember``);
        a file of one of them skips the session lookup."""
        self.ctx = ctx
        self.actor = actor
        self.opts = opts
        self.report = Report()
        self._slots: dict[SlotKey, Slot] = {}
        self._remembered = remembered or {}
        # project key -> (ID, prearchive code) for projects the actor may import into; None: may not
        self._projects: dict[str, tuple[str, int] | None] = dict(projects or {})
        self._root = ctx.settings.prearchive_dir
        self._opening = Opening(ctx, actor, opts, self._root)  # how this batch starts sessions
        self._fresh: set[Path] = set()  # folders this batch created
        self._ready: set[Path] = set()  # folders this batch has placed files in
        self._journal_dir: Path | None = None
        self._early: dict[Path, Future[None]] = {}  # staged path -> its fsync, started early
        self._flushed: set[Path] = set()  # placed files whose fsync was started early
        self._claimed: dict[str, set[str]] = {}  # folder -> names this batch gave out there
        self._unplaced: dict[str, Path] = {}  # planned files not confirmed yet: removed by abort

    # --- adding files ----------------------------------------------------------------------------

    def flush_early(self, staged: Staged) -> None:
        """Start the fsync of a staged file now, on a flusher thread, so the disk works while the
        file is filed (header, session, rename); ``finish`` waits for it before the commit. The
        descriptor is opened here, before any rename, and stays valid across it."""
        self._early[staged.path] = flushing.start_fsync(staged.path)

    def add(self, item: Staged | Held, entry: str | None, keys: FileKeys | None = None) -> SlotKey | None:
        """Take one file, staged on disk or held in memory: file it, or report it as skipped or
        duplicate (and drop it). Returns the key of its session (``ref_of``), None if skipped.

        ``keys``: its header keys when the caller read them already (the DICOM receiver does).
        """
        try:
            if keys is None:
                keys = _keys(item, entry)
        except NotDicom as exc:
            _drop(item)
            self._skip(entry or ("" if isinstance(item, Held) else item.path.name), exc)
            return None
        try:
            return self._file(item, entry, keys)
        except BaseException:
            _drop(item)
            raise

    def _skip(self, entry: str, exc: NotDicom) -> None:
        self.report.skipped.append(entry)
        self.report.not_dicom.append(entry)
        log.info("import: skipped %s: %s", entry, exc)

    def plan_all(self, files: Iterable[tuple[str, FileKeys, int, Dataset_]]) -> list[Planned | None]:
        """Find the places of files someone else will write, as ``add`` would file them: (entry,
        keys from ``header.scan_keys``, size, a reader of its full header, called once if need be)
        each; None for one skipped or a duplicate. The places are journalled before this returns,
        so recovery removes them should the process die before the commit."""
        plans = [self._plan(*f) for f in files]
        note_all(self._journal(), (("place", str(p.dest)) for p in plans if p is not None))
        return plans

    def _plan(self, entry: str, keys: FileKeys, size: int, dataset: Dataset_) -> Planned | None:
        try:
            keys = _bounded(header.checked(keys, entry))
        except NotDicom as exc:
            self._skip(entry, exc)
            return None
        key, found = self._find(keys, _Once(dataset))
        if found is None:
            return None
        skey, folder = found
        self._stored(key, keys, None)  # at once: a second copy in the same upload is a duplicate
        taken = self._claimed.setdefault(str(folder), set())
        names = _names(entry, keys, self.opts.rename)
        name = next((n for n in names if n not in taken), None)
        if name is None:
            raise Conflict(f"No free file name in {folder}: every name this file may take is taken")
        taken.add(name)
        dest = folder / name
        self._unplaced[str(dest)] = dest
        return Planned(key, skey, dest, names, _row(keys, size))

    def placed(self, plan: Planned, md5: str) -> None:
        """``plan``'s file is written, at ``plan.dest``."""
        del self._unplaced[str(plan.dest)]
        self._pending(plan, plan.dest, md5)

    def place_instead(self, plan: Planned, item: Staged | Held) -> None:
        """``plan.dest`` was taken meanwhile (another import into the same session): ``item``, the
        file's content, goes under the next free name."""
        del self._unplaced[str(plan.dest)]  # someone else's file now: never removed by this batch
        try:
            dest, md5 = self._put(plan.dest.parent, plan.others, item)
        except BaseException:
            _drop(item)
            raise
        self._pending(plan, dest, md5)

    def _pending(self, plan: Planned, dest: Path, md5: str) -> None:
        self._slots[plan.key].pending.append(({**plan.row, "name": dest.name, "md5": md5}, dest, plan.skey))

    def ref_of(self, key: SlotKey) -> SessionRef:
        """The session a file went to (after ``finish``: where it is now, if it was moved meanwhile)."""
        return self._slots[key].ref

    def _file(self, item: Staged | Held, entry: str | None, keys: FileKeys) -> SlotKey:
        keys = _bounded(keys)
        key, found = self._find(keys, _Once(functools.partial(read_dataset, item)))
        if found is None:
            _drop(item)
            return key
        skey, folder = found
        dest, md5 = self._put(folder, _names(entry, keys, self.opts.rename), item)
        self._stored(key, keys, ({**_row(keys, item.size), "name": dest.name, "md5": md5}, dest, skey))
        return key

    def _stored(self, key: SlotKey, keys: FileKeys, pending: Pending | None) -> None:
        """Count a file in (after it is written, so a failed write leaves its SOP free for a retry)."""
        slot = self._slots[key]
        slot.sops.add(keys.sop_instance_uid)
        self.report.stored += 1
        if pending is not None:
            slot.pending.append(pending)

    def _find(self, keys: FileKeys, dataset: Dataset_) -> tuple[SlotKey, tuple[tuple[str, str], Path] | None]:
        """The session of a file, and its scan and folder if it is new, not a duplicate."""
        ident = identify(keys, self.opts.labels, self._project_of)
        key, slot = self._slot(ident, keys, dataset)
        if keys.sop_instance_uid in slot.sops:
            self.report.duplicates += 1
            return key, None
        skey = (keys.series_instance_uid, keys.series_number)
        series = slot.series.get(skey)
        if series is None:
            series = self._new_series(slot, keys, dataset)
        if series.folder is None or series.folder[0] is not slot.folder:  # new, or the session moved
            series.folder = (slot.folder, self._folder(slot.folder / "SCANS" / series.scan_dir / "DICOM"))
        return key, (skey, series.folder[1])

    def _put(self, folder: Path, names: Iterable[str], item: Staged | Held) -> tuple[Path, str]:
        """Write or move ``item`` under the first of ``names`` free in ``folder``: (path, MD5)."""
        if isinstance(item, Held):
            dest, md5 = _first_free(
                folder, names, functools.partial(write_new, item, journal=self._journal())
            )
        else:
            dest, _ = _first_free(folder, names, functools.partial(_place_staged, item))
            md5 = item.md5
            if item.path in self._early:
                self._flushed.add(dest)
        self._claimed.setdefault(str(folder), set()).add(dest.name)
        return dest, md5

    def _folder(self, folder: Path) -> Path:
        if folder not in self._ready:
            if not folder.exists():
                self._fresh.add(folder)
            make_dirs(folder, sync=False)
            self._ready.add(folder)
        return folder

    def _journal(self) -> Path:
        """This process's folder under ``DATA/tmp``, whose journal notes the files placed."""
        if self._journal_dir is None:
            self._journal_dir = own_folder(self.ctx.settings.tmp_dir)
        return self._journal_dir

    def _new_series(self, slot: Slot, keys: FileKeys, dataset: Dataset_) -> Series:
        folder = naming.scan_folder(keys)
        series = Series(
            None, keys.series_instance_uid, keys.series_number, folder, series_values(keys, dataset())
        )
        slot.series[(series.uid, series.number)] = series
        return series

    def _project_of(self, candidate: str) -> str | None:
        """The project a header names, if the sender may import into it (cached per batch)."""
        found = self._project(candidate)
        return found[0] if found else None

    def _project(self, candidate: str) -> tuple[str, int] | None:
        if candidate not in self._projects:
            with self.ctx.db.read() as conn:
                row = q.project(conn, candidate)
                ok = row is not None and access.allowed(
                    self.actor, row, role_of(conn, self.actor, row["id"]), access.EDIT
                )
            self._projects[candidate] = (
                (str(row["id"]), int(row["prearchive_code"] or 0)) if ok and row else None
            )
        return self._projects[candidate]

    # --- sessions --------------------------------------------------------------------------------

    def _slot(self, ident: Identity, keys: FileKeys, dataset: Dataset_) -> tuple[SlotKey, Slot]:
        key = (ident.project, keys.study_instance_uid, ident.session)
        slot = self._slots.get(key)
        if slot is None:
            known = self._remembered.get(key)
            if known is not None and self._joins(known, ident):
                slot = known.again()
            else:
                slot = open_slot(self._opening, ident, keys, dataset, self._known_code(ident))
            self._slots[key] = slot
        return key, slot

    def _joins(self, known: Slot, ident: Identity) -> bool:
        """Whether a file of this batch joins a session an earlier batch of the stream filed into:
        only one of the same intake (a plain stream's files never go to a Direct-Archive one)."""
        code = self._known_code(ident)
        if ident.project is not None and code is None:
            return False  # not known without a look-up: the look-up decides
        return known.ref.intake == intake_of(self.opts, ident, code)

    def _known_code(self, ident: Identity) -> int | None:
        """The project's prearchive code if the batch has checked the sender may import into it."""
        cached = self._projects.get(ident.project) if ident.project is not None else None
        return cached[1] if cached is not None and cached[0] == ident.project else None

    # --- finishing -------------------------------------------------------------------------------

    def finish(self) -> list[SessionRef]:
        """Make the batch durable and visible: its files flushed, then its rows committed in a
        transaction it may share with concurrent batches (``group_commit``), before it returns."""
        slots = [s for s in self._slots.values() if s.pending]
        if not slots:
            return [s.ref for s in self._slots.values()]
        try:
            self._make_durable(slots)
            outcome = self._commit(slots)
        except BaseException:
            self.abort()
            raise
        for slot, (pks, dupes) in zip(slots, outcome, strict=True):
            for skey, pk in pks.items():
                slot.series[skey].pk = pk
            for path in dupes:
                path.unlink(missing_ok=True)
            self.report.duplicates += len(dupes)
            self.report.stored -= len(dupes)
            slot.pending.clear()
        self._flushed.clear()  # a batch may be finished more than once (the receiver's are)
        for slot in slots:
            slot.started = False  # its files are indexed: no later abort removes the session
        return [s.ref for s in self._slots.values()]

    def _commit(self, slots: list[Slot]) -> list[tuple[dict[tuple[str, str], int], list[Path]]]:
        """Index the slots' files; a session gone meanwhile gets its files re-filed (``refile``)."""
        for attempt in range(1, REFILE_TRIES + 1):
            try:
                return group_commit.run(self.ctx.db, functools.partial(index_all, slots, self._root))
            except SessionGone as gone:
                if attempt == REFILE_TRIES:
                    raise
                slot = next(s for s in slots if s.ref.pk == gone.pk)
                log.info(
                    "import: %s; its %d new files go to the study's next session", gone, len(slot.pending)
                )
                refile(
                    self._opening,
                    slot,
                    self._known_code(slot.origin[0]) if slot.origin else None,
                    self._journal(),
                )
        raise AssertionError("unreachable")

    def _make_durable(self, slots: list[Slot]) -> None:
        """Before the commit, the placed files must be on disk: a few are fsynced (side by side,
        so they share journal commits), many are flushed with one filesystem sync (far cheaper
        than thousands of fsyncs)."""
        placed = [path for slot in slots for _v, path, _k in slot.pending]
        early = list(self._early.values())
        self._early.clear()
        if len(placed) > FSYNC_EACH_UP_TO:
            sync_filesystem(self._root)
            flushing.side_by_side([], early)
            return
        flushes: list[Callable[[], None]] = [
            functools.partial(_if_there, fsync_file, p) for p in placed if p not in self._flushed
        ]
        for folder in {p.parent for p in placed}:  # new folders: their own entries too
            stop = self._root if folder in self._fresh else folder
            flushes.append(functools.partial(_if_there, fsync_tree, folder, stop))
        flushing.side_by_side(flushes, early)

    @property
    def used_remembered(self) -> bool:
        """Whether a file went to a session an earlier batch remembered (``remembered``)."""
        return any(slot.remembered for slot in self._slots.values())

    def remember(self, remembered: Remembered) -> None:
        """After ``finish``: note this batch's sessions for the next batch of the stream. Only a
        batch that committed may: the commit checked each one still open, and where it is."""
        remember(remembered, self._slots)

    def abort(self) -> None:
        """Remove every file the batch placed, or planned, but did not index, and the sessions it
        started that hold no file."""
        for path in self._unplaced.values():
            path.unlink(missing_ok=True)
        self._unplaced.clear()
        for slot in self._slots.values():
            for _values, path, _skey in slot.pending:
                path.unlink(missing_ok=True)
            slot.pending.clear()
            if slot.started:
                slot.started = False
                with suppress(Exception):  # the abort's own cause is the error to report
                    drop_if_empty(self.ctx, slot)


# the widths of the prearchive columns header values go to (PostgreSQL refuses longer ones)
_WIDTHS = {"sop_class_uid": 128, "sop_instance_uid": 128, "study_instance_uid": 128}
_WIDTHS |= {"series_instance_uid": 128, "series_number": 64, "modality": 16}


def _bounded(keys: FileKeys) -> FileKeys:
    """Hostile headers still file: values past their column's width are cut (valid UIDs have 64
    characters at most, a SeriesNumber 12, a Modality 16, so real files are never changed)."""
    cut = {k: getattr(keys, k)[:n] for k, n in _WIDTHS.items() if len(getattr(keys, k)) > n}
    return dataclasses.replace(keys, **cut) if cut else keys


def _names(entry: str | None, keys: FileKeys, rename: bool) -> Iterator[str]:
    """The names to try for a file, in order: the sender's (or the template), then numbered ones
    (a sender may use one name twice in a batch, say ``IM0001`` in two folders). Made as they are
    asked for: nearly every file takes the first."""
    first = naming.choose(entry, keys, rename)
    yield first
    template = naming.template_name(keys)
    if template != first:
        yield template
    stem = template.removesuffix(".dcm")
    yield from (f"{stem}-{n}.dcm" for n in range(2, 50))


def _place_staged(item: Staged, dest: Path) -> None:
    """Rename a staged file to ``dest`` if it is free. Its folder may go between its creation and
    the rename (an archive of the session prunes the folders it emptied): made again, once."""
    try:
        place(item, dest, overwrite=False, sync=False)
    except FileNotFoundError:
        if not item.path.exists():
            raise
        place(item, dest, overwrite=False, sync=False)  # ``place`` makes the folder first


def _first_free(folder: Path, names: Iterable[str], put: Callable[[Path], T]) -> tuple[Path, T]:
    """``put`` the file under the first of ``names`` free in ``folder`` (``put`` raises Conflict for
    a taken name and writes nothing); the path and what ``put`` answered."""
    for name in names:
        try:
            return folder / name, put(folder / name)
        except Conflict:
            continue
    raise Conflict(f"No free file name in {folder}: every name this file may take is taken")


class _Once:
    """A file's full header, read the first time it is asked for (a new session, then its first
    scan, need it; most files need it never)."""

    __slots__ = ("_load", "_value")

    def __init__(self, load: Dataset_) -> None:
        self._load = load
        self._value: Dataset | None = None

    def __call__(self) -> Dataset:
        if self._value is None:
            self._value = self._load()
        return self._value


def read_dataset(item: Staged | Held, name: str = "") -> Dataset:
    """The full header of a file at hand (``name`` names it in errors): pydicom, for the fields of
    a new session or scan."""
    return header.dataset_of(item.data, name) if isinstance(item, Held) else header.read_dataset(item.path)


def _row(keys: FileKeys, size: int) -> dict[str, Any]:
    """A file's prearchive row, but for the name and MD5 it gets once written."""
    return {"sop_uid": keys.sop_instance_uid, "sop_class": keys.sop_class_uid, "size": size}


def _keys(item: Staged | Held, entry: str | None) -> FileKeys:
    if isinstance(item, Held):
        return header.keys_of(item.data, entry or "")
    return header.read_keys(item.path)


def _drop(item: Staged | Held) -> None:
    if isinstance(item, Staged):
        discard(item)


def _if_there(flush: Callable[..., None], path: Path, *args: Path) -> None:
    """A flush before the commit; a file or folder gone meanwhile went with its session's folder
    to where a move put it, and ``ingest_sessions`` flushes it there under the session's lock."""
    try:
        flush(path, *args)
    except FileNotFoundError:
        pass
