"""The dispatcher's side of jobs: claim queued jobs, take a run's result and move its outputs into the
archive, hand back runs at shutdown, and recover runs whose dispatcher died.

Each run has its own folder ``DATA/jobs/{id}/{attempt}-{token}/`` with ``out/`` (the command's output
folder) and ``log.txt``. Outputs become a resource of the scan in one database transaction: the files
are renamed into the archive, their rows (with MD5) written, and the job marked complete only if it
is still this run's (not cancelled or requeued meanwhile); otherwise the renames are undone. So a
failed or cancelled job leaves no resource, and a complete one has every file.

Restart rule: a ``running`` job whose dispatcher is gone (its process no longer exists on this host, or
its heartbeat is older than ``job_lost_after`` seconds) is lost; it goes back to ``queued`` while it
has had fewer than ``max_attempts`` runs, and fails otherwise. A dispatcher that stops cleanly stops
its runs and queues them again without counting the attempt.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import jobs as qj
from xnatd.domain import jobs as J
from xnatd.errors import Conflict, InvalidInput, NotFound, XnatdError
from xnatd.services.access.context import Context
from xnatd.services.archive.resources import Owner, archive_path, ensure_resource, session_dir
from xnatd.services.jobs.job_commands import from_spec
from xnatd.storage.durability import fsync_file
from xnatd.storage.files import Staged, md5_of, stage_fileobj
from xnatd.storage.paths import safe_relpath
from xnatd.storage.placement import Placement

LOG_KEEP = 256 * 1024  # the tail of a run's log kept in the job row
LOG, CANCEL, OUT = "log.txt", "CANCEL", "out"
_IDLE: dict[str, Any] = {"worker": "", "run_dir": "", "heartbeat": None}  # a queued job holds no run


@dataclass(frozen=True)
class Claim:
    """A run to start: an argument list and the folder it runs in (absolute paths)."""

    job_id: int
    rel: str  # the run folder relative to DATA/jobs: what ``finish`` and ``release`` are given back
    run_dir: str  # the same, absolute (executors on other hosts see DATA at the same path)
    argv: tuple[str, ...]
    timeout: float


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None
    cancelled: bool = False
    timed_out: bool = False
    error: str = ""
    host: str = ""
    lost: bool = False  # the executor lost the run (not the command's fault): retried while attempts remain


def run_folder(ctx: Context, rel: str) -> Path:
    return ctx.settings.jobs_dir / rel


# --- claiming -----------------------------------------------------------------------------------------


def claim(ctx: Context, worker: str, limit: int) -> list[Claim]:
    """Move up to ``limit`` queued jobs to running for ``worker``; jobs that cannot start fail."""
    if limit <= 0:
        return []
    with ctx.db.read() as conn:  # the common case, nothing queued, takes no write lock
        if not qj.queued(conn, 1):
            return []
    out = []
    with ctx.db.write() as conn:
        for row in qj.queued(conn, limit):
            attempt = row["attempts"] + 1
            rel = f"{row['id']}/{attempt}-{secrets.token_hex(4)}"
            now = q.now()
            values = {"attempts": attempt, "worker": worker, "run_dir": rel, "started": now, "heartbeat": now}
            # The claim first, its run folder after: on PostgreSQL another dispatcher may have listed
            # the same job, and the loser must leave nothing behind (it waits for the winner's
            # commit, then its conditional update touches no row).
            if not qj.move(conn, row["id"], [J.QUEUED], J.RUNNING, exit_code=None, **values):
                continue
            try:
                argv = _argv(ctx, conn, row, run_folder(ctx, rel))
            except XnatdError as exc:
                undo = {"attempts": row["attempts"], "started": row["started"], **_IDLE}
                qj.move_run(conn, row["id"], rel, J.FAILED, finished=q.now(), message=str(exc), **undo)
                continue
            timeout = float(from_spec(row["spec"]).timeout)
            out.append(Claim(row["id"], rel, str(run_folder(ctx, rel).resolve()), tuple(argv), timeout))
    return out


def _argv(ctx: Context, conn: Connection, row: Any, folder: Path) -> list[str]:
    command = from_spec(row["spec"])
    scan = _scan(conn, row)
    exp = q.by_id(conn, "experiment", row["experiment_id"])
    inputs = [r for r in q.resources_of(conn, [f"scan:{scan['pk']}"]) if r["label"] == command.input_resource]
    if exp is None or not inputs:
        raise NotFound(f"Scan {scan['scan_id']} no longer has a {command.input_resource} resource")
    values = {
        "input": str(archive_path(ctx, inputs[0]["directory"]).resolve()),
        "output": str((folder / OUT).resolve()),
        "project": exp["project_id"],
        "subject": q.subject_label_in(
            conn, exp["subject_id"], exp["project_id"]
        ),  # as in the session's project
        "session": exp["label"],
        "session_id": exp["id"],
        "scan": scan["scan_id"],
        "scan_type": scan["type"] or "",
        "job": str(row["id"]),
    }
    argv = J.fill(command.command, values)
    (folder / OUT).mkdir(parents=True)
    return argv


def _scan(conn: Connection, row: Any) -> Any:
    found = qj.scan(conn, row["scan_pk"]) if row["scan_pk"] is not None else None
    if found is None:
        raise NotFound(f"The scan of job {row['id']} was deleted")
    return found


def heartbeat(ctx: Context, worker: str, ids: list[int]) -> None:
    with ctx.db.write() as conn:
        qj.touch(conn, ids, worker)


# --- results --------------------------------------------------------------------------------------------


def finish(ctx: Context, job_id: int, rel: str, outcome: Outcome) -> str:
    """Record how a run ended; on success move its outputs into the archive. Returns the job's status."""
    folder = run_folder(ctx, rel)
    try:
        with ctx.db.read() as conn:
            row = qj.job(conn, job_id)
        if row is None or row["run_dir"] != rel or row["status"] != J.RUNNING:
            _keep_log(ctx, job_id, rel, folder)  # cancelled or requeued meanwhile: keep only the log
            return str(row["status"]) if row is not None else "gone"
        if outcome.lost:  # the executor lost the run (a cluster worker died): the restart rule applies
            with ctx.db.write() as conn:
                _lose(ctx, conn, row, outcome.error)
                return str(qj.job(conn, job_id)["status"])  # type: ignore[index]
        log_text = row["log"] + _tail(folder / LOG)
        failure = _failure(row, outcome)
        if failure is None:
            try:
                return _store(ctx, row, rel, folder, log_text, outcome)
            except XnatdError as exc:
                failure = f"the outputs could not be stored: {exc}"
        with ctx.db.write() as conn:
            values = {"exit_code": outcome.exit_code, "message": failure, "log": _trim(log_text)}
            qj.move_run(conn, job_id, rel, J.FAILED, finished=q.now(), **values)
            return str(qj.job(conn, job_id)["status"])  # type: ignore[index]
    finally:
        drop_run(ctx, rel)


