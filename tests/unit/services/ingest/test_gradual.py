"""One-file requests waiting together are filed as one batch, yet each gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from xnatd import config
from xnatd.db import prearchive as pq
from xnatd.errors import Conflict, NotFound, Unauthenticated
from xnatd.services.access import auth
from xnatd.services.access.context import SYSTEM, Actor, Context
from xnatd.services.archive import browse
from xnatd.services.ingest import gradual, importer, ingest
from xnatd.services.ingest import import_options as io
from xnatd.services.ingest.import_options import ImportOptions
from xnatd.services.operations.bootstrap import open_context
from xnatd.services.prearchive import prearchive
from xnatd.storage.files import Held

SOURCE = TESTDATA / "dcm_qa_nih" / "20180918GE"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = open_context(config.load({"data": tmp_path / "data", "admin_password": "secret"}))
    browse.create_project(context, SYSTEM, "GP", "GP", "gradual")
    yield context
    context.db.dispose()


ADMIN = auth.Credentials(basic=("admin", "secret"))
Request = tuple[auth.Credentials, ImportOptions, Held, str]


def _opts(project: str = "GP") -> ImportOptions:
    return io.parse([("inbody", "true"), ("PROJECT_ID", project)], "application/dicom")


def _as_requests(files: list[Path]) -> list[Request]:
    return [(ADMIN, _opts(), Held(f.read_bytes()), f.name) for f in files]


def _file_at_once(
    ctx: Context, check: gradual.Check, requests: list[Request]
) -> list[gradual.Filed | BaseException]:
    """Send every request at once, as concurrent clients do: all wait together for the first batch."""

    async def send_all() -> list[gradual.Filed | BaseException]:
        return await asyncio.gather(*(gradual.file(ctx, check, *r) for r in requests), return_exceptions=True)

    return asyncio.run(send_all())


def test_waiting_requests_share_one_check_and_each_gets_its_own_answer(ctx: Context, tmp_path: Path) -> None:
    files = copy_study(dicom_files(SOURCE)[:12], tmp_path / "study", "GRAD1")
    checks: list[Actor] = []

    def check(c: Context, actor: Actor, opts: ImportOptions) -> dict[str, tuple[str, int]]:
        checks.append(actor)
        return importer.check_destination(c, actor, opts)

    wrong = auth.Credentials(basic=("admin", "wrong"))
    requests = _as_requests(files)
    requests.append((ADMIN, _opts(), Held(b"not a DICOM file at all"), "notes.txt"))
    requests.append((wrong, _opts(), Held(files[0].read_bytes()), "again.dcm"))
    requests.append((ADMIN, _opts("NOSUCH"), Held(files[1].read_bytes()), "elsewhere.dcm"))
    answers = _file_at_once(ctx, check, requests)
    good, not_dicom, unauthenticated, missing = answers[:12], answers[12], answers[13], answers[14]
    assert all(not isinstance(a, BaseException) for a in good), good
    sessions = {a[1][0].uri for a in good if not isinstance(a, BaseException)}
    assert len(sessions) == 1, "all twelve went to one session"
    assert all(a[2].stored == 1 for a in good if not isinstance(a, BaseException))
    assert not isinstance(not_dicom, BaseException) and not_dicom[1] == []
    assert not_dicom[2].skipped == ["notes.txt"]
    assert isinstance(unauthenticated, Unauthenticated)
    assert isinstance(missing, NotFound)
    # all were waiting together: the 13 for GP share one check, the one for NOSUCH has its own
    assert len(checks) == 2  # one per caller and options: GP and NOSUCH
    stored = list((ctx.settings.prearchive_dir / "GP").rglob("*.dcm"))
    assert len(stored) == 12


def test_a_shared_batch_that_fails_is_filed_again_one_by_one(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when the session is archived while the batch is filed: each request is then tried alone."""
    files = copy_study(dicom_files(SOURCE)[:6], tmp_path / "study", "GRAD2")
    calls: list[int] = []
    real_finish = ingest.IngestBatch.finish

    def finish(batch: ingest.IngestBatch) -> list[ingest.SessionRef]:
        calls.append(1)
        if len(calls) == 1:
            raise Conflict("the shared batch fails")
        return real_finish(batch)

    monkeypatch.setattr(ingest.IngestBatch, "finish", finish)
    answers = _file_at_once(ctx, importer.check_destination, _as_requests(files))
    assert all(not isinstance(a, BaseException) for a in answers), answers
    assert len(calls) == 1 + len(files)  # once for the six together, then once for each alone
    assert len(list((ctx.settings.prearchive_dir / "GP").rglob("*.dcm"))) == len(files)


