"""Hostile-safe archive reading: names, links, bombs and corruption all become clear 4xx errors."""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Literal

import pytest

from xnatd.errors import InvalidInput, TooLarge
from xnatd.storage.archives import ExtractLimits, Member, archive_kind, iter_members
from xnatd.storage.files import stage_fileobj

TarMode = Literal["w", "w:gz"]
GENEROUS = ExtractLimits(max_total_bytes=1 << 30, max_ratio=200, max_members=1000)


def _read_all(path: Path, kind: str, limits: ExtractLimits = GENEROUS) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for member, stream in iter_members(path, kind, limits):
        assert isinstance(member, Member)
        out[str(member.name)] = stream.read()
    return out


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: TarMode = "w") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:
        for item in members:
            if isinstance(item, tarfile.TarInfo):
                tf.addfile(item)
            else:
                info = tarfile.TarInfo(item[0])
                info.size = len(item[1])
                tf.addfile(info, io.BytesIO(item[1]))
    return path


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


# ---------------------------------------------------------------- kind detection


@pytest.mark.parametrize(
    ("filename", "ctype", "expected"),
    [
        ("upload.zip", None, "zip"),
        ("UPLOAD.ZIP", None, "zip"),
        ("a.tar", None, "tar"),
        ("a.tar.gz", None, "tar.gz"),
        ("a.tgz", None, "tar.gz"),
        ("brain.nii.gz", None, None),
        ("scan.dcm", None, None),
        ("upload", "application/zip", "zip"),
        ("upload", "application/x-zip-compressed; charset=binary", "zip"),
        ("upload", "application/x-tar", "tar"),
        ("upload", "application/x-gtar", "tar.gz"),
        ("upload", "application/octet-stream", None),
        ("upload", None, None),
    ],
)
def test_archive_kind_from_name_and_type(filename: str, ctype: str | None, expected: str | None) -> None:
    assert archive_kind(filename, ctype) == expected


def test_archive_kind_from_magic_bytes(tmp_path: Path) -> None:
    z = _zip(tmp_path / "x.bin", {"a": b"1"}).read_bytes()
    t = _tar(tmp_path / "x.tarbin", [("a", b"1")]).read_bytes()
    tgz = _tar(tmp_path / "x.tgzbin", [("a", b"1")], "w:gz").read_bytes()
    assert archive_kind("upload", None, z[:512]) == "zip"
    assert archive_kind("upload", None, t[:512]) == "tar"
    assert archive_kind("upload", None, tgz[:512]) == "tar.gz"
    assert archive_kind("upload.zip", "application/zip", tgz[:512]) == "tar.gz"  # content wins
    nii_gz = gzip.compress(b"\x5c\x01" + os.urandom(2000))
    assert archive_kind("brain.nii.gz", "application/gzip", nii_gz[:1024]) is None
    assert archive_kind("misnamed.tar.gz", None, nii_gz[:1024]) is None
    dicom = b"\0" * 128 + b"DICM" + b"\0" * 400
    assert archive_kind("scan.dcm", None, dicom) is None
    # A misnamed file is still reported as the claimed kind, so extraction says it is not valid.
    assert archive_kind("scan.zip", None, dicom) == "zip"


# ---------------------------------------------------------------- happy paths


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_members_in_order_with_content(tmp_path: Path, method: int) -> None:
    members = {"b/second.dcm": os.urandom(3000), "a/first.dcm": b"hello", "été/ñ x.txt": b"u", "e": b""}
    path = _zip(tmp_path / "u.zip", members, method)
    listed = [(str(m.name), m.size) for m, _ in iter_members(path, "zip", GENEROUS)]
    assert listed == [(n, len(d)) for n, d in members.items()]
    assert _read_all(path, "zip") == members


@pytest.mark.parametrize(("kind", "mode"), [("tar", "w"), ("tar.gz", "w:gz"), ("tar", "w:gz")])
def test_tar_members_in_order_with_content(tmp_path: Path, kind: str, mode: TarMode) -> None:
    big = os.urandom(3 << 20)
    members = [("./s/1/a.dcm", b"abc"), ("s/1/big.dcm", big), ("ü/" + "n" * 150 + ".dcm", b"long")]
    path = _tar(tmp_path / "u.tar", [_special("s", tarfile.DIRTYPE), *members], mode)
    got = _read_all(path, kind)
    assert list(got) == ["s/1/a.dcm", "s/1/big.dcm", "ü/" + "n" * 150 + ".dcm"]
    assert got["s/1/big.dcm"] == big


