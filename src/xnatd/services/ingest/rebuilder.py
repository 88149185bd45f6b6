"""Sessions still RECEIVING are built once no file has arrived for a while (XNAT's session XML
rebuilder), then archived if their project (or the sender) asked for auto-archiving, or if they are
the staging session of Direct-Archive imports (XNAT's direct archive: archived with the imports'
overwrite options once their senders are quiet).

DICOM senders never say "done": a C-STORE association or a stream of one-file imports just stops.
The idle interval is the ``prearchive_idle_build`` setting. Several server processes may run this
loop; a session is claimed in one write transaction, so it is built once. A file arriving for it
after the claim goes to the study's next session (``ingest_sessions.SessionGone``).
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

import anyio

from xnatd.db import archive as q
from xnatd.db import prearchive as pq
from xnatd.errors import XnatdError
from xnatd.services.access.context import SYSTEM, Context
from xnatd.services.prearchive import archiver
from xnatd.services.prearchive import prearchive as pre
from xnatd.services.prearchive.archive_options import ArchiveOptions, code_options, staged_options
from xnatd.threads import run_in_threadpool

log = logging.getLogger("xnatd.rebuilder")


def build_idle(ctx: Context) -> int:
    """Build every session idle for longer than the setting; returns how many were built."""
    cutoff = q.now() - _dt.timedelta(seconds=ctx.settings.prearchive_idle_build)
    with ctx.db.read() as conn:
        candidates = pq.idle_receiving(conn, cutoff)
    built = 0
    for pk in candidates:
        with ctx.db.write() as conn:
            row = pq.session_locked(conn, pk)
            if row is None or row["status"] != "RECEIVING" or row["lastmod"] >= cutoff:
                continue  # another process took it, or a file arrived meanwhile
            how = staged_options(row["intake"])
            if how is not None:  # claimed for its archive at once: no later file joins it
                row = pre.build_row(conn, row, status="ARCHIVING")
            elif row["project"] is not None and (row["autoarchive"] or 0) >= 4:
                # auto-archive merges into a session of its label already archived (XNAT appends),
                # so the label being taken is no CONFLICT here; the archive itself may refuse it
                row = pre.build_row(conn, row, status="ARCHIVING")
                how = code_options(row["autoarchive"])
            else:
                row = pre.build_row(conn, row)
        built += 1
        if how is not None:
            _auto_archive(ctx, row, how)
    return built


def _auto_archive(ctx: Context, row: Any, how: ArchiveOptions) -> None:
    """Archive a claimed session; one the archive refuses stays in the prearchive (CONFLICT or ERROR,
    the reason in its log) for a person to look at."""
    try:
        done = archiver.archive_claimed(ctx, SYSTEM, row, how)
        log.info("auto-archived %s", done.uri)
    except XnatdError as exc:
        log.warning("auto-archive of %s failed: %s", pre.uri(row), exc)


async def run(ctx: Context) -> None:
    """The loop the server runs in the background (until cancelled at shutdown)."""
    interval = max(1.0, min(60.0, ctx.settings.prearchive_idle_build / 2))
    while True:
        await anyio.sleep(interval)
        try:
            await run_in_threadpool(build_idle, ctx)
        except Exception:  # a bad session must not stop the loop for all the others
            log.exception("prearchive rebuilder failed")
