"""Streamed response bodies built by blocking code (zip and tar downloads read files)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from xnatd.threads import run_in_threadpool


async def read_ahead(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Zip and tar building reads files: do it off the event loop, one chunk ahead, so that reading
    the next chunk overlaps sending this one (at most two chunks, 2 MiB, in memory)."""

    def ahead() -> asyncio.Task[Any]:
        return asyncio.ensure_future(run_in_threadpool(next, chunks, _END))

    pending = ahead()
    try:
        while (chunk := await pending) is not _END:
            pending = ahead()
            yield chunk
    finally:  # the client may have gone away: the read under way ends alone, its outcome dropped
        pending.add_done_callback(_retrieved)


_END = object()


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it: nobody is waiting for it any more
