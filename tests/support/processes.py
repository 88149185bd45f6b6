"""Extra xnatd processes beside a live server: `xnatd dicom` receivers and `xnatd worker` job runners
sharing its data folder and database, as a multi-process deployment runs them (docs/deploy.md).

Each process is stopped by its own PID when the block ends; nothing is left running.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.live_server import XNATD, LiveServer, free_port, stop_process


@contextlib.contextmanager
def xnatd_process(server: LiveServer, name: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``xnatd {args}`` on the server's data folder and database until the block ends."""
    log = server.data.parent / f"xnatd-{name}.log"
    argv = [str(XNATD), *args, "--data", str(server.data), "--database", server.database]
    env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin"}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        stop_process(proc)
    assert proc.returncode in (0, -15), f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}"


@contextlib.contextmanager
def dicom_receiver(server: LiveServer, name: str, processes: int = 1) -> Iterator[int]:
    """A separate `xnatd dicom` process on a free loopback port; yields the port once it listens."""
    port = free_port()
    args = ("dicom", "--host", "127.0.0.1", "--dicom-port", str(port), "--dicom-processes", str(processes))
    with xnatd_process(server, name, *args) as proc:
        wait_listening(port, proc, server.data.parent / f"xnatd-{name}.log")
        yield port


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s:\n{log.read_text(errors='replace')}")
