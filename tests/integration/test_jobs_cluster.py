"""Jobs across processes: a server killed (SIGKILL) with jobs running and queued runs them after a
restart; the same conversions on a real Dask cluster (a scheduler and two workers on loopback)."""

from __future__ import annotations

import gzip
import re
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import psutil
import pytest

from tests.support.dask_cluster import dask_cluster
from tests.support.jobs import GE, SIEMENS, add_scan, launch, make_session, uid, wait_jobs, wait_status
from tests.support.live_server import live_server

pytestmark = pytest.mark.slow

SLEEPER = textwrap.dedent(
    """
    import os, sys, time
    out, pidfile = sys.argv[1], sys.argv[2]
    first = not os.path.exists(pidfile)
    with open(pidfile, "a") as f:
        f.write(f"{os.getpid()}\\n")
    # The first run lasts until the test kills the server, however slow the machine; the rerun is quick.
    time.sleep(600 if first else float(sys.argv[3]))
    with open(os.path.join(out, "done.txt"), "w") as f:
        f.write("slept")
    """
)


def _shape(data: bytes, tmp: Path) -> tuple[int, ...]:
    (tmp / "v.nii").write_bytes(gzip.decompress(data))
    return tuple(int(n) for n in nib.load(str(tmp / "v.nii")).shape)


def test_a_killed_server_runs_its_lost_and_queued_jobs_after_a_restart(tmp_path: Path) -> None:
    tool, pidfile = tmp_path / "sleeper.py", tmp_path / "pids"
    tool.write_text(SLEEPER)
    data = tmp_path / "data"
    name = uid("sleep")
    with live_server(data, "--job-workers", "1") as srv, srv.client() as http:
        argv = [sys.executable, str(tool), "{output}", str(pidfile), "2"]
        doc = {"name": name, "command": argv, "output": {"resource": "SLEPT"}}
        assert http.post("/xapi/jobs/commands", json=doc).status_code == 201
        exp = make_session(http)
        sleeper = launch(http, add_scan(http, exp, "9", GE / "mr_0006"), command=name)[0]
        wait_status(http, sleeper["id"], "running")
        scans = [add_scan(http, exp, "4", GE / "mr_0004"), add_scan(http, exp, "3", SIEMENS / "mr_0003")]
        queued = [launch(http, s)[0] for s in scans]
        assert [j["status"] for j in queued] == ["queued", "queued"]  # the only slot is taken
        assert launch(http, scans[0])[0]["id"] == queued[0]["id"]  # asked twice, queued once
        while not pidfile.exists():
            time.sleep(0.05)
        srv.process.kill()  # SIGKILL: no shutdown code runs
        srv.process.wait()
        database = srv.database
    for pid in map(int, pidfile.read_text().split()):  # the orphaned command of the lost run
        if psutil.pid_exists(pid):
            psutil.Process(pid).kill()
    with live_server(data, "--database", database) as srv, srv.client() as http:
        docs = wait_jobs(http, [sleeper["id"]] + [j["id"] for j in queued], timeout=90)
        assert [d["status"] for d in docs] == ["complete"] * 3, docs
        assert docs[0]["attempts"] == 2 and docs[1]["attempts"] == 1
        log = http.get(f"/xapi/jobs/{sleeper['id']}/log").text
        assert "run 1 lost" in log and log.count("$ ") == 2
        rows = http.get(f"{exp}/scans/9/resources/SLEPT/files", params={"format": "json"}).json()
        assert [r["Name"] for r in rows["ResultSet"]["Result"]] == ["done.txt"]
    assert not [p for p in (data / "jobs").iterdir() if p.name.isdigit()]  # no run folders left


