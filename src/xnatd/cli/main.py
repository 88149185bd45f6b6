"""``xnatd``: serve the archive, manage it from the shell."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from pathlib import Path
from typing import Any

import click

from xnatd import __version__, config

M_ARENA_MAX = -8  # glibc's mallopt() parameter (malloc.h)


def _settings(**options: Any) -> config.Settings:
    return config.load({k: v for k, v in options.items() if v is not None})


@click.group()
@click.version_option(__version__, prog_name="xnatd")
def main() -> None:
    """xnatd: an imaging research archive that speaks the XNAT REST API."""


_SERVE_EPILOG = (
    f"These are the common options. Each of the {len(config.describe())} settings, these included, can "
    "be set as an environment variable XNATD_<NAME>: `xnatd settings` lists them all with their "
    "defaults, and docs/settings.md explains each."
)


@main.command(epilog=_SERVE_EPILOG)
@click.option("--data", type=click.Path(path_type=Path), help="Data folder [XNATD_DATA, ./data]")
@click.option("--host", help="Listen address [XNATD_HOST, 127.0.0.1]")
@click.option("--port", type=int, help="HTTP port [XNATD_PORT, 8080]")
@click.option("--dicom-port", type=int, help="DICOM port [XNATD_DICOM_PORT, 8104]")
@click.option(
    "--no-dicom", is_flag=True, default=None, help="Do not start the DICOM receiver [XNATD_NO_DICOM]"
)
@click.option("--database", "database_url", help="Database URL [XNATD_DATABASE_URL, SQLite in DATA]")
@click.option("--workers", type=int, help="HTTP worker processes [XNATD_WORKERS, 1]")
@click.option("--job-workers", type=int, help="Jobs run at once, 0 = none [XNATD_JOB_WORKERS, 2]")
@click.option("--executor", "job_executor", help="Jobs run on: local | dask://HOST:PORT [XNATD_JOB_EXECUTOR]")
def serve(**options: Any) -> None:
    """Run the HTTP server and the DICOM receiver (unless --no-dicom)."""
    import uvicorn

    settings = _settings(**options)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config.export(settings)
    _few_malloc_arenas()
    from xnatd.cli.dicom import receiver_process

    with receiver_process(settings):
        _run_http(uvicorn, settings)


def _few_malloc_arenas() -> None:
    """Two glibc malloc arenas, not one per thread (up to 8 per core): memory a thread frees stays
    in its own arena, so after a spike (a listing of 10,000 sessions on some of the 40 worker
    threads) a threaded server kept some 30 MB it no longer used. Set before any thread starts;
    the processes started from here (uvicorn workers, DICOM receivers, zip-import helpers) get it
    through the environment. An operator's own ``MALLOC_ARENA_MAX`` wins."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    os.environ["MALLOC_ARENA_MAX"] = "2"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def _run_http(uvicorn: Any, settings: config.Settings) -> None:
    uvicorn.run(
        "xnatd.api.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
        # Longer than clients keep idle connections (httpx and requests: 5 s; nginx: 60 s), so a
        # client never sends on a connection the server is closing at that very moment.
        timeout_keep_alive=75,
        factory=False,
    )


@main.command()
@click.option("--markdown", is_flag=True, help="Print the table of docs/settings.md")
def settings(markdown: bool) -> None:
    """List every setting, its environment variable and default."""
    if markdown:
        click.echo("| setting | environment variable | default | what it does |\n|---|---|---|---|")
    for name, env, default, doc in config.describe():
        if markdown:
            click.echo(f"| `{name}` | `{env}` | `{default}` | {doc} |")
        else:
            click.echo(f"{env:28} {name:22} default={default!r:30} {doc}")


def _register() -> None:
    from xnatd.cli.dicom import dicom_command
    from xnatd.cli.importer import import_command
    from xnatd.cli.jobs import job, worker
    from xnatd.cli.reliability import backup_command, restore_command, verify_command
    from xnatd.cli.users import user

    main.add_command(user)
    main.add_command(import_command)
    main.add_command(job)
    main.add_command(worker)
    main.add_command(dicom_command)
    main.add_command(verify_command)
    main.add_command(backup_command)
    main.add_command(restore_command)


_register()
