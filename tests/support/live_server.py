"""Start a real `xnatd serve` process on free loopback ports, for tests and benchmarks.

The process is stopped by its own PID; nothing is left running.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
XNATD = REPO / ".venv" / "bin" / "xnatd"
ADMIN = ("admin", "admin")


# Ports handed out by this process, never handed out twice.
_GIVEN: set[int] = set()


def free_port() -> int:
    """A loopback port free now, below Linux's ephemeral range (32768-60999).

    Port 0 would answer an ephemeral port, which any outgoing connection (the test's own clients,
    the other suite running beside this one in `make test`) may take between this check and the
    server's bind; below that range only another listener can, so pick at random there.
    """
    rng = random.SystemRandom()
    while True:
        port = rng.randint(20000, 32000)
        if port in _GIVEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port


@dataclass
class LiveServer:
    url: str
    port: int
    data: Path
    process: subprocess.Popen[bytes]
    log: Path
    database: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, auth: tuple[str, str] | None = ADMIN, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=auth, timeout=120, **kw)  # type: ignore[arg-type]


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    """Until ``GET /xapi/siteConfig/buildInfo`` answers 200; fail with the log if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"xnatd exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
            )
        try:
            r = httpx.get(url + "/xapi/siteConfig/buildInfo", timeout=2)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"xnatd not ready after {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process we started (by its PID), then SIGKILL it if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


def backend() -> str:
    """Which database the live servers use: ``sqlite`` (default) or ``postgresql`` (XNATD_TEST_BACKEND)."""
    return os.environ.get("XNATD_TEST_BACKEND", "sqlite")


# The suite's servers make manual projects (prearchive code 0), as most tests expect of a plain
# ``PUT /data/projects/P``; a test of the site's defaults (XNAT's code 4) passes ``defaults=True``.
SUITE_ENV = {"XNATD_DEFAULT_PREARCHIVE_CODE": "0"}


@contextlib.contextmanager
def live_server(
    data: Path, *extra_args: str, env: dict[str, str] | None = None, defaults: bool = False
) -> Iterator[LiveServer]:
    """Run `xnatd serve` with its data in `data` until the block ends.

    With ``XNATD_TEST_BACKEND=postgresql`` the server gets a fresh database on a real PostgreSQL
    server (tests/support/postgres.py) instead of the SQLite file in its data folder.
    """
    if (
        backend() == "postgresql"
        and "--database" not in extra_args
        and "XNATD_DATABASE_URL" not in (env or {})
    ):
        from tests.support.postgres import database_url

        extra_args = (*extra_args, "--database", database_url())
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"xnatd-{port}.log"
    args = [str(XNATD), "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)]
    if not any(a.startswith("--dicom-port") for a in extra_args):
        args.append("--no-dicom")
    args.extend(extra_args)
    suite = {} if defaults else SUITE_ENV
    full_env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin", **suite, **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=full_env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log)
        args_list = list(extra_args)
        database = (
            args_list[args_list.index("--database") + 1]
            if "--database" in args_list
            else (env or {}).get("XNATD_DATABASE_URL", f"sqlite:///{(data / 'xnatd.db').resolve()}")
        )
        yield LiveServer(url=url, port=port, data=data, process=proc, log=log, database=database)
    finally:
        stop_process(proc)


def python() -> str:
    """The interpreter of the project's virtual environment (real clients are installed there)."""
    venv_python = REPO / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable
