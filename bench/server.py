"""Start one `xnatd serve` process for the benchmarks, sample its memory, stop it by its PID.

It shares tests/support/live_server.py's pieces (free loopback port, readiness on
`/xapi/siteConfig/buildInfo`, stop by PID), but lets the benchmark choose the executable and extra
options, and keeps the log next to the report.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.support.live_server import free_port, stop_process, wait_ready

REPO = Path(__file__).resolve().parents[1]
DEFAULT_XNATD = REPO / ".venv" / "bin" / "xnatd"
ADMIN = ("admin", "admin")
MB = 1024 * 1024


@dataclass
class Server:
    url: str
    port: int
    data: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@contextlib.contextmanager
def running_server(
    data: Path,
    log: Path,
    xnatd: Path = DEFAULT_XNATD,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 60.0,
) -> Iterator[Server]:
    """Run `xnatd serve --data DATA` on a free loopback port until the block ends."""
    if not xnatd.exists():
        raise RuntimeError(f"{xnatd} does not exist (run `make install` once the server package exists)")
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    args = [str(xnatd), "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)]
    if not any(a.startswith("--dicom-port") for a in extra_args):
        args.append("--no-dicom")
    args.extend(extra_args)
    # manual projects (prearchive code 0), as the measurements were made with
    env = {**os.environ, "XNATD_ADMIN_PASSWORD": ADMIN[1], "XNATD_DEFAULT_PREARCHIVE_CODE": "0"}
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, ready_timeout)
        yield Server(url=url, port=port, data=data, log=log, process=proc)
    finally:
        stop_process(proc)


@dataclass
class Phase:
    name: str
    start: float
    end: float | None = None


@dataclass
class RssSampler:
    """Samples the RSS of a process and all its descendants every `interval` seconds in a thread.

    Times are seconds since the sampler started. Phases mark the parts of the run (upload, download...)
    so that the maximum of each can be reported and the plot can shade them.
    """

    pid: int
    interval: float = 0.05
    times: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _root: psutil.Process | None = None
    _tree: list[psutil.Process] = field(default_factory=list)
    _refreshed: float = 0.0

    def now(self) -> float:
        return time.monotonic() - self._t0

    def start(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _procs(self) -> list[psutil.Process]:
        # the process tree rarely changes; rescanning /proc every 50 ms would cost CPU the server needs
        t = self.now()
        if self._root is None or t - self._refreshed > 1.0:
            self._root = self._root or psutil.Process(self.pid)
            self._tree = [self._root, *self._root.children(recursive=True)]
            self._refreshed = t
        return self._tree

    def sample(self) -> None:
        """Take one sample now (the thread calls this; phases also call it at their start and end)."""
        with self._lock:
            try:
                procs = self._procs()
            except psutil.NoSuchProcess:
                return
            total = 0
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += p.memory_info().rss
            self.times.append(self.now())
            self.rss.append(total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        ph = Phase(name, self.now())
        self.phases.append(ph)
        self.sample()
        try:
            yield ph
        finally:
            self.sample()
            ph.end = self.now()

    def max_in(self, ph: Phase) -> int:
        end = ph.end if ph.end is not None else float("inf")
        vals = [r for t, r in zip(self.times, self.rss, strict=True) if ph.start <= t <= end]
        return max(vals) if vals else 0

    def samples_in(self, ph: Phase) -> int:
        end = ph.end if ph.end is not None else float("inf")
        return sum(1 for t in self.times if ph.start <= t <= end)

    def first(self) -> int:
        return self.rss[0] if self.rss else 0


@dataclass
class CpuSnapshot:
    """CPU seconds used by the whole machine, by the server (and children) and by this benchmark process."""

    wall: float
    machine: float
    steal: float
    ours: float

    @staticmethod
    def take(server_pid: int) -> CpuSnapshot:
        t = psutil.cpu_times()
        machine = sum(getattr(t, k, 0.0) for k in ("user", "nice", "system", "irq", "softirq"))
        ours = 0.0
        for proc in [*_tree(server_pid), psutil.Process()]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                c = proc.cpu_times()
                ours += c.user + c.system + c.children_user + c.children_system
        return CpuSnapshot(time.monotonic(), machine, getattr(t, "steal", 0.0), ours)

    def others_since(self, before: CpuSnapshot) -> tuple[float, float, float]:
        """(wall seconds, CPU seconds used by other processes, CPU seconds stolen by the hypervisor)."""
        wall = self.wall - before.wall
        others = max(0.0, (self.machine - before.machine) - (self.ours - before.ours))
        return wall, others, self.steal - before.steal


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (live ones, and reaped ones)."""
    total = 0.0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            c = proc.cpu_times()
            total += c.user + c.system + c.children_user + c.children_system
    return total


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class PssSampler:
    """Peak of the summed PSS of a process tree (a server and its helper processes, the DICOM
    receiver's workers): pages they share (the interpreter, libraries, what a fork left shared)
    count once, where a sum of RSS counts them once per process."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            total = 0
            for p in [self.root, *self.root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_full_info().pss
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak
