"""Start-up recovery of a process SIGKILLed between making files visible and its database commit:
its journal (in its own DATA/tmp folder) lets the next start take exactly those files back."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dicom_copies import copy_study, dicom_files
from tests.support.testdata import DICOM
from xnatd import config
from xnatd.db import archive as q
from xnatd.services.access.context import SYSTEM, Context
from xnatd.services.ingest import import_options as io
from xnatd.services.ingest import importer
from xnatd.services.operations import verify as v
from xnatd.services.operations.bootstrap import open_context

# A writer that dies half-way: one file placed at an archive path, one prearchive file moved into the
# archive (as archiving does), then it waits to be killed, its transaction never committed.
CHILD = """
import io, sys
from pathlib import Path
from xnatd.storage.files import place, stage_fileobj
from xnatd.storage.moves import Moves
data = Path(sys.argv[1])
staged = stage_fileobj(data / "tmp", io.BytesIO(b"never committed"))
place(staged, data / "archive" / "P" / "arc001" / "GHOST" / "f.bin", overwrite=False)
Moves(data / "tmp").move(Path(sys.argv[2]), data / "archive" / "P" / "arc001" / "MOVED" / "x.dcm")
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = open_context(config.load({"data": tmp_path / "data"}, environ={}))
    with context.db.write() as conn:
        q.insert_project(conn, id="P", name="P", accessibility="private")
    copy_study(dicom_files(DICOM / "dcm_qa_ts")[:2], tmp_path / "b", "B", patient="S2")
    importer.import_path(context, SYSTEM, tmp_path / "b", io.for_local_import("P", "S2", "E2", False), None)
    yield context
    context.db.dispose()


def test_a_killed_writers_uncommitted_files_are_taken_back(ctx: Context) -> None:
    data = ctx.settings.data
    held = sorted(p for p in ctx.settings.prearchive_dir.rglob("*.dcm"))[0]
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(held)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        assert not held.exists()
        assert v.recover(ctx).problems == []  # its owner lives: nothing touched
    finally:
        proc.kill()
        proc.wait()
    found = v.verify(ctx, md5=False)
    assert {p.kind for p in found.problems} >= {"orphan", "missing", "temporary"}

    again = open_context(ctx.settings)  # what the restarted server does, whatever the age
    again.db.dispose()
    assert held.exists(), "the moved file is back in the prearchive"
    assert not (data / "archive" / "P" / "arc001" / "GHOST" / "f.bin").exists()
    assert [p.read_bytes() for p in (data / "quarantine").rglob("f.bin")] == [b"never committed"]
    assert v.verify(ctx).clean


MOVE_FOLDER = """
import sys
from pathlib import Path
from xnatd.storage.moves import Moves
data = Path(sys.argv[1])
dest = data / "archive" / "P" / "arc001" / "WHOLE" / "SCANS" / "1" / "DICOM"
Moves(data / "tmp").move_folder(Path(sys.argv[2]), dest)
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_scan_folder_moved_whole_by_a_killed_archiver_goes_back(ctx: Context) -> None:
    """Archiving moves a new scan's prearchive folder in one rename (``movedir`` in the journal);
    killed before its commit, no row names a file in the archive folder, so it goes back."""
    data = ctx.settings.data
    folder = sorted(p.parent for p in ctx.settings.prearchive_dir.rglob("*.dcm"))[0]
    names = sorted(p.name for p in folder.iterdir())
    proc = subprocess.Popen(
        [sys.executable, "-c", MOVE_FOLDER, str(data), str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        assert not folder.exists()
    finally:
        proc.kill()
        proc.wait()
    again = open_context(ctx.settings)
    again.db.dispose()
    assert sorted(p.name for p in folder.iterdir()) == names
    assert not (data / "archive" / "P" / "arc001" / "WHOLE" / "SCANS" / "1" / "DICOM").exists()
    assert v.verify(ctx).clean


REPLACE_SCAN = """
import sys
from pathlib import Path
from xnatd.storage.moves import Moves
data, old, new = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
moves = Moves(data / "tmp")
moves.put_aside(old)  # archiving with overwrite=delete: the replaced scan's folder goes aside
moves.move_folder(new, old)  # and the new series takes its place
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_scan_replaced_by_a_killed_archiver_comes_back(ctx: Context, tmp_path: Path) -> None:
    """Killed before its commit, a replacement leaves the old rows naming the old files: the new
    series goes back to the prearchive and the old folder back into the archive."""
    copy_study(dicom_files(DICOM / "dcm_qa_ts")[2:4], tmp_path / "a", "A", patient="S1")
    importer.import_path(ctx, SYSTEM, tmp_path / "a", io.for_local_import("P", "S1", "E1", True), None)
    old = sorted(p.parent for p in (ctx.settings.archive_dir / "P").rglob("*.dcm"))[0]
    new = sorted(p.parent for p in ctx.settings.prearchive_dir.rglob("*.dcm"))[0]
    old_files = {p.name: p.read_bytes() for p in old.iterdir()}
    new_names = sorted(p.name for p in new.iterdir())
    proc = subprocess.Popen(
        [sys.executable, "-c", REPLACE_SCAN, str(ctx.settings.data), str(old), str(new)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        assert sorted(p.name for p in old.iterdir()) == new_names and not new.exists()
    finally:
        proc.kill()
        proc.wait()
    again = open_context(ctx.settings)
    again.db.dispose()
    assert {p.name: p.read_bytes() for p in old.iterdir()} == old_files
    assert sorted(p.name for p in new.iterdir()) == new_names
    assert v.verify(ctx).clean
