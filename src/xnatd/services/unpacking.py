"""Large zip imports unpacked by helper processes, side by side, straight into their sessions.

One Python process files about 2,500 DICOM files a second out of a zip: reading each header,
hashing and creating each file all hold the interpreter. ``unzip`` does the same work in C. So an
upload with many members is split into chunks of consecutive members, shared among a few helper
processes (``unpack_helper``, the ``import_processes`` setting) in two rounds per chunk:

1. a helper scans the chunk's headers and sends their keys back;
2. this process decides where each file goes (``IngestBatch.plan``: the session, the scan, the
   name, exactly as for a file it unpacked itself), journals the places, and hands the chunk back
   to the same helper, which writes each member there and answers its size and MD5.

Chunks overlap: while this process plans one, the helpers scan or write others. Consecutive
members usually share a scan folder, and giving each helper its own chunks keeps two processes
from creating files in the same folder at once, where they would queue on its lock.

Members the helpers cannot read fast (an unusual encoding, not DICOM at all) and names taken
meanwhile (another import into the same session) are handled here, one by one, the usual way.
On any failure the helpers' tasks are waited for, then the batch is aborted: every file planned
is removed, as for an import unpacked here.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import logging
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from xnatd.dicom import header
from xnatd.errors import Conflict, InvalidInput, StorageFull, TooLarge, XnatdError
from xnatd.services.context import Context
from xnatd.services.ingest import IngestBatch, Planned
from xnatd.storage import archives
from xnatd.storage.files import Held, Staged, discard, hold_or_stage

log = logging.getLogger("xnatd.import")
PARALLEL_FROM = 64  # members: below this a zip is unpacked in the server process
CHUNK_MEMBERS = 256  # members per task: big enough to amortise a round trip, small enough to overlap
CHUNK_BYTES = 256 << 20  # and at most this many bytes: a chunk of large files is no slower to stop
FILE_COST = 32 << 10  # bytes: what creating one file costs, in bytes written
STOP_WAIT = 5.0  # seconds a helper gets to end before it is killed
_ERRORS: dict[str, type[XnatdError]] = {
    c.__name__: c for c in (InvalidInput, TooLarge, StorageFull, Conflict)
}


class HelperLost(RuntimeError):
    """A helper process died or stopped answering in the middle of an import."""


class _Helper:
    """One helper process and the socket to it."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "xnatd.services.unpack_helper", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.conn = Connection(ours.detach())
        self.pending: collections.deque[int] = collections.deque()  # task ids sent, not yet answered
        self.broken = False

    def send(self, task: tuple[Any, ...]) -> None:
        try:
            self.conn.send(task)
        except OSError as exc:
            self.broken = True
            raise HelperLost(f"zip-import helper {self.process.pid} is gone: {exc}") from None
        self.pending.append(task[1])

    def answer(self) -> tuple[Any, ...]:
        try:
            answer: tuple[Any, ...] = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.broken = True
            raise HelperLost(f"zip-import helper {self.process.pid} is gone: {exc!r}") from None
        self.pending.popleft()
        return answer

    def closed_its_zip(self) -> bool:
        """Tell an idle helper the import is over; whether it answered that its zip is closed (so
        the staged upload's space is freed before the server syncs the filesystem)."""
        if not self.alive() or self.pending:
            return False
        try:
            self.send(("done", 0))
            if self.conn.poll(STOP_WAIT):
                self.answer()
                return True
        except HelperLost:
            pass
        return False

    def alive(self) -> bool:
        return not self.broken and self.process.poll() is None

    def stop(self) -> None:
        """End the process by its PID: asked first (killed if it does not end in time), or killed
        at once when it is broken or still busy with a failed import's tasks."""
        if self.alive() and not self.pending:
            with contextlib.suppress(OSError):
                self.conn.send(("stop",))
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_WAIT)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.conn.close()


