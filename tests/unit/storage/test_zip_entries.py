"""Zip members read by another process: checked entries, and stored bytes read straight from the file.

The zip-import helpers get ``ZipEntry`` objects from the server and read stored members with
``stored_head``/``stored_chunks`` instead of zipfile: the bytes must be zipfile's, damage must be
InvalidInput, and the limits the server applies to the central directory must hold for them.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from xnatd.errors import Conflict, InvalidInput, TooLarge
from xnatd.storage import zip_entries
from xnatd.storage.archives import ExtractLimits
from xnatd.storage.files import write_chunks_new

LIMITS = ExtractLimits(max_total_bytes=1 << 30, max_ratio=100, max_members=1000)


def _zip(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, (data, method) in members.items():
            zf.writestr(name, data, compress_type=method)
    return path


def _entries(path: Path, limits: ExtractLimits = LIMITS) -> list[zip_entries.ZipEntry]:
    with zip_entries.open_zip(path) as archive:
        return zip_entries.zip_entries(archive, path.stat().st_size, limits)


def test_stored_members_read_straight_from_the_file_match_zipfile(tmp_path: Path) -> None:
    big = os.urandom(3 << 20)
    path = _zip(
        tmp_path / "a.zip",
        {
            "dir/": (b"", zipfile.ZIP_STORED),
            "a/one.dcm": (b"first" * 1000, zipfile.ZIP_STORED),
            "b/two.dcm": (big, zipfile.ZIP_STORED),
            "c/three.dcm": (b"x" * 5000, zipfile.ZIP_DEFLATED),
        },
    )
    entries = _entries(path)
    assert [str(e.name) for e in entries] == ["a/one.dcm", "b/two.dcm", "c/three.dcm"]
    assert [e.offset >= 0 for e in entries] == [True, True, False]  # compressed: through zipfile
    fd = os.open(path, os.O_RDONLY)
    try:
        with zipfile.ZipFile(path) as zf:
            for entry in entries[:2]:
                expected = zf.read(str(entry.name))
                assert b"".join(zip_entries.stored_chunks(fd, entry, chunk=1 << 20)) == expected
                assert zip_entries.stored_head(fd, entry, 100) == expected[:100]
            with zip_entries.open_zip_entry(zf, entries[2]) as stream:
                assert stream.read() == b"x" * 5000
    finally:
        os.close(fd)


def test_a_damaged_stored_member_is_invalid_input_and_leaves_no_file(tmp_path: Path) -> None:
    path = _zip(tmp_path / "a.zip", {"one.dcm": (b"A" * 50_000, zipfile.ZIP_STORED)})
    entry = _entries(path)[0]
    body = bytearray(path.read_bytes())
    body[entry.offset + 30 + len("one.dcm") + 40_000] ^= 0xFF
    path.write_bytes(bytes(body))
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(InvalidInput, match="not a valid zip archive"):
            write_chunks_new(zip_entries.stored_chunks(fd, entry, chunk=4096), tmp_path / "out.dcm")
        assert not (tmp_path / "out.dcm").exists()
        body[entry.offset] = 0  # no local header where the directory says
        path.write_bytes(bytes(body))
        with pytest.raises(InvalidInput, match="bad local header"):
            zip_entries.stored_head(fd, entry, 10)
    finally:
        os.close(fd)


def test_write_chunks_new_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken.dcm").write_bytes(b"mine")
    with pytest.raises(Conflict):
        write_chunks_new([b"theirs"], tmp_path / "taken.dcm")
    assert (tmp_path / "taken.dcm").read_bytes() == b"mine"
    assert write_chunks_new([b"ab", b"cd"], tmp_path / "new.dcm") == (4, "e2fc714c4727ee9395f324cd2e7f331f")


def test_limits_hold_on_declared_sizes_before_anything_is_read(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"bomb": (b"\0" * (20 << 20), zipfile.ZIP_DEFLATED)})
    with pytest.raises(TooLarge, match="Archive entry bomb expands to more than 100 times"):
        _entries(bomb)
    many = _zip(tmp_path / "many.zip", {f"f{i}": (b"x", zipfile.ZIP_STORED) for i in range(11)})
    with pytest.raises(TooLarge, match="more than 10 entries"):
        _entries(many, ExtractLimits(1 << 30, 100, 10))
    total = _zip(
        tmp_path / "total.zip", {"a": (b"x" * 600, zipfile.ZIP_STORED), "b": (b"y" * 600, zipfile.ZIP_STORED)}
    )
    with pytest.raises(TooLarge, match="expands to more than 1000 bytes"):
        _entries(total, ExtractLimits(1000, 100, 10))
