"""``read_ahead``: a blocking chunk iterator served to an async response, one chunk ahead."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator

import pytest

from xnatd.api.streaming import read_ahead


def test_the_next_chunk_is_read_while_this_one_is_sent() -> None:
    second_asked = threading.Event()

    def chunks() -> Iterator[bytes]:
        yield b"one"
        second_asked.set()
        yield b"two"

    async def consume() -> list[bytes]:
        got = []
        async for chunk in read_ahead(chunks()):
            got.append(chunk)
            if chunk == b"one":  # sending it: the second is asked for meanwhile, unprompted
                assert await asyncio.to_thread(second_asked.wait, 10)
        return got

    assert asyncio.run(consume()) == [b"one", b"two"]


def test_a_failure_reaches_the_response() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"one"
        raise RuntimeError("the file changed")

    async def consume() -> None:
        async for _ in read_ahead(chunks()):
            pass

    with pytest.raises(RuntimeError, match="changed"):
        asyncio.run(consume())


def test_a_client_gone_mid_download_leaves_no_error_behind(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    def chunks() -> Iterator[bytes]:
        yield b"one"
        release.wait(10)
        raise OSError("the read under way fails after the client left")

    async def consume() -> None:
        body = read_ahead(chunks())
        assert await anext(body) == b"one"
        await body.aclose()  # the response is closed while the second read is under way
        release.set()
        await asyncio.sleep(0.2)  # the read ends on its thread

    with caplog.at_level("ERROR", logger="asyncio"):
        asyncio.run(consume())
        gc.collect()
    assert "never retrieved" not in caplog.text
