"""The executor-side runner with real processes: exit codes, logs, cancel file, time limit."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import psutil

from xnatd.jobs.runner import CANCEL, LOG, RunSpec, resolve_program, run


def spec(folder: Path, code: str, timeout: float = 30) -> RunSpec:
    folder.mkdir(parents=True, exist_ok=True)
    return RunSpec(1, str(folder), (sys.executable, "-c", code), timeout)


def test_exit_code_and_output_go_to_the_log(tmp_path: Path) -> None:
    result = run(spec(tmp_path / "r", "import sys; print('hello'); sys.stderr.write('warn\\n'); sys.exit(3)"))
    assert result.exit_code == 3 and not result.cancelled and not result.timed_out
    log = (tmp_path / "r" / LOG).read_text()
    assert "hello" in log and "warn" in log and "# exit code 3" in log


def test_a_cancel_file_stops_the_command_and_its_children(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    threading.Timer(1.0, lambda: (folder / CANCEL).touch()).start()
    t0 = time.monotonic()
    result = run(spec(folder, code))
    assert result.cancelled and time.monotonic() - t0 < 50  # stopped, not run to its end at 60 s
    assert "stopped: cancelled" in (folder / LOG).read_text()
    child = int((folder / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the command's child survived the cancel"
        time.sleep(0.05)


def test_a_run_past_its_time_limit_is_stopped(tmp_path: Path) -> None:
    result = run(spec(tmp_path / "t", "import time; time.sleep(60)", timeout=0.5))
    assert result.timed_out and "timed out" in result.error


def test_a_missing_program_is_an_error_not_an_exception(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    result = run(RunSpec(1, str(tmp_path / "m"), ("/no/such/program",)))
    assert result.exit_code is None and "cannot start" in result.error


def test_dcm2niix_resolves_to_the_packaged_binary() -> None:
    import dcm2niix

    assert resolve_program("dcm2niix") == dcm2niix.bin
    assert resolve_program("/bin/true") == "/bin/true"


def test_a_second_try_of_a_run_starts_from_an_empty_output_folder(tmp_path: Path) -> None:
    folder = tmp_path / "again"
    (folder / "out" / "sub").mkdir(parents=True)
    (folder / "out" / "partial.nii").write_bytes(b"half")
    code = "import os; print(sorted(os.listdir('out')))"
    assert run(spec(folder, code)).exit_code == 0
    log = (folder / LOG).read_text()
    assert "out/ emptied" in log and "[]" in log
