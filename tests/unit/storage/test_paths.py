"""Every name that reaches the filesystem is validated."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from xnatd.errors import InvalidInput
from xnatd.storage.paths import contained, safe_label, safe_relpath


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/b/c.dcm", "a/b/c.dcm"),
        ("file with spaces.txt", "file with spaces.txt"),
        ("données/été.nii.gz", "données/été.nii.gz"),
        ("scan.v1.2.dcm", "scan.v1.2.dcm"),
        ("...", "..."),
        ("..hidden", "..hidden"),
        ("a..b", "a..b"),
        ("a/./b", "a/b"),
        ("./a", "a"),
        ("a//b///c", "a/b/c"),
        ("a/b/", "a/b"),
        ("C", "C"),
    ],
)
def test_safe_relpath_accepts_and_normalises(name: str, expected: str) -> None:
    result = safe_relpath(name)
    assert isinstance(result, PurePosixPath)
    assert str(result) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("C:\\x", "backslash"),
        ("C:/x", "absolute"),
        ("\\\\server\\share", "backslash"),
        ("a\\b", "backslash"),
        ("..", "'..'"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/..", "'..'"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\x7fb", "control character"),
        ("a\x85b", "control character"),
        (".", "names no file"),
        ("./", "names no file"),
        ("a" * 256, "255 bytes"),
        ("é" * 128, "255 bytes"),
        ("a/" * 600 + "b", "1024 characters"),
        ("bad\udcff", "UTF-8"),
    ],
)
def test_safe_relpath_rejects(name: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        safe_relpath(name)
    message = str(info.value)
    assert reason in message
    if name:
        assert repr(name)[:40] in message or repr(name) in message


def test_safe_relpath_length_limits_are_inclusive() -> None:
    assert safe_relpath("a" * 255) == PurePosixPath("a" * 255)
    long_ok = "/".join(["b" * 100] * 10) + "/" + "c" * 14
    assert len(long_ok) == 1024
    assert str(safe_relpath(long_ok)) == long_ok


@pytest.mark.parametrize("name", ["DICOM", "NIFTI", "my resource", "résumé", "a.b", "...", "x" * 255])
def test_safe_label_accepts(name: str) -> None:
    assert safe_label(name, "resource label") == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "tab\there", "nul\x00", "x" * 256, "/abs"])
def test_safe_label_rejects_and_names_what(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        safe_label(name, "resource label")
    assert "resource label" in str(info.value)


def test_contained_joins_inside_root(tmp_path: Path) -> None:
    assert contained(tmp_path, PurePosixPath("a/b/c.dcm")) == tmp_path / "a/b/c.dcm"


def test_contained_rejects_dotdot_and_absolute(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        contained(tmp_path, PurePosixPath("../x"))
    with pytest.raises(InvalidInput):
        contained(tmp_path, PurePosixPath("/etc/passwd"))


def test_contained_rejects_symlinked_parent_leaving_root(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "proj").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput) as info:
        contained(root, PurePosixPath("proj/new/file.dcm"))
    assert "leaves the archive folder" in str(info.value)


def test_contained_rejects_symlinked_file_leaving_root(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    root.mkdir()
    (root / "evil").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInput):
        contained(root, PurePosixPath("evil"))


def test_contained_allows_symlink_inside_root_and_root_behind_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "a").mkdir(parents=True)
    link_root = tmp_path / "data"
    link_root.symlink_to(real, target_is_directory=True)
    (real / "alias").symlink_to(real / "a", target_is_directory=True)
    assert contained(link_root, PurePosixPath("alias/x")) == link_root / "alias/x"


def test_contained_rejects_symlink_loop(tmp_path: Path) -> None:
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    with pytest.raises(InvalidInput):
        contained(tmp_path, PurePosixPath("loop/x"))