class HelperPool:
    """The helper processes of this server process, started when a zip upload first arrives
    (while its body streams in) and kept for the next one. An import takes the idle ones; a
    concurrent import finding none unpacks in its own thread, as every import did before helpers."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[_Helper] = []
        self._count = 0  # helpers started (or starting) and not stopped: idle or taken
        self._starting = 0
        self._closed = False
        self._cond = threading.Condition()

    def warm_up(self) -> None:
        """Start the missing helpers in the background (an upload is arriving)."""
        missing = self._reserve()
        if missing:
            threading.Thread(
                target=self._start, args=(missing,), name="xnatd-unpack-start", daemon=True
            ).start()

    def take(self) -> list[_Helper]:
        self._start(self._reserve())
        with self._cond:
            self._cond.wait_for(lambda: not self._starting, STOP_WAIT)
            taken = [h for h in self._idle if h.alive()]
            lost = [h for h in self._idle if not h.alive()]
            self._idle = []
            self._count -= len(lost)
        for helper in lost:
            helper.stop()
        return taken

    def _reserve(self) -> int:
        with self._cond:
            self._count -= sum(1 for h in self._idle if not h.alive())
            self._idle = [h for h in self._idle if h.alive()]
            missing = 0 if self._closed else self.size - self._count
            self._count += missing
            self._starting += missing
        return missing

    def _start(self, count: int) -> None:
        for _ in range(count):
            try:
                helper: _Helper | None = _Helper()
            except OSError as exc:  # no processes left on this machine: imports go on without
                log.warning("could not start a zip-import helper: %s", exc)
                helper = None
            with self._cond:
                self._starting -= 1
                if helper is None or self._closed:
                    self._count -= 1
                else:
                    self._idle.append(helper)
                self._cond.notify_all()
            if helper is not None and self._closed:
                helper.stop()

    def give_back(self, helpers: list[_Helper]) -> None:
        keep = []
        for helper in helpers:
            if not self._closed and helper.closed_its_zip():
                keep.append(helper)
            else:
                helper.stop()
        with self._cond:
            self._idle.extend(keep)
            self._count -= len(helpers) - len(keep)

    def stop(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for helper in idle:
            helper.stop()


def warm_up(ctx: Context) -> None:
    """A zip or tar is being uploaded: have the helpers ready by the time it is in."""
    helpers = pool(ctx)
    if helpers is not None:
        helpers.warm_up()


def pool(ctx: Context) -> HelperPool | None:
    """This process's helpers for ``ctx`` (None when the ``import_processes`` setting is 0)."""
    size = ctx.settings.import_processes
    if size <= 0:
        return None
    with _pools_lock:
        found = ctx.resources.get("unpack_helpers")
        if found is None:
            found = ctx.resources["unpack_helpers"] = HelperPool(size)
            _every_pool.append(found)
    return found


def stop_helpers(ctx: Context) -> None:
    """End the helper processes of ``ctx`` (the server does at shutdown; at exit, every pool is)."""
    found = ctx.resources.pop("unpack_helpers", None)
    if found is not None:
        found.stop()


_pools_lock = threading.Lock()
_every_pool: list[HelperPool] = []


@atexit.register
def _stop_every_pool() -> None:
    for found in _every_pool:
        found.stop()


# ---------------------------------------------------------------------------------- one import


def unpack_zip(
    ctx: Context,
    batch: IngestBatch,
    path: Path,
    archive: zipfile.ZipFile,
    entries: list[archives.ZipEntry],
    progress: Callable[[int], None] | None,
) -> bool:
    """File ``entries`` of the zip at ``path`` (open here as ``archive``) into ``batch`` with the
    helpers; False (nothing done) when the zip is too small to be worth it or no helper is free."""
    helpers_of = pool(ctx)
    if helpers_of is None or len(entries) < PARALLEL_FROM:
        return False
    helpers = helpers_of.take()
    if not helpers:
        return False
    try:
        _Unpacking(ctx, batch, path, archive, entries, helpers, progress).run()
    finally:
        helpers_of.give_back(helpers)
    return True