def _failure(row: Any, outcome: Outcome) -> str | None:
    if outcome.error:
        return outcome.error
    if outcome.cancelled:
        return "stopped"
    if outcome.exit_code != 0:
        return f"{row['command']} exited with code {outcome.exit_code}"
    return None


def _store(ctx: Context, row: Any, rel: str, folder: Path, log_text: str, outcome: Outcome) -> str:
    spec = row["spec"]
    staged = _outputs(ctx, folder / OUT)
    placement = Placement(ctx.settings.tmp_dir)
    try:
        with ctx.db.write() as conn:
            pk = _place(ctx, conn, row, spec, staged, placement)
            values = {"exit_code": outcome.exit_code, "output_resource_pk": pk, "log": _trim(log_text)}
            done = qj.move_run(conn, row["id"], rel, J.COMPLETE, finished=q.now(), message="", **values)
            if not done:
                raise _Superseded()
    except _Superseded:
        placement.rollback()
        return "superseded"
    except BaseException:
        placement.rollback()
        raise
    placement.commit()
    return J.COMPLETE


class _Superseded(Exception):
    """The job was cancelled or requeued while its outputs were being stored: undo the store."""


def _outputs(ctx: Context, out: Path) -> list[tuple[str, Staged]]:
    """Every regular file under ``out`` with its size and MD5; symlinks and odd names are refused."""
    found: list[tuple[str, Staged]] = []
    same_fs = os.stat(out).st_dev == os.stat(ctx.settings.tmp_dir).st_dev
    for path in sorted(out.rglob("*")):
        if path.is_symlink():
            raise InvalidInput(f"The command left a symbolic link {path.name!r} in its output")
        if not path.is_file():
            continue
        name = str(safe_relpath(path.relative_to(out).as_posix()))
        if same_fs:
            fsync_file(path)  # the command did not; the rename into the archive must not outlive the data
            found.append((name, Staged(path, path.stat().st_size, md5_of(path))))
        else:  # DATA/jobs on another filesystem: copy into DATA/tmp first, so the rename is atomic
            with path.open("rb") as src:
                found.append((name, stage_fileobj(ctx.settings.tmp_dir, src)))
    if not found:
        raise InvalidInput("the command wrote no output files")
    return found


