"""A batch that found a prearchive session, then saw it moved to another project before it
committed, files everything into the session where it now is: every file once, with its row, in
the folder its row says (was: files split between the new folder and a re-created old one, or a
500 and a file with no row). In process, on SQLite or PostgreSQL (XNATD_TEST_BACKEND)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.live_server import backend
from xnatd import config
from xnatd.db import archive as q
from xnatd.db import prearchive as pq
from xnatd.dicom.identify import Overrides
from xnatd.services.access.context import SYSTEM, Context
from xnatd.services.ingest import ingest
from xnatd.services.ingest.import_options import ImportOptions
from xnatd.services.operations.bootstrap import open_context
from xnatd.services.prearchive import prearchive as pre
from xnatd.storage.files import stage_fileobj

pytestmark = pytest.mark.slow
GE = TESTDATA / "dcm_qa_nih" / "20180918GE" / "mr_0004"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    settings: dict[str, object] = {"data": tmp_path / "data"}
    if backend() == "postgresql":
        from tests.support.postgres import database_url

        settings["database_url"] = database_url()
    context = open_context(config.load(settings, environ={}))
    with context.db.write() as conn:
        for p in ("P", "Q"):
            q.insert_project(conn, id=p, name=p, accessibility="private")
    yield context
    context.db.engine.dispose()


def _add(ctx: Context, batch: ingest.IngestBatch, files: list[Path]) -> ingest.IngestBatch:
    for f in files:
        with f.open("rb") as src:
            batch.add(stage_fileobj(ctx.settings.tmp_dir, src), f.name)
    return batch


@pytest.mark.parametrize("count", [21, 16])  # above and below the batch's fsync-each limit
def test_batch_committing_after_a_move_files_into_the_moved_session(
    ctx: Context, tmp_path: Path, count: int
) -> None:
    files = copy_study(dicom_files(GE)[:count], tmp_path / "s", "MV", patient="MV")
    opts = ImportOptions(labels=Overrides(project="P"))
    ref = _add(ctx, ingest.IngestBatch(ctx, SYSTEM, opts), files[:1]).finish()[0]
    half = count // 2
    late = _add(ctx, ingest.IngestBatch(ctx, SYSTEM, opts), files[1:half])  # found the session
    pre.move(ctx, SYSTEM, pre.Key("P", ref.timestamp, ref.folder), "Q")
    _add(ctx, late, files[half:])  # more files of the same batch, after the move
    refs = late.finish()
    assert [(r.pk, r.project) for r in refs] == [(ref.pk, "Q")]
    root = ctx.settings.prearchive_dir
    with ctx.db.read() as conn:
        row = pq.session(conn, ref.pk)
        names = sorted(f["name"] for f in pq.files_of(conn, ref.pk))
    assert row["directory"].startswith("Q/")
    on_disk = sorted(p.name for p in (root / row["directory"]).rglob("*.dcm"))
    assert len(names) == count
    assert on_disk == names
    assert not list((root / "P").rglob("*.dcm")) if (root / "P").exists() else True
    assert not (root / "P" / ref.timestamp).exists()
