"""`xnatd job run --wait`, `xnatd job list|log` and `xnatd worker`: a server that runs no jobs itself,
a separate worker process that runs them, the CLI queueing and following them."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.jobs import GE, add_scan, make_session
from tests.support.live_server import XNATD, live_server

pytestmark = pytest.mark.slow


def xnatd(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin"}
    return subprocess.run([str(XNATD), *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_cli_queues_and_follows_jobs_that_a_separate_worker_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with live_server(data, "--job-workers", "0") as srv, srv.client() as http:
        exp = make_session(http)
        project = exp.split("/")[3]
        scan = add_scan(http, exp, "4", GE / "mr_0004")
        site = ("--data", str(data), "--database", srv.database)  # the server's database, SQLite or not
        queued = xnatd("job", "run", "dcm2niix", scan, *site)
        assert queued.returncode == 0, queued.stderr
        assert "queued" in queued.stdout and scan in queued.stdout
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(
            [str(XNATD), "worker", *site, "--workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            add_scan(http, exp, "5", GE / "mr_0005")
            done = xnatd("job", "run", "dcm2niix", exp, "--wait", *site)
            assert done.returncode == 0, done.stdout + done.stderr
            listed = xnatd("job", "list", "--project", project, *site)
            lines = [ln for ln in listed.stdout.splitlines() if ln.strip()]
            assert len(lines) == 2 and all(" complete " in ln for ln in lines), listed.stdout
            job_id = lines[-1].split()[0]
            shown = xnatd("job", "log", job_id, *site)
            assert "Convert 150 DICOM" in shown.stdout
            again = xnatd("job", "run", "dcm2niix", scan, *site)
            assert again.returncode != 0 and "overwrite" in again.stderr
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
            log.close()
        rows = http.get(f"{scan}/resources/NIFTI/files", params={"format": "json"}).json()["ResultSet"][
            "Result"
        ]
        assert len(rows) == 2
