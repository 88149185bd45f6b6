"""Per-process temporary folders: a dead owner's folder is reclaimed at once, a live one's never."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from xnatd.storage import tmpdirs
from xnatd.storage.files import stage_fileobj

CHILD = """
import io, sys
from pathlib import Path
from xnatd.storage.files import stage_fileobj
staged = stage_fileobj(Path(sys.argv[1]), io.BytesIO(b"half an upload"))
print(staged.path, flush=True)
sys.stdin.read()  # alive until the test closes our stdin (or kills us)
"""


def _child(root: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_staging_goes_to_this_process_folder(tmp_path: Path) -> None:
    import io

    staged = stage_fileobj(tmp_path, io.BytesIO(b"abc"))
    folder = staged.path.parent
    assert folder.parent == tmp_path and tmpdirs.is_process_dir(folder)
    assert folder == tmpdirs.process_tmp_dir(tmp_path)
    assert tmpdirs.reclaim_dead(tmp_path) == []  # our own: its lock is held
    assert staged.path.exists()


def test_a_live_owner_is_left_alone_and_a_dead_one_reclaimed(tmp_path: Path) -> None:
    proc, staged = _child(tmp_path)
    try:
        assert staged.exists() and staged.parent.parent == tmp_path
        assert tmpdirs.reclaim_dead(tmp_path) == []
        assert staged.exists()
    finally:
        proc.kill()  # SIGKILL: no clean-up of its own
        proc.wait()
    assert tmpdirs.reclaim_dead(tmp_path, repair=False) == [staged.parent]
    assert staged.exists()  # only reported
    assert tmpdirs.reclaim_dead(tmp_path) == [staged.parent]
    assert not staged.parent.exists() and list(tmp_path.iterdir()) == []


def test_projects_named_tmp_and_prearchive_do_not_make_a_data_folder(tmp_path: Path) -> None:
    """A file placed from outside DATA/tmp is journalled in the data folder's tmp, never in
    ``DATA/archive/tmp`` (the archive folder of a project named ``tmp``)."""
    data = tmp_path / "data"
    for folder in ("tmp", "prearchive", "archive/tmp", "archive/prearchive/resources/R"):
        (data / folder).mkdir(parents=True)
    dest = data / "archive" / "prearchive" / "resources" / "R" / "out.nii"
    code = "import sys; from xnatd.storage import tmpdirs; print(tmpdirs.folder_for(sys.argv[1]))"
    # a fresh process: this one may own folders of other tests' data folders already
    found = subprocess.run(
        [sys.executable, "-c", code, str(dest)], capture_output=True, text=True, check=True
    )
    assert Path(found.stdout.strip()).parent == data / "tmp", found.stdout
    assert list((data / "archive" / "tmp").iterdir()) == []
