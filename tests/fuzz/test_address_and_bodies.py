"""Archive URLs and multipart bodies on hostile input: a parse result or a domain error, nothing else.

The multipart reader gets a real Starlette request fed through the ASGI ``receive`` interface, in
chunks split at arbitrary points, as a network would deliver it.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from tests.fuzz.corpus import fuzz_settings
from xnatd.api.bodies import multipart_parts
from xnatd.domain import address
from xnatd.errors import InvalidInput, NotFound, XnatdError

WORDS = [
    "archive", "projects", "subjects", "experiments", "scans", "assessors", "reconstructions",
    "resources", "files", "in", "out", "status", "..", ".", "", "P1", "S1", "E1", "1", "%2F", "\x00",
]  # fmt: skip
KINDS = {v for k, v in vars(address).items() if k.isupper() and isinstance(v, str)}


@fuzz_settings(400)
@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=12))
def test_any_path_parses_or_is_refused(segments: list[str]) -> None:
    path = "/".join(segments)
    try:
        addr = address.parse(address.split_path(path))
    except (InvalidInput, NotFound):
        return
    assert addr.kind in KINDS
    assert addr.kind != address.FILE or addr.path, "a file address names a file"
    assert addr.level == "site" or addr.project or addr.subject or addr.experiment


def _request(body: bytes, content_type: str, cuts: list[int]) -> Request:
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    chunks = [body[a:b] for a, b in itertools.pairwise(points)] or [b""]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", b"%d" % len(body)),
        ],
    }
    return Request(scope, receive)


async def _consume(request: Request) -> list[tuple[str | None, int]]:
    parts = []
    async for part in multipart_parts(request):
        size = 0
        async for chunk in part.chunks:
            size += len(chunk)
        parts.append((part.filename, size))
    return parts


def read_parts(body: bytes, content_type: str, cuts: list[int]) -> list[tuple[str | None, int]] | None:
    """The parts read from ``body`` (None when refused with a domain error)."""
    try:
        return asyncio.run(_consume(_request(body, content_type, cuts)))
    except XnatdError:
        return None


GOOD = (
    b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="a.dcm"\r\n'
    b"Content-Type: application/dicom\r\n\r\n" + b"DICM" * 40 + b"\r\n"
    b'--XyZ\r\nContent-Disposition: form-data; name="x"\r\n\r\nvalue\r\n--XyZ--\r\n'
)
CTYPE = "multipart/form-data; boundary=XyZ"


def test_good_body_is_read_whatever_the_chunking() -> None:
    for cuts in ([], [1], [7, 60, 61, 62], list(range(0, len(GOOD), 3))):
        assert read_parts(GOOD, CTYPE, cuts) == [("a.dcm", 160)]


@fuzz_settings(300)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(GOOD)), st.binary(max_size=6)), max_size=5),
    cut=st.integers(0, len(GOOD)),
    cuts=st.lists(st.integers(0, 1 << 12), max_size=6),
    ctype=st.one_of(
        st.just(CTYPE),
        st.sampled_from(
            [
                "multipart/form-data",
                "multipart/form-data; boundary=",
                "multipart/form-data; boundary=" + "B" * 200,
                'multipart/form-data; boundary="XyZ"',
                "multipart/form-data; boundary=XyZ; boundary=other",
                "multipart/form-data; charset=\udcff",
            ]
        ),
        st.text(max_size=40).map(lambda t: "multipart/form-data; boundary=" + t),
    ),
)
def test_damaged_multipart(edits: list[tuple[int, bytes]], cut: int, cuts: list[int], ctype: str) -> None:
    body = bytearray(GOOD)
    for pos, patch in edits:
        body[pos : pos + len(patch)] = patch
    try:
        ctype.encode("latin-1")
    except UnicodeEncodeError:
        return  # not a header an HTTP server can receive
    parts = read_parts(bytes(body[: cut or len(body)]), ctype, cuts)
    assert parts is None or all(isinstance(size, int) and size >= 0 for _, size in parts)


@pytest.mark.parametrize("ctype", ["multipart/form-data", "multipart/form-data; boundary="])
def test_missing_boundary_is_refused(ctype: str) -> None:
    assert read_parts(GOOD, ctype, []) is None
