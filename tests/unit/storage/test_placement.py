"""Placement: the old copy of a replaced or removed file waits in this process's own folder, journalled
before it is moved, until the commit drops it or a rollback puts it back."""

from __future__ import annotations

import io
from pathlib import Path

from xnatd.storage import tmpdirs
from xnatd.storage.files import stage_fileobj
from xnatd.storage.placement import Placement


def _site(tmp_path: Path) -> tuple[Path, Path]:
    tmp, dest = tmp_path / "tmp", tmp_path / "archive" / "P" / "resources" / "R" / "f.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"old")
    return tmp, dest


def test_an_overwrite_journals_its_backup_in_the_process_folder(tmp_path: Path) -> None:
    tmp, dest = _site(tmp_path)
    placement = Placement(tmp)
    placement.put(stage_fileobj(tmp, io.BytesIO(b"new")), dest)
    folder = tmpdirs.process_tmp_dir(tmp)
    [backup] = list(folder.glob("backup-*"))
    assert backup.read_bytes() == b"old" and dest.read_bytes() == b"new"
    asides = [e for e in tmpdirs.journal_of(folder) if e[0] == "aside"]
    assert asides == [["aside", str(backup), str(dest)]]
    assert not [p for p in tmp.iterdir() if p.name.startswith("backup-")]  # nothing flat any more
    placement.commit()
    assert not backup.exists() and dest.read_bytes() == b"new"


def test_a_rollback_puts_back_what_was_removed_or_replaced(tmp_path: Path) -> None:
    tmp, dest = _site(tmp_path)
    placement = Placement(tmp)
    placement.remove(dest, stop_at=tmp_path / "archive")
    assert not dest.exists()
    placement.rollback()
    assert dest.read_bytes() == b"old"
    placement = Placement(tmp)
    placement.put(stage_fileobj(tmp, io.BytesIO(b"new")), dest)
    placement.rollback()
    assert dest.read_bytes() == b"old"
    assert not list(tmpdirs.process_tmp_dir(tmp).glob("backup-*"))
