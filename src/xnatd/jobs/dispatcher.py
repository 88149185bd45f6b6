"""The dispatcher: one loop per process that runs jobs (``xnatd serve`` or ``xnatd worker``).

It claims queued jobs (a conditional update in the database, so several dispatchers never start the
same job), hands each to its executor, and when a run ends gives the result to the job services,
which move the outputs into the archive. It beats a heartbeat for the jobs it holds and recovers
jobs whose dispatcher died (see the restart rule in ``services/jobs/job_runs.py``). The loop runs in its
own thread and wakes on a new job queued in this process, on a run ending, or once a second.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import IO

from xnatd.jobs.executors import Executor, Handle, make_executor
from xnatd.jobs.runner import RunResult, RunSpec
from xnatd.processes import alive
from xnatd.services.access.context import Context
from xnatd.services.jobs import job_runs
from xnatd.services.jobs import jobs as job_service
from xnatd.services.jobs.job_runs import Claim, Outcome

log = logging.getLogger("xnatd.jobs")
POLL = 1.0
HEARTBEAT = 5.0
STOP_GRACE = 10.0


def is_gone(worker: str) -> bool:
    """Whether a dispatcher ID (``host:pid:token``) names a process of this host that has exited."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not alive(int(pid))


class Dispatcher:
    def __init__(self, ctx: Context, executor_url: str, slots: int, lock: bool = False) -> None:
        self.ctx = ctx
        self.executor_url = executor_url
        self.executor: Executor | None = None
        self.slots = max(1, slots)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.inflight: dict[int, tuple[Claim, Handle]] = {}
        # Storing a run's outputs is the server's I/O, not the executor's: it happens in this thread
        # while the freed slot already runs the next job.
        self.finisher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xnatd-finish")
        self.finishing: dict[int, concurrent.futures.Future[None]] = {}
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.lock = lock
        self._thread: threading.Thread | None = None

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(target=self.run, name="xnatd-dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_GRACE + 20)

    def run(self) -> None:
        """Dispatch until ``stop``; then stop the runs still going and queue them again."""
        with self._leader() as leading:
            if not leading or not self._connect():
                return
            job_service.on_queued(self.wake.set)
            log.info("job dispatcher %s: %s, %d at a time", self.worker, self.executor_url, self.slots)
            self._loop()
            self._shutdown()

    def _connect(self) -> bool:
        """Make the executor (for Dask: connect), retrying while the scheduler is not up yet."""
        while not self.stopping.is_set():
            try:
                self.executor = make_executor(self.executor_url, self.slots)
                return True
            except Exception as exc:
                log.warning("job executor %s not reachable (%s); retrying in 10 s", self.executor_url, exc)
                self.stopping.wait(10)
        return False

    @contextlib.contextmanager
    def _leader(self) -> Iterator[bool]:
        """With ``lock``, only one process per data folder dispatches (uvicorn may run several)."""
        if not self.lock:
            yield True
            return
        path = self.ctx.settings.jobs_dir / ".dispatcher.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            while not self._try_lock(handle):
                if self.stopping.wait(10):
                    yield False
                    return
            yield True

    @staticmethod
    def _try_lock(handle: IO[str]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _loop(self) -> None:
        beat = recovered = 0.0
        lost_after = float(self.ctx.settings.job_lost_after)
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                now = time.monotonic()
                if now - recovered > min(30.0, lost_after / 2):
                    self._recover()
                    recovered = now
                self._reap()
                self._fill()
                if (self.inflight or self.finishing) and now - beat > HEARTBEAT:
                    job_runs.heartbeat(self.ctx, self.worker, [*self.inflight, *self.finishing])
                    beat = now
            except Exception:
                log.exception("job dispatcher: unexpected error (retrying)")
                self.stopping.wait(2.0)
            self.wake.wait(POLL)

    def _recover(self) -> None:
        lost = job_runs.recover(self.ctx, is_gone, float(self.ctx.settings.job_lost_after))
        if lost:
            log.warning("recovered lost job run(s): %s", ", ".join(map(str, lost)))
        job_runs.sweep(self.ctx)

    def _reap(self) -> None:
        for job_id, (claim, handle) in list(self.inflight.items()):
            if handle.done():
                del self.inflight[job_id]
                self.finishing[job_id] = self.finisher.submit(self._finish, job_id, claim, _outcome(handle))
        for job_id, future in list(self.finishing.items()):
            if future.done():
                del self.finishing[job_id]
                if future.exception() is not None:
                    log.error("job %d: storing its result failed", job_id, exc_info=future.exception())

    def _finish(self, job_id: int, claim: Claim, outcome: Outcome) -> None:
        status = job_runs.finish(self.ctx, job_id, claim.rel, outcome)
        log.info("job %d: %s", job_id, status)

    def _fill(self) -> None:
        assert self.executor is not None
        free = self.slots - len(self.inflight)
        for claim in job_runs.claim(self.ctx, self.worker, free):
            spec = RunSpec(claim.job_id, claim.run_dir, claim.argv, claim.timeout)
            try:
                handle = self.executor.submit(spec)
            except Exception as exc:
                job_runs.release(self.ctx, claim.job_id, claim.rel, f"the executor refused the run: {exc}")
                raise
            handle.add_done_callback(lambda _f: self.wake.set())
            self.inflight[claim.job_id] = (claim, handle)
            log.info("job %d: started (%s)", claim.job_id, self.executor_url)

    def _shutdown(self) -> None:
        """Finish what has ended; stop the rest and queue it again (the attempt is not counted)."""
        try:
            self._reap()
            for claim, handle in self.inflight.values():
                job_runs.stop_run(self.ctx, claim.rel)
                handle.cancel()
            deadline = time.monotonic() + STOP_GRACE
            while any(not h.done() for _, h in self.inflight.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
            for job_id, (claim, _h) in self.inflight.items():
                job_runs.release(self.ctx, job_id, claim.rel, "the dispatcher stopped; queued again")
            self.inflight.clear()
        finally:
            self.finisher.shutdown(wait=True)
            if self.executor is not None:
                self.executor.close()


def _outcome(handle: Handle) -> Outcome:
    try:
        result: RunResult = handle.result()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the executor lost the task (worker died; Dask's cancel is a BaseException)
        return Outcome(None, error=f"the executor lost the run ({type(exc).__name__}: {exc})", lost=True)
    return Outcome(result.exit_code, result.cancelled, result.timed_out, result.error, result.host)


def start_in_server(ctx: Context) -> Dispatcher | None:
    """The dispatcher ``xnatd serve`` runs unless ``job_workers`` is 0 (one per data folder)."""
    s = ctx.settings
    if s.job_workers <= 0:
        return None
    return Dispatcher(ctx, s.job_executor, s.job_workers, lock=True).start()
