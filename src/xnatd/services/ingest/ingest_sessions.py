"""The prearchive sessions an ingest batch files into.

A batch finds the session still receiving a study under a label, or starts one under the study's
lock (``open_slot``); at the commit it indexes each session's new files in one transaction
(``index_all``), having checked under the session's row lock that it is still open, and where. A
session no longer open by then (archived, deleted, or being archived) raises ``SessionGone``: the
batch files those files into the study's next session instead (``IngestBatch``), as it would a file
arriving now.

Which session a file joins depends on the import (``import_options.intake``): the study's shared
prearchive session (XNAT's), the study's Direct-Archive staging session (archived by the idle
builder once no file has come for a while), or, for a request that archives what it filed before it
answers, a session of that request's own that no other import joins.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from xnatd.db import prearchive as pq
from xnatd.dicom import header
from xnatd.dicom import session_builder as sb
from xnatd.dicom.header import FileKeys
from xnatd.dicom.identify import Identity
from xnatd.errors import Conflict, InvalidInput
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.resolve import load_project
from xnatd.services.ingest import import_options as io
from xnatd.services.ingest.import_options import ImportOptions
from xnatd.storage.durability import fsync_file, fsync_tree, make_dirs
from xnatd.storage.files import remove_file
from xnatd.storage.placement import relocate
from xnatd.storage.tmpdirs import note

UNASSIGNED_DIR = ".unassigned"
REMEMBER_UP_TO = 64  # sessions a stream remembers


@dataclass(frozen=True)
class SessionRef:
    """A prearchive session touched by a batch."""

    pk: int
    project: str | None
    timestamp: str
    folder: str
    intake: str | None = None  # who files into it (``prearchive_sessions.intake``)

    @property
    def uri(self) -> str:
        return f"/data/prearchive/projects/{self.project or 'Unassigned'}/{self.timestamp}/{self.folder}"


SlotKey = tuple[str | None, str, str]  # (project, StudyInstanceUID, session label): one session
Origin = tuple[Identity, FileKeys]  # what a slot's session was found or started for
Pending = tuple[dict[str, Any], Path, tuple[str, str]]  # a placed file: its row, path, series key
SeriesIndex = dict[tuple[str, str], int]  # (SeriesInstanceUID, SeriesNumber) -> the series' pk


@dataclass
class Series:
    pk: int | None
    uid: str
    number: str
    scan_dir: str
    values: dict[str, Any] = field(default_factory=dict)
    folder: tuple[Path, Path] | None = None  # (the session's folder, this scan's DICOM folder in it)


@dataclass
class Slot:
    """One prearchive session as the batch sees it."""

    ref: SessionRef
    folder: Path
    series: dict[tuple[str, str], Series]
    sops: set[str]
    pending: list[Pending] = field(default_factory=list)
    remembered: bool = False  # found through an earlier batch's ``Remembered``, not looked up
    origin: Origin | None = None  # to find or start the study's next session, should this one go
    started: bool = False  # this batch started the session (an aborted batch removes it if empty)

    def again(self) -> Slot:
        """This session for a later batch: what it knows of the session (its place and series), none
        of what the earlier batch filed (its instances are checked at the commit)."""
        return Slot(self.ref, self.folder, self.series, set(), remembered=True, origin=self.origin)


class SessionGone(Conflict):
    """At the commit, a batch's session was no longer open (archived, deleted, being archived)."""

    def __init__(self, slot: Slot) -> None:
        super().__init__(f"Prearchive session {slot.ref.uri} was archived, moved or deleted meanwhile")
        self.pk = slot.ref.pk


Remembered = dict[SlotKey, Slot]  # sessions earlier batches of a stream filed into


@dataclass(frozen=True)
class Opening:
    """What a batch starts sessions with: who sends, with which options, into which folder."""

    ctx: Context
    actor: Actor
    opts: ImportOptions
    root: Path  # DATA/prearchive


