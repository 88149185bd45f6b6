"""``xnatd job run|list|show|cancel`` (queue and follow jobs as the site operator) and ``xnatd worker``
(a dispatcher without the web server: for a host that should run the jobs, or a Dask client host)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xnatd import config
from xnatd.errors import XnatdError
from xnatd.jobs.dispatcher import Dispatcher
from xnatd.services.access.context import SYSTEM, Context
from xnatd.services.jobs import jobs as job_service
from xnatd.services.operations.bootstrap import open_context

FINAL = ("complete", "failed", "cancelled")
data_option = click.option("--data", type=click.Path(path_type=Path), help="Data folder [XNATD_DATA, ./data]")
database_option = click.option("--database", "database_url", help="Database URL [XNATD_DATABASE_URL]")


def _open(data: Path | None, database_url: str | None, **more: Any) -> Context:
    return open_context(config.load({"data": data, "database_url": database_url, **more}))


@click.group("job")
def job() -> None:
    """Queue processing jobs and follow them (a running `xnatd serve` or `xnatd worker` runs them)."""


@job.command("run")
@click.argument("command")
@click.argument("target")
@click.option("--overwrite", is_flag=True, help="Redo scans that already have the output resource")
@click.option("--wait", is_flag=True, help="Show progress until every job has finished")
@data_option
@database_option
def run(
    command: str, target: str, overwrite: bool, wait: bool, data: Path | None, database_url: str | None
) -> None:
    """Queue COMMAND (e.g. dcm2niix) on TARGET: a scan, session, subject or project URI."""
    ctx = _open(data, database_url)
    try:
        doc = {"command": command, "target": target, "overwrite": overwrite}
        jobs = job_service.launch(ctx, SYSTEM, doc)
        for j in jobs:
            click.echo(f"job {j['id']:>6}  {j['status']:9}  {j['target']}")
        if wait:
            failed = _follow(ctx, [j["id"] for j in jobs])
            if failed:
                raise click.ClickException(f"{failed} of {len(jobs)} job(s) did not complete")
    except XnatdError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ctx.db.dispose()


def _follow(ctx: Context, ids: list[int]) -> int:
    """A progress bar until every job is final; returns how many did not complete."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    started, warned = time.monotonic(), False
    with Progress(*columns) as bar:
        task = bar.add_task("jobs", total=len(ids))
        while True:
            docs = [job_service.get(ctx, SYSTEM, i) for i in ids]
            done = [d for d in docs if d["status"] in FINAL]
            running = sum(1 for d in docs if d["status"] == "running")
            bar.update(task, completed=len(done), description=f"jobs ({running} running)")
            if len(done) == len(ids):
                break
            if not warned and time.monotonic() - started > 15 and all(d["status"] == "queued" for d in docs):
                bar.console.print("Nothing has started yet: is `xnatd serve` or `xnatd worker` running?")
                warned = True
            time.sleep(0.5)
    for d in docs:
        if d["status"] != "complete":
            click.echo(f"job {d['id']}: {d['status']}: {d['message']}", err=True)
    return sum(1 for d in docs if d["status"] != "complete")


@job.command("list")
@click.option("--project", help="Only this project's jobs")
@click.option("--status", help="Only these statuses (comma list: queued,running,complete,failed,cancelled)")
@click.option("--limit", type=int, default=50, show_default=True)
@data_option
@database_option
def list_jobs(
    project: str | None, status: str | None, limit: int, data: Path | None, database_url: str | None
) -> None:
    """List jobs, newest first."""
    ctx = _open(data, database_url)
    try:
        statuses = [s for s in (status or "").split(",") if s] or None
        for j in job_service.list_jobs(ctx, SYSTEM, project, statuses, limit):
            secs = f"{j['seconds']:.1f}s" if j["seconds"] is not None else ""
            click.echo(
                f"{j['id']:>6}  {j['command']:12} {j['status']:9} {secs:>8}  {j['target']}  {j['message']}"
            )
    except XnatdError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ctx.db.dispose()


@job.command("log")
@click.argument("job_id", type=int)
@data_option
@database_option
def show_log(job_id: int, data: Path | None, database_url: str | None) -> None:
    """Print a job's log."""
    ctx = _open(data, database_url)
    try:
        click.echo(job_service.job_log(ctx, SYSTEM, job_id), nl=False)
    except XnatdError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ctx.db.dispose()


@job.command("cancel")
@click.argument("job_id", type=int)
@data_option
@database_option
def cancel(job_id: int, data: Path | None, database_url: str | None) -> None:
    """Cancel a queued or running job."""
    ctx = _open(data, database_url)
    try:
        click.echo(f"job {job_id}: {job_service.cancel(ctx, SYSTEM, job_id)['status']}")
    except XnatdError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ctx.db.dispose()


@click.command("worker")
@click.option("--workers", "job_workers", type=int, help="Jobs at once [XNATD_JOB_WORKERS, 2]")
@click.option("--executor", "job_executor", help="local or dask://HOST:PORT [XNATD_JOB_EXECUTOR, local]")
@data_option
@database_option
def worker(
    job_workers: int | None, job_executor: str | None, data: Path | None, database_url: str | None
) -> None:
    """Run queued jobs until stopped (SIGTERM or Ctrl-C), without serving HTTP."""
    ctx = _open(data, database_url, job_workers=job_workers, job_executor=job_executor)
    s = ctx.settings
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    loop = Dispatcher(ctx, s.job_executor, max(1, s.job_workers))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"xnatd worker: {loop.worker}, {s.job_executor}, {max(1, s.job_workers)} at a time", err=True)
    loop.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        loop.stop()
        ctx.db.dispose()
