"""The zip-import helper processes of a server process (see ``unpacking`` for what they do).

Each helper is ``python -m xnatd.services.ingest.unpack_helper FD``, talking pickled tuples over a socket
pair. A server process starts them when a zip upload first arrives (while its body streams in)
and keeps them for the next; it stops them by their PIDs at shutdown (and at exit), and each ends
by itself if the server dies (its socket closes).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from xnatd.services.access.context import Context

log = logging.getLogger("xnatd.import")
STOP_WAIT = 5.0  # seconds a helper gets to end before it is killed


class HelperLost(RuntimeError):
    """A helper process died or stopped answering in the middle of an import."""


class Helper:
    """One helper process and the socket to it."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "xnatd.services.ingest.unpack_helper", str(theirs.fileno())],
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
        self._idle: list[Helper] = []
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

    def take(self) -> list[Helper]:
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
                helper: Helper | None = Helper()
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

    def give_back(self, helpers: list[Helper]) -> None:
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
