"""The receiver's spool: the shared flush, and taking over what a killed process acknowledged."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from xnatd.services.ingest.dicom_spool import GroupSync, Spool

CHILD = """
import sys, time
from pathlib import Path
from xnatd.services.ingest.dicom_spool import Spool
spool = Spool(Path(sys.argv[1]))
spool.begin(7, "CT1", 8104, "SCANNER")
for n in (1, 2):
    part = spool.part(7, n)
    part.write_bytes(b"object %d" % n)
    spool.ready(part)
spool.flush()
spool.part(7, 3).write_bytes(b"half an obj")  # still arriving: never acknowledged
print(spool.dir.name, flush=True)
time.sleep(60)
"""


def test_concurrent_callers_share_flushes(tmp_path: Path) -> None:
    group = GroupSync(tmp_path)
    calls = 8 * 25

    def work() -> None:
        for _ in range(25):
            group.sync()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0 < group.flushes < calls  # at least one flush served several waiting callers


def test_a_killed_process_spool_is_taken_over(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        dead = root / child.stdout.readline().strip()
        live = Spool(root)
        assert live.adopt_dead(itertools.count(100)) == [], "a living process's folder is left alone"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    orphans = live.adopt_dead(itertools.count(100))
    assert [(o.aid, o.ae_title, o.port, o.calling_ae) for o in orphans] == [(100, "CT1", 8104, "SCANNER")]
    assert [p.read_bytes() for p in orphans[0].files] == [b"object 1", b"object 2"]
    assert all(p.parent == live.dir for p in orphans[0].files)
    assert not dead.exists(), "the dead folder, with its unacknowledged part, is gone"
    assert (live.dir / "100.json").exists()
    for path in orphans[0].files:
        path.unlink()
    live.end(100)
    live.close()
    assert not live.dir.exists()
