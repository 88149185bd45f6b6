"""``xnatd dicom``: the DICOM receivers alone; and how ``xnatd serve`` runs them beside HTTP.

``serve`` starts ``xnatd dicom`` as a child process (settings passed through the ``XNATD_*``
environment), waits until it has migrated the database and opened its ports, and stops it by its
PID when the HTTP server stops. The child dies with its parent even if that is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from xnatd import config

log = logging.getLogger("xnatd.dicom")
READY_TIMEOUT = 120.0


@click.command("dicom")
@click.option("--data", type=click.Path(path_type=Path), help="Data folder [XNATD_DATA, ./data]")
@click.option("--host", help="Listen address [XNATD_HOST, 127.0.0.1]")
@click.option("--dicom-port", type=int, help="Port of the default receiver [XNATD_DICOM_PORT, 8104]")
@click.option("--dicom-ae-title", help="AE title of the default receiver [XNATD_DICOM_AE_TITLE, XNAT]")
@click.option("--dicom-processes", type=int, help="Receiver processes [XNATD_DICOM_PROCESSES, 0 = per core]")
@click.option("--database", "database_url", help="Database URL [XNATD_DATABASE_URL, SQLite in DATA]")
@click.option("--ready-fd", type=int, hidden=True, help="Write 'ready' to this descriptor once listening")
@click.option("--parent-pid", type=int, hidden=True, help="Exit when this process exits")
def dicom_command(ready_fd: int | None, parent_pid: int | None, **options: Any) -> None:
    """Run the DICOM receivers (C-ECHO, C-STORE) without the HTTP server."""
    from xnatd.dimse import server

    settings = config.load({k: v for k, v in options.items() if v is not None})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    def ready() -> None:
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)

    server.run(settings, ready, parent_pid)


@contextlib.contextmanager
def receiver_process(settings: config.Settings) -> Iterator[subprocess.Popen[bytes] | None]:
    """Run ``xnatd dicom`` for the duration of the block (unless ``no_dicom``)."""
    if settings.no_dicom:
        yield None
        return
    read_end, write_end = os.pipe()
    args = [sys.executable, "-c", "from xnatd.cli.main import main; main()", "dicom"]
    args += ["--ready-fd", str(write_end), "--parent-pid", str(os.getpid())]
    proc = subprocess.Popen(args, pass_fds=(write_end,))
    os.close(write_end)
    try:
        try:
            readable, _, _ = select.select([read_end], [], [], READY_TIMEOUT)
            answer = os.read(read_end, 16) if readable else b""
        finally:
            os.close(read_end)
        if not answer.startswith(b"ready"):
            raise click.ClickException(f"The DICOM receiver did not start (exit status {proc.poll()})")
        yield proc
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
