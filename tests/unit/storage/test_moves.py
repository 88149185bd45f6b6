"""Renames as one unit with a transaction: whole folders, rollback, and the folders flushed before a
commit (a power cut cannot be staged here, so the flushed folders are recorded instead)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xnatd.errors import Conflict
from xnatd.storage import durability
from xnatd.storage import moves as m


def _tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    data = tmp_path / "data"
    src = data / "prearchive" / "P" / "T" / "E" / "SCANS" / "4" / "DICOM"
    src.mkdir(parents=True)
    for name in ("a.dcm", "b.dcm"):
        (src / name).write_bytes(name.encode())
    (data / "tmp").mkdir()
    return data, src, data / "archive" / "P" / "arc001" / "E" / "SCANS" / "4" / "DICOM"


def test_a_folder_moves_whole_and_comes_back_on_rollback(tmp_path: Path) -> None:
    data, src, dest = _tree(tmp_path)
    moves = m.Moves(data / "tmp")
    moves.move_folder(src, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["a.dcm", "b.dcm"] and not src.exists()
    moves.rollback()
    assert sorted(p.name for p in src.iterdir()) == ["a.dcm", "b.dcm"] and not dest.exists()


def test_a_rollback_merges_back_into_a_folder_an_import_made_again(tmp_path: Path) -> None:
    """An import still filing into the session placed a file where the folder was (made again)
    before the archive rolled back: the folder merges back and no file replaces another."""
    data, src, dest = _tree(tmp_path)
    moves = m.Moves(data / "tmp")
    moves.move_folder(src, dest)
    src.mkdir(parents=True)
    (src / "new.dcm").write_bytes(b"an import's")
    (src / "a.dcm").write_bytes(b"same name, another import's")
    moves.rollback()
    assert not dest.exists()
    found = {p.name: p.read_bytes() for p in src.iterdir()}
    assert found.pop("new.dcm") == b"an import's" and found.pop("b.dcm") == b"b.dcm"
    assert found.pop("a.dcm") == b"same name, another import's"
    [(name, body)] = found.items()  # the archived one, beside it under another name
    assert name.startswith("a.dcm.") and body == b"a.dcm"


def test_a_folder_never_lands_on_a_folder_with_files(tmp_path: Path) -> None:
    data, src, dest = _tree(tmp_path)
    dest.mkdir(parents=True)
    (dest / "old.dcm").write_bytes(b"old")
    with pytest.raises(Conflict):
        m.Moves(data / "tmp").move_folder(src, dest)
    assert (dest / "old.dcm").read_bytes() == b"old" and (src / "a.dcm").exists()


def test_make_durable_flushes_both_sides_and_the_new_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, src, dest = _tree(tmp_path)
    flushed: list[Path] = []
    real = durability.fsync_dir
    monkeypatch.setattr(durability, "fsync_dir", lambda path: (flushed.append(path), real(path)))
    moves = m.Moves(data / "tmp")
    moves.move_folder(src, dest)
    moves.make_durable(data)
    assert src.parent in flushed  # the entry left here
    for folder in (dest.parent, data / "archive" / "P" / "arc001" / "E", data / "archive", data):
        assert folder in flushed  # the entry arrived here; new folders up to the data folder
    assert len(flushed) == len(set(flushed)) and all(p.is_relative_to(data) for p in flushed)
