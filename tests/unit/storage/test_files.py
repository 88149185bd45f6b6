"""Atomic streamed writes: a file is visible only complete, and failures leave nothing behind."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import pytest

from xnatd.errors import Conflict, StorageFull, TooLarge
from xnatd.storage import durability, files, tmpdirs
from xnatd.storage.files import (
    Staged,
    discard,
    md5_of,
    place,
    remove_file,
    remove_tree,
    stage_fileobj,
    stage_stream,
)


async def _chunks(parts: Iterable[bytes], fail_after: int | None = None) -> AsyncIterator[bytes]:
    for i, part in enumerate(parts):
        if fail_after is not None and i == fail_after:
            raise ConnectionResetError("client went away")
        await asyncio.sleep(0)
        yield part


def _stage(tmp: Path, parts: Iterable[bytes], max_bytes: int = 0, fail_after: int | None = None) -> Staged:
    return asyncio.run(stage_stream(tmp, _chunks(parts, fail_after), max_bytes))


def _leftovers(root: Path) -> list[Path]:
    """Files a stager left under ``root``, this process's own temporary folder's lock and journal aside."""
    own = (tmpdirs.OWNER_LOCK, tmpdirs.JOURNAL)
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(own)]


def test_stage_stream_writes_content_size_and_md5(tmp_path: Path) -> None:
    parts = [os.urandom(n) for n in (1, 1000, 70_000, (1 << 20) + 3, 5, 3 << 20, 0, 17)]
    body = b"".join(parts)
    staged = _stage(tmp_path / "tmp", parts)
    assert staged.path.parent.parent == tmp_path / "tmp"
    assert staged.path.read_bytes() == body
    assert staged.size == len(body)
    assert staged.md5 == hashlib.md5(body).hexdigest()


def test_stage_stream_empty_body(tmp_path: Path) -> None:
    staged = _stage(tmp_path, [])
    assert staged.size == 0
    assert staged.md5 == hashlib.md5(b"").hexdigest()
    assert staged.path.read_bytes() == b""


def test_stage_stream_gets_unique_names(tmp_path: Path) -> None:
    a = _stage(tmp_path, [b"a"])
    b = _stage(tmp_path, [b"b"])
    assert a.path != b.path
    assert a.path.read_bytes() == b"a" and b.path.read_bytes() == b"b"


def test_stage_stream_coalesces_small_chunks_into_big_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real_write = os.write

    def recording_write(fd: int, data: bytes) -> int:
        sizes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(files.os, "write", recording_write)
    parts = [b"x" * 4096] * 1024  # 4 MiB in 4 KiB pieces
    staged = _stage(tmp_path, parts)
    assert staged.size == 4 << 20
    assert len(sizes) == 4
    assert min(sizes) >= 1 << 20


def test_a_large_file_is_written_back_while_it_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[int, int]] = []
    real = durability.start_writeback

    def recording(fd: int, offset: int, length: int) -> bool:
        started.append((offset, length))
        return real(fd, offset, length)

    monkeypatch.setattr(files, "start_writeback", recording)
    parts = [os.urandom(n) for n in [(1 << 20) + 7] * 40 + [3000] * 100]
    body = b"".join(parts)
    staged = _stage(tmp_path, parts)
    assert staged.path.read_bytes() == body and staged.md5 == hashlib.md5(body).hexdigest()
    ends = [offset + length for offset, length in started]
    assert [offset for offset, _ in started] == [0, *ends[:-1]]  # contiguous, from the start
    assert all(length >= files.WRITEBACK_EVERY for _, length in started)
    assert len(body) - ends[-1] < files.WRITEBACK_EVERY + (1 << 20)  # the fsync is left the tail only


def test_start_writeback_reaches_the_kernel(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(4 << 20))
    fd = os.open(path, os.O_WRONLY)
    try:
        assert durability.start_writeback(fd, 0, 4 << 20)  # Linux: sync_file_range took it
    finally:
        os.close(fd)
    read, write = os.pipe()
    try:
        assert not durability.start_writeback(write, 0, 4 << 20)  # a pipe (ESPIPE): refused, not raised
    finally:
        os.close(read)
        os.close(write)


def test_stage_stream_failure_midway_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ConnectionResetError):
        _stage(tmp_path, [b"x" * 100_000] * 50, fail_after=20)
    assert _leftovers(tmp_path) == []


def test_stage_stream_cancelled_leaves_no_file(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            started.set()
            await asyncio.sleep(0.001)
            yield b"y" * 10_000

    async def scenario() -> None:
        task = asyncio.create_task(stage_stream(tmp_path, endless()))
        await started.wait()
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert _leftovers(tmp_path) == []


def test_stage_stream_over_limit_raises_too_large_and_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(TooLarge) as info:
        _stage(tmp_path, [b"z" * 1000] * 20, max_bytes=10_000)
    assert "10000 bytes" in str(info.value)
    assert _leftovers(tmp_path) == []
    assert _stage(tmp_path, [b"z" * 1000] * 10, max_bytes=10_000).size == 10_000


def _fail_write_with(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    # There is no small filesystem to fill in this sandbox without mounting one, so a full disk
    # is simulated by making os.write (as the kernel would) fail with ENOSPC / EDQUOT.
    def full(fd: int, data: bytes) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "write", full)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_stage_stream_disk_full_raises_storage_full_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    _fail_write_with(monkeypatch, code)
    with pytest.raises(StorageFull) as info:
        _stage(tmp_path, [b"q" * (2 << 20)])
    assert str(info.value).startswith("No space left")
    assert _leftovers(tmp_path) == []


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path | None]:
    """A real 1 MiB tmpfs when this process may mount one (root in a sandbox), else None."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield None
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True, check=False
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield mountpoint
    finally:
        tmpdirs.release(mountpoint)  # our temporary folder's lock keeps the mount busy
        subprocess.run(["umount", str(mountpoint)], check=False)


