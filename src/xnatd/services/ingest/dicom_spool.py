"""The DICOM receiver's spool: where an object is kept from its Success response until it is indexed.

A C-STORE is answered Success only once its object is complete, renamed into the spool and flushed to
disk; the filing thread indexes it later (``receiving.Intake``). If the process dies in between, the
object must not be lost, so the spool lives outside ``DATA/tmp`` (start-up recovery deletes old
temporaries there) in ``DATA/spool/dicom/``:

- each receiver process owns one folder ``{host}-{pid}-{random}``, locked (``flock``) for as long as it
  lives; the kernel drops the lock when the process dies, even by SIGKILL, so an unlocked folder is a
  dead process's;
- in it, ``{aid}.json`` names the receiver (AE title, port) and the calling AE of association ``aid``,
  ``{aid}-{n}.part`` is an object still arriving (never acknowledged: a dead one's is deleted) and
  ``{aid}-{n}.dcm`` an acknowledged object not yet indexed;
- ``adopt_dead`` (when a receiver process starts, then every ``RESCAN_SECONDS``) moves a dead folder's
  acknowledged objects into the live process's own folder, under new association ids, and the intake
  files them exactly as if just received.

Flushing: ``GroupSync`` runs one ``syncfs`` for every object that finished while the previous one was
running, so concurrent associations share the cost (~0.3 ms here) instead of paying an fsync each.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xnatd.config import Settings
from xnatd.storage.durability import sync_filesystem

log = logging.getLogger("xnatd.dicom")
LOCK = "lock"
RESCAN_SECONDS = 30.0
YOUNG_SECONDS = 60.0  # a folder without its lock file yet may be a process starting right now


def spool_root(settings: Settings) -> Path:
    return settings.data / "spool" / "dicom"


def quarantine_dir(settings: Settings) -> Path:
    return settings.data / "quarantine" / "dicom-spool"


class GroupSync:
    """``syncfs`` shared by the threads that wait at the same time: each caller returns only after a
    flush that started after it called, and at most one flush runs at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cond = threading.Condition()
        self._started = 0
        self._done = 0
        self._busy = False
        self.flushes = 0

    def sync(self) -> None:
        with self._cond:
            need = self._started + 1
            while self._done < need:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                self._started += 1
                ticket = self._started
                self._cond.release()
                try:
                    sync_filesystem(self.folder)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
                self._done = ticket
                self.flushes += 1


@dataclass(frozen=True)
class Orphan:
    """One association of a dead process, now moved into the live spool under a new id."""

    aid: int
    ae_title: str
    port: int
    calling_ae: str
    files: list[Path]


class Spool:
    """This process's spool folder, locked while the process lives."""

    def __init__(self, root: Path, sync: bool = True) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.dir = root / f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.dir.mkdir()
        self._lock = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.group = GroupSync(self.dir) if sync else None
        sync_filesystem(self.dir)  # the folder and its lock exist before any object is acknowledged

    def part(self, aid: int, seq: int) -> Path:
        return self.dir / f"{aid}-{seq}.part"

    def begin(self, aid: int, ae_title: str, port: int, calling_ae: str) -> None:
        """Name the association's receiver; made durable by the flush of its first object."""
        doc = {"aeTitle": ae_title, "port": port, "callingAE": calling_ae}
        (self.dir / f"{aid}.json").write_text(json.dumps(doc))

    def end(self, aid: int) -> None:
        (self.dir / f"{aid}.json").unlink(missing_ok=True)

    @staticmethod
    def ready(part: Path) -> Path:
        """The object is complete: its spool name says so (a dead process's ``.part`` is dropped)."""
        final = part.with_suffix(".dcm")
        os.rename(part, final)
        return final

    def flush(self) -> None:
        """Before the Success response: the object, its name and its association's note on disk."""
        if self.group is not None:
            self.group.sync()

    def close(self) -> None:
        """A clean stop: everything is filed, so the folder goes (and its lock with it)."""
        leftovers = [p for p in self.dir.iterdir() if p.suffix == ".dcm"]
        if leftovers:
            log.warning("DICOM spool: %d objects left in %s for the next start", len(leftovers), self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        os.close(self._lock)

    def adopt_dead(self, next_aid: Iterator[int]) -> list[Orphan]:
        """Take over the acknowledged objects of every dead process's folder, then delete it."""
        adopted: list[Orphan] = []
        for folder in sorted(self.root.iterdir()):
            if folder == self.dir or not folder.is_dir():
                continue
            with _claimed(folder) as claimed:
                if claimed:
                    adopted += self._adopt(folder, next_aid)
        return adopted

    def _adopt(self, folder: Path, next_aid: Iterator[int]) -> list[Orphan]:
        found: dict[str, list[Path]] = {}
        for path in sorted(folder.glob("*.dcm"), key=_order):
            found.setdefault(path.name.split("-", 1)[0], []).append(path)
        adopted = []
        for old, files in found.items():
            ae_title, port, calling_ae = _meta(folder / f"{old}.json")
            aid = next(next_aid)
            self.begin(aid, ae_title, port, calling_ae)
            moved = []
            for n, path in enumerate(files, 1):
                dest = self.dir / f"{aid}-{n}.dcm"
                os.rename(path, dest)
                moved.append(dest)
            adopted.append(Orphan(aid, ae_title, port, calling_ae, moved))
        dropped = len(list(folder.glob("*.part")))
        sync_filesystem(self.dir)  # the moves are durable before the dead folder goes
        shutil.rmtree(folder, ignore_errors=True)
        count = sum(len(o.files) for o in adopted)
        log.log(
            logging.WARNING if count or dropped else logging.INFO,
            "DICOM spool: %s was left by a dead receiver process: %d acknowledged objects taken over "
            "for filing, %d incomplete (never acknowledged) deleted", folder.name, count, dropped,
        )  # fmt: skip
        return adopted


@contextlib.contextmanager
def _claimed(folder: Path) -> Iterator[bool]:
    """True (holding its lock) if the folder's process is dead; False if it lives or is starting."""
    try:
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            if time.time() - folder.stat().st_mtime > YOUNG_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)  # never got its lock: holds nothing
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield folder.exists()  # another process may have adopted and deleted it meanwhile
    finally:
        os.close(fd)


def _order(path: Path) -> tuple[int, int]:
    aid, _, seq = path.stem.partition("-")
    try:
        return int(aid), int(seq)
    except ValueError:
        return 0, 0


def _meta(sidecar: Path) -> tuple[str, int, str]:
    """The association's receiver; without its note (never written), header rules route the objects."""
    try:
        doc = json.loads(sidecar.read_text())
        return str(doc["aeTitle"]), int(doc["port"]), str(doc["callingAE"])
    except (OSError, ValueError, KeyError, TypeError):
        return "", 0, "UNKNOWN"
