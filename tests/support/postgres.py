"""A real PostgreSQL server for the tests: its own cluster in a temporary folder, on a free loopback port.

Debian's PostgreSQL refuses to run as root, so the cluster belongs to the ``postgres`` system user.
It is started once per test process, on first use, and stopped (by the PID in postmaster.pid) when
the process exits. Each caller gets a fresh database in it.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from tests.support.live_server import free_port

_lock = threading.Lock()
_cluster: PostgresCluster | None = None


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: make install-system installs Debian's postgresql")
    return found[-1]


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)


class PostgresCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="xnatd-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        _as_postgres(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "xnatd", "-E", "UTF8")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300"
        )
        _as_postgres(
            _bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start"
        )

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        _as_postgres(_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "xnatd", name)
        return f"postgresql+psycopg://xnatd@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            os.kill(self.pid(), signal.SIGINT)  # fast shutdown of the postmaster we started
        except (OSError, FileNotFoundError, ValueError):
            pass
        else:
            for _ in range(100):
                if not (self.data / "postmaster.pid").exists():
                    break
                threading.Event().wait(0.1)
        shutil.rmtree(self.root, ignore_errors=True)


def database_url() -> str:
    """A new, empty database on the shared test cluster."""
    global _cluster
    with _lock:
        if _cluster is None:
            _cluster = PostgresCluster()
            atexit.register(_cluster.stop)
        return _cluster.create_database()
