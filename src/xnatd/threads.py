"""Run blocking service work (database, disk) off the event loop.

A plain ``ThreadPoolExecutor`` behind ``run_in_executor``: every request makes one or two of these
hops, and anyio's ``to_thread`` (cancel scopes, capacity limiter, backend lookup) cost about as much
CPU as the database read it carried. What anyio gave that matters is kept: a cancelled caller
still waits for its work to end, so its clean-up (``finally: discard(staged)``) never races a
thread that is still using what it cleans up.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
THREADS = 40  # at most this many blocking calls at once per process (anyio's default too)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(THREADS, thread_name_prefix="xnatd-worker")
    return _executor


async def run_in_threadpool(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    future = asyncio.get_running_loop().run_in_executor(_pool(), functools.partial(func, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await _outlast(future)
        raise


async def _outlast(future: asyncio.Future[Any]) -> None:
    """Wait for a thread's work to end, whatever it returns and however often we are cancelled."""
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            continue
        except BaseException:  # its own error: the caller was cancelled, it is not reported
            return
