"""Zip and tar extraction on hostile archives: safe names or InvalidInput/TooLarge, nothing else.

Every archive is read to the end, as the importer does; the only acceptable outcomes are members
with a safe relative name (no ``..``, not absolute, no backslash) whose streamed bytes stay within the
limits, or one of the two domain errors the API maps to 4xx.
"""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.corpus import fuzz_settings
from xnatd.errors import InvalidInput, TooLarge
from xnatd.storage.archives import ExtractLimits, archive_kind, iter_members

pytestmark = pytest.mark.filterwarnings("ignore")  # zipfile warns of the duplicate names made on purpose
LIMITS = ExtractLimits(max_total_bytes=8 << 20, max_ratio=50, max_members=200)
NASTY_NAMES = [
    "../evil",
    "a/../../evil",
    "/etc/passwd",
    "//server/share",
    "C:/evil",
    "c:evil",
    "a\\..\\evil",
    "a/\x00b",
    "a/\nb",
    ".",
    "..",
    "a/..",
    "",
    "x" * 5000,
    "ok/" + "d/" * 300 + "f",
    "\u202eevil",
    "__MACOSX/._x",
]
name_strategy = st.one_of(
    st.sampled_from(NASTY_NAMES), st.text(min_size=1, max_size=40), st.sampled_from(["a.dcm", "d/b.dcm"])
)


def read_all(path: Path, kind: str, limits: ExtractLimits = LIMITS) -> str:
    """Extract ``path`` as the importer would; "ok", "invalid" or "too large"."""
    try:
        for member, stream in iter_members(path, kind, limits):
            name = member.name
            assert isinstance(name, PurePosixPath) and not name.is_absolute()
            assert ".." not in name.parts and "\\" not in str(name) and str(name) not in ("", ".")
            while stream.read(1 << 16):
                pass
    except InvalidInput:
        return "invalid"
    except TooLarge:
        return "too large"
    return "ok"


