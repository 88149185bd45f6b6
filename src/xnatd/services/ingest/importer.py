"""XNAT's import service: a DICOM file, zip or tar in; prearchive or archive sessions out.

The upload is staged once (hashed, in ``DATA/tmp``), then each member is streamed through the same
``IngestBatch`` the DICOM receiver and ``xnatd import`` use. Afterwards each session is built and,
when asked for (``dest=/archive``, ``AA`` or the project's auto-archive code), archived before the
answer; with ``Direct-Archive=true`` the files wait in their study's staging session, which the idle
builder archives once its senders are quiet (XNAT's direct archive). What each answer promises is
docs/reliability.md's "answer contract of an import". What is skipped (READMEs, DICOMDIRs,
unreadable files) is reported, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from xnatd.db import prearchive as pq
from xnatd.errors import Conflict, InvalidInput, XnatdError
from xnatd.services import access
from xnatd.services.access import auth
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive.files import UploadPart
from xnatd.services.archive.resolve import load_project
from xnatd.services.ingest import gradual, helper_pool, ingest, unpacking
from xnatd.services.ingest import import_options as io
from xnatd.services.prearchive import archive_options as ao
from xnatd.services.prearchive import archiver
from xnatd.services.prearchive import prearchive as pre
from xnatd.storage import archives, zip_entries
from xnatd.storage.files import (
    Held,
    Staged,
    discard,
    hold_or_stage,
    hold_stream,
    stage_fileobj,
    stage_stream,
    with_md5,
)
from xnatd.threads import run_in_threadpool

log = logging.getLogger("xnatd.import")
SMALL_BODY = 8 << 20  # bytes: a one-file (gradual-DICOM) body up to this size is held in memory
Progress = Callable[[int], None]


@dataclass
class ImportResult:
    uris: list[str] = field(default_factory=list)
    report: ingest.Report = field(default_factory=ingest.Report)
    moved_to_archive: bool = False


def check_destination(ctx: Context, actor: Actor, opts: io.ImportOptions) -> dict[str, tuple[str, int]]:
    """Refuse early (before reading the body) an import into a project that is unknown or closed;
    the checked project (key -> ID, prearchive code) saves the batch a second look. The guest
    imports nothing, not even into Unassigned."""
    access.require_user(actor)
    project = opts.labels.project
    if project is None:
        if opts.to_archive:
            raise InvalidInput("An import to the archive needs a project (PROJECT_ID, project or dest)")
        return {}
    with ctx.db.read() as conn:
        row, _ = load_project(conn, actor, project, access.EDIT)
    return {project: (str(row["id"]), int(row["prearchive_code"] or 0))}


async def import_upload(
    ctx: Context, actor: Actor, parts: AsyncIterator[UploadPart], opts: io.ImportOptions
) -> ImportResult:
    """``POST /data/services/import``: exactly one file (raw body or one multipart file part),
    staged on disk as it arrives, once the destination is known to be open to the caller."""
    projects = await run_in_threadpool(check_destination, ctx, actor, opts)
    staged: Staged | None = None
    name: str | None = None
    ctype = None
    try:
        async for part in parts:
            if staged is not None:
                raise InvalidInput("Importer is limited to one uploaded resource at a time.")
            name, ctype = part.filename, part.content_type
            if not _single_file(opts, ctype):
                helper_pool.warm_up(ctx)  # likely a zip: its helpers start while it arrives
            staged = await stage_stream(
                ctx.settings.tmp_dir, part.chunks, ctx.settings.max_upload_bytes, sync=False,
                hashed=_single_file(opts, ctype),
            )  # fmt: skip
        if staged is None:
            raise InvalidInput("Unable to identify upload format.")
        return await run_in_threadpool(import_staged, ctx, actor, staged, name, ctype, opts, None, projects)
    finally:
        if staged is not None:
            discard(staged)


async def import_small_file(
    ctx: Context, credentials: auth.Credentials, parts: AsyncIterator[UploadPart], opts: io.ImportOptions
) -> ImportResult:
    """One DICOM file of at most ``SMALL_BODY`` bytes (gradual-DICOM), held in memory and written
    once, straight into its session folder.

    It is filed with the like requests that arrive meanwhile (``gradual``), and its caller is
    identified there, after the body is read: concurrent requests of one client share the
    session lookup, the project check and the commit.
    """
    held: Held | None = None
    name: str | None = None  # a raw body's: named from its header
    async for part in parts:
        if held is not None:
            raise InvalidInput("Importer is limited to one uploaded resource at a time.")
        name = part.filename
        held = await hold_stream(part.chunks, SMALL_BODY)
    if held is None:
        raise InvalidInput("Unable to identify upload format.")
    actor, refs, report = await gradual.file(ctx, check_destination, credentials, opts, held, name)
    if _settles_nothing(opts):  # no database work left: answered from the event loop
        return finish(ctx, actor, refs, report, opts, single_file=True)
    return await run_in_threadpool(finish, ctx, actor, refs, report, opts, True)


def _settles_nothing(opts: io.ImportOptions) -> bool:
    """A file of a gradual stream that asks for no build or archive: the idle builder takes it on.
    (A file of a Direct-Archive stream also waits for the idle builder, but is checked first.)"""
    return opts.handler == io.GRADUAL and not (opts.commit or opts.dest or opts.direct_archive)


def import_staged(
    ctx: Context,
    actor: Actor,
    staged: Staged,
    name: str | None,
    content_type: str | None,
    opts: io.ImportOptions,
    progress: Progress | None = None,
    projects: dict[str, tuple[str, int]] | None = None,
) -> ImportResult:
    """Import one staged upload: an archive's members one by one, or a single DICOM file."""
    kind = None if opts.handler == io.GRADUAL else _kind(staged.path, name or "upload", content_type)
    batch = ingest.IngestBatch(ctx, actor, opts, projects)
    try:
        if kind is None:
            staged = with_md5(staged)
            batch.flush_early(staged)
            batch.add(staged, name)  # the upload itself is the file: placed, not copied
            if progress:
                progress(1)
        else:
            unpacked = False
            if kind == "zip":
                try:
                    unpacked = _unpack_zip(ctx, batch, staged.path, progress)
                except helper_pool.HelperLost as exc:  # the import is slower, not lost: it starts over
                    log.warning("zip import: %s; unpacking it in the server process instead", exc)
                    batch.abort()
                    batch = ingest.IngestBatch(ctx, actor, opts, projects)
            if not unpacked:
                for entry, stream in _members(ctx, staged.path, kind, batch.report):
                    batch.add(hold_or_stage(ctx.settings.tmp_dir, stream), entry)
                    if progress:
                        progress(1)
            discard(staged)  # unpacked: gone before the filesystem sync, which need not write it
        _refuse_unparsable(batch.report, opts)
        refs = batch.finish()
    except BaseException:
        batch.abort()
        raise
    return finish(ctx, actor, refs, batch.report, opts, single_file=kind is None)


