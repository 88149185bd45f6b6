"""Request bodies as streams of upload parts, never held in memory.

A ``multipart/form-data`` body is parsed incrementally (python-multipart) and each file part is
handed on as an async stream of chunks while the body is still arriving; any other body is one
part. The consumer must read each part's chunks before asking for the next part.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from xnatd.errors import InvalidInput, TooLarge
from xnatd.services.archive.files import UploadPart


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


def has_body(request: Request) -> bool:
    if "transfer-encoding" in request.headers:
        return True
    return int(request.headers.get("content-length") or 0) > 0


async def raw_chunks(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise InvalidInput("The client disconnected before the body was complete") from None


async def small_body(request: Request, limit: int, what: str = "The body") -> bytes:
    """A body small enough to hold (a form, a JSON or XML document): read whole, refused past ``limit``."""
    body = b""
    async for chunk in raw_chunks(request):
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"{what} is larger than {limit} bytes")
    return body


async def one_document(request: Request, limit: int, what: str = "The document") -> bytes | None:
    """A small document sent as the raw body or as the one file of a multipart body (a script, a
    search bundle, a settings file); None when there is no body at all."""
    if not has_body(request):
        return None
    if not is_multipart(request):
        return await small_body(request, limit, what)
    found: bytes | None = None
    async for part in multipart_parts(request):  # file parts only: form fields are skipped
        data = b""
        async for chunk in part.chunks:
            data += chunk
            if len(data) > limit:
                raise TooLarge(f"{what} is larger than {limit} bytes")
        if found is not None:
            raise InvalidInput(f"{what} is limited to a single file")
        found = data
    return found


async def raw_part(request: Request, filename: str | None) -> AsyncIterator[UploadPart]:
    yield UploadPart(filename, request.headers.get("content-type"), raw_chunks(request))


class _Events:
    """Collects the parser's callbacks as a queue of (kind, payload) events."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, Any]] = deque()
        self._field = b""
        self.headers: dict[str, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: setattr(self, "_field", self._field + bytes(d[s:e])),
            "on_header_value": self._value,
            "on_header_end": lambda: setattr(self, "_field", b""),
            "on_headers_finished": lambda: self.queue.append(("headers", dict(self.headers))),
            "on_part_data": lambda d, s, e: self.queue.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.queue.append(("end", None)),
        }

    def _begin(self) -> None:
        self.headers = {}
        self._field = b""

    def _value(self, data: bytes, start: int, end: int) -> None:
        key = self._field.decode("latin-1").lower()
        self.headers[key] = self.headers.get(key, b"") + bytes(data[start:end])


async def multipart_parts(request: Request) -> AsyncIterator[UploadPart]:
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("multipart/form-data body without a boundary")
    events = _Events()
    parser = MultipartParser(boundary, events.callbacks())  # type: ignore[arg-type]
    body = raw_chunks(request)

    async def pull() -> bool:
        try:
            chunk = await body.__anext__()
        except StopAsyncIteration:
            parser.finalize()
            return False
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidInput(f"Malformed multipart body: {exc}") from None
        return True

    async def next_event() -> tuple[str, Any] | None:
        while not events.queue:
            if not await pull():
                return None
        return events.queue.popleft()

    async def part_chunks() -> AsyncIterator[bytes]:
        while (event := await next_event()) is not None:
            if event[0] == "end":
                return
            if event[0] == "data" and event[1]:
                yield event[1]
        raise InvalidInput("Truncated multipart body")

    while (event := await next_event()) is not None:
        if event[0] != "headers":
            continue
        disposition = event[1].get("content-disposition", b"")
        _, params = parse_options_header(disposition)
        filename = params.get(b"filename")
        chunks = part_chunks()
        if filename is None:
            async for _ in chunks:  # a plain form field, not a file
                pass
            continue
        ctype = event[1].get("content-type")
        yield UploadPart(
            filename.decode("utf-8", "replace"), ctype.decode("latin-1") if ctype else None, chunks
        )
        async for _ in chunks:  # whatever the consumer left unread
            pass