def zip_bytes(entries: list[tuple[str, bytes]], mode: int | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def tar_bytes(entries: list[tarfile.TarInfo | tuple[str, bytes]], gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tf:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tf.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tf.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def outcome(tmp: Path, data: bytes, kind: str, limits: ExtractLimits = LIMITS) -> str:
    path = tmp / f"a.{kind}"
    path.write_bytes(data)
    return read_all(path, kind, limits)


GOOD_ZIP = zip_bytes([("s/1.dcm", b"DICM" * 300), ("s/2.dcm", bytes(range(256)) * 8), ("r.txt", b"hi")])
GOOD_TAR = tar_bytes([("s/1.dcm", b"DICM" * 300), ("s/2.dcm", bytes(range(256)) * 8)])
GOOD_TGZ = tar_bytes([("s/1.dcm", b"DICM" * 300), ("s/2.dcm", bytes(range(256)) * 8)], gz=True)
edits = st.lists(
    st.tuples(st.integers(0, 1 << 16), st.binary(min_size=1, max_size=6)), min_size=1, max_size=5
)


def edited(data: bytes, changes: list[tuple[int, bytes]]) -> bytes:
    buf = bytearray(data)
    for pos, patch in changes:
        pos %= len(buf)
        buf[pos : pos + len(patch)] = patch
    return bytes(buf)


def test_well_formed_archives_are_read() -> None:
    assert archive_kind("x", None, GOOD_ZIP) == "zip" and archive_kind("x", None, GOOD_TGZ) == "tar.gz"


@pytest.mark.parametrize(("kind", "good"), [("zip", GOOD_ZIP), ("tar", GOOD_TAR), ("tar.gz", GOOD_TGZ)])
def test_good_archive_reads_ok(tmp_path: Path, kind: str, good: bytes) -> None:
    assert outcome(tmp_path, good, kind) == "ok"


@fuzz_settings(120)
@given(kind=st.sampled_from(["zip", "tar", "tar.gz"]), changes=edits, cut=st.integers(1, 1 << 16))
def test_damaged_archives(
    tmp_path_factory: pytest.TempPathFactory, kind: str, changes: list, cut: int
) -> None:
    good = {"zip": GOOD_ZIP, "tar": GOOD_TAR, "tar.gz": GOOD_TGZ}[kind]
    data = edited(good, changes)[: max(1, cut % (len(good) + 1))]
    outcome(tmp_path_factory.mktemp("z"), data, kind)


@fuzz_settings(60)
@given(kind=st.sampled_from(["zip", "tar", "tar.gz"]), data=st.binary(max_size=4096))
def test_random_bytes(tmp_path_factory: pytest.TempPathFactory, kind: str, data: bytes) -> None:
    outcome(tmp_path_factory.mktemp("z"), data, kind)


@fuzz_settings(80)
@given(names=st.lists(name_strategy, min_size=1, max_size=4), kind=st.sampled_from(["zip", "tar"]))
def test_hostile_names(tmp_path_factory: pytest.TempPathFactory, names: list[str], kind: str) -> None:
    entries = [(n, b"x") for n in names]
    try:
        data = zip_bytes(entries) if kind == "zip" else tar_bytes(list(entries))
    except (ValueError, UnicodeEncodeError):
        return  # the writing library refuses the name itself: nothing to read
    outcome(tmp_path_factory.mktemp("z"), data, kind)


# Harmless ones left out: a deep but legal path, a macOS resource fork (skipped), a NUL (tar ends
# the name there) and a right-to-left override (a display trick, not a path escape).
REFUSED = [
    n for n in NASTY_NAMES if n not in ("ok/" + "d/" * 300 + "f", "__MACOSX/._x", "a/\x00b", "\u202eevil")
]


@pytest.mark.parametrize("name", REFUSED)
def test_every_nasty_name_is_refused(tmp_path: Path, name: str) -> None:
    try:
        data = tar_bytes([(name, b"x")])
    except ValueError:
        return
    assert outcome(tmp_path, data, "tar") == "invalid", name


@pytest.mark.parametrize(
    ("kind", "ttype"),
    [("tar", tarfile.SYMTYPE), ("tar", tarfile.LNKTYPE), ("tar", tarfile.CHRTYPE), ("tar", tarfile.FIFOTYPE)],
)
def test_links_and_devices_in_tar_are_refused(tmp_path: Path, kind: str, ttype: bytes) -> None:
    info = tarfile.TarInfo("s/link.dcm")
    info.type = ttype
    info.linkname = "/etc/passwd"
    assert outcome(tmp_path, tar_bytes([("s/ok.dcm", b"ok"), info]), kind) == "invalid"


@pytest.mark.parametrize("mode", [stat.S_IFLNK | 0o777, stat.S_IFCHR | 0o644, stat.S_IFIFO | 0o644])
def test_links_and_devices_in_zip_are_refused(tmp_path: Path, mode: int) -> None:
    assert outcome(tmp_path, zip_bytes([("s/link.dcm", b"/etc/passwd")], mode), "zip") == "invalid"


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_bombs_stop_at_the_limits(tmp_path: Path, kind: str) -> None:
    zeros = bytes(32 << 20)  # 32 MiB of zeros: ~32 KiB compressed, far past both limits
    data = zip_bytes([("bomb.dcm", zeros)]) if kind == "zip" else tar_bytes([("bomb.dcm", zeros)], gz=True)
    assert outcome(tmp_path, data, kind) == "too large"
    no_ratio = ExtractLimits(max_total_bytes=8 << 20, max_ratio=0, max_members=10)
    assert outcome(tmp_path, data, kind, no_ratio) == "too large"  # the total limit alone still holds
    small_total = ExtractLimits(max_total_bytes=1 << 40, max_ratio=50, max_members=10)
    assert outcome(tmp_path, data, kind, small_total) == "too large"  # the ratio limit alone too


def test_zip_lying_about_sizes_and_too_many_members(tmp_path: Path) -> None:
    data = bytearray(zip_bytes([("a.dcm", bytes(4 << 20))]))
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")  # claims 10 bytes uncompressed
    local = data.index(b"PK\x03\x04")
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    assert outcome(tmp_path, bytes(data), "zip") in ("invalid", "too large")
    many = zip_bytes([(f"f{i}.dcm", b"x") for i in range(LIMITS.max_members + 1)])
    assert outcome(tmp_path, many, "zip") == "too large"
    many_tar = tar_bytes([(f"f{i}.dcm", b"x") for i in range(LIMITS.max_members + 1)])
    assert outcome(tmp_path, many_tar, "tar") == "too large"


def test_zip_entry_with_an_empty_name_is_refused(tmp_path: Path) -> None:
    """Found by fuzzing: zipfile's is_dir() raised IndexError on an empty entry name (a 500)."""
    assert outcome(tmp_path, zip_bytes([("", b"x")]), "zip") == "invalid"


def test_zip_whose_directory_points_before_the_file_is_refused(tmp_path: Path) -> None:
    """Found by fuzzing: a central directory offset too large made zipfile seek to a negative
    local header offset; the EINVAL OSError passed for a disk error (a 500)."""
    data = bytearray(zip_bytes([("a.dcm", b"x" * 100), ("b.dcm", b"y" * 100)]))
    end = data.rindex(b"PK\x05\x06")
    data[end + 16 : end + 20] = (int.from_bytes(data[end + 16 : end + 20], "little") + 50).to_bytes(
        4, "little"
    )
    assert outcome(tmp_path, bytes(data), "zip") == "invalid"
