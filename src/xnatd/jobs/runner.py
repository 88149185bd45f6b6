"""Run one command for one job: the only code that executes on an executor (a local thread or a Dask
worker on another host). It imports nothing but the standard library, touches no database, and only
writes inside its run folder: the log, and whatever the command writes into its output folder.

The command runs from an argument list, never through a shell. It is stopped when a ``CANCEL`` file
appears in the run folder (the server writes it; the folder is on the shared filesystem, so this
works the same on a laptop and on a cluster node) or when its time limit passes.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LOG, CANCEL, OUT = "log.txt", "CANCEL", "out"
POLL = 0.2  # how often a running command's cancel file and time limit are checked
# Programs shipped inside a Python package: run the binary itself rather than the package's Python
# wrapper script, which would cost an interpreter start per job.
PACKAGED = {"dcm2niix": ("dcm2niix", "bin")}


@dataclass(frozen=True)
class RunSpec:
    job_id: int
    run_dir: str  # absolute path of this run's folder
    argv: tuple[str, ...]
    timeout: float = 3600.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"xnatd-job-{self.job_id}-{Path(self.run_dir).name}"


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None
    cancelled: bool = False
    timed_out: bool = False
    error: str = ""
    host: str = ""
    seconds: float = 0.0


def resolve_program(name: str) -> str:
    """Where ``name`` is on this host: a path as given, a packaged binary, the interpreter's own
    bin folder (the virtualenv, where ``pip install`` puts console scripts), then ``PATH``."""
    if "/" in name:
        return name
    if name in PACKAGED:
        module, attribute = PACKAGED[name]
        try:
            found = getattr(__import__(module), attribute)
            if isinstance(found, str) and os.access(found, os.X_OK):
                return found
        except ImportError:
            pass
    local = Path(sys.executable).parent / name
    if os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name) or name


def run(spec: RunSpec) -> RunResult:
    """Run the command with stdout and stderr going to the run's log; report how it ended."""
    folder = Path(spec.run_dir)
    host = socket.gethostname()
    started = time.monotonic()
    argv = [resolve_program(spec.argv[0]), *spec.argv[1:]]
    with (folder / LOG).open("ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"$ {' '.join(spec.argv)}\n# on {host} (pid {os.getpid()}), {stamp}\n".encode())
        log.flush()
        if (folder / CANCEL).exists():
            return RunResult(None, cancelled=True, host=host)
        if _empty_output(folder / OUT):
            log.write(b"# out/ emptied: an earlier try of this run (a worker that died) left files\n")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=folder,
                env={**os.environ, **spec.env},
                start_new_session=True,  # its own process group, so a stop reaches its children too
            )
        except OSError as exc:
            log.write(f"cannot start {argv[0]}: {exc}\n".encode())
            return RunResult(None, error=f"cannot start {spec.argv[0]}: {exc.strerror}", host=host)
        result = _wait(proc, folder, spec.timeout, started, host)
        elapsed = time.monotonic() - started
        log.write(f"# exit code {proc.returncode} after {elapsed:.2f} s{_why(result)}\n".encode())
    return RunResult(result.exit_code, result.cancelled, result.timed_out, result.error, host, elapsed)


def _wait(
    proc: subprocess.Popen[bytes], folder: Path, timeout: float, started: float, host: str
) -> RunResult:
    cancel = folder / CANCEL
    exited = _ExitWatch(proc)
    try:
        return _watch(proc, exited, cancel, timeout, started, host)
    finally:
        exited.close()


def _watch(
    proc: subprocess.Popen[bytes], exited: _ExitWatch, cancel: Path, timeout: float, started: float, host: str
) -> RunResult:
    while True:
        if exited(POLL):
            return RunResult(proc.wait(), host=host)
        if cancel.exists():
            _stop(proc)
            return RunResult(proc.returncode, cancelled=True, host=host)
        if time.monotonic() - started > timeout:
            _stop(proc)
            return RunResult(proc.returncode, timed_out=True, error=f"timed out after {timeout:.0f} s")


def _empty_output(out: Path) -> bool:
    """Dask re-runs a task whose worker died; the new try must not see the old one's partial files."""
    if not out.is_dir() or not any(out.iterdir()):
        return False
    for entry in out.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return True


class _ExitWatch:
    """Waits up to N seconds for the process to exit and says whether it did.

    On Linux a pidfd wakes the waiter the moment the command exits (Popen.wait with a timeout polls,
    and would add up to 50 ms to every job); elsewhere it polls.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        try:
            self.fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self.fd = -1

    def __call__(self, seconds: float) -> bool:
        if self.fd < 0:
            return _poll_wait(self.proc, seconds)
        ready, _, _ = select.select([self.fd], [], [], seconds)
        return bool(ready)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _poll_wait(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, then SIGKILL it if it has not gone after 5 s."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _why(result: RunResult) -> str:
    if result.cancelled:
        return " (stopped: cancelled)"
    if result.timed_out:
        return f" ({result.error})"
    return ""
