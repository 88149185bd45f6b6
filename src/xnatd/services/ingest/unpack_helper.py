"""A zip-import helper process: reads members of a staged zip, scans their headers, writes them.

Started by ``services/unpacking`` as ``python -m xnatd.services.ingest.unpack_helper FD``, it talks over
the socket ``FD`` in pickled tuples (``multiprocessing.connection``), one task at a time, in order:

- ``("keys", tid, zip_path, [entry, ...])``: the header keys of those members (``None`` for one
  the fast scanner cannot read, which the server then reads with pydicom itself), where an entry
  is the fields of an ``zip_entries.ZipEntry`` the server checked; the helper keeps them for:
- ``("write", tid, zip_path, [(index, dest), ...])``: each member written to ``dest`` (created,
  never replaced): ``(size, md5)``, or ``None`` when ``dest`` was taken meanwhile;

A stored member is read straight from the file (``zip_entries.stored_chunks``), a compressed one
through zipfile.
- ``("done", tid)``: the import is over: its zip is closed (so its disk space is freed before the
  server syncs the filesystem) and the answer says so;
- ``("stop",)``, or the socket closing (the server died): the process ends.

A failed task answers ``("error", tid, kind, message)`` and the helper waits for the next one.
It imports only the header scanner, zip reading and file writing: a few MB beside the server.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import zipfile
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path, PurePosixPath
from typing import Any

from xnatd.dicom import header
from xnatd.errors import Conflict
from xnatd.storage import files, zip_entries

Task = tuple[Any, ...]


class _Zip:
    """The zip of the current import, opened once for all its tasks; zipfile (which parses its
    central directory, thousands of entries) only once a compressed member comes."""

    def __init__(self) -> None:
        self.path = ""
        self.fd = -1
        self.entries: dict[int, zip_entries.ZipEntry] = {}  # by index, from the keys tasks
        self._archive: zipfile.ZipFile | None = None

    def open(self, path: str) -> _Zip:
        if path != self.path:
            self.close()
            self.fd, self.path = os.open(path, os.O_RDONLY | os.O_CLOEXEC), path
        return self

    def head(self, entry: zip_entries.ZipEntry, length: int) -> bytes:
        if entry.offset >= 0:
            return zip_entries.stored_head(self.fd, entry, length)
        with zip_entries.open_zip_entry(self._zipfile(), entry) as stream:
            return stream.read(length)

    def chunks(self, entry: zip_entries.ZipEntry) -> Iterator[bytes]:
        if entry.offset >= 0:
            yield from zip_entries.stored_chunks(self.fd, entry)
            return
        with zip_entries.open_zip_entry(self._zipfile(), entry) as stream:
            yield from iter(lambda: stream.read(files.CHUNK), b"")

    def _zipfile(self) -> zipfile.ZipFile:
        if self._archive is None:
            self._archive = zip_entries.open_zip(Path(self.path))
        return self._archive

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
        if self.fd >= 0:
            os.close(self.fd)
        self._archive, self.fd, self.path = None, -1, ""
        self.entries = {}


HEAD_BYTES = 8 << 10  # most headers end well before: less to read twice


def _keys(zipped: _Zip, fields: list[tuple[int, str, int, int, int]]) -> list[header.FileKeys | None]:
    out = []
    for index, name, size, offset, crc in fields:
        entry = zipped.entries[index] = zip_entries.ZipEntry(index, PurePosixPath(name), size, offset, crc)
        head = zipped.head(entry, HEAD_BYTES)
        keys = header.scan_keys(head, whole=len(head) >= entry.size)
        if keys is None and len(head) < entry.size:  # a long header (or an odd file): read on
            head = zipped.head(entry, header.PREFIX_BYTES)
            keys = header.scan_keys(head, whole=len(head) >= entry.size)
        out.append(keys)
    return out


_orphaned = threading.Event()  # the server is gone: whatever is left of a task is not wanted


def _write(zipped: _Zip, items: list[tuple[int, str]]) -> list[tuple[int, str] | None]:
    """Stops at once when the server dies: its recovery (at its next start) removes the files its
    journal names, and none may appear after that."""
    out: list[tuple[int, str] | None] = []
    for index, dest in items:
        if _orphaned.is_set():
            raise SystemExit(0)
        try:
            out.append(files.write_chunks_new(zipped.chunks(zipped.entries[index]), Path(dest)))
        except Conflict:
            out.append(None)
    return out


def _reader(conn: Connection, tasks: queue.SimpleQueue[Task | None]) -> None:
    """Takes tasks off the socket as they come, so the server never blocks sending one while
    this process is busy sending an answer (each would wait for the other)."""
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            _orphaned.set()
            tasks.put(None)
            return
        tasks.put(task)
        if task[0] == "stop":
            return


def serve(conn: Connection) -> None:
    tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
    threading.Thread(target=_reader, args=(conn, tasks), daemon=True).start()
    zipped = _Zip()
    while (task := tasks.get()) is not None and task[0] != "stop":
        op, tid = task[0], task[1]
        try:
            if op == "done":
                zipped.close()
                answer: Task = ("done", tid, None)
            elif op == "keys":
                answer = ("keys", tid, _keys(zipped.open(task[2]), task[3]))
            else:
                answer = ("write", tid, _write(zipped.open(task[2]), task[3]))
        except Exception as exc:  # reported to the server, which fails the import with it
            answer = ("error", tid, type(exc).__name__, str(exc))
        try:
            conn.send(answer)
        except OSError:  # the server is gone
            return
    zipped.close()


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C at the server's terminal: the server stops us
    serve(Connection(int(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
