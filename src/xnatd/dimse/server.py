"""The receiver processes: one supervisor that listens, N workers that serve associations.

Why processes: protocol work is CPU-bound Python, so one process serves about one core's worth of
associations; ``dicom_processes`` workers let several associations use several cores, and keep it all
away from the HTTP server's event loop. The supervisor owns the listening sockets (one per port of
the enabled receivers, re-read from the database every few seconds), accepts each connection and hands
the socket (SCM_RIGHTS) to the worker with the fewest open associations. Each worker serves each
association in a thread and files what arrives through its ``Intake``. The supervisor also runs the
idle-session builder, so ``xnatd dicom`` alone still builds and auto-archives.

Every child watches its parent (PR_SET_PDEATHSIG, and a poll of the parent PID): nothing outlives the
``xnatd serve`` or ``xnatd dicom`` that started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Protocol

from xnatd.config import Settings
from xnatd.dimse import storage_scp
from xnatd.services.ingest import dicom_receivers, rebuilder
from xnatd.services.ingest.dicom_receivers import Receiver
from xnatd.services.ingest.receiving import Intake, worker_context
from xnatd.services.operations.bootstrap import open_context

log = logging.getLogger("xnatd.dicom")
RELOAD_SECONDS = 0.2  # how often the supervisor looks for changed receivers (a cheap query)
RESPAWN_SECONDS = 2.0


class Closable(Protocol):
    def close(self) -> None: ...


RECEIVER_CACHE_SECONDS = 1.0
# A network thread woken by its sender's next PDU waits for the GIL while the filing thread runs a
# batch; Python's default 5 ms switch interval made that up to 5 ms per object (storescu sends one
# object at a time). 0.5 ms bounds the wait at a small cost in extra switches.
SWITCH_INTERVAL = 0.0005


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# --- worker --------------------------------------------------------------------------------------


class _Receivers:
    """The effective receivers, re-read at most once a second (new associations see changes)."""

    def __init__(
        self, load: Callable[[], list[Receiver]], version: Callable[[], tuple[int, str]] | None = None
    ) -> None:
        self._load = load
        self._version = version
        self._seen: tuple[int, str] | None = None
        self._at = 0.0
        self._list: list[Receiver] = []
        self._lock = threading.Lock()

    def get(self) -> list[Receiver]:
        with self._lock:
            if time.monotonic() - self._at > RECEIVER_CACHE_SECONDS or self._changed():
                self._list = self._load()
                self._at = time.monotonic()
            return self._list

    def _changed(self) -> bool:
        """Whether the stored receivers changed since the last load (a cheap query): a change
        answered over HTTP applies to the very next association."""
        if self._version is None:
            return False
        now = self._version()
        changed, self._seen = now != self._seen, now
        return changed


def worker_main(settings: Settings, channel: socket.socket, parent: int, inherited: list[Closable]) -> None:
    """Serve the connections the supervisor sends until it closes the channel.

    ``inherited`` are the supervisor's descriptors the fork copied (listening sockets, its ends of
    the channels): closed at once, or a closed channel would never read as closed.
    """
    for item in inherited:
        item.close()
    _die_with_parent()
    sys.setswitchinterval(SWITCH_INTERVAL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctx = worker_context(settings)
    receivers = _Receivers(lambda: dicom_receivers.effective(ctx), lambda: dicom_receivers.version(ctx))
    intake = Intake(
        ctx,
        lambda port, called: dicom_receivers.find(receivers.get(), port, called),
        flush_seconds=ctx.settings.dicom_filing_interval,
    )
    timeout = float(settings.dicom_timeout)
    send_lock = threading.Lock()

    def association(sock: socket.socket, port: int) -> None:
        try:
            peer = sock.getpeername()
            storage_scp.serve(
                sock,
                peer,
                lambda called: dicom_receivers.find(receivers.get(), port, called),
                intake,
                timeout,
            )
        except Exception:
            log.exception("DICOM association failed")
        finally:
            with send_lock, contextlib.suppress(OSError):
                channel.send(b"done")

    threads: list[threading.Thread] = []
    while os.getppid() == parent:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(channel, 64, 4)
        except OSError:
            break
        if not msg:
            break
        sock = socket.socket(fileno=fds[0])
        t = threading.Thread(target=association, args=(sock, int(msg)), daemon=True)
        t.start()
        threads = [x for x in threads if x.is_alive()] + [t]
    for t in threads:
        t.join(timeout)
    intake.close()
    ctx.db.dispose()


# --- supervisor ----------------------------------------------------------------------------------


@dataclass
class _Worker:
    process: BaseProcess
    channel: socket.socket
    active: int = 0


class Supervisor:
    """Listening sockets and worker processes; ``run`` returns after SIGTERM/SIGINT."""

    def __init__(self, settings: Settings, ready: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.ready = ready
        self.ctx = open_context(settings)
        self.listeners: dict[int, socket.socket] = {}
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.stopping = threading.Event()
        self._version: tuple[int, str] | None = None
        self._unbound = False
        self._next = 0

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        self._sync_listeners()
        self.ctx.db.dispose()  # the workers fork next: no pooled connection may cross the fork
        count = self.settings.dicom_processes or min(4, os.cpu_count() or 1)
        for _ in range(count):
            self._spawn()
        builder = threading.Thread(target=self._build_loop, name="idle-builder", daemon=True)
        builder.start()
        ports = ", ".join(str(p) for p in sorted(self.listeners)) or "none"
        log.info(
            "DICOM receiver listening on %s port(s) %s with %d processes", self.settings.host, ports, count
        )
        if self.ready is not None:
            self.ready()
        try:
            self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> None:
        last_respawn = time.monotonic()
        while not self.stopping.is_set():
            for key, _mask in self.selector.select(timeout=RELOAD_SECONDS):
                key.data(key.fileobj)
            with contextlib.suppress(Exception):  # a database hiccup: keep what we have
                self._sync_listeners()
            if time.monotonic() - last_respawn > RESPAWN_SECONDS:
                last_respawn = time.monotonic()
                self._respawn_dead()

    # --- listening -------------------------------------------------------------------------------

    def _sync_listeners(self) -> None:
        version = dicom_receivers.version(self.ctx)
        if version == self._version and not self._unbound:
            return
        self._unbound = self._open_listeners()  # a port it could not bind is tried again
        if version != self._version:
            self._version = version
            dicom_receivers.mark_applied(self.ctx, version)  # ``/xapi/dicomscp`` answers after this

    def _open_listeners(self) -> bool:
        """Listen on the ports of the enabled receivers, and only those; whether a port is missing."""
        wanted = dicom_receivers.listening(self.ctx)
        for port in set(self.listeners) - wanted:
            sock = self.listeners.pop(port)
            self.selector.unregister(sock)
            sock.close()
            log.info("DICOM receiver: stopped listening on port %d", port)
        for port in wanted - set(self.listeners):
            try:
                sock = socket.create_server((self.settings.host, port), backlog=128, reuse_port=False)
            except OSError as exc:
                log.error("DICOM receiver: cannot listen on %s:%d: %s", self.settings.host, port, exc)
                continue
            sock.setblocking(False)
            self.listeners[port] = sock
            self.selector.register(sock, selectors.EVENT_READ, self._accept)
            if self._version is not None and self.workers:
                log.info("DICOM receiver: listening on port %d", port)
        return bool(wanted - set(self.listeners))

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _addr = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        port = listener.getsockname()[1]
        alive = [w for w in self.workers if w.process.is_alive()]
        if not alive:
            conn.close()
            return
        worker = min(
            alive, key=lambda w: (w.active, (self.workers.index(w) - self._next) % len(self.workers))
        )
        self._next = (self.workers.index(worker) + 1) % len(self.workers)
        try:
            socket.send_fds(worker.channel, [str(port).encode()], [conn.fileno()])
            worker.active += 1
        except OSError as exc:
            log.error("DICOM receiver: could not hand a connection to a worker: %s", exc)
        finally:
            conn.close()

    # --- workers ---------------------------------------------------------------------------------

    def _spawn(self, slot: int | None = None) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        context = multiprocessing.get_context("fork")
        inherited: list[Closable] = [mine, self.selector, *self.listeners.values()]
        inherited += [w.channel for w in self.workers]
        proc = context.Process(
            target=worker_main,
            args=(self.settings, theirs, os.getpid(), inherited),
            name="xnatd-dicom-worker",
            daemon=True,
        )
        proc.start()
        theirs.close()
        worker = _Worker(proc, mine)
        self.selector.register(mine, selectors.EVENT_READ, lambda ch: self._report(worker, ch))
        if slot is None:
            self.workers.append(worker)
        else:
            self.workers[slot] = worker

    def _report(self, worker: _Worker, channel: socket.socket) -> None:
        try:
            msg = channel.recv(64)
        except OSError:
            msg = b""
        if msg == b"done":
            worker.active = max(0, worker.active - 1)
        elif not msg:
            self.selector.unregister(channel)

    def _respawn_dead(self) -> None:
        for i, worker in enumerate(self.workers):
            if not worker.process.is_alive() and not self.stopping.is_set():
                log.error("DICOM receiver process %s exited (%s); starting another", worker.process.pid,
                          worker.process.exitcode)  # fmt: skip
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(worker.channel)
                worker.channel.close()
                self._spawn(i)

    def _build_loop(self) -> None:
        interval = max(1.0, min(60.0, self.settings.prearchive_idle_build / 2))
        while not self.stopping.wait(interval):
            try:
                rebuilder.build_idle(self.ctx)
            except Exception:
                log.exception("prearchive rebuilder failed")

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):
            dicom_receivers.mark_applied(self.ctx, None)
        for sock in self.listeners.values():
            sock.close()
        for worker in self.workers:
            worker.channel.close()  # the worker finishes its associations, files, exits
        deadline = time.monotonic() + self.settings.dicom_timeout + 10
        for worker in self.workers:
            worker.process.join(max(0.1, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(5)
        self.ctx.db.dispose()
        log.info("DICOM receiver stopped")


def run(settings: Settings, ready: Callable[[], None] | None = None, parent: int | None = None) -> None:
    """``xnatd dicom``: run the receivers until SIGTERM (or until ``parent`` exits)."""
    if parent is not None:
        _die_with_parent()
    Supervisor(settings, ready).run()