def open_slot(how: Opening, ident: Identity, keys: FileKeys, dataset: Any, code: int | None) -> Slot:
    """Find the session still receiving this study under this label for this import's intake, or
    start one (a request archiving its files itself always starts one of its own).

    ``dataset`` reads the file's full header (only for a new session); ``code`` is the project's
    prearchive code if the batch knows it already, else it is read, checking the sender may import.
    Finding needs only a read; creating takes the write lock and looks again, so two batches with
    files of the same study end up in one session.
    """
    origin = (ident, keys)
    place = how.opts.prearchive_place
    with how.ctx.db.read() as conn:
        if code is None and ident.project is not None:
            row, _ = load_project(conn, how.actor, ident.project, access.EDIT)
            code = int(row["prearchive_code"] or 0)
        autoarchive = _autoarchive(how.opts, ident, code)
        intake = io.intake(how.opts, ident.project, autoarchive)
        found = _open(conn, ident, keys, intake, place, how.opts)
        if found is not None:
            return _existing(conn, found, how.root, origin)
    with how.ctx.db.write() as conn:
        if place is None:
            pq.lock_study(conn, ident.project, keys.study_instance_uid, ident.session)
        else:
            pq.lock_study(conn, ident.project, place[0], place[1] or ident.session)
        found = _open(conn, ident, keys, intake, place, how.opts)
        if found is not None:
            return _existing(conn, found, how.root, origin)
        pk, directory, stamp, name = _create(conn, how.opts, ident, keys, dataset(), autoarchive, intake)
    folder = how.root / directory
    folder.mkdir(parents=True, exist_ok=True)
    ref = SessionRef(pk, ident.project, stamp, name, intake)
    return Slot(ref, folder, {}, set(), origin=origin, started=True)


def drop_if_empty(ctx: Context, slot: Slot) -> None:
    """After an aborted batch: the session it started goes again if no file of it was indexed (by
    this batch or another that joined it), so a refused upload leaves no empty session behind. A
    file another batch placed there and has not indexed yet stays: that batch's commit files it into
    the study's next session (``SessionGone``)."""
    with ctx.db.write() as conn:
        row = pq.session_locked(conn, slot.ref.pk)
        if row is None or row["status"] != "RECEIVING" or pq.file_counts(conn, slot.ref.pk):
            return
        pq.delete_session(conn, slot.ref.pk)
    for current, _dirs, _files in os.walk(slot.folder, topdown=False):
        with suppress(OSError):  # not empty: another import's file is in it
            os.rmdir(current)


def intake_of(opts: ImportOptions, ident: Identity, code: int | None) -> str | None:
    """The intake of the sessions a file of ``ident`` joins (``code``: its project's prearchive code)."""
    return io.intake(opts, ident.project, _autoarchive(opts, ident, code))


def _autoarchive(opts: ImportOptions, ident: Identity, code: int | None) -> int | None:
    """A new session's auto-archive code: the import's ``AA``, else the headers', else the project's."""
    aa = opts.auto_archive if opts.auto_archive is not None else ident.auto_archive
    return code if aa is None else (4 if aa else 0)


def _open(
    conn: Connection,
    ident: Identity,
    keys: FileKeys,
    intake: str | None,
    place: Place | None = None,
    opts: ImportOptions | None = None,
) -> Any:
    if intake == io.REQUEST:
        return None  # never shared: each such request starts its own
    if place is not None:
        return _at_place(conn, ident, keys, place, opts)
    return pq.open_session(conn, ident.project, keys.study_instance_uid, ident.session, intake)


Place = tuple[str, str | None]  # (timestamp, folder) a prearchive ``dest`` names


def _at_place(
    conn: Connection, ident: Identity, keys: FileKeys, place: Place, opts: ImportOptions | None
) -> Any:
    """The open session at the timestamp and folder ``dest=/prearchive/projects/P/TS/FOLDER`` names
    (XNAT's ``PREARC_TIMESTAMP`` and ``PREARC_SESSION_FOLDER``), None if there is none yet. XNAT's
    session importer merges another study into it; its DICOM importers keep a session to one study,
    so a file of another study is refused (400), and so is the whole upload."""
    timestamp, folder = place
    row = pq.session_at(conn, ident.project, timestamp, folder or ident.session)
    if row is None or row["status"] not in pq.OPEN:
        return None
    if row["tag"] != keys.study_instance_uid and (opts is None or opts.handler != io.SI):
        raise InvalidInput(
            f"Prearchive session {timestamp}/{row['folder']} holds study {row['tag']}; a file of study "
            f"{keys.study_instance_uid} cannot join it (import-handler=SI merges studies)"
        )
    return row


