"""Large zip imports unpacked by helper processes, side by side, straight into their sessions.

One Python process files about 2,500 DICOM files a second out of a zip: reading each header,
hashing and creating each file all hold the interpreter. ``unzip`` does the same work in C. So an
upload with many members is split into chunks of consecutive members, shared among a few helper
processes (``unpack_helper``, the ``import_processes`` setting) in two rounds per chunk:

1. a helper scans the chunk's headers and sends their keys back;
2. this process decides where each file goes (``IngestBatch.plan_all``: the session, the scan,
   the name, exactly as for a file it unpacked itself), journals the places, and hands the chunk
   back to the same helper, which writes each member there and answers its size and MD5.

Each helper gets one run of consecutive members (about equal work): consecutive members mostly
share a scan folder, and two processes creating files in one folder queue on its lock. Chunks
overlap: while this process plans one, the helpers scan or write others.

Members the helpers cannot read fast (an unusual encoding, not DICOM at all) and names taken
meanwhile (another import into the same session) are handled here, one by one, the usual way.
On any failure the helpers still at work are killed, then the batch is aborted: every file
planned is removed, as for an import unpacked here. The processes themselves: ``helper_pool``.
"""

from __future__ import annotations

import functools
import logging
import zipfile
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from xnatd.dicom import header
from xnatd.errors import Conflict, InvalidInput, StorageFull, TooLarge, XnatdError
from xnatd.services.access.context import Context
from xnatd.services.ingest.helper_pool import Helper, HelperLost, pool
from xnatd.services.ingest.ingest import IngestBatch, Planned, read_dataset
from xnatd.storage import zip_entries
from xnatd.storage.files import Held, Staged, discard, hold_or_stage

log = logging.getLogger("xnatd.import")
PARALLEL_FROM = 64  # members: below this a zip is unpacked in the server process
CHUNK_MEMBERS = 256  # members per task: big enough to amortise a round trip, small enough to overlap
CHUNK_BYTES = 256 << 20  # and at most this many bytes: a chunk of large files is no slower to stop
FILE_COST = 32 << 10  # bytes: what creating one file costs, in bytes written
_ERRORS: dict[str, type[XnatdError]] = {
    c.__name__: c for c in (InvalidInput, TooLarge, StorageFull, Conflict)
}


# ---------------------------------------------------------------------------------- one import


def unpack_zip(
    ctx: Context,
    batch: IngestBatch,
    path: Path,
    archive: zipfile.ZipFile,
    entries: list[zip_entries.ZipEntry],
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


def _split(entries: list[zip_entries.ZipEntry], parts: int) -> list[list[zip_entries.ZipEntry]]:
    """``entries`` in ``parts`` runs of consecutive members of about equal work (a file's
    creation costs about as much as writing 32 KB), one per helper: two processes creating files
    in one folder queue on its lock, and consecutive members mostly share a folder."""
    weights = [e.size + FILE_COST for e in entries]
    total = sum(weights)
    shares: list[list[zip_entries.ZipEntry]] = [[] for _ in range(parts)]
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


def _chunks(entries: list[zip_entries.ZipEntry]) -> list[list[zip_entries.ZipEntry]]:
    """Consecutive members, at most ``CHUNK_MEMBERS`` of them or ``CHUNK_BYTES`` (declared)."""
    chunks: list[list[zip_entries.ZipEntry]] = [[]]
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
        entries: list[zip_entries.ZipEntry],
        helpers: list[Helper],
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
        self.planned: dict[int, list[tuple[zip_entries.ZipEntry, Planned]]] = {}
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

    def _helper(self, chunk: int) -> Helper:
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

    def _read(self, entry: zip_entries.ZipEntry) -> Held | Staged:
        with zip_entries.open_zip_entry(self.archive, entry) as stream:
            return hold_or_stage(self.ctx.settings.tmp_dir, stream)

    def _add_here(self, entry: zip_entries.ZipEntry) -> None:
        self.batch.add(self._read(entry), str(entry.name))
        self._advance()

    def _dataset(self, entry: zip_entries.ZipEntry) -> Any:
        """The full header of a member that starts a session or a scan (their fields need pydicom)."""
        item = self._read(entry)
        try:
            return read_dataset(item, str(entry.name))
        finally:
            if isinstance(item, Staged):
                discard(item)

    def _stop_busy(self) -> None:
        """A failed import: helpers still at its tasks are killed (and waited for) before the
        batch removes what it planned, so none writes a file after that."""
        for helper in self.helpers:
            if helper.pending:
                helper.stop()
