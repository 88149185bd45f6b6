"""A zip-import helper process: reads members of a staged zip, scans their headers, writes them.

Started by ``services/unpacking`` as ``python -m xnatd.services.unpack_helper FD``, it talks over
the socket ``FD`` in pickled tuples (``multiprocessing.connection``), one task at a time, in order:

- ``("keys", tid, zip_path, [index, ...])``: the header keys of those members (``None`` for one
  the fast scanner cannot read, which the server then reads with pydicom itself);
- ``("write", tid, zip_path, [(index, dest), ...])``: each member written to ``dest`` (created,
  never replaced): ``(size, md5)``, or ``None`` when ``dest`` was taken meanwhile;
- ``("done", tid)``: the import is over: its zip is closed (so its disk space is freed before the
  server syncs the filesystem) and the answer says so;
- ``("stop",)``, or the socket closing (the server died): the process ends.

A failed task answers ``("error", tid, kind, message)`` and the helper waits for the next one.
It imports only the header scanner, zip reading and file writing: a few MB beside the server.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import zipfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from xnatd.dicom import header
from xnatd.errors import Conflict
from xnatd.storage import archives, files

Task = tuple[Any, ...]


class _Zip:
    """The zip of the current import, opened once for all its tasks (its central directory
    holds thousands of entries)."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.archive: zipfile.ZipFile | None = None

    def open(self, path: str) -> zipfile.ZipFile:
        if self.archive is None or path != self.path:
            self.close()
            self.archive, self.path = archives.open_zip(Path(path)), path
        return self.archive

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
        self.archive = self.path = None


HEAD_BYTES = 16 << 10  # most headers end well before: less to read (and to CRC) twice


def _keys(archive: zipfile.ZipFile, indexes: list[int]) -> list[header.FileKeys | None]:
    out = []
    for index in indexes:
        size = archive.infolist()[index].file_size
        with archives.open_zip_entry(archive, index) as stream:
            head = stream.read(HEAD_BYTES)
            keys = header.scan_keys(head, whole=len(head) >= size)
            if keys is None and len(head) < size:  # a long header (or an odd file): read on
                head += stream.read(header.PREFIX_BYTES - len(head))
                keys = header.scan_keys(head, whole=len(head) >= size)
        out.append(keys)
    return out


def _write(archive: zipfile.ZipFile, items: list[tuple[int, str]]) -> list[tuple[int, str] | None]:
    out: list[tuple[int, str] | None] = []
    for index, dest in items:
        with archives.open_zip_entry(archive, index) as stream:
            try:
                out.append(files.write_stream_new(stream, Path(dest)))
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