def test_skips_directories_and_macos_junk(tmp_path: Path) -> None:
    path = _zip(tmp_path / "u.zip", {"d/": b"", "d/f": b"1", "__MACOSX/d/._f": b"junk", "__MACOSX/": b""})
    assert _read_all(path, "zip") == {"d/f": b"1"}
    tpath = _tar(
        tmp_path / "u.tar", [_special("d", tarfile.DIRTYPE), ("__MACOSX/._f", b"j" * 5000), ("d/f", b"1")]
    )
    assert _read_all(tpath, "tar") == {"d/f": b"1"}


def test_members_stream_into_staged_files(tmp_path: Path) -> None:
    data = os.urandom(2_500_000)
    path = _tar(tmp_path / "u.tgz", [("x/y.dcm", data)], "w:gz")
    staged = [stage_fileobj(tmp_path / "tmp", stream) for _, stream in iter_members(path, "tar.gz", GENEROUS)]
    assert [s.path.read_bytes() for s in staged] == [data]


def test_tar_member_partly_read_or_unread_is_skipped_correctly(tmp_path: Path) -> None:
    path = _tar(tmp_path / "u.tgz", [("a", b"A" * 300_000), ("b", b"B" * 10), ("c", b"C" * 700)], "w:gz")
    seen = {}
    for member, stream in iter_members(path, "tar.gz", GENEROUS):
        if member.name == PurePosixPath("a"):
            stream.read(10)
        elif member.name == PurePosixPath("c"):
            seen["c"] = stream.read()
    assert seen == {"c": b"C" * 700}


def test_stream_is_dead_after_advancing(tmp_path: Path) -> None:
    for path, kind in [
        (_zip(tmp_path / "u.zip", {"a": b"1", "b": b"2"}), "zip"),
        (_tar(tmp_path / "u.tar", [("a", b"1"), ("b", b"2")]), "tar"),
    ]:
        it = iter_members(path, kind, GENEROUS)
        _, first = next(it)
        next(it)
        with pytest.raises(ValueError):
            first.read()


def test_readinto_works(tmp_path: Path) -> None:
    path = _zip(tmp_path / "u.zip", {"a": b"0123456789"})
    for _, stream in iter_members(path, "zip", GENEROUS):
        buf = bytearray(4)
        assert stream.readinto(buf) == 4 and bytes(buf) == b"0123"


def test_empty_zip_has_no_members(tmp_path: Path) -> None:
    path = _zip(tmp_path / "e.zip", {})
    assert _read_all(path, "zip") == {}


def test_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        list(iter_members(tmp_path, "rar", GENEROUS))


# ---------------------------------------------------------------- hostile names and types


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/x", "a\\b", "C:/x", "nul\x01"])
def test_zip_bad_names_are_refused_naming_the_entry(tmp_path: Path, name: str) -> None:
    path = _zip(tmp_path / "u.zip", {"ok": b"1", name: b"evil"})
    with pytest.raises(InvalidInput) as info:
        _read_all(path, "zip")
    assert repr(name) in str(info.value)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["../x", "/etc/x"])
def test_tar_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    path = _tar(tmp_path / "u.tar", [(name, b"evil")])
    with pytest.raises(InvalidInput) as info:
        _read_all(path, "tar")
    assert repr(name) in str(info.value)


def test_tar_symlink_is_refused(tmp_path: Path) -> None:
    path = _tar(tmp_path / "u.tar", [("ok", b"1"), _special("link", tarfile.SYMTYPE, "/etc/passwd")])
    with pytest.raises(InvalidInput) as info:
        _read_all(path, "tar")
    assert "'link' is a link; links are not accepted" in str(info.value)


