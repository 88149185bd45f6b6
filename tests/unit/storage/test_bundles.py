"""Streaming zip/tar downloads: exact content, exact length, flat memory."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from xnatd.errors import Conflict
from xnatd.storage.bundles import tar_stream, zip_stream


@pytest.fixture
def sample(tmp_path: Path) -> list[tuple[str, Path]]:
    contents = {
        "empty.txt": b"",
        "small.dcm": os.urandom(1234),
        "exact.bin": os.urandom(512),
        "big.dcm": os.urandom((3 << 20) + 77),
        "text.txt": b"compressible " * 10_000,
    }
    entries = []
    for i, (name, data) in enumerate(contents.items()):
        path = tmp_path / f"src{i}"
        path.write_bytes(data)
        entries.append((f"S1/scans/1/resources/DICOM/files/{name}", path))
    entries.append(("S1/été/ñame with spaces.dcm", entries[1][1]))
    entries.append(("S1/" + "long" * 60 + ".dcm", entries[1][1]))
    return entries


def _collect(chunks: Iterator[bytes]) -> bytes:
    return b"".join(chunks)


def test_zip_stream_stored_round_trip_with_exact_length(sample: list[tuple[str, Path]]) -> None:
    chunks, length = zip_stream(sample)
    body = _collect(chunks)
    assert length == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == [arc for arc, _ in sample]
        for arc, path in sample:
            assert zf.read(arc) == path.read_bytes()
            assert zf.getinfo(arc).compress_type == zipfile.ZIP_STORED


def test_zip_stream_keeps_file_time(sample: list[tuple[str, Path]]) -> None:
    os.utime(sample[0][1], (946_728_000, 946_728_000))  # 2000-01-01 12:00 UTC
    chunks, _ = zip_stream(sample[:1])
    with zipfile.ZipFile(io.BytesIO(_collect(chunks))) as zf:
        assert zf.infolist()[0].date_time[0] == 2000


def test_zip_stream_compressed_round_trip(sample: list[tuple[str, Path]]) -> None:
    chunks, length = zip_stream(sample, compress_level=6)
    assert length is None
    body = _collect(chunks)
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.getinfo(sample[4][0]).compress_type == zipfile.ZIP_DEFLATED
        for arc, path in sample:
            assert zf.read(arc) == path.read_bytes()
    assert len(body) < sum(p.stat().st_size for _, p in sample)


def test_zip_stream_empty() -> None:
    chunks, length = zip_stream([])
    body = _collect(chunks)
    assert length == len(body) == 22
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.namelist() == []


def test_zip_stream_uses_zip64_for_many_entries(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    entries = [(f"f{i:05d}", path) for i in range(70_000)]
    chunks, length = zip_stream(entries)
    body = _collect(chunks)
    assert length == len(body)
    assert b"PK\x06\x06" in body[-200:]  # zip64 end of central directory
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        names = zf.namelist()
        assert len(names) == 70_000 and names[-1] == "f69999"
        assert zf.read("f12345") == b"x"


def test_zip_stream_chunks_are_big(tmp_path: Path) -> None:
    entries = []
    for i in range(300):
        (tmp_path / f"f{i}").write_bytes(os.urandom(10_000))
        entries.append((f"f{i}", tmp_path / f"f{i}"))
    sizes = [len(c) for c in zip_stream(entries)[0]]
    assert all(s >= 1 << 20 for s in sizes[:-1])
    assert len(sizes) == 3


def _peak_while_consuming(chunks: Iterator[bytes]) -> tuple[int, int]:
    tracemalloc.start()
    try:
        total = 0
        for chunk in chunks:
            total += len(chunk)
        return total, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big"
    with open(path, "wb") as f:
        f.truncate(96 << 20)  # sparse: cheap to create, read as zeros
    return path


def test_zip_stream_memory_stays_flat(big_file: Path) -> None:
    chunks, length = zip_stream([("a", big_file), ("b", big_file)])
    total, peak = _peak_while_consuming(chunks)
    assert total == length
    assert peak < 8 << 20


@pytest.mark.parametrize("gz", [False, True])
def test_tar_stream_memory_stays_flat(big_file: Path, gz: bool) -> None:
    total, peak = _peak_while_consuming(tar_stream([("a", big_file)], gzip=gz))
    assert total > 0
    assert peak < 8 << 20


@pytest.mark.parametrize("gz", [False, True])
def test_tar_stream_round_trip(sample: list[tuple[str, Path]], gz: bool) -> None:
    body = _collect(tar_stream(sample, gzip=gz))
    raw = gzip.decompress(body) if gz else body
    assert len(raw) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz" if gz else "r:") as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == [arc for arc, _ in sample]
        for member, (_, path) in zip(members, sample, strict=True):
            assert member.isreg()
            extracted = tf.extractfile(member)
            assert extracted is not None
            assert extracted.read() == path.read_bytes()
            assert member.mtime == int(path.stat().st_mtime)


def test_tar_stream_empty_is_a_valid_tar() -> None:
    body = _collect(tar_stream([], gzip=False))
    assert len(body) == tarfile.RECORDSIZE
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        assert tf.getmembers() == []


def test_tar_stream_file_shrinking_mid_download_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 3_000_000)
    chunks = tar_stream([("f", path)], gzip=False)
    first = next(chunks)  # header is built (size fixed) and the first MiB read
    assert first
    path.write_bytes(b"short")
    with pytest.raises(Conflict):
        _collect(chunks)