def test_stage_stream_on_a_really_full_filesystem(
    tiny_fs: Path | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if tiny_fs is None:
        # Mounting is not allowed here (not root, or no mount capability): simulate the kernel's
        # ENOSPC from os.write instead, which exercises the same translation and cleanup.
        _fail_write_with(monkeypatch, errno.ENOSPC)
        tiny_fs = tmp_path
    with pytest.raises(StorageFull) as info:
        _stage(tiny_fs, [b"f" * 65536] * 32)  # 2 MiB into 1 MiB
    assert str(info.value).startswith("No space left")
    assert _leftovers(tiny_fs) == []
    monkeypatch.undo()
    assert _stage(tiny_fs, [b"ok"]).size == 2  # the space was given back


def test_stage_fileobj_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_write_with(monkeypatch, errno.ENOSPC)
    with pytest.raises(StorageFull):
        stage_fileobj(tmp_path, io.BytesIO(b"q" * 100))
    assert _leftovers(tmp_path) == []


def test_other_write_errors_propagate_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_write_with(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as info:
        _stage(tmp_path, [b"q"])
    assert info.value.errno == errno.EIO
    assert _leftovers(tmp_path) == []


def test_stage_stream_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", recording)
    _stage(tmp_path, [b"data"])
    assert synced


def test_fsync_reporting_full_disk_is_storage_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(StorageFull):
        _stage(tmp_path, [b"data"])
    assert _leftovers(tmp_path) == []


def test_stage_fileobj_copies_and_hashes(tmp_path: Path) -> None:
    body = os.urandom(3_500_000)
    staged = stage_fileobj(tmp_path, io.BytesIO(body), chunk=100_000)
    assert staged.path.read_bytes() == body
    assert (staged.size, staged.md5) == (len(body), hashlib.md5(body).hexdigest())


def test_stage_fileobj_limit_and_errors_clean_up(tmp_path: Path) -> None:
    with pytest.raises(TooLarge):
        stage_fileobj(tmp_path, io.BytesIO(b"a" * 5000), max_bytes=4999)

    class Broken(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            if self.tell() > 1000:
                raise ValueError("corrupt member")
            return super().read(size)

    with pytest.raises(ValueError):
        stage_fileobj(tmp_path, Broken(b"b" * 5000), chunk=600)
    assert _leftovers(tmp_path) == []


def test_place_creates_parents_and_moves(tmp_path: Path) -> None:
    staged = stage_fileobj(tmp_path / "tmp", io.BytesIO(b"content"))
    dest = tmp_path / "archive/p/arc001/s/SCANS/1/DICOM/f.dcm"
    place(staged, dest, overwrite=False)
    assert dest.read_bytes() == b"content"
    assert not staged.path.exists()
    assert _leftovers(tmp_path / "tmp") == []


def test_place_without_overwrite_conflicts_and_keeps_old(tmp_path: Path) -> None:
    dest = tmp_path / "a/f.txt"
    place(stage_fileobj(tmp_path / "tmp", io.BytesIO(b"old")), dest, overwrite=False)
    staged = stage_fileobj(tmp_path / "tmp", io.BytesIO(b"new"))
    with pytest.raises(Conflict) as info:
        place(staged, dest, overwrite=False)
    assert "f.txt" in str(info.value)
    assert dest.read_bytes() == b"old"
    assert staged.path.exists()  # the caller decides what to do with it
    discard(staged)
    discard(staged)  # idempotent
    assert _leftovers(tmp_path / "tmp") == []


def test_place_without_overwrite_never_clobbers_a_dangling_symlink(tmp_path: Path) -> None:
    dest = tmp_path / "f"
    dest.symlink_to(tmp_path / "nowhere")
    with pytest.raises(Conflict):
        place(stage_fileobj(tmp_path / "tmp", io.BytesIO(b"x")), dest, overwrite=False)
    assert not (tmp_path / "nowhere").exists()


def test_place_without_link_support_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: Path, dst: Path, *, follow_symlinks: bool = True) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(files.os, "link", no_link)
    dest = tmp_path / "d/f"
    place(stage_fileobj(tmp_path / "tmp", io.BytesIO(b"one")), dest, overwrite=False)
    assert dest.read_bytes() == b"one"
    with pytest.raises(Conflict):
        place(stage_fileobj(tmp_path / "tmp", io.BytesIO(b"two")), dest, overwrite=False)
    assert dest.read_bytes() == b"one"


def test_place_with_overwrite_replaces(tmp_path: Path) -> None:
    dest = tmp_path / "f.txt"
    dest.write_bytes(b"old")
    place(stage_fileobj(tmp_path / "tmp", io.BytesIO(b"new")), dest, overwrite=True)
    assert dest.read_bytes() == b"new"
    assert _leftovers(tmp_path / "tmp") == []


def test_place_onto_a_folder_conflicts(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for overwrite in (True, False):
        staged = stage_fileobj(tmp_path / "tmp", io.BytesIO(b"x"))
        with pytest.raises(Conflict):
            place(staged, tmp_path / "d", overwrite=overwrite)
        discard(staged)


def test_place_below_a_file_conflicts(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    staged = stage_fileobj(tmp_path / "tmp", io.BytesIO(b"y"))
    with pytest.raises(Conflict):
        place(staged, tmp_path / "file/sub/f", overwrite=False)


def test_place_fsyncs_destination_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staged = stage_fileobj(tmp_path / "tmp", io.BytesIO(b"x"))
    synced: list[str] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", recording)
    place(staged, tmp_path / "new/dir/f", overwrite=False)
    assert str(tmp_path / "new/dir") in synced
    assert str(tmp_path / "new") in synced  # the new directory's own entry too


def test_discard_removes_staged(tmp_path: Path) -> None:
    staged = stage_fileobj(tmp_path, io.BytesIO(b"x"))
    discard(staged)
    assert not staged.path.exists()


def test_remove_file_prunes_empty_parents_up_to_stop(tmp_path: Path) -> None:
    root = tmp_path / "res"
    (root / "a/b/c").mkdir(parents=True)
    (root / "a/keep.txt").write_bytes(b"k")
    (root / "a/b/c/f").write_bytes(b"f")
    remove_file(root / "a/b/c/f", stop_at=root)
    assert not (root / "a/b").exists()
    assert (root / "a/keep.txt").exists()
    (root / "a/keep.txt").unlink()
    (root / "x").mkdir()
    (root / "x/f").write_bytes(b"f")
    remove_file(root / "x/f", stop_at=root)
    assert root.is_dir() and list(root.iterdir()) == [root / "a"]
    remove_file(root / "x/f", stop_at=root)  # already gone: fine


def test_remove_file_outside_stop_is_a_programming_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(ValueError):
        remove_file(tmp_path / "f", stop_at=tmp_path / "other")


def test_remove_tree_removes_and_prunes(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    tree = root / "p/arc001/s/SCANS/1"
    (tree / "DICOM/sub").mkdir(parents=True)
    (tree / "DICOM/sub/f").write_bytes(b"x")
    (root / "p/arc001/other").mkdir(parents=True)
    tmp = tmp_path / "tmp"
    remove_tree(tree, tmp, stop_at=root)
    assert not (root / "p/arc001/s").exists()
    assert (root / "p/arc001/other").is_dir()
    assert [p.name for p in (root / "p/arc001").iterdir()] == ["other"]  # nothing left beside it
    assert not list(tmpdirs.process_tmp_dir(tmp).glob("deleting-*"))  # deleted where it went
    remove_tree(tree, tmp, stop_at=root)  # idempotent
    remove_tree(root / "p/arc001/other", None)  # no pruning without stop_at
    assert (root / "p/arc001").is_dir()


def test_remove_tree_does_not_follow_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"p")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link").symlink_to(outside, target_is_directory=True)
    remove_tree(tree, tmp_path / "tmp")
    assert not tree.exists()
    assert (outside / "precious").read_bytes() == b"p"
    link = tmp_path / "link2"
    link.symlink_to(outside, target_is_directory=True)
    remove_tree(link, tmp_path / "tmp")
    assert not link.is_symlink() and (outside / "precious").exists()


def test_md5_of(tmp_path: Path) -> None:
    body = os.urandom((2 << 20) + 12345)
    (tmp_path / "f").write_bytes(body)
    assert md5_of(tmp_path / "f") == hashlib.md5(body).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert md5_of(tmp_path / "empty") == hashlib.md5(b"").hexdigest()


def test_cancel_during_fsync_cleans_up_once_the_thread_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    in_fsync = asyncio.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        loop.call_soon_threadsafe(in_fsync.set)
        time.sleep(0.2)
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", slow_fsync)

    async def scenario() -> None:
        task = asyncio.create_task(stage_stream(tmp_path, _chunks([b"x" * 1000])))
        await in_fsync.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("renameat2", [True, False])
def test_move_new_never_replaces_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renameat2: bool
) -> None:
    """One renameat2(RENAME_NOREPLACE) where the system has it, else a hard link: either way a
    file at the destination (placed by another transaction a moment ago) stays."""
    if not renameat2:
        monkeypatch.setattr(files, "rename_noreplace", lambda src, dest: False)
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.write_bytes(b"new")
    dest.write_bytes(b"kept")
    with pytest.raises(Conflict, match="already exists"):
        files.move_new(src, dest)
    assert dest.read_bytes() == b"kept" and src.read_bytes() == b"new"
    dest.unlink()
    files.move_new(src, dest)
    assert dest.read_bytes() == b"new" and not src.exists()
