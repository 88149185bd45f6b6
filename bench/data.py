"""Benchmark inputs (generated in a temporary folder at run time) and the baselines they are compared with."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.testdata import DICOM

CHUNK = 1024 * 1024
TESTDATA = DICOM


def evict(path: Path) -> bool:
    """Push a file's pages out of the page cache (fsync, then POSIX_FADV_DONTNEED). True if supported."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_big_file(path: Path, size: int) -> str:
    """Write `size` incompressible bytes; returns their MD5. The file is fsynced and evicted from cache."""
    md5 = hashlib.md5()
    block = os.urandom(CHUNK)
    written = 0
    with path.open("wb") as f:
        while written < size:
            # a fresh random block per 64 MiB, and a counter in every MiB: no two MiB are equal
            if written % (64 * CHUNK) == 0:
                block = os.urandom(CHUNK)
            piece = (written.to_bytes(8, "little") + block[8:])[: size - written]
            f.write(piece)
            md5.update(piece)
            written += len(piece)
        f.flush()
        os.fsync(f.fileno())
    evict(path)
    return md5.hexdigest()


def md5_of(path: Path) -> str:
    md5 = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            md5.update(block)
    return md5.hexdigest()


@dataclass
class CopyTiming:
    cp_seconds: float  # `cp` returned (data in the page cache)
    synced_seconds: float  # `cp` plus fsync of the copy (data on disk, what the server promises)


def time_cp(src: Path, dst: Path) -> CopyTiming:
    """Time `cp SRC DST` (source evicted from the page cache first), then fsync of DST; DST is removed."""
    evict(src)
    t0 = time.perf_counter()
    subprocess.run(["cp", str(src), str(dst)], check=True)
    t1 = time.perf_counter()
    fsync_path(dst)
    t2 = time.perf_counter()
    dst.unlink()
    return CopyTiming(cp_seconds=t1 - t0, synced_seconds=t2 - t0)


def dicom_sources(root: Path = TESTDATA) -> list[Path]:
    """Every DICOM Part-10 file (preamble + `DICM`) under `root`, in a stable order."""
    found = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == "DIRFILE":
            continue
        with p.open("rb") as f:
            head = f.read(132)
        if len(head) == 132 and head[128:132] == b"DICM":
            found.append(p)
    return found


def make_dicom_set(dest: Path, count: int, sources: list[Path]) -> list[Path]:
    """Copy `count` files into `dest`, cycling through `sources` (contents repeat, names do not)."""
    if not sources:
        raise RuntimeError(f"no DICOM files found under {TESTDATA}")
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        src = sources[i % len(sources)]
        dst = dest / f"IM{i + 1:05d}.dcm"
        shutil.copyfile(src, dst)
        files.append(dst)
    return files


def write_stored_zip(out: Path, files: list[tuple[Path, str]]) -> float:
    """Python's zipfile writing a ZIP_STORED archive of `files` ((path, name in zip)): the zip baseline."""
    t0 = time.perf_counter()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for path, arcname in files:
            zf.write(path, arcname)
    return time.perf_counter() - t0


def time_extract(zip_path: Path, dest: Path, durable: bool = False) -> float:
    """Python's zipfile extracting every member to `dest` (the baseline of the server's extract=true).

    With `durable`, every file is fsynced after it is written, and so is its folder once it is complete
    (what the server promises for every stored file).
    """
    t0 = time.perf_counter()
    with zipfile.ZipFile(zip_path) as zf:
        if not durable:
            zf.extractall(dest)
        else:
            folders: set[Path] = set()
            for info in zf.infolist():
                out = Path(zf.extract(info, dest))
                if out.is_file():
                    fsync_path(out)
                    folders.add(out.parent)
            for folder in folders:
                fsync_path(folder)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(dest)
    return elapsed


def quiesce() -> None:
    """Flush dirty pages left by earlier steps, so their writeback does not land in the next timing."""
    os.sync()
    time.sleep(0.5)


def zip_member_md5(zip_path: Path, suffix: str) -> tuple[str, int, str]:
    """(name, size, MD5) of the first member whose name ends with `suffix`."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if info.filename.endswith(suffix):
                md5 = hashlib.md5()
                with zf.open(info) as f:
                    while block := f.read(CHUNK):
                        md5.update(block)
                return info.filename, info.file_size, md5.hexdigest()
    raise KeyError(suffix)


def disk_of(path: Path) -> str:
    """`device (fstype) mounted on M, N GiB free` for the filesystem holding `path`."""
    path = path.resolve()
    best = ("?", "?", "/")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                if (str(path) + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best[2]):
                    best = (dev, fstype, mnt)
    except OSError:
        pass
    free = shutil.disk_usage(path).free / 1024**3
    return f"{best[0]} ({best[1]}) mounted on {best[2]}, {free:.0f} GiB free"
