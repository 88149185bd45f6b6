"""Placement: the old copy of a replaced or removed file waits in this process's own folder, journalled
before it is moved, until the commit drops it or a rollback puts it back."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from xnatd.errors import Conflict
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


def test_a_file_never_takes_a_folders_place_nor_a_folder_a_files(tmp_path: Path) -> None:
    tmp, dest = _site(tmp_path)
    folder = dest.parent
    (folder / "sub" / "dir").mkdir(parents=True)
    (folder / "sub" / "dir" / "ok.txt").write_bytes(b"kept")
    placement = Placement(tmp)
    with pytest.raises(Conflict, match="'sub' is a folder"):
        placement.put(stage_fileobj(tmp, io.BytesIO(b"new")), folder / "sub")
    with pytest.raises(Conflict, match=r"'f\.bin' is a file"):
        placement.put(stage_fileobj(tmp, io.BytesIO(b"new")), folder / "f.bin" / "x")
    placement.rollback()
    assert (folder / "sub" / "dir" / "ok.txt").read_bytes() == b"kept" and dest.read_bytes() == b"old"
    assert not list(tmpdirs.process_tmp_dir(tmp).glob("backup-*"))


def test_a_file_and_a_folder_of_the_same_name_swap_and_roll_back(tmp_path: Path) -> None:
    """A job rerun's outputs: the old ones removed, the new ones put where they were."""
    tmp, dest = _site(tmp_path)
    root = tmp_path / "archive"
    inner = dest.parent / "x" / "y.txt"
    inner.parent.mkdir()
    inner.write_bytes(b"inner")
    for old, new, body in ((inner, dest.parent / "x", b"inner"), (dest, dest / "z", b"old")):
        placement = Placement(tmp)
        placement.remove(old, stop_at=root)
        placement.put(stage_fileobj(tmp, io.BytesIO(b"new")), new)
        assert new.read_bytes() == b"new"
        placement.rollback()  # everything as it was: the new file and the folder made for it gone
        assert old.read_bytes() == body and not new.is_file()
    placement = Placement(tmp)
    placement.remove(inner, stop_at=root)
    placement.put(stage_fileobj(tmp, io.BytesIO(b"new")), dest.parent / "x")
    placement.commit()
    assert (dest.parent / "x").read_bytes() == b"new"
    assert not list(tmpdirs.process_tmp_dir(tmp).glob("backup-*"))
