"""Queueing jobs through the job service, on a real SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from xnatd import config
from xnatd.db import archive as q
from xnatd.db import jobs as qj
from xnatd.domain import jobs as J
from xnatd.services.access.context import SYSTEM, Context
from xnatd.services.jobs import jobs as job_service
from xnatd.services.operations.bootstrap import open_context

SESSION = "/data/projects/P/subjects/S/experiments/E"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = open_context(config.load({"data": tmp_path / "data"}, environ={}))
    with context.db.write() as conn:
        q.insert_project(conn, id="P", name="P", accessibility="private")
        q.insert_object(conn, "subject", id="S1", project_id="P", label="S")
        mr = {"xsi_type": "xnat:mrSessionData"}
        q.insert_object(conn, "experiment", id="E1", project_id="P", subject_id="S1", label="E", **mr)
        for sid in ("4", "5"):
            scan = {"scan_id": sid, "xsi_type": "xnat:mrScanData"}
            pk = q.insert_child(conn, experiment_id="E1", kind="scan", **scan)
            add_resource(conn, pk, "DICOM")
    yield context
    context.db.dispose()


def add_resource(conn: Connection, scan_pk: int, label: str) -> None:
    q.insert_resource(
        conn, owner=f"scan:{scan_pk}", project_id="P", label=label, directory=f"P/x/{scan_pk}/{label}"
    )


def test_a_job_that_finishes_while_the_launcher_waits_is_not_queued_again(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session-wide launch that waits for a scan's lock while that scan's running job stores its
    NIFTI and completes (CI saw this on PostgreSQL) must skip the scan, not queue a job that fails."""
    first = job_service.launch(ctx, SYSTEM, {"command": "dcm2niix", "target": f"{SESSION}/scans/4"})[0]
    real = qj.active_for_scan

    def finishes_first(conn: Connection, scan_pk: int, command: str) -> Any:
        job = qj.job(conn, first["id"])
        if job is not None and job["scan_pk"] == scan_pk and job["status"] == J.QUEUED:
            add_resource(conn, scan_pk, "NIFTI")  # what the job's commit does, seen by the statements after
            qj.update_job(conn, first["id"], status=J.COMPLETE)
        return real(conn, scan_pk, command)

    monkeypatch.setattr(qj, "active_for_scan", finishes_first)
    jobs = job_service.launch(ctx, SYSTEM, {"command": "dcm2niix", "target": SESSION})
    assert [j["target"].rsplit("/", 1)[1] for j in jobs] == ["5"]
