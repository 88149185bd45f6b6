"""One-file (gradual-DICOM) requests that arrive together are filed as one batch.

A client sending one DICOM file per request (the seed's curl loop, a scanner gateway, several
threads of a script) makes many small requests. Filed one by one, each pays a worker-thread hop,
the caller's session lookup, the project check, the open-session lookup and a write transaction,
and concurrent ones fight over the GIL at every database call. Here requests wait on the event
loop while a batch is being filed, and one worker thread files batch after batch, each taking all
that are waiting: each distinct caller is looked up once (in one read transaction with the project
checks), and the files of one caller with the same options go into one ``IngestBatch``: one project
check, one lookup per session, one transaction, their fsyncs side by side. Each request is still
answered only after its own file is on disk and its row committed, with its own result or error.

The sessions a batch filed into are remembered for the next one (a client sends a series file
after file, so the next batch nearly always goes to the same session): their lookup is skipped, and
the commit checks each is still open and where it was.

If a shared batch fails as a whole (a session archived meanwhile, a full disk), it is filed again
with nothing remembered if it used a remembered session, then each of its requests alone, so a bad
request fails only itself.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from xnatd.errors import XnatdError
from xnatd.services.access import auth
from xnatd.services.access.context import Actor, Context
from xnatd.services.ingest import ingest
from xnatd.services.ingest.import_options import ImportOptions
from xnatd.storage.files import Held
from xnatd.threads import run_in_threadpool

BATCH_LIMIT = 64  # requests per batch: a crowd of clients is answered in rounds, none waits for all
Projects = dict[str, tuple[str, int]]  # the checked destination: project key -> (ID, prearchive code)
Check = Callable[[Context, Actor, ImportOptions], Projects]
Filed = tuple[Actor, list[ingest.SessionRef], ingest.Report]


@dataclass(eq=False)
class _Request:
    credentials: auth.Credentials
    opts: ImportOptions
    held: Held
    name: str | None  # as sent (a multipart file name), or None
    actor: Actor | None = None
    refs: list[ingest.SessionRef] = field(default_factory=list)
    report: ingest.Report = field(default_factory=ingest.Report)
    error: BaseException | None = None


class GradualFiler:
    """One per event loop (so per server process): the one-file requests waiting to be filed."""

    def __init__(self, ctx: Context, check: Check) -> None:
        self.ctx, self.check = ctx, check
        self._waiting: list[tuple[_Request, asyncio.Future[Filed]]] = []
        self._lock = threading.Lock()  # the waiting list is shared with the thread that files
        self._draining = False  # a thread is filing what waits
        self._drainer: asyncio.Future[None] | None = None  # that thread's call, kept referenced
        self._remembered: ingest.Remembered = {}

    async def file(
        self, credentials: auth.Credentials, opts: ImportOptions, held: Held, name: str | None
    ) -> Filed:
        """Who the caller is, and where its file went; once the file is durable and committed.

        Raises what filing it alone would have raised (Unauthenticated, NotFound, InvalidInput...).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Filed] = loop.create_future()
        with self._lock:
            self._waiting.append((_Request(credentials, opts, held, name), future))
            start, self._draining = not self._draining, True
        if start:
            self._drainer = asyncio.ensure_future(run_in_threadpool(self._drain, loop))
        return await asyncio.shield(future)  # a cancelled request's file is still filed, or not at all

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """In a worker thread: file batch after batch while requests wait. Each batch's requests
        learn their answers on the event loop while the next batch is filed, so the thread never
        waits for the event loop's attention between batches."""
        taken: list[tuple[_Request, asyncio.Future[Filed]]] = []
        try:
            while True:
                with self._lock:
                    taken, self._waiting = self._waiting[:BATCH_LIMIT], self._waiting[BATCH_LIMIT:]
                    if not taken:
                        self._draining = False
                        return
                try:
                    _file_all(self.ctx, self.check, [r for r, _f in taken], self._remembered)
                except Exception as exc:  # not a request's own error: those are kept per request
                    for request, _f in taken:
                        request.error = request.error or exc
                _answer(loop, taken)
                taken = []
        except BaseException:  # the thread is stopped: the batch broke off, the rest is not filed
            with self._lock:
                left, self._waiting, self._draining = self._waiting, [], False
            _answer(loop, taken + left)
            raise


def _answer(loop: asyncio.AbstractEventLoop, taken: list[tuple[_Request, asyncio.Future[Filed]]]) -> None:
    """Settle the requests' futures on their event loop (from the filing thread)."""
    try:
        loop.call_soon_threadsafe(_settle_all, taken)
    except RuntimeError:  # the loop has closed: the server stopped and no one waits for the answers
        pass


