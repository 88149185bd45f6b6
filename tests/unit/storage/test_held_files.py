"""Small archive members are held in memory and written once, straight to their place."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from xnatd.errors import Conflict
from xnatd.storage import tmpdirs
from xnatd.storage.files import Held, Staged, discard, hold_or_stage, write_new


def test_small_streams_are_held_and_large_ones_staged(tmp_path: Path) -> None:
    small = hold_or_stage(tmp_path / "tmp", io.BytesIO(b"x" * 100), limit=100)
    assert isinstance(small, Held) and small.data == b"x" * 100 and small.size == 100
    large = hold_or_stage(tmp_path / "tmp", io.BytesIO(b"y" * 101), limit=100)
    assert isinstance(large, Staged) and large.size == 101 and large.path.read_bytes() == b"y" * 101
    assert large.md5 == hashlib.md5(b"y" * 101).hexdigest()
    discard(large)


def test_write_new_writes_once_and_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "prearchive" / "P" / "SCANS" / "1" / "DICOM"
    folder.mkdir(parents=True)
    journal = tmpdirs.own_folder(tmp_path / "data" / "tmp")
    md5 = write_new(Held(b"first"), folder / "a.dcm", journal)
    assert (folder / "a.dcm").read_bytes() == b"first" and md5 == hashlib.md5(b"first").hexdigest()
    with pytest.raises(Conflict):
        write_new(Held(b"second"), folder / "a.dcm", journal)
    assert (folder / "a.dcm").read_bytes() == b"first"
    assert ["place", str(folder / "a.dcm")] in tmpdirs.journal_of(journal)  # noted before it was made


def test_write_new_makes_a_folder_that_went_meanwhile(tmp_path: Path) -> None:
    dest = tmp_path / "gone" / "b.dcm"
    write_new(Held(b"b"), dest)
    assert dest.read_bytes() == b"b"