def test_targz_hardlink_is_refused(tmp_path: Path) -> None:
    path = _tar(tmp_path / "u.tgz", [("ok", b"1"), _special("hard", tarfile.LNKTYPE, "ok")], "w:gz")
    with pytest.raises(InvalidInput) as info:
        _read_all(path, "tar.gz")
    assert "'hard' is a link" in str(info.value)


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, b"Z"])
def test_tar_devices_fifos_and_unknown_types_are_refused(tmp_path: Path, kind: bytes) -> None:
    path = _tar(tmp_path / "u.tar", [_special("dev", kind)])
    with pytest.raises(InvalidInput) as info:
        _read_all(path, "tar")
    assert "not a regular file" in str(info.value)


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "u.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InvalidInput) as info_:
        _read_all(path, "zip")
    assert "is a link" in str(info_.value)


def test_zip_unix_modes_of_regular_files_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "u.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("f")
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        zf.writestr(info, b"ok")
    assert _read_all(path, "zip") == {"f": b"ok"}


# ---------------------------------------------------------------- bombs and limits


def test_zip_bomb_member_ratio(tmp_path: Path) -> None:
    path = _zip(tmp_path / "bomb.zip", {"bomb": b"\0" * (20 << 20)})
    limits = ExtractLimits(max_total_bytes=1 << 30, max_ratio=100, max_members=10)
    with pytest.raises(TooLarge) as info:
        _read_all(path, "zip", limits)
    assert "Archive entry bomb expands to more than 100 times its compressed size" in str(info.value)


def test_zip_many_small_bombs_hit_archive_ratio(tmp_path: Path) -> None:
    members = {f"m{i}": b"\0" * 900_000 for i in range(40)}
    path = _zip(tmp_path / "bombs.zip", members)
    limits = ExtractLimits(max_total_bytes=1 << 30, max_ratio=100, max_members=100)
    with pytest.raises(TooLarge) as info:
        _read_all(path, "zip", limits)
    assert "its own size" in str(info.value)


def test_small_compressible_files_are_not_bombs(tmp_path: Path) -> None:
    path = _zip(tmp_path / "text.zip", {"report.txt": b" " * 500_000})
    limits = ExtractLimits(max_total_bytes=1 << 30, max_ratio=10, max_members=10)
    assert len(_read_all(path, "zip", limits)["report.txt"]) == 500_000


def test_targz_bomb_ratio(tmp_path: Path) -> None:
    path = _tar(tmp_path / "bomb.tgz", [("zeros", b"\0" * (30 << 20))], "w:gz")
    limits = ExtractLimits(max_total_bytes=1 << 30, max_ratio=50, max_members=10)
    with pytest.raises(TooLarge) as info:
        _read_all(path, "tar.gz", limits)
    assert "50 times" in str(info.value)


@pytest.mark.parametrize(("kind", "mode"), [("zip", "w"), ("tar", "w"), ("tar.gz", "w:gz")])
def test_total_bytes_limit(tmp_path: Path, kind: str, mode: TarMode) -> None:
    data = [(f"f{i}", os.urandom(400_000)) for i in range(5)]
    path = (
        _zip(tmp_path / "a.zip", dict(data)) if kind == "zip" else _tar(tmp_path / "a.tar", list(data), mode)
    )
    limits = ExtractLimits(max_total_bytes=1_000_000, max_ratio=200, max_members=100)
    with pytest.raises(TooLarge) as info:
        _read_all(path, kind, limits)
    assert "1000000 bytes" in str(info.value)


def test_total_bytes_counts_actual_bytes_not_header_claims(tmp_path: Path) -> None:
    data = os.urandom(600_000)
    path = _tar(tmp_path / "a.tar", [("a", data), ("b", data)])
    limits = ExtractLimits(max_total_bytes=1_000_000, max_ratio=200, max_members=100)
    with pytest.raises(TooLarge):
        for _, stream in iter_members(path, "tar", limits):
            while stream.read(1000):
                pass


def test_zip_header_lying_about_size_is_invalid(tmp_path: Path) -> None:
    raw = bytearray(_zip(tmp_path / "l.zip", {"x": b"\0" * (5 << 20)}).read_bytes())
    struct.pack_into("<I", raw, 22, 10)  # local header: uncompressed size
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, 10)  # central directory: uncompressed size
    (tmp_path / "l.zip").write_bytes(raw)
    with pytest.raises(InvalidInput) as info:
        _read_all(tmp_path / "l.zip", "zip")
    assert "not a valid zip archive" in str(info.value)