def _place(
    ctx: Context,
    conn: Connection,
    row: Any,
    spec: dict[str, Any],
    staged: list[tuple[str, Staged]],
    placement: Placement,
) -> int:
    scan = _scan(conn, row)
    exp = q.by_id(conn, "experiment", row["experiment_id"])
    if exp is None:
        raise NotFound("the session was deleted")
    output = spec.get("output", {})
    label = output.get("resource") or "OUTPUT"
    directory = f"{session_dir(conn, exp)}/SCANS/{scan['scan_id']}"
    owner = Owner(f"scan:{scan['pk']}", "scan", directory, row["target"], "", "scans", scan["scan_id"])
    existing = [r for r in q.resources_of(conn, [owner.key]) if r["label"] == label]
    if existing and not spec.get("overwrite"):
        raise Conflict(f"scan {scan['scan_id']} has a {label} resource already")
    for res in existing:
        old = q.files_of(conn, [res["pk"]])
        for f in old:
            placement.remove(
                archive_path(ctx, res["directory"], f["path"]), archive_path(ctx, res["directory"])
            )
        q.delete_files(conn, [f["pk"] for f in old])
    params = [("format", output.get("format", "")), ("content", output.get("content", ""))]
    res = ensure_resource(ctx, conn, owner, exp["project_id"], label, params)
    for name, item in staged:
        placement.put(item, archive_path(ctx, res["directory"], name), replace=False)  # the old ones went
        values = {"format": "", "content": "", "tags": "", "created_by": row["username"]}
        q.upsert_file(conn, res["pk"], name, size=item.size, md5=item.md5, **values)
    return int(res["pk"])


# --- cancel, shutdown, recovery ---------------------------------------------------------------------------


def cancel_run(ctx: Context, row: Any) -> None:
    """Stop the run of a job that was running when it was cancelled."""
    if row["status"] == J.RUNNING and row["run_dir"]:
        stop_run(ctx, row["run_dir"])


def stop_run(ctx: Context, rel: str) -> None:
    """Ask the executor to stop a run: a CANCEL file in its folder (seen on any host sharing DATA)."""
    folder = run_folder(ctx, rel)
    if folder.is_dir():
        (folder / CANCEL).touch()


