"""The restart rule and the run bookkeeping, on a real SQLite database through the job services."""

from __future__ import annotations

import datetime as _dt
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from xnatd import config
from xnatd.db import archive as q
from xnatd.db import jobs as qj
from xnatd.domain import jobs as J
from xnatd.errors import Conflict
from xnatd.jobs.dispatcher import is_gone
from xnatd.services.access.context import SYSTEM, Context
from xnatd.services.jobs import job_runs
from xnatd.services.jobs import jobs as job_service
from xnatd.services.operations.bootstrap import open_context


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = open_context(config.load({"data": tmp_path / "data"}, environ={}))
    with context.db.write() as conn:
        q.insert_project(conn, id="P", name="P", accessibility="private")
        q.insert_object(conn, "experiment", id="E1", project_id="P", label="E", xsi_type="xnat:mrSessionData")
        pk = q.insert_child(conn, experiment_id="E1", kind="scan", scan_id="4", xsi_type="xnat:mrScanData")
    context.scan_pk = pk  # type: ignore[attr-defined]
    yield context
    context.db.dispose()


def running_job(ctx: Context, worker: str, age: float, attempts: int = 1, max_attempts: int = 3) -> int:
    stamp = q.now() - _dt.timedelta(seconds=age)
    with ctx.db.write() as conn:
        return qj.insert_job(
            conn, command="dcm2niix", status=J.RUNNING, project_id="P", experiment_id="E1",
            scan_pk=ctx.scan_pk, target="/data/projects/P/subjects/S/experiments/E/scans/4",  # type: ignore[attr-defined]
            spec=J.DCM2NIIX.to_json(), username="u", attempts=attempts, max_attempts=max_attempts,
            message="", log="", worker=worker, run_dir=f"x/{attempts}-tok", heartbeat=stamp, started=stamp,
        )  # fmt: skip


def status(ctx: Context, job_id: int) -> tuple[str, int, str]:
    with ctx.db.read() as conn:
        row = qj.job(conn, job_id)
    assert row is not None
    return row["status"], row["attempts"], row["message"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lost_runs_are_requeued_until_attempts_run_out(ctx: Context) -> None:
    here = socket.gethostname()
    stale = running_job(ctx, "elsewhere:123:a", age=120)
    fresh = running_job(ctx, "elsewhere:124:b", age=1)
    spent = running_job(ctx, "elsewhere:125:c", age=120, attempts=3)
    orphan = running_job(ctx, f"{here}:{dead_pid()}:d", age=1)
    assert is_gone(f"{here}:{dead_pid()}:d") and not is_gone(f"elsewhere:{dead_pid()}:d")
    lost = job_runs.recover(ctx, is_gone, lost_after=60)
    assert sorted(lost) == sorted([stale, spent, orphan])
    assert status(ctx, stale)[:2] == (J.QUEUED, 1) and "lost" in status(ctx, stale)[2]
    assert status(ctx, fresh)[0] == J.RUNNING
    assert status(ctx, spent)[0] == J.FAILED and "lost 3 times" in status(ctx, spent)[2]
    assert status(ctx, orphan)[0] == J.QUEUED
    assert job_runs.recover(ctx, is_gone, lost_after=60) == []  # nothing more to do: no write needed


def test_a_result_for_a_run_that_is_no_longer_current_is_dropped(ctx: Context) -> None:
    job_id = running_job(ctx, "elsewhere:1:a", age=1)
    out = job_runs.finish(ctx, job_id, "x/0-old", job_runs.Outcome(0))
    assert out == J.RUNNING and status(ctx, job_id)[0] == J.RUNNING


def test_a_job_whose_input_is_gone_fails_when_claimed(ctx: Context) -> None:
    job_id = running_job(ctx, "", age=0)
    with ctx.db.write() as conn:
        qj.update_job(conn, job_id, status=J.QUEUED, attempts=0)
    assert job_runs.claim(ctx, "me:1:x", 4) == []
    state, _, message = status(ctx, job_id)
    assert state == J.FAILED and "no longer has a DICOM resource" in message


def test_a_finished_job_cannot_be_cancelled(ctx: Context) -> None:
    job_id = running_job(ctx, "elsewhere:1:a", age=1)
    with ctx.db.write() as conn:
        assert qj.move(conn, job_id, J.sources_of(J.FAILED), J.FAILED)
        assert not qj.move(conn, job_id, J.sources_of(J.COMPLETE), J.COMPLETE)  # the loser touches no row
    with pytest.raises(Conflict):
        job_service.cancel(ctx, SYSTEM, job_id)


def test_a_run_the_executor_lost_follows_the_restart_rule(ctx: Context) -> None:
    lost = job_runs.Outcome(None, error="the executor lost the run (KilledWorker: w0)", lost=True)
    again = running_job(ctx, "me:1:a", age=1)
    assert job_runs.finish(ctx, again, "x/1-tok", lost) == J.QUEUED
    spent = running_job(ctx, "me:1:a", age=1, attempts=3)
    assert job_runs.finish(ctx, spent, "x/3-tok", lost) == J.FAILED
    assert "KilledWorker" in status(ctx, spent)[2]