def test_zip_honest_headers_over_limit_fail_before_reading(tmp_path: Path) -> None:
    path = _zip(tmp_path / "a.zip", {"a": b"\0" * 2_000_000})
    limits = ExtractLimits(max_total_bytes=1_000_000, max_ratio=100_000, max_members=100)
    with pytest.raises(TooLarge):
        next(iter_members(path, "zip", limits))


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_member_count_limit(tmp_path: Path, kind: str) -> None:
    items = [(f"f{i}", b"x") for i in range(11)]
    path = _zip(tmp_path / "m.zip", dict(items)) if kind == "zip" else _tar(tmp_path / "m.tar", list(items))
    limits = ExtractLimits(max_total_bytes=1 << 30, max_ratio=200, max_members=10)
    with pytest.raises(TooLarge) as info:
        _read_all(path, kind, limits)
    assert "more than 10 entries" in str(info.value)


def test_tar_directories_count_as_members(tmp_path: Path) -> None:
    path = _tar(tmp_path / "d.tar", [_special(f"d{i}", tarfile.DIRTYPE) for i in range(11)])
    with pytest.raises(TooLarge):
        _read_all(path, "tar", ExtractLimits(max_total_bytes=1 << 30, max_ratio=200, max_members=10))


def test_huge_pax_header_is_refused_before_tarfile_buffers_it(tmp_path: Path) -> None:
    info = tarfile.TarInfo("f")
    info.pax_headers = {"comment": "x" * (20 << 20)}
    path = _tar(tmp_path / "pax.tar", [info])
    with pytest.raises(TooLarge) as err:
        _read_all(path, "tar")
    assert "header" in str(err.value)


# ---------------------------------------------------------------- corruption


def test_truncated_zip_is_invalid(tmp_path: Path) -> None:
    raw = _zip(tmp_path / "t.zip", {"a": os.urandom(100_000)}).read_bytes()
    (tmp_path / "t.zip").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InvalidInput) as info:
        _read_all(tmp_path / "t.zip", "zip")
    assert "not a valid zip archive" in str(info.value)


def test_zip_with_corrupted_data_fails_crc(tmp_path: Path) -> None:
    raw = bytearray(_zip(tmp_path / "c.zip", {"a": b"A" * 100_000}, zipfile.ZIP_STORED).read_bytes())
    raw[5000] ^= 0xFF
    (tmp_path / "c.zip").write_bytes(raw)
    with pytest.raises(InvalidInput) as info:
        _read_all(tmp_path / "c.zip", "zip")
    assert "CRC" in str(info.value)


def test_encrypted_zip_is_refused(tmp_path: Path) -> None:
    raw = bytearray(_zip(tmp_path / "e.zip", {"a": b"secret"}).read_bytes())
    raw[6] |= 1  # local header flag: encrypted
    raw[raw.index(b"PK\x01\x02") + 8] |= 1  # central directory flag
    (tmp_path / "e.zip").write_bytes(raw)
    with pytest.raises(InvalidInput) as info:
        _read_all(tmp_path / "e.zip", "zip")
    assert "encrypted" in str(info.value)


def test_not_a_zip_at_all(tmp_path: Path) -> None:
    (tmp_path / "n.zip").write_bytes(b"this is not a zip file" * 10)
    with pytest.raises(InvalidInput) as info:
        _read_all(tmp_path / "n.zip", "zip")
    assert "not a valid zip archive" in str(info.value)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_targz_is_invalid(tmp_path: Path, cut: float) -> None:
    raw = _tar(
        tmp_path / "t.tgz", [("a", os.urandom(200_000)), ("b", os.urandom(200_000))], "w:gz"
    ).read_bytes()
    (tmp_path / "t.tgz").write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(InvalidInput) as info:
        _read_all(tmp_path / "t.tgz", "tar.gz")
    assert "not a valid tar.gz archive" in str(info.value)


