"""Sessions still RECEIVING are built once no file has arrived for a while (XNAT's session XML
rebuilder), then archived if their project (or the sender) asked for auto-archiving.

DICOM senders never say "done": a C-STORE association or a stream of one-file imports just stops.
The idle interval is the ``prearchive_idle_build`` setting. Several server processes may run this
loop; a session is claimed in one write transaction, so it is built once.
"""

from __future__ import annotations

import datetime as _dt
import logging

import anyio

from xnatd.db import archive as q
from xnatd.db import prearchive as pq
from xnatd.errors import XnatdError
from xnatd.services import archiver
from xnatd.services import prearchive as pre
from xnatd.services.context import SYSTEM, Context
from xnatd.services.import_options import code_options
from xnatd.services.threads import run_in_threadpool

log = logging.getLogger("xnatd.rebuilder")


def build_idle(ctx: Context) -> int:
    """Build every session idle for longer than the setting; returns how many were built."""
    cutoff = q.now() - _dt.timedelta(seconds=ctx.settings.prearchive_idle_build)
    with ctx.db.read() as conn:
        candidates = pq.idle_receiving(conn, cutoff)
    built = 0
    for pk in candidates:
        with ctx.db.write() as conn:
            row = pq.session(conn, pk)
            if row is None or row["status"] != "RECEIVING" or row["lastmod"] >= cutoff:
                continue  # another process took it, or a file arrived meanwhile
            row = pre.build_row(conn, row)
            auto = row["project"] is not None and (row["autoarchive"] or 0) >= 4 and row["status"] == "READY"
            if auto:
                pq.set_status(conn, pk, "ARCHIVING")
        built += 1
        if auto:
            _auto_archive(ctx, row)
    return built


def _auto_archive(ctx: Context, row: object) -> None:
    try:
        done = archiver.archive_claimed(ctx, SYSTEM, row, code_options(row["autoarchive"]))  # type: ignore[index]
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
