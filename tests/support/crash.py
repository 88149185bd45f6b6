"""A real ``xnatd serve`` (HTTP, its DICOM receiver processes, job workers) that a test can SIGKILL as
a whole process tree and start again on the same data folder, as when the machine dies.

Every process is found with psutil and killed by its own PID; nothing is left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.support.live_server import ADMIN, SUITE_ENV, XNATD, free_port, stop_process, wait_ready


@dataclass
class Site:
    """One data folder and the server currently serving it (if any)."""

    data: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    dicom_port: int = 0
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.data.parent / "xnatd-crash.log"

    def start(self, timeout: float = 90.0) -> None:
        """Serve ``data`` on new free loopback ports and wait until HTTP answers."""
        self.data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.dicom_port = self.dicom_port or free_port()  # kept: the receivers' settings name it
        args = [str(XNATD), "serve", "--data", str(self.data), "--host", "127.0.0.1", "--port", str(port)]
        args += ["--dicom-port", str(self.dicom_port)]
        env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin", **SUITE_ENV, **self.env}
        env = {k: v.replace("{dicom_port}", str(self.dicom_port)) for k, v in env.items()}
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{port}"
        self.starts += 1
        wait_ready(self.url, self.proc, self.log, timeout)

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=ADMIN, timeout=timeout)

    def kill_tree(self) -> int:
        """SIGKILL the server and every descendant at once (the parent first, so it cannot restart a
        child). Returns how many processes were killed."""
        assert self.proc is not None
        try:
            tree = [psutil.Process(self.proc.pid)]
            tree += tree[0].children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        for p in tree:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)
        psutil.wait_procs(tree[1:], timeout=30)
        self.proc = None
        return len(tree)

    def stop(self) -> None:
        """A clean stop (SIGTERM, then SIGKILL of what is left), for the end of a test."""
        if self.proc is None:
            return
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            kids = []
        stop_process(self.proc)
        for p in kids:
            if p.is_running():
                os.kill(p.pid, signal.SIGKILL)
        self.proc = None

    def verify(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``xnatd verify`` as its own process on the same data folder."""
        env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin", **self.env}
        argv = [str(XNATD), "verify", "--data", str(self.data), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