def _settle_all(taken: list[tuple[_Request, asyncio.Future[Filed]]]) -> None:
    for request, future in taken:
        _settle(request, future)


def _settle(request: _Request, future: asyncio.Future[Filed]) -> None:
    if future.done():
        return
    if request.error is not None:
        future.set_exception(request.error)
    elif request.actor is None:  # the batch broke off before reaching it
        future.set_exception(RuntimeError("The file was not filed: the server is stopping"))
    else:
        future.set_result((request.actor, request.refs, request.report))


def _file_all(ctx: Context, check: Check, requests: list[_Request], remembered: ingest.Remembered) -> None:
    """In a worker thread: identify each caller once and check each destination once (in one read
    transaction), then file each caller's like requests together."""
    callers: dict[auth.Credentials, Actor | XnatdError] = {}
    groups: dict[tuple[Actor, ImportOptions], list[_Request]] = {}
    with ctx.db.reading():
        for request in requests:
            if request.credentials not in callers:
                try:
                    callers[request.credentials] = auth.required_caller(ctx, request.credentials)
                except XnatdError as exc:
                    callers[request.credentials] = exc
            found = callers[request.credentials]
            if isinstance(found, XnatdError):
                request.error = found
                continue
            request.actor = found
            groups.setdefault((found, request.opts), []).append(request)
        checked = {key: _checked(ctx, check, *key) for key in groups}
    for key, group in groups.items():
        projects = checked[key]
        if isinstance(projects, Exception):
            for request in group:
                request.error = projects
            continue
        _file_group(ctx, projects, group, remembered)


def _checked(ctx: Context, check: Check, actor: Actor, opts: ImportOptions) -> Projects | Exception:
    try:
        return check(ctx, actor, opts)
    except Exception as exc:  # the answer to each request of the group
        return exc


def _file_group(
    ctx: Context, projects: Projects, group: list[_Request], remembered: ingest.Remembered
) -> None:
    try:
        _file_together(ctx, projects, group, remembered)
    except _Remembered:  # perhaps a remembered session is gone: again, looking each one up
        _file_group(ctx, projects, group, remembered)
    except BaseException as exc:
        if len(group) == 1:
            group[0].error = exc
            return
        for request in group:  # each alone: only the faulty one fails
            _file_group(ctx, projects, [request], remembered)


def _file_together(
    ctx: Context, projects: Projects, group: list[_Request], remembered: ingest.Remembered
) -> None:
    actor, opts = group[0].actor, group[0].opts
    assert actor is not None
    batch = ingest.IngestBatch(ctx, actor, opts, projects, remembered)
    keys: list[ingest.SlotKey | None] = []
    reports: list[ingest.Report] = []
    try:
        for request in group:
            before = (batch.report.stored, batch.report.duplicates, len(batch.report.skipped))
            keys.append(batch.add(request.held, request.name))
            reports.append(_since(batch.report, *before))
        batch.finish()
    except BaseException as exc:
        batch.abort()
        if batch.used_remembered and isinstance(exc, Exception):
            remembered.clear()
            raise _Remembered from exc
        raise
    batch.remember(remembered)
    for request, key, report in zip(group, keys, reports, strict=True):
        request.refs = [] if key is None else [batch.ref_of(key)]
        request.report = report


class _Remembered(Exception):
    """A batch that used remembered sessions failed: it is to be filed again, looking them up."""


def _since(report: ingest.Report, stored: int, duplicates: int, skipped: int) -> ingest.Report:
    """What a batch did with the one file added since its report read (stored, duplicates, skipped).

    A file found to be a duplicate only at the commit (a concurrent batch filed the same instance
    first) still counts as stored here; the batch deletes it, and its totals are exact."""
    return ingest.Report(report.stored - stored, report.duplicates - duplicates, report.skipped[skipped:])


_filers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GradualFiler] = weakref.WeakKeyDictionary()


async def file(
    ctx: Context,
    check: Check,
    credentials: auth.Credentials,
    opts: ImportOptions,
    held: Held,
    name: str | None,
) -> Filed:
    """File the held DICOM file of a one-file request, with the like requests waiting meanwhile.

    ``check``: the destination check (refusing an unknown or closed project), run once per batch.
    """
    loop = asyncio.get_running_loop()
    filer = _filers.get(loop)
    if filer is None or filer.ctx is not ctx:
        filer = _filers[loop] = GradualFiler(ctx, check)
    return await filer.file(credentials, opts, held, name)
