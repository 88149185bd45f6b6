"""How a zip's members are shared among the import helpers (``services/unpacking``)."""

from __future__ import annotations

from pathlib import PurePosixPath

from xnatd.services.ingest import unpacking
from xnatd.storage.zip_entries import ZipEntry


def _entries(sizes: list[int]) -> list[ZipEntry]:
    return [ZipEntry(i, PurePosixPath(f"f{i}"), size) for i, size in enumerate(sizes)]


def test_each_helper_gets_one_run_of_consecutive_members_of_about_equal_work() -> None:
    entries = _entries([30_000] * 1000 + [3_000_000] * 20)  # many small files, then a few large
    shares = unpacking._split(entries, 2)
    assert [e for share in shares for e in share] == entries  # every member once, in order
    work = [sum(e.size + unpacking.FILE_COST for e in share) for share in shares]
    assert abs(work[0] - work[1]) <= 3_000_000 + unpacking.FILE_COST  # at most one member apart
    assert unpacking._split(_entries([10]), 2) == [_entries([10])]  # no empty share


def test_chunks_are_bounded_by_count_and_bytes_and_planned_a_share_at_a_time_in_turn() -> None:
    chunks = unpacking._chunks(_entries([1] * 600))
    assert [len(c) for c in chunks] == [256, 256, 88]
    big = unpacking._chunks(_entries([200 << 20] * 3))
    assert [len(c) for c in big] == [1, 1, 1]
    assert unpacking._interleaved([3, 2]) == [0, 3, 1, 4, 2]
    assert unpacking._interleaved([1]) == [0]
