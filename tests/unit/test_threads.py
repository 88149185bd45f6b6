"""Blocking work off the event loop: a cancelled caller still waits for its work to end."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from xnatd.threads import run_in_threadpool


def test_result_and_error_come_back() -> None:
    def boom() -> None:
        raise ValueError("from the thread")

    async def main() -> int:
        with pytest.raises(ValueError, match="from the thread"):
            await run_in_threadpool(boom)
        return await run_in_threadpool(lambda a, b=0: a + b, 2, b=3)

    assert asyncio.run(main()) == 5


def test_cancelled_caller_returns_only_after_the_work_has_ended() -> None:
    """So a caller's clean-up (deleting a staged upload) never races the thread still reading it."""
    ended = threading.Event()
    names: list[str] = []

    def slow() -> None:
        names.append(threading.current_thread().name)
        time.sleep(0.3)
        ended.set()

    async def main() -> bool:
        task = asyncio.create_task(run_in_threadpool(slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return ended.is_set()

    assert asyncio.run(main()) is True
    assert names[0].startswith("xnatd-worker")