def test_corrupt_gzip_data_is_invalid(tmp_path: Path) -> None:
    raw = bytearray(_tar(tmp_path / "c.tgz", [("a", b"hello world " * 50_000)], "w:gz").read_bytes())
    for i in range(40, 80):
        raw[i] ^= 0x5A
    (tmp_path / "c.tgz").write_bytes(raw)
    with pytest.raises(InvalidInput):
        _read_all(tmp_path / "c.tgz", "tar.gz")


def test_gzip_crc_is_checked_at_the_end(tmp_path: Path) -> None:
    raw = bytearray(_tar(tmp_path / "c.tgz", [("a", b"data")], "w:gz").read_bytes())
    raw[-8] ^= 0xFF  # gzip trailer CRC32
    (tmp_path / "c.tgz").write_bytes(raw)
    with pytest.raises(InvalidInput) as info:
        _read_all(tmp_path / "c.tgz", "tar.gz")
    assert "CRC" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"garbage" * 200])
def test_not_a_tar(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "n.tar").write_bytes(content)
    with pytest.raises(InvalidInput) as info:
        _read_all(tmp_path / "n.tar", "tar")
    assert "not a valid tar archive" in str(info.value)


def test_gzip_crc_is_checked_even_past_the_tar_end(tmp_path: Path) -> None:
    tar_bytes = _tar(tmp_path / "a.tar", [("a", b"data")]).read_bytes()
    raw = bytearray(gzip.compress(tar_bytes + os.urandom(3 << 20)))  # trailing data tarfile never reads
    raw[-8] ^= 0xFF
    (tmp_path / "c.tgz").write_bytes(raw)
    with pytest.raises(InvalidInput) as info:
        _read_all(tmp_path / "c.tgz", "tar.gz")
    assert "CRC" in str(info.value)


def test_big_unread_tar_members_are_skipped_and_counted(tmp_path: Path) -> None:
    big = os.urandom(12 << 20)
    path = _tar(tmp_path / "u.tar", [("__MACOSX/._junk", big), ("skipped", big), ("wanted", b"w")])
    got = {}
    for member, stream in iter_members(path, "tar", GENEROUS):
        if member.name == PurePosixPath("wanted"):
            got["wanted"] = stream.read()
    assert got == {"wanted": b"w"}
    limits = ExtractLimits(max_total_bytes=20 << 20, max_ratio=200, max_members=10)
    with pytest.raises(TooLarge):
        for _ in iter_members(path, "tar", limits):
            pass


_PEAK = """
import sys, tracemalloc
from pathlib import Path
from xnatd.storage.archives import ExtractLimits, iter_members
limits = ExtractLimits(max_total_bytes=1 << 30, max_ratio=200, max_members=100_000)
for path in sys.argv[1:]:
    tracemalloc.start()
    count = sum(1 for _ in iter_members(Path(path), "tar", limits))
    print(count, tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
"""


def _peaks_while_listing(*paths: Path) -> list[tuple[int, int]]:
    """(members, peak traced bytes) of listing each archive, in a fresh interpreter: threads that
    earlier tests left running in this one would allocate during the measurement."""
    out = subprocess.run([sys.executable, "-c", _PEAK, *map(str, paths)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [(int(a), int(b)) for a, b in (line.split() for line in out.stdout.splitlines())]


def test_many_tar_members_keep_memory_flat(tmp_path: Path) -> None:
    """Twelve times the entries must not cost more memory: tarfile's entry list is not kept.

    Comparing two runs (rather than one absolute figure) keeps the test independent of whatever
    else the interpreter has allocated; 12,000 kept TarInfo objects would add several MiB.
    """
    few = _tar(tmp_path / "few.tar", [(f"d/f{i:05d}", b"") for i in range(1_000)])
    many = _tar(tmp_path / "many.tar", [(f"d/f{i:05d}", b"") for i in range(12_000)])
    # Warm up on the big archive: pathlib interns every name it parses, and CPython's table of
    # interned strings grows once to hold them (a one-off cost, not a per-member one).
    _warm_up, (count_few, peak_few), (count, peak) = _peaks_while_listing(many, few, many)
    assert (count_few, count) == (1_000, 12_000)
    assert peak - peak_few < 1 << 20, (peak_few, peak)