def test_conversions_on_a_dask_cluster(tmp_path: Path) -> None:
    with dask_cluster(tmp_path / "dask", n_workers=2) as cluster:
        worker_pids = {p.pid for p in cluster.workers}
        server = live_server(tmp_path / "data", "--executor", cluster.url, "--job-workers", "2")
        with server as srv, srv.client() as http:
            exp = make_session(http)
            ge = add_scan(http, exp, "4", GE / "mr_0004")
            si = add_scan(http, exp, "3", SIEMENS / "mr_0003")
            jobs = launch(http, exp)
            docs = wait_jobs(http, [j["id"] for j in jobs], timeout=90)
            assert [d["status"] for d in docs] == ["complete", "complete"], docs
            ran_in = set()
            for d in docs:
                log = http.get(f"/xapi/jobs/{d['id']}/log").text
                ran_in.add(int(re.search(r"\(pid (\d+)\)", log).group(1)))  # type: ignore[union-attr]
            assert ran_in <= worker_pids  # the runs happened in the Dask worker processes
            for scan, shape in ((ge, (64, 64, 15, 10)), (si, (72, 72, 5, 2))):
                rows = http.get(f"{scan}/resources/NIFTI/files", params={"format": "json"}).json()
                names = {r["Name"]: r["URI"] for r in rows["ResultSet"]["Result"]}
                volume = next(u for n, u in names.items() if n.endswith(".nii.gz"))
                assert _shape(http.get(volume).content, tmp_path) == shape
                assert any(n.endswith(".json") for n in names)


def test_a_dask_worker_that_dies_mid_run_does_not_lose_the_job(tmp_path: Path) -> None:
    tool, pidfile = tmp_path / "sleeper.py", tmp_path / "pids"
    tool.write_text(SLEEPER)
    with dask_cluster(tmp_path / "dask", n_workers=2) as cluster:
        by_pid = {p.pid: p for p in cluster.workers}
        server = live_server(tmp_path / "data", "--executor", cluster.url)
        with server as srv, srv.client() as http:
            argv = [sys.executable, str(tool), "{output}", str(pidfile), "2"]
            doc = {"name": "sleep", "command": argv, "output": {"resource": "SLEPT"}}
            assert http.post("/xapi/jobs/commands", json=doc).status_code == 201
            exp = make_session(http)
            job = launch(http, add_scan(http, exp, "9", GE / "mr_0006"), command="sleep")[0]
            wait_status(http, job["id"], "running")
            while not pidfile.exists():
                time.sleep(0.05)
            log = http.get(f"/xapi/jobs/{job['id']}/log").text
            first = int(re.findall(r"\(pid (\d+)\)", log)[0])
            by_pid[first].kill()  # SIGKILL the Dask worker running it (a process this test started)
            by_pid[first].wait()
            psutil.Process(int(pidfile.read_text().split()[0])).kill()  # and the command it had started
            doc = wait_jobs(http, [job["id"]], timeout=60)[0]
            assert doc["status"] == "complete", doc
            pids = [
                int(p) for p in re.findall(r"\(pid (\d+)\)", http.get(f"/xapi/jobs/{job['id']}/log").text)
            ]
            assert pids[0] == first and pids[-1] != first and pids[-1] in by_pid


def test_a_clean_stop_hands_running_jobs_back_without_counting_the_attempt(tmp_path: Path) -> None:
    tool, pidfile = tmp_path / "sleeper.py", tmp_path / "pids"
    tool.write_text(SLEEPER)
    data = tmp_path / "data"
    with live_server(data) as srv, srv.client() as http:
        argv = [sys.executable, str(tool), "{output}", str(pidfile), "120"]
        doc = {"name": "long", "command": argv, "output": {"resource": "L"}}
        assert http.post("/xapi/jobs/commands", json=doc).status_code == 201
        exp = make_session(http)
        job = launch(http, add_scan(http, exp, "9", GE / "mr_0006"), command="long")[0]
        wait_status(http, job["id"], "running")
        while not pidfile.exists():
            time.sleep(0.05)
        database = srv.database
    # the block's end sent SIGTERM and waited for the server to exit
    command_pid = int(pidfile.read_text().split()[0])
    assert not psutil.pid_exists(command_pid) or psutil.Process(command_pid).status() == psutil.STATUS_ZOMBIE
    with live_server(data, "--job-workers", "0", "--database", database) as srv, srv.client() as http:
        doc = http.get(f"/xapi/jobs/{job['id']}").json()
        assert doc["status"] == "queued" and doc["attempts"] == 0, doc
        assert "queued again" in http.get(f"/xapi/jobs/{job['id']}/log").text
