"""fsyncs run side by side on a few threads, so that a request's flushes overlap.

On a journalling filesystem each fsync waits for a journal commit; fsyncs issued at the same time
share one commit, and an fsync started early overlaps the Python work of filing the file. Nothing
here weakens durability: callers still wait for every flush before they commit their rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

_FLUSHERS = ThreadPoolExecutor(8, thread_name_prefix="xnatd-fsync")


def start_fsync(path: Path) -> Future[None]:
    """Begin the fsync of ``path`` now. The descriptor is opened here, before any rename of the
    file, and stays valid across it; the flusher thread closes it."""
    fd = os.open(path, os.O_RDONLY)
    return _FLUSHERS.submit(_fsync_and_close, fd)


def side_by_side(flushes: Sequence[Callable[[], None]], started: Sequence[Future[None]] = ()) -> None:
    """Run flushes at the same time, not one after the other: the filesystem then commits its
    journal once for all of them instead of once each (on ext4 the file's and its folder's fsync
    would otherwise wait for two journal commits); ``started``: flushes already under way
    (``start_fsync``). All must succeed; the first error is raised."""
    futures = [*started, *(_FLUSHERS.submit(f) for f in flushes[1:])]
    try:
        if flushes:
            flushes[0]()
    finally:
        for future in futures:
            future.exception()  # wait for every one, even after a failure
    for future in futures:
        future.result()


def _fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
