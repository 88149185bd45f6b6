"""The one ingest path for DICOM: staged bytes → header → prearchive session folder → index.

REST imports (a file, a zip, a tar), ``xnatd import`` and the DICOM receiver all feed an
``IngestBatch``: ``add`` reads the header of each staged file, decides its session (XNAT's rules),
renames it into ``DATA/prearchive/{project}/{timestamp}/{session}/SCANS/{scan}/DICOM/`` and keeps its
row; ``finish`` flushes the filesystem once and indexes the whole batch in one transaction. Nothing is
visible in the prearchive before that commit, and a failure removes what the batch placed.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydicom.dataset import Dataset
from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import prearchive as pq
from xnatd.dicom import header, naming
from xnatd.dicom import session_builder as sb
from xnatd.dicom.header import FileKeys, NotDicom
from xnatd.dicom.identify import Identity, identify
from xnatd.errors import Conflict
from xnatd.services import access, flushing, group_commit
from xnatd.services.context import Actor, Context
from xnatd.services.import_options import ImportOptions
from xnatd.services.resolve import load_project, role_of
from xnatd.storage.files import (
    Held,
    Staged,
    discard,
    fsync_file,
    fsync_tree,
    make_dirs,
    place,
    sync_filesystem,
    write_new,
)
from xnatd.storage.placement import relocate
from xnatd.storage.tmpdirs import note_all, own_folder

log = logging.getLogger("xnatd.ingest")
T = TypeVar("T")
UNASSIGNED_DIR = ".unassigned"
FSYNC_EACH_UP_TO = 16  # above this many files a batch syncs the filesystem once instead


@dataclass(frozen=True)
class SessionRef:
    """A prearchive session touched by a batch."""

    pk: int
    project: str | None
    timestamp: str
    folder: str

    @property
    def uri(self) -> str:
        return f"/data/prearchive/projects/{self.project or 'Unassigned'}/{self.timestamp}/{self.folder}"


@dataclass
class Report:
    """What a batch did with its files; skipped ones are reported, never fatal."""

    stored: int = 0
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"stored={self.stored}; duplicates={self.duplicates}; skipped={len(self.skipped)}"
        if self.skipped:
            names = ", ".join(s.encode("ascii", "replace").decode() for s in self.skipped[:5])
            text += f" ({names}{', ...' if len(self.skipped) > 5 else ''})"
        return text


SlotKey = tuple[str | None, str, str]  # (project, StudyInstanceUID, session label): one session
_Pending = tuple[dict[str, Any], Path, tuple[str, str]]  # a placed file: its row, path, series key


@dataclass
class _Series:
    pk: int | None
    uid: str
    number: str
    scan_dir: str
    values: dict[str, Any] = field(default_factory=dict)
    folder: tuple[Path, Path] | None = None  # (the session's folder, this scan's DICOM folder in it)


@dataclass
class _Slot:
    """One prearchive session as the batch sees it."""

    ref: SessionRef
    folder: Path
    series: dict[tuple[str, str], _Series]
    sops: set[str]
    pending: list[_Pending] = field(default_factory=list)
    remembered: bool = False  # found through an earlier batch's ``Remembered``, not looked up

    def again(self) -> _Slot:
        """This session for a later batch: what it knows of the session (its place and series), none
        of what the earlier batch filed (its instances are checked at the commit)."""
        return _Slot(self.ref, self.folder, self.series, set(), remembered=True)


Remembered = dict[SlotKey, _Slot]  # sessions earlier batches of a stream filed into
REMEMBER_UP_TO = 64  # sessions a stream remembers


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
        self._slots: dict[SlotKey, _Slot] = {}
        self._remembered = remembered or {}
        # project key -> (ID, prearchive code) for projects the actor may import into; None: may not
        self._projects: dict[str, tuple[str, int] | None] = dict(projects or {})
        self._root = ctx.settings.prearchive_dir
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

    def _stored(self, key: SlotKey, keys: FileKeys, pending: _Pending | None) -> None:
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
            dest, _ = _first_free(folder, names, functools.partial(place, item, overwrite=False, sync=False))
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

    def _new_series(self, slot: _Slot, keys: FileKeys, dataset: Dataset_) -> _Series:
        ds = dataset()
        xsi_type = sb.scan_type(keys.sop_class_uid, keys.modality)
        values = {
            "modality": keys.modality,
            "xsi_type": xsi_type,
            "description": keys.series_description,
            "fields": sb.scan_values(ds, xsi_type),
        }
        folder = naming.scan_folder(keys)
        series = _Series(None, keys.series_instance_uid, keys.series_number, folder, values)
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

    def _slot(self, ident: Identity, keys: FileKeys, dataset: Dataset_) -> tuple[SlotKey, _Slot]:
        key = (ident.project, keys.study_instance_uid, ident.session)
        slot = self._slots.get(key)
        if slot is None:
            known = self._remembered.get(key)
            slot = known.again() if known is not None else self._open(ident, keys, dataset)
            self._slots[key] = slot
        return key, slot

    def _open(self, ident: Identity, keys: FileKeys, dataset: Dataset_) -> _Slot:
        """Find the session still receiving this study under this label, or start one.

        Finding needs only a read; creating takes the write lock and looks again, so two batches
        with files of the same study end up in one session.
        """
        with self.ctx.db.read() as conn:
            code = self._code(conn, ident)
            found = pq.open_session(conn, ident.project, keys.study_instance_uid, ident.session)
            if found is not None:
                return self._existing(conn, found)
        with self.ctx.db.write() as conn:
            pq.lock_study(conn, ident.project, keys.study_instance_uid, ident.session)
            found = pq.open_session(conn, ident.project, keys.study_instance_uid, ident.session)
            if found is not None:
                return self._existing(conn, found)
            pk, directory, stamp = self._create(conn, ident, keys, dataset, code)
        folder = self._root / directory
        folder.mkdir(parents=True, exist_ok=True)
        ref = SessionRef(pk, ident.project, stamp, ident.session)
        return _Slot(ref, folder, {}, set())

    def _code(self, conn: Connection, ident: Identity) -> int | None:
        """The project's prearchive code, checking the caller may import into it."""
        if ident.project is None:
            return None
        cached = self._projects.get(ident.project)
        if cached is not None and cached[0] == ident.project:
            return cached[1]
        row, _ = load_project(conn, self.actor, ident.project, access.EDIT)
        return int(row["prearchive_code"] or 0)

    def _existing(self, conn: Connection, row: Any) -> _Slot:
        ref = SessionRef(int(row["pk"]), row["project"], row["timestamp"], row["folder"])
        series = {
            (s["uid"], s["number"]): _Series(int(s["pk"]), s["uid"], s["number"], s["scan_dir"])
            for s in pq.series_of(conn, ref.pk, keys_only=True)
        }
        return _Slot(ref, self._root / row["directory"], series, set())  # stored ones: checked at _index

    def _create(
        self, conn: Connection, ident: Identity, keys: FileKeys, dataset: Dataset_, code: int | None
    ) -> tuple[int, str, str]:
        now = _dt.datetime.now()
        while True:
            stamp = now.strftime("%Y%m%d_%H%M%S%f")[:-3]
            directory = f"{ident.project or UNASSIGNED_DIR}/{stamp}/{ident.session}"
            if not pq.directory_taken(conn, directory):
                break
            now += _dt.timedelta(milliseconds=1)
        aa = self.opts.auto_archive if self.opts.auto_archive is not None else ident.auto_archive
        autoarchive = code if aa is None else (4 if aa else 0)
        values = sb.session_values(dataset())
        pk = pq.insert_session(
            conn,
            project=ident.project,
            timestamp=stamp,
            folder=ident.session,
            name=ident.session,
            subject=ident.subject,
            tag=keys.study_instance_uid,
            status="RECEIVING",
            fields=values,
            autoarchive=autoarchive,
            source=self.opts.source,
            visit=self.opts.visit,
            protocol=self.opts.protocol,
            timezone=self.opts.timezone,
            scan_date=_date(keys.study_date),
            scan_time=_time(keys.study_time),
            directory=directory,
        )
        return pk, directory, stamp

    # --- finishing -------------------------------------------------------------------------------

    def finish(self) -> list[SessionRef]:
        """Make the batch durable and visible: its files flushed, then its rows committed in a
        transaction it may share with concurrent batches (``group_commit``), before it returns."""
        slots = [s for s in self._slots.values() if s.pending]
        if not slots:
            return [s.ref for s in self._slots.values()]
        try:
            self._make_durable(slots)
            outcome = group_commit.run(self.ctx.db, functools.partial(_index_all, slots, self._root))
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
        return [s.ref for s in self._slots.values()]

    def _make_durable(self, slots: list[_Slot]) -> None:
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
        """After ``finish``: note this batch's sessions for the next batch of the stream (the most
        recent ``REMEMBER_UP_TO``). Only a batch that committed may: the commit checked each one
        still open, and where it is."""
        for key, slot in self._slots.items():
            remembered.pop(key, None)
            remembered[key] = slot
        excess = len(remembered) - REMEMBER_UP_TO
        if excess > 0:  # the oldest first
            for key in list(remembered)[:excess]:
                del remembered[key]

    def abort(self) -> None:
        """Remove every file the batch placed, or planned, but did not index."""
        for path in self._unplaced.values():
            path.unlink(missing_ok=True)
        self._unplaced.clear()
        for slot in self._slots.values():
            for _values, path, _skey in slot.pending:
                path.unlink(missing_ok=True)
            slot.pending.clear()