def _refuse_unparsable(report: ingest.Report, opts: io.ImportOptions) -> None:
    """XNAT's DicomZipImporter refuses an upload with a file that is not DICOM unless told to
    ignore them (``Ignore-Unparsable=true``, or ``action=commit``): the whole upload, before its
    commit, so nothing of it stays."""
    if report.not_dicom and opts.refuses_unparsable:
        raise InvalidInput(
            f"unable to read DICOM object {report.not_dicom[0]} (Ignore-Unparsable=true skips such files)"
        )


def _single_file(opts: io.ImportOptions, content_type: str | None) -> bool:
    """Whether an upload is surely one DICOM file, whose MD5 is worth computing as it arrives."""
    return opts.handler == io.GRADUAL or io.media_type(content_type) == "application/dicom"


def _kind(path: Path, name: str, content_type: str | None) -> str | None:
    with open(path, "rb") as f:
        head = f.read(600)
    return archives.archive_kind(name, content_type, head)


def _members(ctx: Context, path: Path, kind: str, report: ingest.Report) -> Iterator[tuple[str, BinaryIO]]:
    for member, stream in archives.iter_members(path, kind, _limits(ctx)):
        if not _nested(str(member.name), report):
            yield str(member.name), stream


def _unpack_zip(ctx: Context, batch: ingest.IngestBatch, path: Path, progress: Progress | None) -> bool:
    """A zip with many members goes to the helper processes (False: it is to be unpacked here);
    HelperLost if one died on the way."""
    if helper_pool.pool(ctx) is None:
        return False
    with zip_entries.open_zip(path) as archive:
        found = zip_entries.zip_entries(archive, path.stat().st_size, _limits(ctx))
        entries = [e for e in found if not _nested(str(e.name), batch.report)]
        return unpacking.unpack_zip(ctx, batch, path, archive, entries, progress)


def _nested(entry: str, report: ingest.Report) -> bool:
    """Archives inside archives are not unpacked: reported as skipped."""
    if archives.archive_kind(entry) is None:
        return False
    report.skipped.append(entry)
    return True


def _limits(ctx: Context) -> archives.ExtractLimits:
    s = ctx.settings
    return archives.ExtractLimits(s.max_extract_bytes, s.max_extract_ratio, s.max_extract_members)


