"""Objects received over DICOM associations, handed to the one ingest path in batches.

The network side (``xnatd.dimse``) must answer each C-STORE quickly, so it only streams the object
into a ``Sink`` (a new file in this process's spool folder, ``services/ingest/dicom_spool.py``: the encoded
dataset exactly as received behind its file meta information), checks that its header can be read
(``check``), gives it its spool name and flushes it (``received``): only then is Success answered.
A filing thread per receiver process then takes the queue every ``dicom_filing_interval`` seconds
(``FLUSH_SECONDS`` by default) and, per
association, runs the files through ``IngestBatch`` (header → prearchive session → one transaction),
exactly as a REST import does; a spool file is deleted only once its batch is committed, and what a
dead process left in its spool is filed by the next one (``Spool.adopt_dead``). The MD5 is computed
on the filing thread too, off the network thread (hashlib releases the GIL). Sessions stay RECEIVING
until the idle builder (``services/ingest/rebuilder.py``) builds them; a direct-archive receiver archives
them when its association ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from xnatd.config import Settings
from xnatd.db import archive as q
from xnatd.db.engine import Database
from xnatd.dicom import header
from xnatd.dicom.header import FileKeys, NotDicom
from xnatd.dicom.identify import Overrides
from xnatd.errors import StorageFull, XnatdError
from xnatd.services.access.context import SYSTEM, Context
from xnatd.services.ingest import ingest
from xnatd.services.ingest.dicom_receivers import Receiver, Rule
from xnatd.services.ingest.dicom_spool import RESCAN_SECONDS, Orphan, Spool, quarantine_dir, spool_root
from xnatd.services.ingest.import_options import ImportOptions
from xnatd.services.prearchive import archiver
from xnatd.services.prearchive import prearchive as pre
from xnatd.services.prearchive.archive_options import staged_options
from xnatd.storage.files import Staged, md5_of

log = logging.getLogger("xnatd.dicom")
FLUSH_SECONDS = 0.5  # a RECEIVING session's lastmod moves at least this often while files arrive
TRIES = 3
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def worker_context(settings: Settings) -> Context:
    """The context of a receiver process forked after the supervisor migrated the database."""
    return Context(settings=settings, db=Database(settings.database))


class Sink:
    """One received object on its way to disk: plain ``os.write`` of each PDV fragment as it arrives,
    so memory stays flat whatever the object's size and nothing is copied or decoded."""

    __slots__ = ("fd", "path", "size")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise _translated(err) from err

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as err:
            raise _translated(err) from err
        self.size += len(data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def abort(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _translated(err: OSError) -> Exception:
    if err.errno in _FULL:
        return StorageFull("No space left on the archive filesystem for this object.")
    return err


@dataclass
class _Item:
    path: Path
    size: int
    keys: FileKeys


@dataclass
class _Association:
    receiver: Receiver
    calling_ae: str
    items: list[_Item] = field(default_factory=list)
    ended: bool = False
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    refs: dict[tuple[str | None, str, str], ingest.SessionRef] = field(default_factory=dict)
    batches: dict[Overrides, ingest.IngestBatch] = field(default_factory=dict)
    filed_at: float = 0.0  # monotonic time of the last flush
    noted: bool = False  # the spool holds the association's note (``Spool.begin``)


Lookup = Callable[[int, str], Receiver | None]  # (port, called AE title) -> the receiver, if it still is


class Intake:
    """The filing side of one receiver process: associations open, queue files, end."""

    def __init__(
        self, ctx: Context, lookup: Lookup | None = None, flush_seconds: float = FLUSH_SECONDS
    ) -> None:
        self.ctx = ctx
        self.spool = Spool(spool_root(ctx.settings), sync=ctx.settings.dicom_fsync)
        self.lookup = lookup
        self.flush_seconds = flush_seconds
        self._ids = itertools.count(1)
        self._assocs: dict[int, _Association] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="dicom-intake", daemon=True)
        self._thread.start()

    # --- called by the network threads ---------------------------------------------------------

    def open(self, receiver: Receiver, calling_ae: str) -> int:
        aid = next(self._ids)
        assoc = _Association(receiver, calling_ae)
        with self._lock:
            self._assocs[aid] = assoc
        with contextlib.suppress(StorageFull):  # a full disk: each object is refused, not the association
            self._note(aid, assoc)
        return aid

    def _note(self, aid: int, assoc: _Association) -> None:
        """The spool's note naming the association's receiver and caller: without it a dead process's
        objects could not be filed by the next one, so no object is taken before it is written."""
        if assoc.noted:
            return
        try:
            self.spool.begin(aid, assoc.receiver.ae_title, assoc.receiver.port, assoc.calling_ae)
        except OSError as err:
            raise _translated(err) from err
        assoc.noted = True

    def sink(self, aid: int) -> Sink:
        assoc = self._assocs[aid]
        self._note(aid, assoc)  # written at the open unless the disk was full then
        return Sink(self.spool.part(aid, next(assoc.seq)))

    @staticmethod
    def check(sink: Sink, prefix: bytes) -> FileKeys:
        """The keys of a received object, or NotDicom (the caller answers 0xC210 and drops it)."""
        return header.read_keys(sink.path, prefix)

    def received(self, aid: int, sink: Sink, keys: FileKeys) -> None:
        """Acknowledge: the object gets its spool name and is on disk before this returns."""
        sink.path = self.spool.ready(sink.path)
        self.spool.flush()
        with self._lock:
            self._assocs[aid].items.append(_Item(sink.path, sink.size, keys))

    def end(self, aid: int) -> None:
        with self._lock:
            self._assocs[aid].ended = True
        self._wake.set()

    def close(self, timeout: float = 30.0) -> None:
        """File what is queued, then stop the thread."""
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.spool.close()

    def pending(self) -> int:
        with self._lock:
            return sum(len(a.items) for a in self._assocs.values())

    # --- the filing thread ---------------------------------------------------------------------

    def _run(self) -> None:
        due = time.monotonic()
        rescan = 0.0
        while True:
            if time.monotonic() >= rescan:
                rescan = time.monotonic() + RESCAN_SECONDS
                self._adopt()
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            due = time.monotonic() + self.flush_seconds
            stopping = self._stop
            with self._lock:
                work = [(aid, a, a.items, a.ended) for aid, a in self._assocs.items() if a.items or a.ended]
                for _aid, a, _items, _ended in work:
                    a.items = []
            for aid, assoc, items, ended in work:
                try:
                    self._file(assoc, items)
                    if ended:
                        self._finish(assoc)
                except Exception:  # a bad batch must not stop the filing of every other association
                    log.exception(
                        "DICOM receiver: filing %d objects from %s failed", len(items), assoc.calling_ae
                    )
                if ended:
                    self.spool.end(aid)
                    with self._lock:
                        self._assocs.pop(aid, None)
            if stopping and not self.pending():
                return

    def _file(self, assoc: _Association, items: list[_Item]) -> None:
        if not items:
            return
        groups: dict[Overrides, list[_Item]] = defaultdict(list)
        projects: dict[str, str | None] = {}
        for item in items:
            groups[self._route(assoc.receiver, item.keys, item.path, projects)].append(item)
        for labels, group in groups.items():
            self._file_group(assoc, labels, group)

    def _file_group(self, assoc: _Association, labels: Overrides, items: list[_Item]) -> None:
        """One flush of the association's batch for these labels, retried with a fresh batch when a
        session was archived under it meanwhile; each file keeps its spool name until its batch is
        committed, so a failed batch loses nothing.

        The batch lives as long as the association keeps sending: what it learnt (the open session of
        each study, its scans, the header's project candidates) saves those look-ups at every later
        flush. After a pause of half the idle-build delay it starts afresh (the sessions may be built).
        """
        staged = [Staged(_staging_link(i.path), i.size, md5_of(i.path)) for i in items]
        opts = ImportOptions(labels=labels, source=f"DICOM {assoc.calling_ae}")
        if assoc.receiver.direct_archive:  # the study's staging session, merged into the archive
            opts = dataclasses.replace(opts, direct_archive=True, overwrite="append")
        t0 = time.perf_counter()
        if time.monotonic() - assoc.filed_at > self.ctx.settings.prearchive_idle_build / 2:
            assoc.batches.clear()  # a pause long enough for the idle builder: its sessions may be built
        assoc.filed_at = time.monotonic()
        for attempt in range(1, TRIES + 1):
            batch = assoc.batches.get(labels) or ingest.IngestBatch(self.ctx, SYSTEM, opts)
            assoc.batches[labels] = batch
            before = dataclasses.replace(batch.report, skipped=list(batch.report.skipped))
            try:
                for s, item in zip(staged, items, strict=True):
                    batch.add(s, None, item.keys)
                refs = batch.finish()
                break
            except Exception as exc:  # the database or the disk: the kept names allow another try
                batch.abort()
                del assoc.batches[labels]  # the next try looks for (or starts) the sessions anew
                if attempt == TRIES:
                    self._quarantine([i.path for i in items], str(exc))
                    return
                log.warning("DICOM receiver: batch from %s failed (%s); retrying", assoc.calling_ae, exc)
                time.sleep(0.2 * attempt)
                for s, item in zip(staged, items, strict=True):
                    if not s.path.exists():
                        os.link(item.path, s.path)
        for item in items:  # committed: the spool names may go
            item.path.unlink(missing_ok=True)
        for ref in refs:
            assoc.refs[(ref.project, ref.timestamp, ref.folder)] = ref
        log.info(
            "DICOM %s -> %s: %s in %.2f s",
            assoc.calling_ae,
            assoc.receiver.ae_title,
            _since(before, batch.report).summary(),
            time.perf_counter() - t0,
        )

    def _finish(self, assoc: _Association) -> None:
        """A direct-archive receiver archives the staging sessions the association filed into when it
        ends, merging into what is there, rather than waiting for the idle builder. Another
        association still sending files of the same study files them into the study's next staging
        session, archived when it ends in turn."""
        if not assoc.receiver.direct_archive:
            return
        for ref in assoc.refs.values():
            how = staged_options(ref.intake)
            if ref.project is None or how is None:
                continue  # Unassigned sessions wait in the prearchive for someone to assign them
            try:
                done = archiver.archive(
                    self.ctx, SYSTEM, pre.Key(ref.project, ref.timestamp, ref.folder), how
                )
                log.info("DICOM %s: archived %s", assoc.calling_ae, done.uri)
            except XnatdError as exc:
                log.warning("DICOM %s: direct archive of %s failed: %s", assoc.calling_ae, ref.uri, exc)

    # --- what a dead process left, and what cannot be filed --------------------------------------

    def _adopt(self) -> None:
        """Queue the acknowledged objects of dead processes' spools as ended associations."""
        try:
            orphans = self.spool.adopt_dead(self._ids)
        except OSError:
            log.exception("DICOM spool: could not take over a dead receiver's spool")
            return
        for orphan in orphans:
            receiver = self._receiver_of(orphan)
            assoc = _Association(receiver, orphan.calling_ae, ended=True)
            for path in orphan.files:
                try:
                    assoc.items.append(_Item(path, path.stat().st_size, header.read_keys(path)))
                except (NotDicom, OSError) as exc:
                    self._quarantine([path], str(exc))
            with self._lock:
                self._assocs[orphan.aid] = assoc

    def _receiver_of(self, orphan: Orphan) -> Receiver:
        """The receiver the objects came to, as it is now; gone or disabled: only the header routes."""
        found = self.lookup(orphan.port, orphan.ae_title) if self.lookup else None
        return found or Receiver(orphan.ae_title or "UNKNOWN", orphan.port)

    def _quarantine(self, paths: list[Path], reason: str) -> None:
        """Never silently dropped: objects that cannot be filed wait in DATA/quarantine for a person."""
        into = quarantine_dir(self.ctx.settings) / time.strftime("%Y%m%d-%H%M%S")
        into.mkdir(parents=True, exist_ok=True)
        for path in paths:
            path.with_suffix(".filing").unlink(missing_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, into / f"{self.spool.dir.name}-{path.name}")
        log.error("DICOM receiver: %d objects could not be filed, moved to %s: %s", len(paths), into, reason)

    # --- routing -------------------------------------------------------------------------------

    def _route(
        self, receiver: Receiver, keys: FileKeys, path: Path, projects: dict[str, str | None]
    ) -> Overrides:
        """Labels the receiver imposes: its fixed project, or what its expressions find in the header.

        A project that does not exist is dropped here, so the header rules (then Unassigned) decide.
        """
        project = receiver.project or None
        subject = session = None
        if receiver.rules:
            values = _Values(keys, path)
            project = project or _first(receiver.rules.get("project", ()), values)
            subject = _first(receiver.rules.get("subject", ()), values)
            session = _first(receiver.rules.get("session", ()), values)
        if project:
            if project not in projects:
                with self.ctx.db.read() as conn:
                    row = q.project(conn, project)
                projects[project] = str(row["id"]) if row is not None else None
            project = projects[project]
        return Overrides(project=project, subject=subject, session=session)


def _since(before: ingest.Report, now: ingest.Report) -> ingest.Report:
    """What one flush of a long-lived batch did."""
    return ingest.Report(
        stored=now.stored - before.stored,
        duplicates=now.duplicates - before.duplicates,
        skipped=now.skipped[len(before.skipped) :],
    )


def _staging_link(path: Path) -> Path:
    """A second name for a spooled file, for the batch to place (a rename): the spool name stays
    until the batch is committed, so a failed batch or a crash loses nothing."""
    link = path.with_suffix(".filing")
    link.unlink(missing_ok=True)
    os.link(path, link)
    return link


class _Values:
    """Header values for routing expressions: the ingest keys where they hold the tag, else pydicom
    reads the header (once per file, and only for receivers whose expressions need other tags)."""

    def __init__(self, keys: FileKeys, path: Path) -> None:
        self.keys = keys
        self.path = path
        self._ds: Dataset | None = None

    def get(self, tag: int) -> str:
        attr = header.WANTED.get(tag)
        if attr is not None:
            return str(getattr(self.keys, attr))
        if self._ds is None:
            self._ds = header.read_dataset(self.path)
        elem = self._ds.get(tag)
        return header.text_of(elem.value) if elem is not None and elem.value is not None else ""


def _first(rules: tuple[Rule, ...], values: _Values) -> str | None:
    for rule in rules:
        found = rule.value(values.get(rule.tag))
        if found is not None:
            return found
    return None