def _split(entries: list[archives.ZipEntry], parts: int) -> list[list[archives.ZipEntry]]:
    """``entries`` in ``parts`` runs of consecutive members of about equal work (a file's
    creation costs about as much as writing 32 KB), one per helper: two processes creating files
    in one folder queue on its lock, and consecutive members mostly share a folder."""
    weights = [e.size + FILE_COST for e in entries]
    total = sum(weights)
    shares: list[list[archives.ZipEntry]] = [[] for _ in range(parts)]
    done = 0
    for entry, weight in zip(entries, weights, strict=True):
        shares[min(parts - 1, done * parts // total)].append(entry)
        done += weight
    return [share for share in shares if share]


def _interleaved(counts: list[int]) -> list[int]:
    """Chunk numbers (the shares' chunks numbered one after the other) taken a chunk from each
    share in turn: every helper gets its first chunk to write early."""
    starts = [sum(counts[:h]) for h in range(len(counts))]
    return [starts[h] + i for i in range(max(counts, default=0)) for h in range(len(counts)) if i < counts[h]]


def _chunks(entries: list[archives.ZipEntry]) -> list[list[archives.ZipEntry]]:
    """Consecutive members, at most ``CHUNK_MEMBERS`` of them or ``CHUNK_BYTES`` (declared)."""
    chunks: list[list[archives.ZipEntry]] = [[]]
    size = 0
    for entry in entries:
        if len(chunks[-1]) >= CHUNK_MEMBERS or (chunks[-1] and size + entry.size > CHUNK_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += entry.size
    return chunks


class _Unpacking:
    def __init__(
        self,
        ctx: Context,
        batch: IngestBatch,
        path: Path,
        archive: zipfile.ZipFile,
        entries: list[archives.ZipEntry],
        helpers: list[_Helper],
        progress: Callable[[int], None] | None,
    ) -> None:
        self.ctx = ctx
        self.batch = batch
        self.path = path
        shares = [_chunks(share) for share in _split(entries, len(helpers))]
        self.chunks = [chunk for share in shares for chunk in share]
        self.owner = [h for h, share in enumerate(shares) for _ in share]  # chunk -> its helper
        self.order = _interleaved([len(share) for share in shares])  # the order chunks are planned in
        self.helpers = helpers
        self.progress = progress
        self.keyed: dict[int, list[header.FileKeys | None]] = {}
        self.planned: dict[int, list[tuple[archives.ZipEntry, Planned]]] = {}
        self.archive = archive  # this process's own reader of the zip, for what it files itself

    def run(self) -> None:
        """Every helper scans all its chunks first (its keys come back within tens of ms), then
        writes each as soon as this process has planned it."""
        try:
            for c, chunk in enumerate(self.chunks):
                self._send("keys", c, [(e.index, str(e.name), e.size, e.offset, e.crc) for e in chunk])
            planned = 0
            while planned < len(self.order) or any(h.pending for h in self.helpers):
                self._receive()
                while planned < len(self.order) and self.order[planned] in self.keyed:
                    self._plan(self.order[planned])
                    planned += 1
        except BaseException:
            self._stop_busy()
            raise

    def _helper(self, chunk: int) -> _Helper:
        return self.helpers[self.owner[chunk]]

    def _send(self, op: str, chunk: int, items: list[Any]) -> None:
        self._helper(chunk).send((op, chunk, str(self.path), items))

    def _receive(self) -> None:
        busy = {h.conn: h for h in self.helpers if h.pending}
        for conn in wait(list(busy)):
            answer = busy[conn].answer()  # type: ignore[index]
            op, chunk = answer[0], answer[1]
            if op == "error":
                known = _ERRORS.get(answer[2])
                raise (
                    known(answer[3]) if known else HelperLost(f"zip-import helper: {answer[2]}: {answer[3]}")
                )
            if op == "keys":
                self.keyed[chunk] = answer[2]
            else:
                self._written(chunk, answer[2])

    def _plan(self, chunk: int) -> None:
        """Decide where each member of the chunk goes, then have its helper write them there."""
        fast = []
        for entry, keys in zip(self.chunks[chunk], self.keyed.pop(chunk), strict=True):
            if keys is None:  # for pydicom: filed here, the usual way
                self._add_here(entry)
            else:
                fast.append((entry, keys))
        plans = self.batch.plan_all(
            (str(e.name), keys, e.size, functools.partial(self._dataset, e)) for e, keys in fast
        )
        planned = [(e, plan) for (e, _k), plan in zip(fast, plans, strict=True) if plan is not None]
        for _ in range(len(fast) - len(planned)):  # skipped or duplicates
            self._advance()
        self.planned[chunk] = planned
        self._send("write", chunk, [(e.index, str(plan.dest)) for e, plan in planned])

    def _written(self, chunk: int, results: list[tuple[int, str] | None]) -> None:
        for (entry, plan), result in zip(self.planned.pop(chunk), results, strict=True):
            if result is None:  # its name was taken meanwhile: the next free one, here
                self.batch.place_instead(plan, self._read(entry))
            else:
                self.batch.placed(plan, result[1])
            self._advance()

    def _advance(self) -> None:
        if self.progress:
            self.progress(1)

    def _read(self, entry: archives.ZipEntry) -> Held | Staged:
        with archives.open_zip_entry(self.archive, entry) as stream:
            return hold_or_stage(self.ctx.settings.tmp_dir, stream)

    def _add_here(self, entry: archives.ZipEntry) -> None:
        self.batch.add(self._read(entry), str(entry.name))
        self._advance()

    def _dataset(self, entry: archives.ZipEntry) -> Any:
        """The full header of a member that starts a session or a scan (their fields need pydicom)."""
        item = self._read(entry)
        try:
            return (
                header.dataset_of(item.data, str(entry.name))
                if isinstance(item, Held)
                else (header.read_dataset(item.path))
            )
        finally:
            if isinstance(item, Staged):
                discard(item)

    def _stop_busy(self) -> None:
        """A failed import: helpers still at its tasks are killed (and waited for) before the
        batch removes what it planned, so none writes a file after that."""
        for helper in self.helpers:
            if helper.pending:
                helper.stop()
