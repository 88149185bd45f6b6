"""A Dask cluster made of PBS or Slurm batch jobs, for xnatd's jobs (docs/deploy.md, section 3).

Run it on the login node, kept alive by a systemd unit or in tmux, with xnatd's virtual environment
(dask-jobqueue comes with the `jobqueue` extra):

    /opt/xnatd/.venv/bin/python /opt/xnatd/deploy/dask_jobqueue_cluster.py slurm    # or: pbs

(`--script` prints the batch job script and exits, submitting nothing), then point the worker unit
at the address it prints (XNATD_JOB_EXECUTOR=dask://HOST:8786). Batch jobs
are submitted as runs arrive and end when idle; a run lost with its batch job (walltime) is retried
like a run lost with a server. Edit the values below for your site.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

# The login node's address as the compute nodes reach it, and the port the worker unit names.
SCHEDULER: dict[str, Any] = {"host": "10.0.0.5", "port": 8786, "dashboard_address": "10.0.0.5:8787"}
# One batch job = one Dask worker = one run at a time (dcm2niix is single-threaded).
JOB: dict[str, Any] = {
    "cores": 1,
    "processes": 1,
    "memory": "4GB",
    "walltime": "02:00:00",
    "queue": "normal",
    "account": "MYPROJECT",
    "job_script_prologue": ["source /opt/xnatd/.venv/bin/activate"],
}
MAX_JOBS = 20  # batch jobs at once


def make_cluster(kind: str, scheduler: dict[str, Any] | None = None) -> Any:
    """A SLURMCluster or a PBSCluster; building it starts the scheduler but submits no batch job."""
    from dask_jobqueue import PBSCluster, SLURMCluster

    classes = {"slurm": SLURMCluster, "pbs": PBSCluster}
    if kind not in classes:
        raise SystemExit(f"usage: dask_jobqueue_cluster.py {'|'.join(classes)}")
    return classes[kind](scheduler_options=scheduler or SCHEDULER, **JOB)


def main(argv: list[str]) -> None:
    cluster = make_cluster(argv[1] if len(argv) > 1 else "")
    if "--script" in argv:
        print(cluster.job_script(), flush=True)
        cluster.close()
        return
    cluster.adapt(minimum=0, maximum=MAX_JOBS)
    print(cluster.scheduler_address, flush=True)  # -> XNATD_JOB_EXECUTOR=dask://HOST:8786
    threading.Event().wait()  # until the unit is stopped (SIGTERM) or Ctrl-C


if __name__ == "__main__":
    main(sys.argv)
