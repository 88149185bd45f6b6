"""A real Dask distributed cluster on loopback: ``dask scheduler`` plus N ``dask worker`` processes,
started on free ports and stopped by their PIDs."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.live_server import REPO, free_port

DASK = REPO / ".venv" / "bin" / "dask"


@dataclass
class Cluster:
    address: str  # tcp://127.0.0.1:PORT
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]

    @property
    def url(self) -> str:
        return "dask://" + self.address.removeprefix("tcp://")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_workers(address: str, n: int, logs: list[Path], timeout: float = 60) -> None:
    from distributed import Client

    deadline = time.monotonic() + timeout
    with Client(address, timeout=timeout, set_as_default=False) as client:
        while len(client.scheduler_info(n_workers=-1)["workers"]) < n:
            if time.monotonic() > deadline:
                tails = "\n".join(p.read_text(errors="replace")[-1500:] for p in logs if p.exists())
                raise RuntimeError(f"Dask workers did not register in {timeout}s:\n{tails}")
            time.sleep(0.1)


@contextlib.contextmanager
def dask_cluster(folder: Path, n_workers: int = 2) -> Iterator[Cluster]:
    """Scheduler and workers without nannies (each task runs in a `dask worker` process we started)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = [folder / "scheduler.log"] + [folder / f"worker{i}.log" for i in range(n_workers)]
    try:
        with logs[0].open("wb") as out:
            cmd = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        for i in range(n_workers):
            with logs[i + 1].open("wb") as out:
                cmd = [str(DASK), "worker", address, "--no-nanny", "--nthreads", "1", "--no-dashboard",
                       "--host", "127.0.0.1", "--name", f"w{i}", "--local-directory", str(folder / f"w{i}"),
                       "--death-timeout", "60"]  # fmt: skip
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        _wait_workers(address, n_workers, logs)
        yield Cluster(address, procs[0], procs[1:])
    finally:
        for proc in reversed(procs):
            _stop(proc)