def _existing(conn: Connection, row: Any, root: Path, origin: Origin) -> Slot:
    ref = SessionRef(int(row["pk"]), row["project"], row["timestamp"], row["folder"], row["intake"])
    series = {
        (s["uid"], s["number"]): Series(int(s["pk"]), s["uid"], s["number"], s["scan_dir"])
        for s in pq.series_of(conn, ref.pk, keys_only=True)
    }
    return Slot(ref, root / row["directory"], series, set(), origin=origin)  # stored ones: checked at _index


def _create(
    conn: Connection,
    opts: ImportOptions,
    ident: Identity,
    keys: FileKeys,
    ds: Any,
    autoarchive: int | None,
    intake: str | None,
) -> tuple[int, str, str, str]:
    """A new session: (pk, its directory, timestamp, folder). At the place a prearchive ``dest``
    names if any (a folder taken by a session being archived, moved or deleted gets XNAT's ``_1``,
    ``_2`` suffix), else under a timestamp of its own."""
    stamp, name, directory = _new_place(conn, ident, opts.prearchive_place)
    pk = pq.insert_session(
        conn,
        project=ident.project,
        timestamp=stamp,
        folder=name,
        name=ident.session,
        subject=ident.subject,
        tag=keys.study_instance_uid,
        status="RECEIVING",
        fields=sb.session_values(ds),
        autoarchive=autoarchive,
        source=opts.source,
        visit=opts.visit,
        protocol=opts.protocol,
        timezone=opts.timezone,
        scan_date=_date(keys.study_date),
        scan_time=_time(keys.study_time),
        directory=directory,
        intake=intake,
    )
    return pk, directory, stamp, name


def _new_place(conn: Connection, ident: Identity, place: Place | None) -> tuple[str, str, str]:
    root = ident.project or UNASSIGNED_DIR
    if place is not None:
        stamp, folder = place[0], place[1] or ident.session
        name, n = folder, 0
        while pq.directory_taken(conn, f"{root}/{stamp}/{name}"):
            n += 1
            name = f"{folder}_{n}"
        return stamp, name, f"{root}/{stamp}/{name}"
    now = _dt.datetime.now()
    while True:
        stamp = now.strftime("%Y%m%d_%H%M%S%f")[:-3]
        directory = f"{root}/{stamp}/{ident.session}"
        if not pq.directory_taken(conn, directory):
            return stamp, ident.session, directory
        now += _dt.timedelta(milliseconds=1)


def remember(remembered: Remembered, slots: dict[SlotKey, Slot]) -> None:
    """Note a committed batch's sessions for the next batch of its stream: the most recent
    ``REMEMBER_UP_TO``, the oldest forgotten first. A request's own session is never shared."""
    for key, slot in slots.items():
        remembered.pop(key, None)
        if slot.ref.intake != io.REQUEST:
            remembered[key] = slot
    excess = len(remembered) - REMEMBER_UP_TO
    if excess > 0:
        for key in list(remembered)[:excess]:
            del remembered[key]


# --- the commit ----------------------------------------------------------------------------------


def index_all(slots: list[Slot], root: Path, conn: Connection) -> list[tuple[SeriesIndex, list[Path]]]:
    """Index the pending files of every slot (``group_commit`` calls it in its transaction)."""
    return [_index(conn, slot, root) for slot in slots]


def _follow(slot: Slot, root: Path, row: Any) -> None:
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
    slot.ref = SessionRef(slot.ref.pk, row["project"], row["timestamp"], row["folder"], row["intake"])