def _index_all(
    slots: list[_Slot], root: Path, conn: Connection
) -> list[tuple[dict[tuple[str, str], int], list[Path]]]:
    return [_index(conn, slot, root) for slot in slots]


def _follow(slot: _Slot, root: Path, row: Any) -> None:
    """If the session (its row locked by ``touch_open``, as a move, delete or archive locks it) was
    moved since the batch found it, bring the batch's files to its new folder, so each file is where
    its row says.

    Its only file-system change makes the files' places match the committed row, so a failed
    shared transaction can still run ``_index`` again alone.
    """
    folder = root / row["directory"]
    if folder == slot.folder:
        return
    moved = []
    for values, path, skey in slot.pending:
        dest = relocate(path, slot.folder, folder, root)
        moved.append(({**values, "name": dest.name}, dest, skey))
    for _v, path, _k in moved:  # the fsyncs before the commit may have missed them
        fsync_file(path)
    for parent in {p.parent for _v, p, _k in moved}:
        fsync_tree(parent, root)
    slot.pending[:] = moved
    slot.folder = folder
    slot.ref = SessionRef(slot.ref.pk, row["project"], row["timestamp"], row["folder"])


def _index(conn: Connection, slot: _Slot, root: Path) -> tuple[dict[tuple[str, str], int], list[Path]]:
    """Index a slot's pending files: (series key -> pk, files that turned out duplicates)."""
    # a batch of files is logged; one file per request (gradual-DICOM) is not: a 600-file series
    # would add 600 lines, and the growing log is rewritten with every file
    count = len(slot.pending)
    note = f"{_dt.datetime.now():%Y-%m-%d %H:%M:%S} received {count} files\n" if count > 1 else ""
    row = pq.touch_open(conn, slot.ref.pk, note)
    if row is None:
        raise Conflict(f"Prearchive session {slot.ref.uri} was archived, moved or deleted meanwhile")
    if slot.remembered and root / row["directory"] != slot.folder:
        # moved since an earlier batch found it: it no longer answers this batch's labels
        raise Conflict(f"Prearchive session {slot.ref.uri} was moved since it was found")
    _follow(slot, root, row)
    pks = {skey: s.pk for skey, s in slot.series.items() if s.pk is not None}
    if len(pks) < len(slot.series):
        known = {
            (s["uid"], s["number"]): int(s["pk"]) for s in pq.series_of(conn, slot.ref.pk, keys_only=True)
        }
        for skey, series in slot.series.items():
            if skey not in pks:
                pks[skey] = known.get(skey) or pq.insert_series(
                    conn, session_pk=slot.ref.pk, uid=series.uid, number=series.number,
                    scan_dir=series.scan_dir, **series.values,
                )  # fmt: skip
    stored = pq.stored_sops(conn, slot.ref.pk, [v["sop_uid"] for v, _p, _k in slot.pending])
    rows, dupes = [], []
    for values, path, skey in slot.pending:
        if values["sop_uid"] in stored:  # a concurrent batch filed the same instance first
            dupes.append(path)
            continue
        stored.add(values["sop_uid"])
        rows.append({**values, "session_pk": slot.ref.pk, "series_pk": pks[skey]})
    pq.insert_files(conn, rows)
    return pks, dupes


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
    to where a move put it, and ``_follow`` flushes it there under the session's lock."""
    try:
        flush(path, *args)
    except FileNotFoundError:
        pass


def _date(value: str) -> str | None:
    v = value.strip()
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) >= 8 and v[:8].isdigit() else None


def _time(value: str) -> str | None:
    v = value.strip()
    if len(v) >= 6 and v[:6].isdigit():
        return f"{v[:2]}:{v[2:4]}:{v[4:6]}"
    return None
