"""Executors: where commands run. Both take a RunSpec and give back a future of a RunResult; they
never see the database or move outputs (the dispatcher and the job services do that).

- ``local``: a pool of threads in this process, each waiting on one command process; N at a time.
- ``dask://HOST:PORT``: tasks on a Dask distributed cluster (started by hand, by ``dask scheduler`` and
  ``dask worker``, or by dask-jobqueue on PBS/Slurm/SGE nodes). The workers must see DATA through the
  same path (a shared filesystem) and have xnatd installed (for ``xnatd.jobs.runner``).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any, Protocol

from xnatd.errors import InvalidInput
from xnatd.jobs.runner import RunResult, RunSpec, run


class Handle(Protocol):
    """The part of a future the dispatcher uses (concurrent.futures and distributed both have it)."""

    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> Any: ...

    def cancel(self) -> Any: ...

    def add_done_callback(self, fn: Callable[[Any], object]) -> None: ...


class Executor(Protocol):
    name: str

    def submit(self, spec: RunSpec) -> Handle: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Threads that start and wait on command processes: the processes do the work, in parallel."""

    def __init__(self, slots: int) -> None:
        self.name = "local"
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=slots, thread_name_prefix="xnatd-job")

    def submit(self, spec: RunSpec) -> Handle:
        return self.pool.submit(run, spec)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """A Dask distributed client; each run is one task, retried by xnatd (not by Dask) if lost."""

    def __init__(self, address: str) -> None:
        from distributed import Client  # imported only when a site uses Dask

        self.name = f"dask://{address}"
        self.client = Client(address, timeout=30, set_as_default=False)

    def submit(self, spec: RunSpec) -> Handle:
        future: Handle = self.client.submit(run, spec, key=spec.key, pure=False, retries=0)
        return future

    def close(self) -> None:
        self.client.close(timeout=10)


def make_executor(url: str, slots: int) -> Executor:
    """``local`` or ``dask://HOST:PORT`` (``tcp://`` is accepted too, as Dask prints it)."""
    if url in ("", "local"):
        return LocalExecutor(max(1, slots))
    for prefix in ("dask://", "tcp://"):
        if url.startswith(prefix):
            return DaskExecutor("tcp://" + url[len(prefix) :])
    raise InvalidInput(f"Unknown job executor {url!r}: 'local' or 'dask://HOST:PORT'")


def describe_result(result: RunResult) -> str:
    return f"exit {result.exit_code} on {result.host} in {result.seconds:.2f} s"