def finish(
    ctx: Context,
    actor: Actor,
    refs: list[ingest.SessionRef],
    report: ingest.Report,
    opts: io.ImportOptions,
    single_file: bool = False,
) -> ImportResult:
    """Build and archive what the options ask for; the URIs to answer with."""
    if not refs:
        if single_file and report.skipped:
            raise InvalidInput(f"Unable to read DICOM object {report.skipped[0]}: not a DICOM file")
        raise InvalidInput(f"No DICOM files found in the upload ({report.summary()})")
    result = ImportResult(report=report)
    settled: list[str | XnatdError | ao.ArchiveOptions] = []
    for ref in refs:
        try:
            settled.append(_settle(ctx, actor, ref, opts))
        except XnatdError as exc:  # the other sessions of the upload are still filed
            settled.append(exc)
    _archive_settled(ctx, actor, refs, settled, result)
    result.uris = [s for s in settled if isinstance(s, str)]
    failures = [(ref, s) for ref, s in zip(refs, settled, strict=True) if isinstance(s, XnatdError)]
    # one file per request: the access log has the request already; a line per file costs more than it tells
    (log.debug if single_file else log.info)(
        "import by %s: %s -> %s", actor.username, report.summary(), ", ".join(result.uris)
    )
    if failures:
        ref, first = failures[0]
        done = f"; done: {', '.join(result.uris)}" if result.uris else ""
        first.message = f"{first.message} ({ref.uri}; {len(failures)} of {len(refs)} sessions failed{done})"
        if isinstance(first, Conflict) and opts.handler != io.SI:
            # XNAT's DICOM importers answer a refusal of the archive 400 (its session importer 409)
            raise InvalidInput(first.message) from first
        raise first
    return result


def _settle(
    ctx: Context, actor: Actor, ref: ingest.SessionRef, opts: io.ImportOptions
) -> str | ao.ArchiveOptions:
    """The session's URI once it is built as asked (or left RECEIVING), or how to archive it.

    What to do was decided when the session was found or started (``import_options.intake``): a
    session of the request's own is archived now (``dest=/archive``, or the auto-archive code of a
    project a whole upload went to); a Direct-Archive staging session waits for its senders to go
    quiet (the idle builder archives it), unless the archive would refuse it anyway; a shared one is
    built if asked. No rights are checked here: the batch checked them as it filed.
    """
    if ref.intake == io.REQUEST:
        if opts.to_archive:
            return _dest_options(opts)
        with ctx.db.read() as conn:
            row = pq.session(conn, ref.pk)
        return ao.code_options(row["autoarchive"] if row is not None else None)
    staged = ao.staged_options(ref.intake)
    if staged is not None:
        archiver.refuse_early(ctx, ref.pk, staged)
        return ref.uri
    if _settles_nothing(opts):
        return ref.uri  # one file of a stream: the idle builder builds the session when it ends
    # a whole upload (zip, tar, SI) is complete when its request ends: built, READY (as XNAT's session
    # importer leaves it, and what xnatpy lists); one file of a stream waits for the idle builder
    pre.build_filed(ctx, ref.pk)
    return ref.uri


def _dest_options(opts: io.ImportOptions) -> ao.ArchiveOptions:
    return ao.ArchiveOptions(
        project=opts.labels.project,
        subject=opts.labels.subject,
        label=opts.labels.session,
        overwrite=opts.overwrite,
        overwrite_files=opts.overwrite_files,
    )


def _archive_settled(
    ctx: Context,
    actor: Actor,
    refs: list[ingest.SessionRef],
    settled: list[str | XnatdError | ao.ArchiveOptions],
    result: ImportResult,
) -> None:
    """Archive the sessions ``_settle`` said to, those with the same options together (one
    transaction for the studies of a zip); each gets its URI, or its error, in ``settled``."""
    groups: dict[ao.ArchiveOptions, list[int]] = {}
    for i, s in enumerate(settled):
        if isinstance(s, ao.ArchiveOptions):
            groups.setdefault(s, []).append(i)
    for aopts, indexes in groups.items():
        keys = [pre.Key(refs[i].project, refs[i].timestamp, refs[i].folder) for i in indexes]
        for i, done in zip(indexes, archiver.archive_all(ctx, actor, keys, aopts), strict=True):
            settled[i] = done if isinstance(done, XnatdError) else done.uri
        result.moved_to_archive = True


def import_path(
    ctx: Context, actor: Actor, path: Path, opts: io.ImportOptions, progress: Progress | None = None
) -> ImportResult:
    """``xnatd import``: a local folder (walked), a zip/tar or a single file, through the same batch."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        batch = ingest.IngestBatch(ctx, actor, opts)
        try:
            for p in files:
                with open(p, "rb") as f:
                    batch.add(hold_or_stage(ctx.settings.tmp_dir, f), str(p.relative_to(path)))
                if progress:
                    progress(1)
            refs = batch.finish()
        except BaseException:
            batch.abort()
            raise
        return finish(ctx, actor, refs, batch.report, opts)
    with open(path, "rb") as f:
        staged = stage_fileobj(ctx.settings.tmp_dir, f, sync=False)
    try:
        return import_staged(ctx, actor, staged, path.name, None, opts, progress)
    finally:
        discard(staged)


def count_entries(path: Path) -> int:
    """How many files an import of ``path`` will look at (for a progress bar)."""
    if path.is_dir():
        return sum(1 for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    kind = archives.archive_kind(path.name)
    if kind == "zip":
        import zipfile

        with zipfile.ZipFile(path) as zf:
            return sum(1 for i in zf.infolist() if not i.is_dir())
    return 1