def test_a_crowd_is_filed_in_rounds_of_at_most_the_batch_limit(ctx: Context, tmp_path: Path) -> None:
    files = copy_study(dicom_files(SOURCE)[: gradual.BATCH_LIMIT + 6], tmp_path / "study", "GRAD3")
    sizes: list[int] = []

    def check(c: Context, actor: Actor, opts: ImportOptions) -> dict[str, tuple[str, int]]:
        sizes.append(len(list((c.settings.prearchive_dir / "GP").rglob("*.dcm"))))
        return importer.check_destination(c, actor, opts)

    answers = _file_at_once(ctx, check, _as_requests(files))
    assert all(not isinstance(a, BaseException) for a in answers)
    assert sizes == [0, gradual.BATCH_LIMIT]  # two rounds: the first limit's worth, then the rest
    assert len(list((ctx.settings.prearchive_dir / "GP").rglob("*.dcm"))) == len(files)


def test_the_next_batch_files_into_the_remembered_session_unless_it_moved_or_went(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream's batches skip the session lookup while the session stays where it was; once it is
    moved to another project or deleted, the next file starts a new session where it was sent."""
    files = copy_study(dicom_files(SOURCE)[:8], tmp_path / "study", "GRAD4")
    browse.create_project(ctx, SYSTEM, "OTHER", "OTHER", "elsewhere")
    admin = Actor("admin", True)
    lookups: list[str] = []
    real_lookup = pq.open_session

    def counted(
        conn: Connection, project: str | None, tag: str, name: str, intake: str | None = None
    ) -> pq.Row | None:
        lookups.append(name)
        return real_lookup(conn, project, tag, name, intake)

    monkeypatch.setattr(pq, "open_session", counted)

    async def stream() -> list[list[str]]:
        async def batch(chunk: list[Path]) -> list[str]:
            sent = (gradual.file(ctx, importer.check_destination, *r) for r in _as_requests(chunk))
            return [answer[1][0].uri for answer in await asyncio.gather(*sent)]

        first = await batch(files[0:2])
        found = len(lookups)  # the first batch looked up (and created) the session
        second = await batch(files[2:4])
        assert len(lookups) == found, "the second batch used the session the first one found"
        key = prearchive.Key(*first[0].split("/")[-3:])
        await asyncio.to_thread(prearchive.move, ctx, admin, key, "OTHER")
        after_move = await batch(files[4:6])
        key = prearchive.Key(*after_move[0].split("/")[-3:])
        await asyncio.to_thread(prearchive.delete, ctx, admin, key)
        return [first, second, after_move, await batch(files[6:8])]

    first, second, after_move, after_delete = asyncio.run(stream())
    assert len(set(first)) == 1 and second == first
    assert len(set(after_move)) == 1 and after_move[0] != first[0]
    assert after_move[0].startswith("/data/prearchive/projects/GP/"), "sent to GP, where it stays"
    assert len(set(after_delete)) == 1 and after_delete[0] not in (first[0], after_move[0])
    moved = list((ctx.settings.prearchive_dir / "OTHER").rglob("*.dcm"))
    assert len(moved) == 4, "the moved session kept its four files and got no others"
    assert len(list((ctx.settings.prearchive_dir / "GP").rglob("*.dcm"))) == 2  # the last two


class _Stopped(BaseException):
    pass


def test_a_filing_thread_that_breaks_off_answers_every_waiting_request(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the thread that files be stopped (a BaseException, not an error of the batch), no
    request waits for ever: each learns it was not filed, and the next request is filed again."""
    files = copy_study(dicom_files(SOURCE)[:4], tmp_path / "study", "GRAD5")
    real_file_all = gradual._file_all

    def broken(*args: object) -> None:
        monkeypatch.setattr(gradual, "_file_all", real_file_all)  # once
        raise _Stopped

    monkeypatch.setattr(gradual, "_file_all", broken)

    async def send() -> tuple[list[gradual.Filed | BaseException], gradual.Filed]:
        sent = (gradual.file(ctx, importer.check_destination, *r) for r in _as_requests(files[:3]))
        broke = await asyncio.gather(*sent, return_exceptions=True)
        return broke, await gradual.file(ctx, importer.check_destination, *_as_requests(files[3:])[0])

    broke, after = asyncio.run(send())
    assert all(isinstance(a, RuntimeError) and "not filed" in str(a) for a in broke), broke
    assert after[2].stored == 1
    assert len(list((ctx.settings.prearchive_dir / "GP").rglob("*.dcm"))) == 1
