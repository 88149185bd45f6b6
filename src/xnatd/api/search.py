"""``POST /data/search``: XNAT's search service, which pyxnat's ``select(...).where(...)`` and its
objects' ``repr()`` use, and xnatpy's ``Class.query()``.

The body is an ``<xdat:bundle>`` sent with no particular Content-Type; it is read up to a bound,
parsed (``domain.search``), run by one service call, and rendered in the asked format (``csv`` for
both clients) with XNAT's column headers. ``sortBy``/``sortOrder`` order the rows as XNAT's do.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from xnatd.api import render
from xnatd.api.auth import context, require_actor
from xnatd.api.bodies import raw_chunks
from xnatd.domain import search as S
from xnatd.errors import MethodNotAllowed, TooLarge
from xnatd.services.search import search as search_service
from xnatd.threads import run_in_threadpool


async def search(request: Request) -> Response:
    if request.method != "POST":
        raise MethodNotAllowed("The search service takes a POSTed <xdat:bundle>")
    actor = await require_actor(request)
    body = await _body(request)
    bundle = S.parse_bundle(body)
    params = {k.lower(): v for k, v in request.query_params.items()}
    descending = params.get("sortorder", "").strip().upper() == "DESC"
    ctx = context(request)
    table = await run_in_threadpool(
        search_service.search, ctx, actor, bundle, params.get("sortby"), descending
    )
    return render.table_response(table, params.get("format"))


async def _body(request: Request) -> bytes:
    """The request body, refused past ``domain.search.MAX_BYTES`` without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > S.MAX_BYTES:
        raise TooLarge(f"The search document is larger than {S.MAX_BYTES} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in raw_chunks(request):
        size += len(chunk)
        if size > S.MAX_BYTES:
            raise TooLarge(f"The search document is larger than {S.MAX_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts)
