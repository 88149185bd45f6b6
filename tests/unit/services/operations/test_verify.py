"""``xnatd verify`` on a real SQLite site: clean when nothing is wrong, each kind of damage reported,
``repair`` fixing only what is safe; then a backup and a restore round trip."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.dicom_copies import copy_study, dicom_files
from tests.support.testdata import DICOM
from xnatd import config
from xnatd.db import archive as q
from xnatd.db import prearchive as pq
from xnatd.services.access.context import SYSTEM, Context
from xnatd.services.ingest import import_options as io
from xnatd.services.ingest import importer, rebuilder
from xnatd.services.operations import backup
from xnatd.services.operations import verify as v
from xnatd.services.operations.bootstrap import open_context


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = open_context(config.load({"data": tmp_path / "data"}, environ={}))
    with context.db.write() as conn:
        q.insert_project(conn, id="P", name="P", accessibility="private")
    files = dicom_files(DICOM / "dcm_qa_ts")[:3]
    archived = copy_study(files, tmp_path / "a", "A", patient="S1")
    held = copy_study(files, tmp_path / "b", "B", patient="S2")
    importer.import_path(context, SYSTEM, tmp_path / "a", io.for_local_import("P", "S1", "E1", True), None)
    importer.import_path(context, SYSTEM, tmp_path / "b", io.for_local_import("P", "S2", "E2", False), None)
    assert archived and held
    yield context
    context.db.dispose()


def archive_files(ctx: Context) -> list[Path]:
    return sorted(p for p in ctx.settings.archive_dir.rglob("*") if p.is_file())


def dicom_files_of(ctx: Context) -> list[Path]:
    """The archived DICOM files (other resources, such as snapshots, may come with an archive)."""
    return [p for p in archive_files(ctx) if "/DICOM/" in p.as_posix()]


def all_files(ctx: Context) -> int:
    """Files on disk, archive and prearchive: what the rows of a clean site name."""
    return sum(
        1
        for d in (ctx.settings.archive_dir, ctx.settings.prearchive_dir)
        for p in d.rglob("*")
        if p.is_file()
    )


def kinds(report: v.Report) -> list[str]:
    return sorted(p.kind for p in report.problems)


STALE = 2.0  # seconds; a temporary's age counts from its last change (ctime), which utime cannot fake


def make_old(path: Path) -> None:
    time.sleep(STALE + 0.1)


def test_clean_site_verifies_clean(ctx: Context) -> None:
    report = v.verify(ctx)
    assert report.clean, report.problems
    assert report.checked_files == all_files(ctx) >= 6
    assert v.verify(ctx, "P", md5=False).clean


def test_damage_is_reported_and_repaired_where_safe(ctx: Context) -> None:
    a, b, c = dicom_files_of(ctx)
    a.unlink()  # missing
    with open(b, "r+b") as f:  # one byte flipped: same size, other MD5
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    orphan = c.parent / "stray.dcm"
    shutil.copy(c, orphan)
    stale = ctx.settings.tmp_dir / ".stage-dead.part"
    stale.write_bytes(b"x")
    make_old(stale)
    fresh = ctx.settings.tmp_dir / ".stage-live.part"  # a live upload's: left alone
    fresh.write_bytes(b"y")
    with ctx.db.write() as conn:
        (row,) = pq.sessions(conn, ["P"])
        pq.update_session(conn, row["pk"], status="ARCHIVING", lastmod=q.now() - _dt.timedelta(hours=3))

    # `fresh` is written again before each run, so it stays younger than STALE however slow a run is.
    report = v.verify(ctx, md5=False, stale_after=STALE)
    assert kinds(report) == ["missing", "orphan", "stuck", "temporary"]
    fresh.write_bytes(b"y")
    report = v.verify(ctx, stale_after=STALE)
    assert kinds(report) == ["md5", "missing", "orphan", "stuck", "temporary"]
    assert stale.exists()

    fresh.write_bytes(b"y")
    report = v.verify(ctx, repair=True, stale_after=STALE)
    assert sorted(p.kind for p in report.unfixed) == ["md5", "missing"]
    assert not stale.exists() and fresh.exists() and not orphan.exists()
    assert list((ctx.settings.data / "quarantine").rglob("stray.dcm"))
    with ctx.db.read() as conn:
        (row,) = pq.sessions(conn, ["P"])
    assert row["status"] == "READY" and "interrupted" in row["log"]
    assert kinds(v.verify(ctx)) == ["md5", "missing"]


def test_start_up_recovery_resets_stuck_sessions_and_old_temporaries(ctx: Context) -> None:
    stale = ctx.settings.tmp_dir / "backup-0123"
    stale.mkdir()
    (stale / "f").write_bytes(b"z")
    time.sleep(1.1)
    with ctx.db.write() as conn:
        (row,) = pq.sessions(conn, ["P"])
        pq.update_session(conn, row["pk"], status="BUILDING", lastmod=q.now() - _dt.timedelta(hours=3))
    again = open_context(dataclasses.replace(ctx.settings, recover_after=1))  # what a restarted server does
    again.db.dispose()
    assert not stale.exists()
    with ctx.db.read() as conn:
        (row,) = pq.sessions(conn, ["P"])
    assert row["status"] == "RECEIVING"
    assert v.verify(ctx).clean


def test_a_stuck_direct_archive_staging_session_is_archived_after_all(ctx: Context) -> None:
    """The process archiving a Direct-Archive staging session died: recovery makes it RECEIVING again
    (not READY, where it would wait for a person), and the idle builder archives it, as its imports'
    200 promised."""
    with ctx.db.write() as conn:
        (row,) = pq.sessions(conn, ["P"])
        stale = q.now() - _dt.timedelta(hours=3)
        pq.update_session(conn, row["pk"], status="ARCHIVING", intake="direct:append", lastmod=stale)
    again = open_context(dataclasses.replace(ctx.settings, recover_after=1))  # what a restarted server does
    again.db.dispose()
    with ctx.db.read() as conn:
        (row,) = pq.sessions(conn, ["P"])
    assert row["status"] == "RECEIVING" and "interrupted" in row["log"]
    idle = Context(dataclasses.replace(ctx.settings, prearchive_idle_build=0), ctx.db)
    time.sleep(0.01)
    assert rebuilder.build_idle(idle) == 1
    with ctx.db.read() as conn:
        assert pq.sessions(conn, ["P"]) == []
        assert q.in_project(conn, "experiment", "P", "E2") is not None
    assert v.verify(ctx).clean


def test_backup_and_restore_round_trip(ctx: Context, tmp_path: Path) -> None:
    out = backup.backup(ctx, tmp_path / "bk")
    total = all_files(ctx)
    assert out.files == total and not out.problems
    assert out.linked == total  # same filesystem: hard links
    with pytest.raises(Exception, match="empty"):
        backup.backup(ctx, tmp_path / "bk")
    done = backup.restore(tmp_path / "bk", tmp_path / "restored")
    assert done.files == total and not done.problems
    restored = open_context(config.load({"data": tmp_path / "restored"}, environ={}))
    try:
        assert v.verify(restored).clean
        before = {p.relative_to(ctx.settings.data): p.read_bytes() for p in archive_files(ctx)}
        after = {p.relative_to(restored.settings.data): p.read_bytes() for p in archive_files(restored)}
        assert before == after
    finally:
        restored.db.dispose()


def test_processes_starting_at_once_reset_a_stuck_session_once(ctx: Context) -> None:
    with ctx.db.write() as conn:
        (row,) = pq.sessions(conn, ["P"])
        pq.update_session(conn, row["pk"], status="MOVING", lastmod=q.now() - _dt.timedelta(hours=3))
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda _: v.recover(ctx, 60), range(4)))
    fixes = [p.fixed for r in reports for p in r.problems]
    assert fixes.count("reset to READY") == 1
    assert all(f == "taken by another process" for f in fixes if f != "reset to READY")
    with ctx.db.read() as conn:
        (row,) = pq.sessions(conn, ["P"])
    assert row["status"] == "READY" and row["log"].count("interrupted") == 1


def test_files_an_interrupted_archive_moved_go_back_to_the_prearchive(ctx: Context) -> None:
    pre = sorted(p for p in ctx.settings.prearchive_dir.rglob("*") if p.is_file())
    moved = [ctx.settings.archive_dir / "P/arc001/E2/SCANS/1/DICOM" / p.name for p in pre[:2]]
    for src, dest in zip(pre, moved, strict=False):
        dest.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dest)  # what SIGKILL between the renames and the commit leaves
    with ctx.db.write() as conn:
        (row,) = pq.sessions(conn, ["P"])
        pq.update_session(conn, row["pk"], status="ARCHIVING", lastmod=q.now() - _dt.timedelta(hours=3))
    time.sleep(STALE + 0.1)
    report = v.verify(ctx, repair=True, stale_after=STALE)
    assert kinds(report) == ["missing", "missing", "orphan", "orphan", "stuck"]
    assert not report.unfixed, report.unfixed
    assert all(p.exists() for p in pre) and not any(p.exists() for p in moved)
    with ctx.db.read() as conn:
        (row,) = pq.sessions(conn, ["P"])
    assert row["status"] == "READY"
    assert v.verify(ctx).clean


def test_a_users_file_named_like_a_temporary_is_a_file(ctx: Context) -> None:
    """Nothing in the archive tree is a temporary (writers keep theirs in DATA/tmp): a file a row
    names is never deleted or moved by a repair, whatever its name (the exact shapes the writers
    give their temporaries, random token included, too); one no row names is an orphan,
    quarantined, never deleted (a deletion's leftover from an older version among them)."""
    from sqlalchemy import select

    from xnatd.db.schema import resources

    names = ["backup-notes.txt", ".aside-me", ".deleting-not", ".stage-x.part"]
    names += [
        "backup-" + "0" * 32,
        ".deleting-" + "1" * 16,
        ".stage-" + "2" * 24 + ".part",
        ".aside-" + "3" * 16,
    ]
    names += [".stage-proc-" + "4" * 16, "owner.lock", "placed.log"]
    with ctx.db.write() as conn:
        pk, directory = conn.execute(select(resources.c.pk, resources.c.directory)).first()  # type: ignore[misc]
        for name in names:
            q.upsert_file(conn, pk, name, size=4, md5="8d777f385d3dfec8815d20f7496026dc", created_by="t")
    named = [ctx.settings.archive_dir / directory / n for n in names]
    for path in named:
        path.write_bytes(b"data")
    make_old(named[-1])
    report = v.verify(ctx, repair=True, stale_after=STALE)
    assert report.clean, report.problems
    assert all(p.read_bytes() == b"data" for p in named)
    doomed = ctx.settings.archive_dir / directory / ".deleting-0123456789abcdef"  # an old deletion's leftover
    doomed.mkdir()
    (doomed / "f").write_bytes(b"x")
    make_old(doomed)
    report = v.verify(ctx, repair=True, stale_after=STALE)
    assert kinds(report) == ["orphan"] and not (doomed / "f").exists()
    assert [p.read_bytes() for p in (ctx.settings.data / "quarantine").rglob("f")] == [b"x"]