def release(ctx: Context, job_id: int, rel: str, reason: str) -> None:
    """A dispatcher stopping cleanly hands a run back: queued again, the attempt not counted."""
    folder = run_folder(ctx, rel)
    with ctx.db.write() as conn:
        row = qj.job(conn, job_id)
        if row is not None and row["run_dir"] == rel:
            text = _trim(row["log"] + _tail(folder / LOG) + f"# {reason}\n")
            attempts = max(0, row["attempts"] - 1)
            qj.move_run(conn, job_id, rel, J.QUEUED, attempts=attempts, message=reason, log=text, **_IDLE)
    drop_run(ctx, rel)


def recover(ctx: Context, is_gone: Callable[[str], bool], lost_after: float) -> list[int]:
    """Requeue (or fail, when out of attempts) running jobs whose dispatcher is gone; returns their IDs."""

    def is_lost(row: Any) -> bool:
        return is_gone(row["worker"]) or qj.older_than(row["heartbeat"], lost_after)

    with ctx.db.read() as conn:  # the usual answer, none, takes no write lock
        if not any(is_lost(row) for row in qj.running(conn)):
            return []
    lost: list[tuple[int, str]] = []
    with ctx.db.write() as conn:
        for row in qj.running(conn):
            if not is_lost(row):
                continue
            _lose(ctx, conn, row, f"{row['worker'] or 'its dispatcher'} stopped while it ran")
            lost.append((row["id"], row["run_dir"]))
    for _, rel in lost:
        if rel:
            stop_run(ctx, rel)  # a straggler on a cluster node stops too
            drop_run(ctx, rel)
    return [job_id for job_id, _ in lost]


def _lose(ctx: Context, conn: Connection, row: Any, why: str) -> None:
    """The restart rule for one lost run: queued again while attempts remain, else failed."""
    rel = row["run_dir"]
    note = f"# run {row['attempts']} lost: {why}\n"
    text = _trim(row["log"] + _tail(run_folder(ctx, rel) / LOG) + note) if rel else row["log"] + note
    if row["attempts"] < row["max_attempts"]:
        message = f"run {row['attempts']} lost; queued again"
        qj.move_run(conn, row["id"], rel, J.QUEUED, log=text, message=message, **_IDLE)
    else:
        message = f"lost {row['attempts']} times ({why})"
        qj.move_run(conn, row["id"], rel, J.FAILED, finished=q.now(), log=text, message=message)


def sweep(ctx: Context) -> int:
    """Remove job folders of jobs that are no longer running (left by a crash); returns how many."""
    root = ctx.settings.jobs_dir
    names = [p.name for p in root.iterdir() if p.is_dir() and p.name.isdigit()] if root.is_dir() else []
    if not names:
        return 0
    with ctx.db.read() as conn:
        live = {r["id"] for r in qj.jobs_by_id(conn, [int(n) for n in names]) if r["status"] in J.ACTIVE}
    stale = [n for n in names if int(n) not in live]
    for name in stale:
        shutil.rmtree(root / name, ignore_errors=True)
    return len(stale)


def read_log(ctx: Context, row: Any) -> str:
    """The stored log of earlier runs plus, while running, the current run's log so far."""
    text = str(row["log"])
    if row["status"] == J.RUNNING and row["run_dir"]:
        text += _tail(run_folder(ctx, row["run_dir"]) / LOG)
    return text


def drop_run(ctx: Context, rel: str) -> None:
    folder = run_folder(ctx, rel)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()  # the job's folder, once its last run is gone
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.ENOENT, errno.EEXIST):
            raise


def _keep_log(ctx: Context, job_id: int, rel: str, folder: Path) -> None:
    text = _tail(folder / LOG)
    if text:
        with ctx.db.write() as conn:
            row = qj.job(conn, job_id)
            if row is not None and row["status"] == J.CANCELLED:
                qj.update_job(conn, job_id, log=_trim(row["log"] + text))


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_KEEP))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _trim(text: str) -> str:
    return text if len(text) <= LOG_KEEP else "[... earlier output cut ...]\n" + text[-LOG_KEEP:]