def _index(conn: Connection, slot: Slot, root: Path) -> tuple[SeriesIndex, list[Path]]:
    """Index a slot's pending files: (series key -> pk, files that turned out duplicates)."""
    # a batch of files is logged; one file per request (gradual-DICOM) is not: a 600-file series
    # would add 600 lines, and the growing log is rewritten with every file
    count = len(slot.pending)
    note = f"{_dt.datetime.now():%Y-%m-%d %H:%M:%S} received {count} files\n" if count > 1 else ""
    row = pq.touch_open(conn, slot.ref.pk, note)
    if row is None:
        raise SessionGone(slot)
    if slot.remembered and root / row["directory"] != slot.folder:
        # moved since an earlier batch found it: it no longer answers this batch's labels
        raise Conflict(f"Prearchive session {slot.ref.uri} was moved since it was found")
    _follow(slot, root, row)
    pks = _series_pks(conn, slot)
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


def _series_pks(conn: Connection, slot: Slot) -> SeriesIndex:
    """The row of each series the slot's files belong to: known, found (another batch made it
    meanwhile) or made now."""
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
    return pks


def _date(value: str) -> str | None:
    v = value.strip()
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) >= 8 and v[:8].isdigit() else None


def _time(value: str) -> str | None:
    v = value.strip()
    if len(v) >= 6 and v[:6].isdigit():
        return f"{v[:2]}:{v[2:4]}:{v[4:6]}"
    return None


# --- a session gone before the commit --------------------------------------------------------------


def refile(how: Opening, slot: Slot, code: int | None, journal: Path) -> None:
    """The session ``slot`` filed into was archived, deleted or taken for archiving after the batch
    found it, before its commit: its placed files move to the study's next session (found or
    started, as for a file arriving now; ``code``: the project's prearchive code if known), each
    journalled at its new place first (``journal``: the process's folder), and the caller commits
    again. Whoever took the session left them alone (``archiver``, ``prearchive.remove_session_files``)."""
    assert slot.origin is not None
    ident, keys = slot.origin
    first = slot.pending[0][1]
    fresh = open_slot(how, ident, keys, functools.partial(header.read_dataset, first), code)
    moved = [_moved(entry, slot.folder, fresh.folder, how.root, journal) for entry in slot.pending]
    for parent in {p.parent for _v, p, _k in moved}:
        fsync_tree(parent, how.root)
    for skey, series in slot.series.items():
        path = next((p for _v, p, k in moved if k == skey), None)
        if path is not None and skey not in fresh.series:
            values = series.values or series_values(header.read_keys(path), header.read_dataset(path))
            fresh.series[skey] = Series(None, series.uid, series.number, series.scan_dir, values)
    slot.ref, slot.folder, slot.series, slot.pending = fresh.ref, fresh.folder, fresh.series, moved
    slot.remembered = False


def _moved(entry: Pending, old: Path, new: Path, root: Path, journal: Path) -> Pending:
    """A placed file moved from session folder ``old`` to the same place under ``new``: under its
    name, or a numbered one should the next session hold that name already (never replacing)."""
    values, path, skey = entry
    folder = new / path.parent.relative_to(old)
    make_dirs(folder, sync=False)
    stem, dot, ext = path.name.rpartition(".") if "." in path.name else (path.name, "", "")
    for name in (path.name, *(f"{stem}-{n}{dot}{ext}" for n in range(2, 50))):
        dest = folder / name
        note(journal, "place", str(dest))
        try:
            os.link(path, dest, follow_symlinks=False)
        except FileExistsError:
            continue
        remove_file(path, stop_at=root)
        return {**values, "name": name}, dest, skey
    raise Conflict(f"No free file name in {folder} for {path.name}")


def series_values(keys: FileKeys, ds: Any) -> dict[str, Any]:
    """A new series' row values from its first file's keys and full header."""
    xsi_type = sb.scan_type(keys.sop_class_uid, keys.modality)
    return {
        "modality": keys.modality,
        "xsi_type": xsi_type,
        "description": keys.series_description,
        "fields": sb.scan_values(ds, xsi_type),
    }
